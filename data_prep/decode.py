"""Decode any audio file to 8 kHz mono 16-bit WAV, once, into a content-hashed cache.

Decoding runs in-process with libsndfile (through soundfile) and resamples with soxr; only
formats libsndfile cannot read (some Opus files) go through one ffmpeg process each, and are
skipped with a reason when ffmpeg is absent. Each decoded file has a JSON sidecar with its
duration and the SHA-1 of its 16-bit samples, which is how exact duplicates are found.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_text
from common.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioError

FFMPEG_ONLY_EXTENSIONS = (".opus",)


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode: ``source`` -> ``target`` (a .wav in the cache), optionally one channel only."""

    source: str
    target: str
    sample_rate: int = SAMPLE_RATE
    channel: int | None = None  # None: mix all channels to mono; k: keep channel k (impulse responses)


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded file in the cache: 16-bit mono WAV at ``sample_rate``; ``sha1`` of its int16 samples."""

    path: str
    samples: int
    sample_rate: int
    seconds: float
    sha1: str
    source_sample_rate: int
    source_channels: int


def list_audio_files(root: Path) -> list[str]:
    """Relative POSIX paths of every audio file under ``root``, sorted as strings.

    Not ``common.audio.find_audio_files``: the splits are assigned over this exact order (string
    order of relative paths, which differs from Path order, e.g. "a-b/x" before "a/y"), and
    changing it would move songs between the built training, validation and test sets.
    """
    root = Path(root)
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS
    )


def probe(path: Path) -> tuple[float, int]:
    """(duration in seconds, channel count) from the file header; raises AudioError when unreadable."""
    try:
        info = sf.info(str(path))
    except Exception as error:
        if Path(path).suffix.lower() in FFMPEG_ONLY_EXTENSIONS and shutil.which("ffmpeg"):
            return _probe_ffmpeg(Path(path))
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = " (Opus needs ffmpeg, which is not installed)" if Path(path).suffix.lower() == ".opus" else ""
        raise AudioError(f"{path}: cannot read header ({reason}){hint}") from None
    return float(info.frames) / info.samplerate if info.samplerate else 0.0, int(info.channels)


def _probe_ffmpeg(path: Path) -> tuple[float, int]:
    samples, sr = _read_ffmpeg(path)
    return len(samples) / sr, samples.shape[1]


def _read_ffmpeg(path: Path, sr: int = 48000) -> tuple[np.ndarray, int]:
    """Decode with one ffmpeg process to (n, channels) float32 at ``sr`` (only for what libsndfile cannot read)."""
    probe_channels = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=channels",
            "-of",
            "csv=p=0",
            path,
        ],
        capture_output=True,
        text=True,
    )
    channels = int(probe_channels.stdout.strip() or 1)
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ar", str(sr), "-"], capture_output=True
    )
    if result.returncode != 0:
        raise AudioError(f"{path}: ffmpeg cannot decode it ({result.stderr.decode(errors='replace').strip()[:200]})")
    return np.frombuffer(result.stdout, dtype=np.float32).reshape(-1, channels), sr


def read_source(path: Path) -> tuple[np.ndarray, int]:
    """(n, channels) float32 samples and their rate; raises AudioError naming the file."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:
        if Path(path).suffix.lower() in FFMPEG_ONLY_EXTENSIONS:
            if shutil.which("ffmpeg") is None:
                raise AudioError(f"{path}: Opus needs ffmpeg, which is not installed") from None
            return _read_ffmpeg(Path(path))
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    return data, sr


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16, scaling down first if the resampler overshot full scale."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 1.0:
        samples = samples / peak
    return np.round(samples * 32767.0).astype(np.int16)


def sidecar_path(target: Path) -> Path:
    return Path(target).with_suffix(".json")


