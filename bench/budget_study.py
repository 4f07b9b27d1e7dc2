"""Training choices at a fixed CPU budget: each point trains from scratch for the same minutes.

    python -m bench.budget_study [--minutes 8] [--point NAME] ... [--base configs/train_cpu.json]

Every point is ``configs/train_cpu.json`` (the shipped CPU recipe: width 0.25, batch 128,
lr 0.005, temperature 0.05, 16 windows per song) with one or two keys changed, trained from
scratch for ``--minutes`` of wall time with the cosine learning rate spread over exactly that
budget (``schedule_minutes``), so a point that runs slower sees fewer pairs: that is the
trade-off being measured. Each point is scored twice:
- validation top-1 of the kept checkpoint (1 s windows of the validation songs against their
  augmented twins, 360 pairs; comparable across batch sizes, unlike the validation loss);
- the demo's real-world protocol with every best candidate answered (``bench.learning_curve``).

Training resumes and finished points are not trained or measured again (work under ``--work``),
so the study can be stopped and restarted. Figures are only comparable on an otherwise idle
machine: the study prints the load average it started with. Writes
``bench/results/budget_study.md`` and ``budget_study.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, machine, write_result
from bench.learning_curve import LEVELS, protocol_accuracy
from common.atomic import save_figure
from training.checkpointing import RunFiles
from training.logs import read_metrics

# name -> keys changed from the base recipe
POINTS = {
    "base": {},
    "1 window/song": {"windows_per_song": 1},
    "batch 64": {"batch_size": 64},
    "batch 256": {"batch_size": 256},
    "width 0.5": {"width": 0.5},
    "lr x0.5": {"lr": 0.0025},
    "lr x2": {"lr": 0.01},
    "temperature 0.1": {"temperature": 0.1},
}
LENGTHS = [1.0, 2.0, 5.0]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def train_point(name: str, changes: dict, args) -> tuple[Path, dict]:
    """Train one point (or resume it); (kept checkpoint, {epochs, pairs, kept_epoch, val_top1})."""
    work = Path(args.work) / slug(name)
    work.mkdir(parents=True, exist_ok=True)
    config = json.loads(Path(args.base).read_text())
    config.update(
        output_path=str(work),
        epochs=100000,
        patience=100000,  # the budget ends a point, not early stopping
        max_minutes=args.minutes,
        schedule_minutes=args.minutes,
        resume=True,
        progress=False,
    )
    config.update(changes)
    config_path = work / "train.json"
    config_path.write_text(json.dumps(config, indent=2))
    files = RunFiles(work, config["model_name"])
    history = read_metrics(files.metrics)
    if not history or history[-1]["minutes"] < args.minutes:
        subprocess.run([sys.executable, "training/trainer.py", "--config", str(config_path)], check=True)
        history = read_metrics(files.metrics)
    kept = [entry for entry in history if entry["best"]][-1]  # the checkpoint the trainer kept (lowest val loss)
    summary = {
        "epochs": history[-1]["epoch"] + 1,
        "pairs": sum(entry["pairs_per_second"] * entry["seconds"] for entry in history),
        "kept_epoch": kept["epoch"] + 1,
        "val_top1": kept["val_top1"],
    }
    return files.best, summary


def plot(rows: list[tuple[str, dict, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    names = [name for name, _, _ in rows]
    axes[0].barh(names, [100 * summary["val_top1"] for _, summary, _ in rows], color="tab:gray")
    axes[0].set_xlabel("validation top-1 (%)")
    axes[0].invert_yaxis()
    height = 0.8 / len(LENGTHS)
    for number, length in enumerate(LENGTHS):
        positions = [row + (number - (len(LENGTHS) - 1) / 2) * height for row in range(len(rows))]
        axes[1].barh(positions, [100 * acc[("high_t", length)] for _, _, acc in rows], height, label=f"{length:g} s")
    axes[1].set_yticks(range(len(rows)), names)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("song accuracy, high-noise recording (%)")
    axes[1].legend(title="query", fontsize=8)
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per point (wall minutes)")
    parser.add_argument("--point", action="append", choices=list(POINTS), help="points to run (default: all)")
    parser.add_argument("--base", default="configs/train_cpu.json")
    parser.add_argument("--recordings", default="runs/demo/recordings")
    parser.add_argument("--true-songs", default="data/demo/music/test")
    parser.add_argument("--work", default="runs/bench/budget_study")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} (figures compare only on an idle machine)", flush=True)
    rows = []
    for name in args.point or list(POINTS):
        checkpoint, summary = train_point(name, POINTS[name], args)
        accuracy = protocol_accuracy(
            str(checkpoint), checkpoint.parent / "eval", name, LENGTHS, args.recordings, args.true_songs
        )
        rows.append((name, summary, accuracy))
    header = " | ".join(f"{level} {length:g} s" for level in LEVELS for length in LENGTHS)
    lines = [
        "## Training choices at a fixed CPU budget (issue 11)",
        "",
        f"Command: `.venv/bin/python -m bench.budget_study {shlex.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}; load average {load:.2f} at the start (points compare only on an idle machine)  ",
        f"Every point trains from scratch for {args.minutes:g} wall minutes (cosine over that budget) from "
        f"`{args.base}` with the keys shown changed; validation top-1 of the kept checkpoint (360 pairs); "
        "song accuracy (%) on the demo recordings, every best candidate answered.",
        "",
        f"| point | changed keys | epochs | pairs seen | kept epoch | val top-1 % | {header} |",
        "|" + "---|" * (6 + len(LEVELS) * len(LENGTHS)),
    ]
    for name, summary, accuracy in rows:
        changed = ", ".join(f"{key} {value}" for key, value in POINTS[name].items()) or "-"
        cells = " | ".join(f"{100 * accuracy[(level, length)]:.1f}" for level in LEVELS for length in LENGTHS)
        lines.append(
            f"| {name} | {changed} | {summary['epochs']} | {summary['pairs'] / 1000:.1f} K | {summary['kept_epoch']} "
            f"| {100 * summary['val_top1']:.1f} | {cells} |"
        )
    plot(rows, RESULTS / "budget_study.png")
    print("\n".join(lines))
    print(f"written {write_result('budget_study', chr(10).join(lines))} and {RESULTS / 'budget_study.png'}")


if __name__ == "__main__":
    main()
