"""Real-world-protocol accuracy of training checkpoints: the learning curve in the demo's own terms.

    python -m bench.learning_curve --checkpoint 10.6=runs/cpu_long/snapshots/epoch4.pt \
        --checkpoint 71.3=pretrained/fingerprinter_cpu.pt [--x-label "training pairs seen (thousands)"] \
        [--lengths 1 2 5 15] [--recordings runs/demo/recordings]

Validation top-1 (the trainer's figure) says how well 1 s windows of validation songs find
their augmented twins; users care about songs found in recordings. For every ``X=PATH``
checkpoint (X: where it lies on the curve, e.g. training minutes or thousands of pairs seen)
this runs the public commands: fingerprints of the demo's 72 test songs
(``configs/fingerprints_demo.json`` with the checkpoint's weights), a Flat database, and the
real-world protocol on the simulated recordings with every best candidate answered
(``threshold: -1``, so the figures do not depend on a calibration fitted per checkpoint).
Writes ``bench/results/learning_curve.md`` and ``learning_curve.png`` (accuracy against X, one
panel per recording, one line per query length); work files go under ``--work``, and a
checkpoint measured there before (same X and the same weights) is not measured again.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, machine, write_result
from common.atomic import save_figure
from extraction.manifest import read_fingerprint_manifest
from models.checkpoint import load_checkpoint

LEVELS = ("low_t", "mid_t", "high_t")


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def evaluate(x: float, weights: str, args) -> dict[tuple[str, float], float]:
    """{(recording, query seconds): song accuracy} of one checkpoint."""
    return protocol_accuracy(
        weights, Path(args.work) / f"x{x:g}", f"{args.x_label} {x:g}", args.lengths, args.recordings, args.true_songs
    )


def protocol_accuracy(
    weights: str, work: Path, name: str, lengths: list[float], recordings: str, true_songs: str
) -> dict[tuple[str, float], float]:
    """{(recording, query seconds): song accuracy} of ``weights`` on the demo recordings, no rule.

    Fingerprints, a Flat database and the protocol's results go under ``work``; results already
    there are reused when their fingerprints were made by the same weights (model id, so a
    checkpoint replaced at the same path is measured again).
    """
    results = work / "recording" / "results.json"
    manifest = read_fingerprint_manifest(work / "fingerprints") if results.is_file() else None
    if manifest is not None and manifest["identity"]["model_id"] == load_checkpoint(weights)["model_id"]:
        print(f"reusing {results} (delete {work} to measure again)")
        return _accuracy(results)
    python = sys.executable
    run([python, "generation/generate_fingerprints.py", "--config", "configs/fingerprints_demo.json",
         "--set", f"weights={json.dumps(weights)}", "--set", f"output dir={json.dumps(str(work / 'fingerprints'))}",
         "--set", "progress=false", "--set", "overwrite=true"])  # fmt: skip
    run([python, "generation/generate_index.py", "--config", "configs/index_demo.json",
         "--set", f"input_dir={json.dumps(str(work / 'fingerprints'))}",
         "--set", f"output_dir={json.dumps(str(work / 'index'))}", "--set", "overwrite=true"])  # fmt: skip
    config = {
        "experiment_name": f"{name}: {weights}",
        "models": [
            {
                "name": name,
                "weights": weights,
                "database": str(work / "index" / "demo.json"),
                "neighbors": 4,
                "threshold": -1.0,
                "method": "sequence",
            }
        ],
        "recording_wavs": [str(Path(recordings) / f"{level}.wav") for level in LEVELS],
        "csv_path": str(Path(recordings) / "playlist.csv"),
        "true_songs": true_songs,
        "query_lengths": lengths,
        "output_dir": str(work / "recording"),
    }
    config_path = work / "eval_recording.json"
    config_path.write_text(json.dumps(config, indent=2))
    run([python, "evaluation/evaluate_recording.py", "--config", str(config_path)])
    return _accuracy(results)


def _accuracy(results: Path) -> dict[tuple[str, float], float]:
    cells = json.loads(results.read_text())["cells"]
    return {(cell["condition"], float(cell["query_seconds"])): float(cell["accuracy_mean"]) for cell in cells}


def plot(curve: dict[float, dict], lengths: list[float], x_label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(LEVELS), figsize=(4 * len(LEVELS), 3.4), sharey=True)
    xs = sorted(curve)
    for axis, level in zip(axes, LEVELS):
        for length in lengths:
            axis.plot(xs, [100 * curve[x][(level, length)] for x in xs], marker="o", label=f"{length:g} s")
        axis.set_title(level)
        axis.set_xlabel(x_label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("song accuracy (%)")
    axes[-1].legend(title="query", fontsize=8)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, metavar="X=PATH")
    parser.add_argument("--x-label", default="training minutes (2 CPU cores)", help="what X is")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1, 2, 5, 15])
    parser.add_argument("--recordings", default="runs/demo/recordings")
    parser.add_argument("--true-songs", default="data/demo/music/test")
    parser.add_argument("--work", default="runs/bench/learning_curve")
    args = parser.parse_args()
    checkpoints = []
    for text in args.checkpoint:
        x, separator, path = text.partition("=")
        if not separator or not Path(path).is_file():
            parser.error(f"--checkpoint {text!r}: expected X=PATH of an existing checkpoint")
        checkpoints.append((float(x), path))
    curve = {x: evaluate(x, path, args) for x, path in checkpoints}
    header = f"| {args.x_label} | checkpoint | " + " | ".join(
        f"{level} {length:g} s" for level in LEVELS for length in args.lengths
    )
    lines = [
        "## Learning curve on the demo recordings (issue 11)",
        "",
        f"Command: `.venv/bin/python -m bench.learning_curve {shlex.join(sys.argv[1:])}`  ",
        f"Real-world protocol accuracy of training checkpoints (every best candidate answered), {machine()}",
        "",
        header + " |",
        "|" + "---|" * (2 + len(LEVELS) * len(args.lengths)),
    ]
    for x, path in checkpoints:
        accuracy = curve[x]
        cells = " | ".join(f"{100 * accuracy[(level, length)]:.1f}" for level in LEVELS for length in args.lengths)
        lines.append(f"| {x:g} | `{path}` | {cells} |")
    plot(curve, args.lengths, args.x_label, RESULTS / "learning_curve.png")
    print("\n".join(lines))
    print(f"written {write_result('learning_curve', chr(10).join(lines))} and {RESULTS / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