def read_cached(target: Path) -> DecodedAudio | None:
    """The cached result for ``target`` when both the WAV and its sidecar exist, else None."""
    target = Path(target)
    sidecar = sidecar_path(target)
    if not (target.exists() and sidecar.exists()):
        return None
    try:
        return DecodedAudio(**json.loads(sidecar.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None


def decode_file(job: DecodeJob) -> DecodedAudio:
    """Decode ``job.source`` to a 16-bit mono WAV at ``job.target`` (atomic), or reuse the cached result.

    Raises AudioError for unreadable, empty, non-finite or silent-to-zero files, or a missing channel.
    """
    cached = read_cached(Path(job.target))
    if cached is not None:
        return cached
    data, source_sr = read_source(Path(job.source))
    if data.size == 0:
        raise AudioError(f"{job.source}: file holds no audio samples")
    if job.channel is None:
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    elif job.channel < data.shape[1]:
        mono = data[:, job.channel]
    else:
        raise AudioError(f"{job.source}: has {data.shape[1]} channel(s), channel {job.channel} requested")
    if not np.isfinite(mono).all():
        raise AudioError(f"{job.source}: audio contains NaN or Inf samples")
    if source_sr != job.sample_rate:
        mono = soxr.resample(mono, source_sr, job.sample_rate, quality="HQ")
    pcm = to_int16(np.ascontiguousarray(mono, dtype=np.float32))
    return store_decoded(Path(job.target), pcm, job.sample_rate, int(source_sr), int(data.shape[1]))


def store_decoded(
    target: Path, pcm: np.ndarray, sample_rate: int, source_sample_rate: int, source_channels: int
) -> DecodedAudio:
    """Write (n,) int16 ``pcm`` as a mono WAV at ``target`` and its JSON sidecar (both atomic): a cache entry."""
    with atomic_path(target) as tmp:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
    result = DecodedAudio(
        path=str(target),
        samples=len(pcm),
        sample_rate=sample_rate,
        seconds=len(pcm) / sample_rate,
        sha1=hashlib.sha1(pcm.tobytes()).hexdigest(),
        source_sample_rate=source_sample_rate,
        source_channels=source_channels,
    )
    atomic_write_text(sidecar_path(Path(target)), json.dumps(asdict(result)))
    return result


def _decode_or_reason(job: DecodeJob) -> DecodedAudio | str:
    try:
        return decode_file(job)
    except AudioError as error:
        return str(error)


def decode_many(
    jobs: list[DecodeJob], workers: int = 2, description: str = "decode", weights: list[float] | None = None
) -> list[DecodedAudio | str]:
    """Decode ``jobs`` in ``workers`` processes, in order; each result is a DecodedAudio or a one-line reason.

    ``weights`` (e.g. source durations in s) drive the progress bar, so its rate reads as audio
    seconds decoded per wall second; without them it counts files.
    """
    results: list[DecodedAudio | str] = [None] * len(jobs)  # type: ignore[list-item]
    pending = []
    for position, job in enumerate(jobs):
        cached = read_cached(Path(job.target))
        if cached is not None:
            results[position] = cached
        else:
            pending.append(position)
    if not pending:
        return results
    unit_weights = weights if weights is not None else [1.0] * len(jobs)
    total = sum(unit_weights[p] for p in pending)
    unit = "audio-s" if weights is not None else "file"
    with tqdm(total=round(total, 1), desc=description, unit=unit, unit_scale=True, dynamic_ncols=True) as bar:
        if workers <= 1 or len(pending) == 1:
            for position in pending:
                results[position] = _decode_or_reason(jobs[position])
                bar.update(unit_weights[position])
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_decode_or_reason, jobs[p]): p for p in pending}
                for future in as_completed(futures):
                    position = futures[future]
                    results[position] = future.result()
                    bar.update(unit_weights[position])
    return results


def cache_target(cache_dir: Path, sample_rate: int, package: str, relative: str, channel: int | None = None) -> Path:
    """Where the decoded copy of ``package``'s ``relative`` file lives in the cache."""
    suffix = f".ch{channel}" if channel is not None else ""
    return Path(cache_dir) / "decoded" / f"sr{sample_rate}" / package / f"{relative}{suffix}.wav"


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` atomically: a hard link when possible (no extra disk), else a copy."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
