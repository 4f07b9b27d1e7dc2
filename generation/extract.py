"""Fingerprint extraction (docs/database.md): audio folders -> one ``<song>.npy`` (J, d) float32 per song + manifest.

Songs are decoded by DataLoader workers (one long-lived loader for the whole run, one song per
item); their 1 s windows are pooled across songs into model batches of ``batch_size`` windows,
so short songs do not leave the model running on small batches. Row j of ``<song>.npy`` embeds
the window starting at j * hop_samples.

Output folder:

- ``<song>.npy``: written atomically once all of a song's rows are computed.
- ``manifest.json``: the model identity (incl. front end), sample rate, hop, window, and per
  song: name, file, source path, duration (s), rows; plus the skipped files with their reason.
- ``.progress-rank<r>.jsonl``: while a run is going, one line per finished or skipped song (so an
  interrupted run resumes without redoing finished songs); merged into the manifest at the end.

Resuming: a song is skipped when its ``.npy`` exists, a manifest or progress record names the
same source, and the file's row count matches the record. Running into a folder made by a
different model is an error naming both.

Multi-GPU: under ``torchrun`` every rank takes songs[rank::world] and writes its own progress
log; rank 0 writes the manifest after all ranks are done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from common.atomic import atomic_path, atomic_write_text
from common.audio import AudioError, find_audio_files, frame_windows, load_song
from common.errors import UserError
from database import describe_identity
from models.checkpoint import model_identity
from models.encoder import WaveformEncoder

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "deep-audio-fingerprint-fingerprints"
MANIFEST_VERSION = 1


class ExtractionError(UserError):
    """A fingerprint folder or extraction setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class SongSource:
    """One audio file to fingerprint and the unique song name its outputs use."""

    name: str
    path: Path


@dataclass
class ExtractionSummary:
    """What one run did (for this rank)."""

    written: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def speed(self) -> float:
        """Audio seconds fingerprinted per wall-clock second."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def plan_songs(input_dirs: list[str | os.PathLike]) -> list[SongSource]:
    """Every audio file under ``input_dirs``, with unique song names, sorted by name.

    The name is the file stem; when several files share a stem, each gets ``<stem>-<8 hex>``
    where the hex is a hash of its resolved path, so names are stable across runs and folders.
    """
    paths = []
    for folder in input_dirs:
        try:
            paths.extend(find_audio_files(folder))
        except AudioError as error:
            raise ExtractionError(f"input dirs: {error}") from None
    by_stem: dict[str, list[Path]] = {}
    for path in dict.fromkeys(p.resolve() for p in paths):  # the same file listed twice counts once
        by_stem.setdefault(path.stem, []).append(path)
    sources = []
    for stem, group in by_stem.items():
        for path in group:
            name = stem if len(group) == 1 else f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
            sources.append(SongSource(name, path))
    return sorted(sources, key=lambda source: source.name)


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


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a fingerprint folder, or None when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExtractionError(f"{path}: cannot read fingerprint manifest ({error})") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ExtractionError(f"{path}: not a fingerprint manifest of this toolkit")
    return manifest


def _progress_logs(folder: Path) -> list[Path]:
    return sorted(folder.glob(".progress-rank*.jsonl"))


def _read_records(folder: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Finished songs (name -> record) and skipped files (source -> reason) from manifest + logs."""
    songs: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    manifest = read_manifest(folder)
    if manifest:
        songs.update({song["name"]: song for song in manifest["songs"]})
        skipped.update({entry["source"]: entry["reason"] for entry in manifest.get("skipped", [])})
    for log in _progress_logs(folder):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if "reason" in record:
                skipped[record["source"]] = record["reason"]
            else:
                songs[record["name"]] = record
                skipped.pop(record["source"], None)
    return songs, skipped


def _is_complete(folder: Path, source: SongSource, records: dict[str, dict]) -> bool:
    record = records.get(source.name)
    if record is None or record.get("source") != str(source.path):
        return False
    try:
        rows = np.load(folder / record["file"], mmap_mode="r").shape[0]
    except (OSError, ValueError):
        return False
    return rows == record["rows"]


def _check_folder_identity(folder: Path, identity: dict) -> None:
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("identity") != identity:
        raise ExtractionError(
            f"{folder}: holds fingerprints of {describe_identity(manifest.get('identity'))}, "
            f"not of {describe_identity(identity)}; use another output dir"
        )


def _manifest(identity: dict, sample_rate: int, window_samples: int, hop_samples: int, songs, skipped) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "identity": identity,
        "sample_rate": sample_rate,
        "window_samples": window_samples,
        "hop_samples": hop_samples,
        "hop_seconds": hop_samples / sample_rate,
        "songs": sorted(songs, key=lambda song: song["name"]),
        "skipped": [{"source": source, "reason": reason} for source, reason in sorted(skipped.items())],
    }


def write_manifest(folder: Path, identity: dict, sample_rate: int, window_samples: int, hop_samples: int) -> dict:
    """Merge the manifest and all progress logs into a new manifest (atomically); delete the logs."""
    records, skipped = _read_records(folder)
    songs = [record for record in records.values() if (folder / record["file"]).exists()]
    manifest = _manifest(identity, sample_rate, window_samples, hop_samples, songs, skipped)
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    for log in _progress_logs(folder):
        log.unlink()
    return manifest


