"""The training run (docs/training.md), top to bottom: data, model, optimiser, loop, validation, checkpoints.

``train(config)`` is what ``python training/trainer.py --config FILE`` calls; helpers live in
the modules beside this one (cache, dataset, loss, checkpointing, distributed, logs).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch_optimizer
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

import common.distributed as process_group
from augmentation import AugmentationChain, SpecAugment, TimeShift
from common.atomic import writable_folder
from common.audio import SAMPLE_RATE
from common.config import ConfigError
from common.workers import worker_init_fn
from models import FrontEndConfig, LogMel, get_model
from models.checkpoint import load_checkpoint
from models.encoder import encode_batches
from models.frontend import EMBEDDING_DIM
from training import distributed
from training.cache import build_cache
from training.checkpointing import EarlyStopping, RunFiles, load_last, save_best, save_last, set_rng_state
from training.dataset import EpochSampler, PairDataset, fixed_pairs
from training.logs import RunLog, format_epoch, plot_curves, write_metrics
from training.loss import nt_xent, top1_retrieval
from training.songs import find_songs, read_song_list

# The reference scales the learning rate linearly with the batch: lr_eff = lr * batch_size / 640.
LR_REFERENCE_BATCH = 640
FINAL_LR = 1e-7


def song_lists(config: dict) -> tuple[list[str], list[str]]:
    """(training paths, validation paths) from the pickles, or from data_path with a held-out share."""
    train = read_song_list(config["train_pickle"], config["data_path"]) if config["train_pickle"] else None
    if config["val_pickle"]:
        val = read_song_list(config["val_pickle"], config["data_path"])
        return train or find_songs(config["data_path"]), val
    songs = train or find_songs(config["data_path"])
    if not 0 < config["val_fraction"] < 1:
        raise ConfigError(f"key 'val_fraction' must be between 0 and 1, got {config['val_fraction']}")
    order = np.random.default_rng(config["seed"]).permutation(len(songs))
    held_out = max(2, math.ceil(config["val_fraction"] * len(songs)))
    if held_out >= len(songs):
        raise ConfigError(f"{config['data_path']}: too few songs ({len(songs)}) to hold out a validation set")
    val_set = set(order[:held_out].tolist())
    return [s for i, s in enumerate(songs) if i not in val_set], [s for i, s in enumerate(songs) if i in val_set]


def build_optimizer(config: dict, parameters) -> tuple[torch.optim.Optimizer, float]:
    lr_eff = config["lr"] * config["batch_size"] / LR_REFERENCE_BATCH
    if config["optimizer"] == "Lamb":
        return torch_optimizer.Lamb(parameters, lr=lr_eff), lr_eff
    return torch.optim.Adam(parameters, lr=lr_eff), lr_eff


def wall_clock_lr(lr_eff: float, minutes: float, schedule_minutes: float) -> float:
    """The learning rate ``minutes`` into a cosine from ``lr_eff`` down to FINAL_LR over ``schedule_minutes``."""
    progress = min(minutes / schedule_minutes, 1.0)
    return FINAL_LR + (lr_eff - FINAL_LR) * (1 + math.cos(math.pi * progress)) / 2


def check_config(config: dict, world_size: int) -> None:
    """What the schema cannot say about one key alone (its bounds are in training.config)."""
    if config["lr"] <= 0 or config["temperature"] <= 0 or config["width"] <= 0:
        raise ConfigError("keys 'lr', 'temperature' and 'width' must be positive")
    try:
        with torch.device("meta"):  # shapes only: no memory, no time
            get_model(config["model_str"], config["width"])
    except ValueError as error:
        raise ConfigError(f"key 'width' {config['width']} does not fit {config['model_str']}: {error}") from None
    if config["batch_size"] % world_size or config["batch_size"] // world_size < 2:
        raise ConfigError(
            f"key 'batch_size' ({config['batch_size']}) must be a multiple of the {world_size} processes "
            "with at least 2 pairs per process"
        )


def validate(model, front_end, pairs, device, batch_size: int, temperature: float) -> tuple[float, float]:
    """(NT-Xent loss averaged over batches of ``batch_size`` pairs, top-1 of each positive among all anchors)."""
    anchors_wave, positives_wave = pairs
    model.eval()
    encoder = torch.nn.Sequential(front_end, model)  # waveforms -> embeddings, as a WaveformEncoder
    anchors = encode_batches(encoder, anchors_wave, 2 * batch_size, device)
    positives = encode_batches(encoder, positives_wave, 2 * batch_size, device)
    model.train()
    losses, weights = [], []
    for start in range(0, len(anchors), batch_size):
        if len(anchors) - start >= 2:
            losses.append(
                nt_xent(anchors[start : start + batch_size], positives[start : start + batch_size], temperature).item()
            )
            weights.append(min(batch_size, len(anchors) - start))
    return float(np.average(losses, weights=weights)), top1_retrieval(anchors, positives)


def spec_augment_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch, rank, 1]).generate_state(1)[0]))
    return generator


def refuse_another_model(payload: dict, identity: dict, source: str, advice: str) -> None:
    """ConfigError unless the checkpoint ``payload`` holds the architecture, width and front end of ``identity``."""
    held = (payload["model_str"], payload["width"])
    wanted = (identity["model_str"], identity["width"])
    if held != wanted:
        raise ConfigError(
            f"{source}: holds {held[0]} width {held[1]}, "
            f"but the config asks for {wanted[0]} width {wanted[1]}; {advice}"
        )
    if payload["frontend"] != identity["frontend"].to_dict():
        raise ConfigError(f"{source}: made with another front end ({payload['frontend']}); {advice}")


def initial_weights(path: str, identity: dict) -> tuple[dict, bool]:
    """(model state, whether the checkpoint also has a whitening) of the checkpoint at ``path``,
    refused when it is another architecture or front end. Training takes the network's weights only."""
    payload = load_checkpoint(path)
    refuse_another_model(payload, identity, f"key 'init_weights': {path}", "point it at a checkpoint of this model")
    return payload["model_state"], payload.get("whitening") is not None


