"""Audio decoding, resampling and framing.

Every stage of the pipeline sees audio the same way: mono float32 at the front end's sample
rate, cut into windows at a hop; the defaults come from ``models.frontend_config.FrontEndConfig``.
This module also owns the one silence test (``loud_windows``), used by extraction, training and
evaluation alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from common.atomic import atomic_path
from common.errors import UserError
from models.frontend_config import FrontEndConfig

_FRONT_END = FrontEndConfig()
SAMPLE_RATE = _FRONT_END.sample_rate
WINDOW_SAMPLES = _FRONT_END.window_samples
HOP_SAMPLES = _FRONT_END.default_hop_samples
# Files libsndfile decodes; used when a folder is searched for songs.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")
# A 1 s window whose sum of squares is at most this is silence (about -39 dBFS RMS over 8000 samples).
SILENCE_ENERGY = 1.0


class AudioError(UserError):
    """A file that cannot be used as audio; the message names the file and the reason."""


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE, min_samples: int = 1) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sr`` Hz, resampling with soxr.

    Returns a (n,) float32 array. Raises AudioError naming the file when it cannot be read,
    is empty or shorter than ``min_samples`` after resampling, or holds NaN/Inf samples.
    """
    path = Path(path)
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile raises several types; all mean "not audio we can read"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    if data.size == 0:
        raise AudioError(f"{path}: file holds no audio samples")
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    if file_sr != sr:
        samples = soxr.resample(samples, file_sr, sr, quality="HQ")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if len(samples) < min_samples:
        raise AudioError(f"{path}: too short ({len(samples) / sr:.2f} s; at least {min_samples / sr:.2f} s needed)")
    return samples


def load_song(path: str | os.PathLike, sr: int = SAMPLE_RATE, window_samples: int = WINDOW_SAMPLES) -> np.ndarray:
    """Decode a song for fingerprinting: like ``load_audio`` but also rejects silent files.

    Raises AudioError for files shorter than one window or with no window above the silence floor.
    """
    samples = load_audio(path, sr, min_samples=window_samples)
    if is_silent(samples, window_samples):
        raise AudioError(f"{path}: silent (no 1 s window above the silence floor)")
    return samples


def loud_windows(windows: np.ndarray) -> np.ndarray:
    """(J, window) samples -> (J,) bool: the windows whose sum of squares is above ``SILENCE_ENERGY``.

    The one silence test of the toolkit: a window at or under it is silence everywhere (songs
    to fingerprint, training windows, evaluation queries).
    """
    return np.square(windows, dtype=np.float64).sum(axis=1) > SILENCE_ENERGY


def is_silent(samples: np.ndarray, window_samples: int = WINDOW_SAMPLES, hop_samples: int | None = None) -> bool:
    """True when no window of (n,) ``samples`` (at ``hop_samples``, default back to back) is above the silence floor.

    A signal shorter than one window is silent: there is nothing to fingerprint or recognise in it.
    """
    if len(samples) < window_samples:
        return True
    windows = frame_windows(samples, window_samples, hop_samples or window_samples)
    return not bool(loud_windows(windows).any())


def window_count(n_samples: int, window_samples: int = WINDOW_SAMPLES, hop_samples: int = HOP_SAMPLES) -> int:
    """J = floor((n - window) / hop) + 1 windows, or 0 when the signal is shorter than a window."""
    if n_samples < window_samples:
        return 0
    return (n_samples - window_samples) // hop_samples + 1


def frame_windows(
    samples: np.ndarray, window_samples: int = WINDOW_SAMPLES, hop_samples: int = HOP_SAMPLES
) -> np.ndarray:
    """Cut (n,) samples into a (J, window_samples) read-only view; window j starts at j * hop."""
    count = window_count(len(samples), window_samples, hop_samples)
    if count == 0:
        raise AudioError(f"signal of {len(samples)} samples is shorter than one window ({window_samples})")
    view = np.lib.stride_tricks.sliding_window_view(samples, window_samples)
    return view[: (count - 1) * hop_samples + 1 : hop_samples]


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Every audio file under ``folder`` (recursive), sorted for a deterministic order.

    Raises AudioError naming the folder when ``folder`` or any folder below it cannot be read:
    songs missing without a word would change every figure computed from the collection.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: not a folder")

    def unreadable(error: OSError) -> None:
        raise AudioError(f"{error.filename}: cannot read folder ({error.strerror or error})")

    found = []
    for parent, _folders, names in os.walk(folder, onerror=unreadable):
        found.extend(Path(parent) / name for name in names if Path(name).suffix.lower() in AUDIO_EXTENSIONS)
    return sorted(path for path in found if path.is_file())


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = SAMPLE_RATE, subtype: str = "PCM_16") -> None:
    """Write mono samples to a WAV file atomically (16-bit PCM by default)."""
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(samples, dtype=np.float32), sr, subtype=subtype, format="WAV")
