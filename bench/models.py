"""Forward throughput of the front end and both published models on this machine.

    .venv/bin/python -m bench.models [--batch 64] [--repeats 5]

Prints a table of 1 s windows per second (median of several runs, batch 64, no gradients)
and writes it to bench/results/models.md.
"""

from __future__ import annotations

import argparse

import torch

from bench.common import machine, median_seconds, write_result
from models import FrontEndConfig, LogMel, get_model
from tests.signals import synth_song


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = FrontEndConfig()
    audio = torch.from_numpy(synth_song(args.batch * 0.5 + 1, seed=0))
    waveforms = audio.unfold(0, config.window_samples, config.window_samples // 2)[: args.batch].contiguous()
    front_end = LogMel(config)
    rows = []
    with torch.inference_mode():
        log_mel = front_end(waveforms)
        seconds = median_seconds(lambda: front_end(waveforms), args.repeats)
        rows.append(("log-mel front end", "-", seconds))
        for model_str in ("fingerprinter", "audsearch"):
            for width in (1.0, 0.25):
                model = get_model(model_str, width).eval()
                params = sum(p.numel() for p in model.parameters())
                seconds = median_seconds(lambda model=model: model(log_mel), args.repeats)
                rows.append((f"{model_str} width {width}", f"{params:,}", seconds))
    lines = [
        "## Model forward throughput (issue 2)",
        "",
        f"Command: `.venv/bin/python -m bench.models --batch {args.batch} --repeats {args.repeats}`  ",
        f"Machine: {machine()}  ",
        f"Batch of {args.batch} one-second windows, inference mode, median of {args.repeats} runs after one warm-up.",
        "",
        "| stage | parameters | ms per batch | windows per second |",
        "|---|---|---|---|",
    ]
    for name, params, seconds in rows:
        lines.append(f"| {name} | {params} | {seconds * 1000:.1f} | {args.batch / seconds:,.0f} |")
    text = "\n".join(lines)
    print(text)
    print(f"\nwritten to {write_result('models', text)}")


if __name__ == "__main__":
    main()
