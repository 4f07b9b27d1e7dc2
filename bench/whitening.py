"""Does whitening help more than one model? Each checkpoint with and without it, on the demo recordings.

    python -m bench.whitening --checkpoint "stage 2=pretrained/fingerprinter_cpu_stage2.pt" \
        --checkpoint "stage 4=pretrained/fingerprinter_cpu.pt" [--lengths 1 2 5 15]

For every ``NAME=PATH`` checkpoint: its network alone (a copy without the whitening, if it has
one), and the whitening fitted by the public command (``training/fit_whitening.py --config
configs/whitening_cpu.json``, shrinkage chosen on validation pairs); both scored by the real-world
protocol on the demo's simulated recordings with every best candidate answered (the learning
curve's ``protocol_accuracy``). Writes ``bench/results/whitening.md``; work files go under
``--work`` (a model measured there before, with the same model_id, is not measured again).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bench.common import machine, write_result
from bench.learning_curve import LEVELS, protocol_accuracy, run
from models.checkpoint import load_checkpoint, weights_id, write_payload


def variants(name: str, path: str, work: Path) -> list[tuple[str, str, dict]]:
    """[(label, checkpoint path, whitening fit or {})]: the network alone, then with its fitted whitening."""
    folder = work / name.replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    payload = load_checkpoint(path)
    raw = folder / "network.pt"
    write_payload(raw, {key: value for key, value in payload.items() if key != "whitening"})
    white = folder / "whitened.pt"
    network = weights_id(payload["model_state"])
    fit = (load_checkpoint(white).get("whitening") or {}).get("fit", {}) if white.is_file() else {}
    if fit.get("network_id") != network:  # fitted for another network (or none chosen): fit again
        run([sys.executable, "training/fit_whitening.py", "--config", "configs/whitening_cpu.json",
             "--set", f"weights={json.dumps(str(raw))}", "--set", f"output={json.dumps(str(white))}",
             "--set", "progress=false"])  # fmt: skip
    fit = load_checkpoint(white).get("whitening") or {}
    return [(f"{name}, network alone", str(raw), {}), (f"{name} + whitening", str(white), fit)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1, 2, 5, 15])
    parser.add_argument("--recordings", default="runs/demo/recordings")
    parser.add_argument("--true-songs", default="data/demo/music/test")
    parser.add_argument("--work", default="runs/bench/whitening")
    args = parser.parse_args()
    lines = [
        "## Whitening on the demo recordings (issue 11)",
        "",
        f"Command: `.venv/bin/python -m bench.whitening {shlex.join(sys.argv[1:])}`  ",
        f"Real-world protocol song accuracy %, low / mid / high noise, every best candidate answered; {machine()}",
        "",
        "| model | shrinkage | validation top-1 | " + " | ".join(f"{length:g} s" for length in args.lengths) + " |",
        "|---|---|---|" + "---|" * len(args.lengths),
    ]
    for text in args.checkpoint:
        name, separator, path = text.partition("=")
        if not separator or not Path(path).is_file():
            parser.error(f"--checkpoint {text!r}: expected NAME=PATH of an existing checkpoint")
        for label, weights, fit in variants(name, path, Path(args.work)):
            accuracy = protocol_accuracy(
                weights, Path(args.work) / Path(weights).parent.name / Path(weights).stem, label,
                args.lengths, args.recordings, args.true_songs,
            )  # fmt: skip
            top1 = fit.get("fit", {}).get("validation_top1", {})
            if label.endswith("network alone"):
                shrinkage, figures = "-", ""
            elif fit:
                shrinkage = f"{fit['shrinkage']:g}"
                figures = f"{top1[shrinkage]:.3f} (none: {top1['none']:.3f})"
            else:
                shrinkage, figures = "none chosen (validation preferred the network's vectors)", ""
            cells = " | ".join(
                " / ".join(f"{100 * accuracy[(level, length)]:.1f}" for level in LEVELS) for length in args.lengths
            )
            lines.append(f"| {label} | {shrinkage} | {figures} | {cells} |")
    text = "\n".join(lines)
    print(text)
    print(f"written {write_result('whitening', text)}")


if __name__ == "__main__":
    main()
