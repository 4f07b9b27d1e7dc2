"""Fitting a checkpoint's whitening (docs/training.md, "Whitening"), after training.

``fit_whitening(config)`` is what ``python training/fit_whitening.py --config FILE`` calls:
1. embed every window of the training songs at the database hop (0.5 s) with the checkpoint's
   network, as a database would hold them (a random ``max_fit_windows`` of them at most);
2. embed fixed validation pairs (a clean window of a validation song and its degraded copy,
   drawn by the trainer's own ``fixed_pairs`` from ``seed``, ``val_windows_per_song`` per song: more
   than the trainer's 20, so that the choice rests on thousands of pairs);
3. for each shrinkage, fit ``models.whitening.Whitening`` on (1) and measure the trainer's
   retrieval figure on (2): the share of degraded windows whose nearest clean window is their own;
4. write the checkpoint with the best (none, if no shrinkage beats the network's own vectors)
   and a Markdown table of every candidate next to it.
The network's weights are not changed; a checkpoint that already has a whitening is refitted
from its network's own vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from augmentation import AugmentationChain, TimeShift
from common.atomic import atomic_write_text
from common.audio import HOP_SAMPLES, SAMPLE_RATE, WINDOW_SAMPLES, window_count
from common.config import ConfigError, Key, Schema
from common.devices import DEVICE_HELP, device_problem, resolve_device
from models.checkpoint import payload_id, weights_id, write_payload
from models.encoder import encode_batches, load_encoder
from models.whitening import Whitening
from training.cache import AudioCache, build_cache
from training.dataset import PairDataset, fixed_pairs
from training.loss import top1_retrieval
from training.songs import read_song_list

SCHEMA = Schema(
    "training/fit_whitening.py",
    [
        Key("weights", "path", must_exist=True, help="checkpoint whose network is whitened"),
        Key("output", "path", help="checkpoint to write (may be 'weights' itself: it is replaced atomically)"),
        Key("data_path", "path", must_exist=True, help="folder of songs; relative list entries resolve against it"),
        Key("train_pickle", "path", must_exist=True, help="songs the whitening is fitted on (the training songs)"),
        Key("val_pickle", "path", must_exist=True, help="songs the shrinkage is chosen on (the validation songs)"),
        Key("background_noise_val", "path", must_exist=True, help="folder of validation background noises"),
        Key("impulse_responses_val", "path", must_exist=True, help="folder of validation impulse responses"),
        Key("freq_cut_bool", "bool", True, help="the cut-off filters in the validation degradation, as in training"),
        Key(
            "shrinkages",
            "list",
            [0.1, 0.3, 1.0, 3.0, 10.0],
            min=1,
            check=lambda values: (
                None
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)
                else f"every shrinkage must be a positive number, got {values}"
            ),
            help="candidate shrinkages, in units of the mean eigenvalue",
        ),
        Key("max_fit_windows", "int", 100000, min=256, help="at most this many training windows are embedded"),
        Key("val_windows_per_song", "int", 400, min=1, help="validation pairs per song (all its windows if fewer)"),
        Key("cache_dir", "path", "runs/cache", help="decoded-audio cache folder (shared with the trainer)"),
        Key("batch_size", "int", 512, min=1, help="windows per forward pass"),
        Key("seed", "int", 0, min=0, help="seed of the fit sample and of the validation pairs"),
        Key("device", "str", "auto", check=device_problem, help=DEVICE_HELP),
        Key("threads", "int", None, min=1, help="torch CPU threads (null: torch's default)"),
        Key("progress", "bool", True, help="show progress bars"),
    ],
)


def fit_whitening(config: dict) -> dict:
    """Fit, choose and write; returns {"chosen": shrinkage or None, "rows": [{shrinkage, top1}, ...]}."""
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    where = getattr(config, "source", None) or "config"
    device = resolve_device(config["device"], where)
    encoder, payload = load_encoder(config["weights"], device)
    if encoder.whitening is not None:
        print(f"{config['weights']}: has a whitening (shrinkage {encoder.whitening.shrinkage:g}); refitting it")
        encoder.whitening = None  # fit on the network's own vectors

    train_paths = read_song_list(config["train_pickle"], config["data_path"])
    val_paths = read_song_list(config["val_pickle"], config["data_path"])
    train_cache = build_cache(train_paths, config["cache_dir"], SAMPLE_RATE, progress=config["progress"])
    val_cache = build_cache(val_paths, config["cache_dir"], SAMPLE_RATE, progress=config["progress"])
    if len(train_cache) == 0 or len(val_cache) == 0:
        raise ConfigError(f"{where}: no usable songs in 'train_pickle' or 'val_pickle'")

    places = database_windows(train_cache, config["max_fit_windows"], config["seed"])
    dimensions = int(payload["embedding_dim"])
    if len(places) <= dimensions:
        raise ConfigError(
            f"{where}: key 'train_pickle' gives {len(places)} windows; a whitening of {dimensions}-d vectors "
            f"needs more than {dimensions} (more or longer songs)"
        )
    fit_set = embed(
        encoder,
        lambda first, last: np.stack(
            [train_cache.window(song, start, WINDOW_SAMPLES) for song, start in places[first:last]]
        ),
        len(places),
        config,
        device,
        "embedding training windows",
    )
    chain, _ = AugmentationChain.from_folders(
        config["background_noise_val"], config["impulse_responses_val"], config["freq_cut_bool"]
    )
    dataset = PairDataset(val_cache, chain, TimeShift(SAMPLE_RATE), seed=config["seed"])
    anchors_wave, positives_wave = fixed_pairs(dataset, None, config["val_windows_per_song"])
    anchors, positives = (
        embed(
            encoder,
            lambda first, last, waves=waves: waves[first:last].numpy(),
            len(waves),
            config,
            device,
            f"embedding validation {name}",
        )
        for waves, name in ((anchors_wave, "anchors"), (positives_wave, "positives"))
    )

    rows = [{"shrinkage": None, "top1": top1_retrieval(torch.from_numpy(anchors), torch.from_numpy(positives))}]
    axes = Whitening.principal_axes(fit_set)  # one eigendecomposition for every shrinkage
    fitted = {}
    for shrinkage in sorted(float(value) for value in config["shrinkages"]):
        fitted[shrinkage] = Whitening.from_axes(axes, shrinkage)
        with torch.no_grad():
            white_anchors = fitted[shrinkage](torch.from_numpy(anchors))
            white_positives = fitted[shrinkage](torch.from_numpy(positives))
        rows.append({"shrinkage": shrinkage, "top1": top1_retrieval(white_anchors, white_positives)})
    best = max(rows, key=lambda row: row["top1"])  # the first of equals: no whitening, then the smallest
    chosen = best["shrinkage"]

    fit = {
        "weights": str(config["weights"]),
        "network_id": weights_id(payload["model_state"]),
        "train_songs": len(train_cache),
        "fit_windows": len(fit_set),
        "val_songs": len(val_cache),
        "val_pairs": len(anchors),
        "validation_top1": {
            ("none" if row["shrinkage"] is None else f"{row['shrinkage']:g}"): row["top1"] for row in rows
        },
    }
    output = dict(payload)
    if chosen is None:
        output.pop("whitening", None)
    else:
        output["whitening"] = {**fitted[chosen].to_payload(), "fit": fit}
    write_payload(config["output"], output)
    report = whitening_report(config, rows, chosen, fit, payload_id(output))
    atomic_write_text(report_path(config["output"]), report)
    print(report)
    return {"chosen": chosen, "rows": rows}


def database_windows(cache: AudioCache, max_windows: int, seed: int) -> list[tuple[int, int]]:
    """(song, start sample) of the songs' windows at the database hop, a seeded random ``max_windows`` at most."""
    places = [
        (song, row * HOP_SAMPLES) for song in range(len(cache)) for row in range(window_count(cache.song_samples(song)))
    ]
    if len(places) > max_windows:
        keep = np.sort(np.random.default_rng(seed).choice(len(places), size=max_windows, replace=False))
        places = [places[index] for index in keep]
    return places


