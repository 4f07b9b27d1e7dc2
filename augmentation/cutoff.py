"""Cut-off frequency augmentation (docs/training.md, augmentation step 3): a phone-like band limit.

A low-pass at 2-3 kHz followed by a high-pass at 0.5-1 kHz, both causal Butterworth filters
whose roll-off is drawn from 12..36 dB/octave (order = roll-off / 6). Cut-offs are uniform on
the (HTK) mel scale, as in audiomentations' LowPassFilter/HighPassFilter which the reference used.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import scipy.signal

from common.audio import SAMPLE_RATE

ROLLOFFS_DB_PER_OCTAVE = (12, 18, 24, 30, 36)


@dataclass(frozen=True)
class CutOffParams:
    lowpass_hz: float
    lowpass_order: int
    highpass_hz: float
    highpass_order: int


def butterworth(samples: np.ndarray, cutoff_hz: float, order: int, btype: str, sr: int) -> np.ndarray:
    """Causal Butterworth filter of ``order`` ("lowpass" or "highpass") on (n,) float32 at ``sr`` Hz."""
    sos = scipy.signal.butter(order, cutoff_hz, btype=btype, fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, samples).astype(np.float32)


class CutOffFilter:
    """Low-pass then high-pass with random mel-uniform cut-offs and roll-offs, applied with prob ``p``."""

    def __init__(
        self,
        sr: int = SAMPLE_RATE,
        p: float = 0.4,
        lowpass_hz: tuple[float, float] = (2000.0, 3000.0),
        highpass_hz: tuple[float, float] = (500.0, 1000.0),
        rolloffs_db_per_octave: tuple[int, ...] = ROLLOFFS_DB_PER_OCTAVE,
    ):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        for name, (low, high) in (("lowpass_hz", lowpass_hz), ("highpass_hz", highpass_hz)):
            if not 0 < low <= high < sr / 2:
                raise ValueError(f"{name} must satisfy 0 < low <= high < {sr / 2} Hz, got {(low, high)}")
        if any(r % 6 or r <= 0 for r in rolloffs_db_per_octave):
            raise ValueError(f"roll-offs must be positive multiples of 6 dB/octave, got {rolloffs_db_per_octave}")
        self.sr = sr
        self.p = p
        self.lowpass_mel = tuple(float(librosa.hz_to_mel(f, htk=True)) for f in lowpass_hz)
        self.highpass_mel = tuple(float(librosa.hz_to_mel(f, htk=True)) for f in highpass_hz)
        self.orders = tuple(r // 6 for r in rolloffs_db_per_octave)

    def randomize(self, rng: np.random.Generator) -> CutOffParams | None:
        """Draw cut-offs (uniform in mel) and orders; None means "not applied" (prob 1 - p)."""
        if rng.random() >= self.p:
            return None
        return CutOffParams(
            lowpass_hz=float(librosa.mel_to_hz(rng.uniform(*self.lowpass_mel), htk=True)),
            lowpass_order=int(rng.choice(self.orders)),
            highpass_hz=float(librosa.mel_to_hz(rng.uniform(*self.highpass_mel), htk=True)),
            highpass_order=int(rng.choice(self.orders)),
        )

    def apply(self, samples: np.ndarray, params: CutOffParams | None) -> np.ndarray:
        """(n,) float32 -> (n,) float32 low-passed then high-passed."""
        if params is None:
            return samples
        samples = butterworth(samples, params.lowpass_hz, params.lowpass_order, "lowpass", self.sr)
        return butterworth(samples, params.highpass_hz, params.highpass_order, "highpass", self.sr)

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(samples, self.randomize(rng))
