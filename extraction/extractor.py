"""Fingerprint extraction (docs/database.md): audio folders -> one ``<song>.npy`` (J, d) float32 per song + manifest.

Songs are decoded by DataLoader workers (one long-lived loader for the whole run, one song per
item); their 1 s windows are pooled across songs into model batches of ``batch_size`` windows,
so short songs do not leave the model running on small batches. Row j of ``<song>.npy`` embeds
the window starting at j * hop_samples.

The output folder (``<song>.npy`` files, ``manifest.json``, progress logs) is described in
``extraction.manifest``; each ``<song>.npy`` is written atomically once all its rows are computed.

Resuming: a song is skipped when its ``.npy`` exists, a manifest or progress record names the
same source, and the file's row count matches the record. Running into a folder made by a
different model is an error naming both.

Multi-GPU: under ``torchrun`` every rank takes songs[rank::world] and writes its own progress
log; rank 0 writes the manifest after all ranks are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset

from common.atomic import atomic_path, writable_folder
from common.audio import AudioError, frame_windows, load_song
from common.workers import worker_init_fn
from extraction.errors import ExtractionError
from extraction.manifest import (
    check_folder_identity,
    is_complete,
    read_fingerprint_manifest,
    read_records,
    write_fingerprint_manifest,
)
from extraction.songs import SongSource, keep_names_unique
from models.checkpoint import model_identity
from models.encoder import WaveformEncoder, encode_batches


@dataclass
class ExtractionSummary:
    """What one run did (for this rank)."""

    songs: list[SongSource] = field(default_factory=list)  # this rank's songs, with the names they were given
    written: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def speed(self) -> float:
        """Audio seconds fingerprinted per wall-clock second."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


class SongWindows(Dataset):
    """Item i: the (J, window_samples) float32 windows of song i at ``hop_samples``, or its failure reason."""

    def __init__(self, sources: list[SongSource], sample_rate: int, window_samples: int, hop_samples: int):
        self.sources = sources
        self.sample_rate = sample_rate
        self.window_samples = window_samples
        self.hop_samples = hop_samples

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, number: int) -> dict:
        source = self.sources[number]
        try:
            samples = load_song(source.path, self.sample_rate, self.window_samples)
        except AudioError as error:
            return {"number": number, "windows": None, "duration": 0.0, "error": str(error)}
        windows = np.ascontiguousarray(frame_windows(samples, self.window_samples, self.hop_samples))
        return {"number": number, "windows": windows, "duration": len(samples) / self.sample_rate, "error": ""}


def _no_collate(item):
    return item


@dataclass
class _SongInProgress:
    source: SongSource
    duration: float
    embeddings: np.ndarray  # (J, d) filled as batches come back
    filled: int = 0


class _BatchRunner:
    """Pools the windows of songs as they are decoded into model batches and writes each song when complete.

    ``add`` queues a song's (J, window) windows; ``run_batch`` embeds the next ``batch_size``
    queued windows (across songs) and saves every song whose rows are all filled, logging it to
    the progress log and counting it in ``summary``.
    """

    def __init__(self, encoder, folder: Path, batch_size: int, embedding_dim: int, summary, log, bar):
        self.encoder = encoder
        self.device = next(encoder.parameters()).device
        self.folder = folder
        self.batch_size = batch_size
        self.embedding_dim = embedding_dim
        self.summary = summary
        self.log = log
        self.bar = bar
        self.started = time.perf_counter()
        self.queue: deque[tuple[_SongInProgress, np.ndarray, int]] = deque()  # (song, windows, next row)
        self.queued_rows = 0

    def add(self, source: SongSource, windows: np.ndarray, duration: float) -> None:
        song = _SongInProgress(source, duration, np.empty((len(windows), self.embedding_dim), np.float32))
        self.queue.append((song, windows, 0))
        self.queued_rows += len(windows)
        while self.queued_rows >= self.batch_size:
            self.run_batch()

    def flush(self) -> None:
        while self.queued_rows > 0:
            self.run_batch()

    def skip(self, source: SongSource, reason: str) -> None:
        self.summary.skipped.append((str(source.path), reason))
        self.log.write(json.dumps({"source": str(source.path), "reason": reason}) + "\n")
        self.log.flush()
        if self.bar is not None:
            self.bar.update(1)

    def run_batch(self) -> None:
        parts, owners = self._take_batch()
        batch = np.concatenate(parts)
        self.queued_rows -= len(batch)
        embeddings = encode_batches(self.encoder, batch, len(batch), self.device, non_blocking=True).cpu().numpy()
        position = 0
        for song, take in owners:
            song.embeddings[song.filled : song.filled + take] = embeddings[position : position + take]
            song.filled += take
            position += take
            if song.filled == len(song.embeddings):
                self._finish(song)

    def _take_batch(self) -> tuple[list[np.ndarray], list[tuple[_SongInProgress, int]]]:
        """Up to ``batch_size`` queued windows, oldest first: (window arrays, [(song, rows taken)])."""
        parts, owners = [], []
        wanted = self.batch_size
        while wanted > 0 and self.queue:
            song, windows, row = self.queue[0]
            take = min(wanted, len(windows) - row)
            parts.append(windows[row : row + take])
            owners.append((song, take))
            wanted -= take
            if row + take == len(windows):
                self.queue.popleft()
            else:
                self.queue[0] = (song, windows, row + take)
        return parts, owners

    def _finish(self, song: _SongInProgress) -> None:
        target = self.folder / f"{song.source.name}.npy"
        with atomic_path(target) as tmp:
            np.save(tmp, song.embeddings)
        record = {
            "name": song.source.name,
            "file": target.name,
            "source": str(song.source.path),
            "duration": song.duration,
            "rows": int(len(song.embeddings)),
        }
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        self.summary.written.append(song.source.name)
        self.summary.audio_seconds += song.duration
        if self.bar is not None:
            self.bar.update(1)
            elapsed = time.perf_counter() - self.started
            self.bar.set_postfix_str(f"{self.summary.audio_seconds / max(elapsed, 1e-9):.0f} audio s/s")