def train(config: dict, stop_after_epochs: int | None = None) -> list[dict]:
    """Run (or resume) training as configured; returns the per-epoch history.

    ``stop_after_epochs`` ends this call after that many epochs, as a kill at an epoch boundary
    would (tests use it to check that resuming is exact).
    """
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    context = process_group.setup(config["device"])
    try:
        return _train(config, context, stop_after_epochs)
    finally:
        process_group.cleanup(context)


def _train(config: dict, context: process_group.Distributed, stop_after_epochs: int | None) -> list[dict]:
    check_config(config, context.world_size)
    where = f"{config.source}: " if getattr(config, "source", None) else ""
    config = dict(config)  # plain dict: checkpoints are read back with weights_only=True
    files = RunFiles(config["output_path"], config["model_name"])
    if context.is_main:
        writable_folder(files.output_path, f"{where}key 'output_path'")
    log = RunLog(files.log, enabled=context.is_main)
    device = context.device
    show_progress = config["progress"] and context.is_main
    log.line(f"training {config['model_str']} width {config['width']} on {device} x {context.world_size} process(es)")

    # ---- data: decode songs once into the cache (the main process builds it, the others reuse it)
    train_paths, val_paths = song_lists(config)
    cache_dir = config["cache_dir"] or str(Path(config["output_path"]) / "cache")
    caches = {}
    for turn in ("main", "others"):
        if (turn == "main") == context.is_main:
            for split, paths in (("train", train_paths), ("val", val_paths)):
                caches[split] = build_cache(
                    paths, cache_dir, SAMPLE_RATE, progress=show_progress, description=f"decoding {split} songs"
                )
        process_group.barrier(context)
    for split in ("train", "val"):
        cache = caches[split]
        log.line(
            f"{split}: {len(cache)} songs, {cache.total_seconds / 3600:.2f} h, "
            f"{sum(len(v) for v in cache.valid_starts)} valid windows, {len(cache.skipped)} skipped"
        )
        for reason in cache.skipped[:20]:
            log.line(f"  skipped {reason}")
    chains = {}
    for split in ("train", "val"):
        chains[split], skipped = AugmentationChain.from_folders(
            config[f"background_noise_{split}"], config[f"impulse_responses_{split}"], config["freq_cut_bool"]
        )
        log.line(
            f"{split} augmentation: {len(chains[split].noise.noises)} noises, "
            f"{len(chains[split].impulse.responses)} impulse responses, {len(skipped)} files skipped"
        )
    time_shift = TimeShift(SAMPLE_RATE)
    train_set = PairDataset(
        caches["train"], chains["train"], time_shift, seed=config["seed"], windows_per_song=config["windows_per_song"]
    )
    val_pairs = fixed_pairs(
        PairDataset(caches["val"], chains["val"], time_shift, seed=config["seed"]),
        config["max_val_songs"],
        config["val_windows_per_song"],
    )
    if len(val_pairs[0]) < 2:
        raise ConfigError("validation needs at least 2 pairs: add validation songs or raise val_windows_per_song")
    chance = 1.0 / len(val_pairs[0])
    local_batch = config["batch_size"] // context.world_size
    sampler = EpochSampler(
        DistributedSampler(train_set, context.world_size, context.rank, shuffle=True, seed=config["seed"])
    )
    loader = DataLoader(
        train_set,
        batch_size=local_batch,
        sampler=sampler,
        num_workers=config["num_workers"],
        persistent_workers=config["num_workers"] > 0,
        worker_init_fn=worker_init_fn(),  # workers die with this process, even under kill -9
        pin_memory=device.type == "cuda",
        drop_last=False,
    )

    # ---- model, front end, optimiser, schedule
    torch.manual_seed(config["seed"])
    frontend = FrontEndConfig()
    identity = {
        "model_str": config["model_str"],
        "width": config["width"],
        "frontend": frontend,
        "embedding_dim": EMBEDDING_DIM,
    }
    model = get_model(config["model_str"], config["width"], frontend).to(device)
    front_end = LogMel(frontend).to(device)
    spec_augment = SpecAugment(floor_db=frontend.floor_db) if config["spec_aug"] else None
    optimizer, lr_eff = build_optimizer(config, model.parameters())
    timed = config["schedule_minutes"] is not None  # the learning rate follows the wall clock, not the epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"], eta_min=FINAL_LR)
    stopping = EarlyStopping(config["patience"])
    history: list[dict] = []
    start_epoch = 0
    if config["resume"]:
        payload = load_last(files)
        if payload is None:
            log.line(f"resume: no {files.last.name} yet, starting from scratch")
        else:
            refuse_another_model(payload, identity, str(files.last), "use another output_path or resume: false")
            model.load_state_dict(payload["model_state"])
            optimizer.load_state_dict(payload["optimizer_state"])
            scheduler.load_state_dict(payload["scheduler_state"])
            stopping.load_state_dict(payload["extra"]["early_stopping"])
            history = payload["extra"]["history"]
            set_rng_state(payload["rng_state"])
            start_epoch = payload["epoch"] + 1
            log.line(f"resumed from {files.last} after epoch {start_epoch}")
    if start_epoch == 0 and config["init_weights"]:
        state, whitened = initial_weights(config["init_weights"], identity)
        model.load_state_dict(state)
        log.line(f"weights from {config['init_weights']}; optimizer and schedule start afresh")
        if whitened:
            log.line(
                "  its whitening is not trained or kept: fit one for the new weights afterwards "
                "(python training/fit_whitening.py, docs/training.md)"
            )
    trained = DistributedDataParallel(model) if context.enabled else model
    parameters = sum(p.numel() for p in model.parameters())
    log.line(
        f"{parameters:,} parameters; {len(train_set)} training pairs per epoch, {len(val_pairs[0])} fixed "
        f"validation pairs (chance top-1 {chance:.4f}); batch {config['batch_size']} pairs "
        f"({local_batch} per process); {config['optimizer']} lr_eff = {config['lr']:g} x "
        f"{config['batch_size']} / {LR_REFERENCE_BATCH} = {lr_eff:.3g}, cosine over "
        + (f"{config['schedule_minutes']:g} minutes" if timed else f"{config['epochs']} epochs")
        + f" to {FINAL_LR:g}"
    )
    use_amp = config["amp"] and device.type == "cuda"

    # ---- the loop
    epochs_this_call = 0
    run_started = time.perf_counter()
    minutes_before = history[-1].get("minutes", 0.0) if history else 0.0  # earlier calls of a resumed run

    def minutes_so_far() -> float:
        return minutes_before + (time.perf_counter() - run_started) / 60

    def time_is_up() -> bool:  # decided together, so that every process leaves the loop at the same step
        return timed and distributed.any_rank(minutes_so_far() >= config["schedule_minutes"], context)

    for epoch in range(start_epoch, config["epochs"]):
        if stopping.should_stop or time_is_up():
            break
        sampler.set_epoch(epoch)
        generator = spec_augment_generator(config["seed"], epoch, context.rank)
        lr = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        losses, pairs_seen, out_of_time = [], 0, False
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{config['epochs']}", unit="batch", leave=False, disable=not show_progress
        )
        for anchors, positives in bar:
            if timed:
                if time_is_up():
                    out_of_time = True
                    break
                for group in optimizer.param_groups:
                    group["lr"] = wall_clock_lr(lr_eff, minutes_so_far(), config["schedule_minutes"])
            count = len(anchors)
            if count < 2:
                continue
            log_mel = front_end(torch.cat([anchors, positives]).to(device, non_blocking=True))
            if spec_augment is not None:
                log_mel = torch.cat([log_mel[:count], spec_augment(log_mel[count:], generator)])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                embeddings = trained(log_mel)
            all_anchors = distributed.gather_with_grad(embeddings[:count], context)
            all_positives = distributed.gather_with_grad(embeddings[count:], context)
            loss = nt_xent(all_anchors, all_positives, config["temperature"])
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over processes; each process holds the full-batch loss but
            # only its own rows' gradients, so scaling by the world size gives the full gradient.
            (loss * context.world_size).backward()
            optimizer.step()
            losses.append(loss.item())
            pairs_seen += len(all_anchors)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        seconds = time.perf_counter() - started
        if not timed:
            scheduler.step()
        train_loss = distributed.average(float(np.mean(losses)) if losses else float("nan"), context)
        val_loss, val_top1 = validate(model, front_end, val_pairs, device, config["batch_size"], config["temperature"])
        improved = stopping.update(val_loss, epoch)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_top1": val_top1,
            "chance": chance,
            "lr": lr,
            "seconds": seconds,
            "pairs_per_second": pairs_seen / seconds,
            "best": improved,
            "minutes": minutes_so_far(),
        }
        history.append(row)
        best = {
            "epoch": stopping.best_epoch,
            "val_loss": stopping.best_loss,
            "val_top1": max(r["val_top1"] for r in history if r["epoch"] == stopping.best_epoch),
        }
        if context.is_main:
            if improved:
                save_best(files, model, identity, config, epoch, best)
            save_last(files, model, identity, config, epoch, best, optimizer, scheduler, stopping, history)
            write_metrics(files.metrics, history)
        log.line(format_epoch(row, config["epochs"]))
        epochs_this_call += 1
        if stopping.should_stop:
            log.line(
                f"early stopping: no lower validation loss for {config['patience']} epochs "
                f"(best {stopping.best_loss:.4f} at epoch {stopping.best_epoch + 1})"
            )
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
            return history
        if out_of_time:
            log.line(f"schedule_minutes {config['schedule_minutes']:g} done, stopping here (mid-epoch)")
            break
        minutes = (time.perf_counter() - run_started) / 60
        if config["max_minutes"] is not None and minutes >= config["max_minutes"]:
            log.line(f"time budget: {minutes:.1f} min >= max_minutes {config['max_minutes']:g}, stopping here")
            break
    if context.is_main and history:
        plot_curves(files.curves, history, f"{config['model_str']} width {config['width']} ({files.stem})")
        log.line(
            f"best checkpoint {files.best} (epoch {stopping.best_epoch + 1}, val loss "
            f"{stopping.best_loss:.4f}); curves {files.curves}; metrics {files.metrics}"
        )
    return history