def embed(encoder, windows, count: int, config: dict, device: str, description: str) -> np.ndarray:
    """``count`` windows, ``windows(first, last)`` giving (last - first, window) float32 waveforms,
    -> (count, d) float32 embeddings; made a block at a time (bounded memory), with a progress bar."""
    parts = []
    block = 16 * config["batch_size"]
    with tqdm(total=count, desc=description, unit="window", disable=not config["progress"], dynamic_ncols=True) as bar:
        for first in range(0, count, block):
            chunk = windows(first, min(first + block, count))
            parts.append(encode_batches(encoder, chunk, config["batch_size"], device).cpu().numpy())
            bar.update(len(chunk))
    return np.concatenate(parts)


def report_path(output: str) -> Path:
    """``runs/x/model.pt`` -> ``runs/x/model_whitening.md``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_whitening.md")


def whitening_report(config: dict, rows: list[dict], chosen: float | None, fit: dict, model_id: str) -> str:
    lines = [
        f"# Whitening of {config['weights']}",
        "",
        f"Fitted on {fit['fit_windows']} windows (0.5 s hop) of {fit['train_songs']} training songs; "
        f"chosen on {fit['val_pairs']} validation pairs of {fit['val_songs']} songs (a clean window and "
        "its degraded copy): top-1 = share of degraded windows whose nearest clean window is their own.",
        "",
        "| shrinkage | validation top-1 |",
        "|---|---|",
    ]
    for row in rows:
        name = "none (the network's own vectors)" if row["shrinkage"] is None else f"{row['shrinkage']:g}"
        mark = " (chosen)" if row["shrinkage"] == chosen else ""
        lines.append(f"| {name}{mark} | {row['top1']:.4f} |")
    lines += ["", f"Written: {config['output']} (model_id {model_id}).", ""]
    return "\n".join(lines)


__all__ = ["SCHEMA", "fit_whitening"]
