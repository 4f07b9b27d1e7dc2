"""Decoded-audio cache (docs/training.md): every song decoded once into one memory-mapped int16 array.

Layout in ``cache_dir`` for a song list with key K (a hash of the list and the sample rate):
  K.int16  raw int16 samples of all songs back to back (np.memmap)
  K.npz    ``offsets`` (n_songs + 1,) int64 into K.int16; ``valid_offsets`` (n_songs + 1,) int64 into
           ``valid_starts`` (int32 second indices of 1 s windows above the silence floor)
  K.json   written last: format version, sample rate, the songs with their size and mtime, skipped files
A later run with the same list reuses the cache when every file's size and mtime still match;
otherwise it is rebuilt. All three files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_text
from common.audio import SAMPLE_RATE, WINDOW_SAMPLES, AudioError, load_audio, loud_windows

FORMAT_VERSION = 1
INT16_SCALE = 32767.0


def file_signature(path: str) -> list:
    """[size in bytes, mtime in ns] of a file, or None when it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def valid_window_starts(samples: np.ndarray, sr: int, window_samples: int) -> np.ndarray:
    """Second indices k whose window samples[k*sr : k*sr + window] is above the silence floor; int32."""
    count = (len(samples) - window_samples) // sr + 1 if len(samples) >= window_samples else 0
    if count <= 0:
        return np.zeros(0, dtype=np.int32)
    windows = np.lib.stride_tricks.sliding_window_view(samples, window_samples)[::sr][:count]
    return np.flatnonzero(loud_windows(windows)).astype(np.int32)


def _decode(job: tuple[str, int, int]) -> tuple[str, np.ndarray | None, np.ndarray | None, str]:
    """Worker: (path, sr, window) -> (path, int16 samples, valid starts, reason-if-skipped)."""
    path, sr, window_samples = job
    try:
        samples = load_audio(path, sr, min_samples=window_samples)
    except AudioError as error:
        return path, None, None, str(error)
    as_int16 = np.round(np.clip(samples, -1.0, 1.0) * INT16_SCALE).astype(np.int16)
    valid = valid_window_starts(as_int16.astype(np.float32) / INT16_SCALE, sr, window_samples)
    if len(valid) == 0:
        return path, None, None, f"{path}: silent (no 1 s window above the silence floor)"
    return path, as_int16, valid, ""


@dataclass
class AudioCache:
    """Decoded songs in one int16 memmap; ``song(i)`` and ``window(i, start, n)`` are slices, never decodes."""

    paths: list[str]  # songs kept, in list order
    samples: np.ndarray  # (total,) int16 memmap
    offsets: np.ndarray  # (n_songs + 1,) int64
    valid_starts: list[np.ndarray]  # per song, int32 second indices of valid 1 s windows
    skipped: list[str]  # one line per song left out, naming the file and the reason
    sr: int = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.paths)

    def song_samples(self, index: int) -> int:
        return int(self.offsets[index + 1] - self.offsets[index])

    def window(self, index: int, start: int, n_samples: int) -> np.ndarray:
        """(n_samples,) float32 in [-1, 1] from song ``index`` starting at sample ``start``."""
        first = int(self.offsets[index]) + start
        return self.samples[first : first + n_samples].astype(np.float32) / INT16_SCALE

    @property
    def total_seconds(self) -> float:
        return float(self.offsets[-1]) / self.sr


def cache_key(paths: list[str], sr: int, window_samples: int) -> str:
    digest = hashlib.sha256(json.dumps([FORMAT_VERSION, sr, window_samples, paths]).encode())
    return digest.hexdigest()[:16]


def _load_existing(stem: Path, paths: list[str], sr: int) -> AudioCache | None:
    manifest_path = stem.with_suffix(".json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("sr") != sr:
        return None
    if manifest.get("songs") != paths:
        return None
    if manifest.get("signatures") != [file_signature(path) for path in paths]:
        return None  # a file changed, appeared or disappeared since the cache was built
    try:
        tables = np.load(stem.with_suffix(".npz"))
        samples = np.memmap(stem.with_suffix(".int16"), dtype=np.int16, mode="r")
    except (OSError, ValueError):
        return None
    offsets, valid_offsets, valid_flat = tables["offsets"], tables["valid_offsets"], tables["valid_starts"]
    if len(samples) != offsets[-1]:
        return None
    kept = manifest["kept"]
    valid = [valid_flat[valid_offsets[i] : valid_offsets[i + 1]] for i in range(len(kept))]
    return AudioCache([paths[i] for i in kept], samples, offsets, valid, manifest["skipped"], sr)


def build_cache(
    paths: list[str],
    cache_dir: str | os.PathLike,
    sr: int = SAMPLE_RATE,
    window_samples: int = WINDOW_SAMPLES,
    workers: int | None = None,
    progress: bool = True,
    description: str = "decoding songs",
) -> AudioCache:
    """Return the cache for ``paths``, building it (in parallel) unless a valid one exists.

    Songs that cannot be decoded, are shorter than one window, or have no window above the
    silence floor are left out and listed in ``skipped``. A path listed more than once is
    decoded and stored once (weight songs with the trainer's ``windows_per_song`` instead).
    Raises AudioError when no song is usable.
    """
    paths = list(dict.fromkeys(paths))
    cache_dir = Path(cache_dir)
    stem = cache_dir / cache_key(paths, sr, window_samples)
    existing = _load_existing(stem, paths, sr)
    if existing is not None:
        return existing
    cache_dir.mkdir(parents=True, exist_ok=True)
    signatures = [file_signature(path) for path in paths]
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    jobs = [(path, sr, window_samples) for path in paths]
    offsets, valid_parts, kept, skipped = [0], [], [], []
    with atomic_path(stem.with_suffix(".int16")) as tmp, open(tmp, "wb") as out:
        if workers > 1 and len(jobs) > 1:
            # fork: workers inherit the imported modules instead of re-importing torch.
            pool = multiprocessing.get_context("fork").Pool(workers)
            results = pool.imap(_decode, jobs, chunksize=1)
        else:
            pool, results = None, map(_decode, jobs)
        try:
            bar = tqdm(results, total=len(jobs), desc=description, unit="song", disable=not progress)
            for index, (_, samples, valid, reason) in enumerate(bar):
                if samples is None:
                    skipped.append(reason)
                    continue
                out.write(samples.tobytes())
                offsets.append(offsets[-1] + len(samples))
                valid_parts.append(valid)
                kept.append(index)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    if not kept:
        raise AudioError(f"none of the {len(paths)} songs is usable ({skipped[0] if skipped else ''})")
    valid_offsets = np.cumsum([0] + [len(v) for v in valid_parts]).astype(np.int64)
    with atomic_path(stem.with_suffix(".npz")) as tmp:
        np.savez(
            tmp,
            offsets=np.asarray(offsets, dtype=np.int64),
            valid_offsets=valid_offsets,
            valid_starts=np.concatenate(valid_parts).astype(np.int32),
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "sr": sr,
        "window_samples": window_samples,
        "songs": paths,
        "signatures": signatures,
        "kept": kept,
        "skipped": skipped,
    }
    atomic_write_text(stem.with_suffix(".json"), json.dumps(manifest))
    loaded = _load_existing(stem, paths, sr)
    assert loaded is not None, "a cache just written must load"
    return loaded