def _song_loader(todo: list[SongSource], frontend, hop_samples: int, num_workers: int, device) -> DataLoader:
    """One long-lived loader decoding ``todo`` songs (one per item) into windows, in worker processes."""
    dataset = SongWindows(todo, frontend.sample_rate, frontend.window_samples, hop_samples)
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_no_collate,
        worker_init_fn=worker_init_fn(),  # workers die with this process, even under kill -9
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )


def _progress_bar(progress: bool, total: int, rank: int, world_size: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="song", desc=f"fingerprints (rank {rank})" if world_size > 1 else "fingerprints")


def extract_fingerprints(
    encoder: WaveformEncoder,
    payload: dict,
    sources: list[SongSource],
    output_dir: str | os.PathLike,
    hop_samples: int | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    barrier=None,
    overwrite: bool = False,
) -> ExtractionSummary:
    """Fingerprint this rank's share of ``sources`` (songs[rank::world_size]) into ``output_dir``.

    ``encoder`` is an eval-mode WaveformEncoder on its device; ``payload`` its checkpoint (its
    identity is recorded). ``hop_samples`` defaults to the front end's (half a window, 0.5 s).
    Returns what was written, found complete, and skipped (with reasons).
    ``barrier``: a callable that waits for all ranks (torch.distributed.barrier under torchrun).
    ``overwrite``: a folder holding another model's fingerprints is emptied instead of refused.
    """
    if batch_size < 1 or num_workers < 0:
        raise ExtractionError(
            f"batch size must be at least 1 and num_workers at least 0, got {batch_size}, {num_workers}"
        )
    folder = writable_folder(output_dir, "output dir")
    identity = model_identity(payload)
    frontend = encoder.frontend_config
    hop_samples = frontend.default_hop_samples if hop_samples is None else hop_samples
    layout = (identity, frontend.sample_rate, frontend.window_samples, hop_samples)
    if rank == 0 or not overwrite:  # with overwrite, rank 0 empties the folder before the barrier below
        check_folder_identity(folder, identity, overwrite=overwrite)
    if rank == 0 and read_fingerprint_manifest(folder) is None:
        write_fingerprint_manifest(folder, *layout)
    if barrier is not None:
        barrier()

    summary = ExtractionSummary()
    started = time.perf_counter()
    records, _ = read_records(folder)
    sources = keep_names_unique(sources, records)  # all ranks, so every rank names every song alike
    summary.songs = sources[rank::world_size]
    todo = []
    for source in summary.songs:
        if is_complete(folder, source, records):
            summary.already_done.append(source.name)
        else:
            todo.append(source)
    log_path = folder / f".progress-rank{rank}.jsonl"
    device = next(encoder.parameters()).device
    loader = _song_loader(todo, frontend, hop_samples, num_workers, device)
    bar = _progress_bar(progress, len(todo), rank, world_size)
    with open(log_path, "a", encoding="utf-8") as log:
        runner = _BatchRunner(encoder, folder, batch_size, int(payload["embedding_dim"]), summary, log, bar)
        for item in loader:
            source = todo[item["number"]]
            if item["windows"] is None:
                runner.skip(source, item["error"])
            else:
                runner.add(source, item["windows"], item["duration"])
        runner.flush()
    if bar is not None:
        bar.close()
    summary.wall_seconds = time.perf_counter() - started
    if barrier is not None:
        barrier()
    if rank == 0:
        write_fingerprint_manifest(folder, *layout)
    if barrier is not None:
        barrier()
    with contextlib.suppress(FileNotFoundError):
        if log_path.stat().st_size == 0:
            log_path.unlink()
    return summary
