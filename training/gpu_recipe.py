"""Train the published-size fingerprinter on one CUDA GPU from a training pack, for a given number of minutes.

python training/gpu_recipe.py PACK MINUTES [OUTPUT_DIR] [--set key=value ...]

PACK is a folder or .tar written by ``data_prep/make_pack.py`` (a .tar is unpacked into
OUTPUT_DIR/pack first). The recipe: fingerprinter width 1.0, batch 512, Lamb at lr_eff 1e-3,
bfloat16 mixed precision, a DataLoader worker per CPU core but one, epochs of about
EPOCH_PAIRS pairs, and a cosine learning rate over MINUTES of wall time (``schedule_minutes``);
the run stops when they are up, with checkpoints, log, metrics and curves in OUTPUT_DIR. Then the
best checkpoint's whitening is fitted on the pack's training songs (``training/fit_whitening.py``)
and written beside it as ``fingerprinter_gpu_whitened.pt``: the model to extract and match with.
``--set`` changes any trainer key (docs/training.md), e.g. ``--set batch_size=256`` (lr_eff
scales with the batch, the trainer's rule, unless ``lr`` is set too). The config used is
written to OUTPUT_DIR/gpu_recipe.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from common.atomic import atomic_write_text
from common.config import ConfigError, parse_override, validate
from common.errors import UserError
from data_prep.pack import read_pack, unpack
from training.checkpointing import RunFiles
from training.config import SCHEMA
from training.loop import LR_REFERENCE_BATCH, train
from training.whitening import SCHEMA as WHITENING_SCHEMA
from training.whitening import fit_whitening

BATCH_SIZE = 512
LR_EFF = 1e-3
# Training pairs per epoch: about a minute at 8,000-15,000 pairs/s; each epoch ends with validation and checkpoints.
EPOCH_PAIRS = 500_000
VAL_WINDOWS_PER_SONG = 100


def recipe_config(pack: Path, minutes: float, output_dir: Path, overrides: list[str]) -> dict:
    """The pack's training config with the GPU recipe on top, then ``overrides`` (key=value); validated."""
    summary = read_pack(pack)
    data = json.loads((pack / summary["training_config"]).read_text(encoding="utf-8"))
    for key in SCHEMA.keys:  # the pack's paths are relative to the pack
        if key.kind == "path" and key.name != "output_path" and isinstance(data.get(key.name), str):
            data[key.name] = str(pack / data[key.name])
    train_songs = summary["sets"]["music_train"]["files"]
    data.update(
        {
            "model_str": "fingerprinter",
            "width": 1.0,
            "batch_size": BATCH_SIZE,
            "optimizer": "Lamb",
            "lr": LR_EFF * LR_REFERENCE_BATCH / BATCH_SIZE,
            "amp": True,
            "device": "cuda",
            "num_workers": max(1, len(os.sched_getaffinity(0)) - 1),
            "windows_per_song": max(1, math.ceil(EPOCH_PAIRS / train_songs)),
            "val_windows_per_song": VAL_WINDOWS_PER_SONG,
            "schedule_minutes": minutes,
            "epochs": 1_000_000,  # the wall clock ends the run
            "patience": 1_000_000,
            "output_path": str(output_dir),
            "model_name": "fingerprinter_gpu",
        }
    )
    for text in overrides:
        name, value = parse_override(text)
        data[name] = value
    return validate(data, SCHEMA, where=f"{pack / summary['training_config']} with the GPU recipe")


def whiten(config: dict, config_path: Path) -> Path | None:
    """Fit the whitening of the run's best checkpoint on the pack's songs; the whitened checkpoint's path.

    Its keys come from the run's config (``config_path``, which errors name)."""
    files = RunFiles(config["output_path"], config["model_name"])
    if not (config["train_pickle"] and config["val_pickle"]):
        print("whitening not fitted: the pack's config names no train_pickle and val_pickle", flush=True)
        return None
    output = files.output_path / f"{files.stem}_whitened.pt"
    keys = ("data_path", "train_pickle", "val_pickle", "background_noise_val", "impulse_responses_val")
    settings = {key: config[key] for key in keys}
    settings.update(
        weights=str(files.best),
        output=str(output),
        freq_cut_bool=config["freq_cut_bool"],
        cache_dir=config["cache_dir"] or str(files.output_path / "cache"),
        seed=config["seed"],
        device=config["device"],
        progress=config["progress"],
    )
    try:
        settings = validate(settings, WHITENING_SCHEMA, where=str(config_path))
        settings.source = config_path
        fit_whitening(settings)
    except (UserError, RuntimeError) as error:  # e.g. too few windows, or out of GPU memory: the
        # trained checkpoint stands; only its whitening is missing (refit it with training/fit_whitening.py)
        print(f"whitening not fitted: {str(error).splitlines()[0]}", flush=True)
        return None
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", type=Path, help="training pack folder or .tar (data_prep/make_pack.py)")
    parser.add_argument("minutes", type=float, help="wall-clock minutes of training (the learning-rate schedule)")
    parser.add_argument("output_dir", type=Path, nargs="?", default=Path("runs/fingerprinter_gpu"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a trainer key")
    args = parser.parse_args(argv)
    try:
        if args.minutes <= 0:
            raise ConfigError(f"MINUTES must be positive, got {args.minutes:g}")
        if not args.pack.exists():
            raise UserError(f"{args.pack}: training pack not found")
        pack = unpack(args.pack, args.output_dir)
        config = recipe_config(pack, args.minutes, args.output_dir, args.set)
        config_path = args.output_dir / "gpu_recipe.json"
        atomic_write_text(config_path, json.dumps(config, indent=2) + "\n")
        print(
            f"config {config_path} (continue a stopped run: python training/trainer.py --config {config_path} "
            "--set resume=true)",
            flush=True,
        )
        train(config)
        whiten(config, config_path)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