def extract_fingerprints(
    encoder: WaveformEncoder,
    payload: dict,
    sources: list[SongSource],
    output_dir: str | os.PathLike,
    hop_samples: int = 4000,
    batch_size: int = 256,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    barrier=None,
) -> ExtractionSummary:
    """Fingerprint this rank's share of ``sources`` (songs[rank::world_size]) into ``output_dir``.

    ``encoder`` is an eval-mode WaveformEncoder on its device; ``payload`` its checkpoint (its
    identity is recorded). Returns what was written, found complete, and skipped (with reasons).
    ``barrier``: a callable that waits for all ranks (torch.distributed.barrier under torchrun).
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    identity = model_identity(payload)
    frontend = encoder.frontend_config
    sample_rate, window_samples = frontend.sample_rate, frontend.window_samples
    _check_folder_identity(folder, identity)
    if rank == 0 and read_manifest(folder) is None:
        write_manifest(folder, identity, sample_rate, window_samples, hop_samples)
    if barrier is not None:
        barrier()

    summary = ExtractionSummary()
    started = time.perf_counter()
    records, _ = _read_records(folder)
    mine = sources[rank::world_size]
    todo = []
    for source in mine:
        if _is_complete(folder, source, records):
            summary.already_done.append(source.name)
        else:
            todo.append(source)
    log_path = folder / f".progress-rank{rank}.jsonl"
    device = next(encoder.parameters()).device

    dataset = SongWindows(todo, sample_rate, window_samples, hop_samples)
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_no_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(todo), unit="song", desc=f"fingerprints (rank {rank})" if world_size > 1 else "fingerprints"
        )
    queue: deque[tuple[_SongInProgress, np.ndarray, int]] = deque()  # (song, windows, next row to embed)
    queued_rows = 0

    def finish(song: _SongInProgress, log) -> None:
        target = folder / f"{song.source.name}.npy"
        with atomic_path(target) as tmp:
            np.save(tmp, song.embeddings)
        record = {
            "name": song.source.name,
            "file": target.name,
            "source": str(song.source.path),
            "duration": song.duration,
            "rows": int(len(song.embeddings)),
        }
        log.write(json.dumps(record) + "\n")
        log.flush()
        summary.written.append(song.source.name)
        summary.audio_seconds += song.duration
        if bar is not None:
            bar.update(1)
            elapsed = time.perf_counter() - started
            bar.set_postfix_str(f"{summary.audio_seconds / max(elapsed, 1e-9):.0f} audio s/s")

    @torch.no_grad()
    def run_batch(log) -> None:
        nonlocal queued_rows
        parts, owners = [], []
        wanted = batch_size
        while wanted > 0 and queue:
            song, windows, row = queue[0]
            take = min(wanted, len(windows) - row)
            parts.append(windows[row : row + take])
            owners.append((song, take))
            wanted -= take
            if row + take == len(windows):
                queue.popleft()
            else:
                queue[0] = (song, windows, row + take)
        batch = torch.from_numpy(np.concatenate(parts)).to(device, non_blocking=True)
        queued_rows -= len(batch)
        embeddings = encoder(batch).float().cpu().numpy()
        position = 0
        for song, take in owners:
            song.embeddings[song.filled : song.filled + take] = embeddings[position : position + take]
            song.filled += take
            position += take
            if song.filled == len(song.embeddings):
                finish(song, log)

    embedding_dim = int(payload["embedding_dim"])
    with open(log_path, "a", encoding="utf-8") as log:
        for item in loader:
            source = todo[item["number"]]
            if item["windows"] is None:
                summary.skipped.append((str(source.path), item["error"]))
                log.write(json.dumps({"source": str(source.path), "reason": item["error"]}) + "\n")
                log.flush()
                if bar is not None:
                    bar.update(1)
                continue
            windows = item["windows"]
            song = _SongInProgress(source, item["duration"], np.empty((len(windows), embedding_dim), np.float32))
            queue.append((song, windows, 0))
            queued_rows += len(windows)
            while queued_rows >= batch_size:
                run_batch(log)
        while queued_rows > 0:
            run_batch(log)
    if bar is not None:
        bar.close()
    summary.wall_seconds = time.perf_counter() - started
    if barrier is not None:
        barrier()
    if rank == 0:
        write_manifest(folder, identity, sample_rate, window_samples, hop_samples)
    if barrier is not None:
        barrier()
    with contextlib.suppress(FileNotFoundError):
        if log_path.stat().st_size == 0:
            log_path.unlink()
    return summary


def load_fingerprint_folder(folder: str | os.PathLike, mmap: bool = True) -> tuple[dict, list[tuple]]:
    """A fingerprint folder as (manifest, [(name, (J, d) vectors, duration s, source), ...]) sorted by name.

    Vectors are memory-mapped by default, so a whole collection can be indexed in bounded memory.
    Raises ExtractionError when the folder has no manifest or a listed file is missing or malformed.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ExtractionError(f"{folder}: no {MANIFEST_NAME} (not a folder written by generate_fingerprints)")
    if _progress_logs(folder):
        raise ExtractionError(f"{folder}: an extraction is unfinished (progress logs present); rerun it first")
    songs = []
    for song in sorted(manifest["songs"], key=lambda song: song["name"]):
        path = folder / song["file"]
        try:
            vectors = np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as error:
            raise ExtractionError(f"{path}: cannot read fingerprints ({error})") from None
        if vectors.ndim != 2 or vectors.shape[0] != song["rows"] or vectors.dtype != np.float32:
            raise ExtractionError(
                f"{path}: expected float32 ({song['rows']}, d), found {vectors.dtype} {vectors.shape}"
            )
        songs.append((song["name"], vectors, float(song["duration"]), song["source"]))
    return manifest, songs
