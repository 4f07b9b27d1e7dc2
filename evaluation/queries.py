"""Offline queries (SPEC 7.1): where to cut them in a song, and how to degrade them.

Positions: ``random_starts`` draws starts uniformly over every sample of the song (not on the
0.5 s database grid), which is what a listener pressing "recognise" does; ``aligned_starts``
reproduces the reference: every non-overlapping L-second segment from 0, i.e. starts on the
grid, which flatters a model because its query windows coincide with database windows.

Degradation order, physical rather than the training chain's: the song through the room (test
IR), background noise added at the microphone at the target SNR relative to the (reverberant)
query's power, then the phone-like cut-off filters. SNR = 10 log10(P_query / P_noise) over the
query's samples.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from common.audio import SILENCE_ENERGY, WINDOW_SAMPLES, frame_windows


def random_starts(song_samples: int, query_samples: int, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` query starts (samples), uniform over [0, song_samples - query_samples]; [] if the song is shorter."""
    if song_samples < query_samples:
        return []
    return [int(start) for start in rng.integers(0, song_samples - query_samples + 1, size=count)]


def aligned_starts(song_samples: int, query_samples: int) -> list[int]:
    """Every non-overlapping query from 0: starts 0, L, 2L, ... (the reference's grid-aligned protocol)."""
    return list(range(0, song_samples - query_samples + 1, query_samples))


def is_silent(query: np.ndarray, window_samples: int = WINDOW_SAMPLES) -> bool:
    """True when no 1 s window of the (n,) query rises above the silence floor (nothing to recognise)."""
    windows = frame_windows(query, window_samples, window_samples // 2)
    return not bool((np.square(windows, dtype=np.float64).sum(axis=1) > SILENCE_ENERGY).any())


def add_noise_at_snr(signal: np.ndarray, noise_clip: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) signal + a random stretch of ``noise_clip`` (tiled if shorter) scaled to ``snr_db``: (n,) float32."""
    n = len(signal)
    if len(noise_clip) < n:
        noise_clip = np.tile(noise_clip, n // len(noise_clip) + 1)
    start = int(rng.integers(0, len(noise_clip) - n + 1))
    noise = noise_clip[start : start + n].astype(np.float64)
    signal_power = float(np.mean(np.square(signal, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise)))
    if noise_power <= 0.0 or signal_power <= 0.0:
        return signal.astype(np.float32)
    noise *= np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (signal + noise).astype(np.float32)


def apply_impulse(signal: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Convolve (n,) with a room IR (FFT), cut to n samples, keep the input's RMS: (n,) float32."""
    out = scipy.signal.fftconvolve(signal.astype(np.float64), impulse.astype(np.float64))[: len(signal)]
    out_rms = np.sqrt(np.mean(np.square(out)))
    in_rms = np.sqrt(np.mean(np.square(signal, dtype=np.float64)))
    return (out * (in_rms / out_rms) if out_rms > 0 else out).astype(np.float32)


def _mel(hz: float) -> float:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel: float) -> float:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class CutoffFilters:
    """SPEC 4.2 step 3 at test time: a low-pass (2000-3000 Hz) then a high-pass (500-1000 Hz).

    Cutoffs uniform on the mel scale, causal Butterworth filters of order 2-6 (12-36 dB/octave),
    drawn per query from the generator passed to ``__call__``.
    """

    def __init__(
        self,
        sr: int,
        lowpass_hz: tuple[float, float] = (2000.0, 3000.0),
        highpass_hz: tuple[float, float] = (500.0, 1000.0),
        orders: tuple[int, ...] = (2, 3, 4, 5, 6),
    ):
        self.sr, self.lowpass_hz, self.highpass_hz, self.orders = sr, lowpass_hz, highpass_hz, orders

    def draw(self, rng: np.random.Generator) -> tuple[float, int, float, int]:
        """(low-pass cutoff Hz, its order, high-pass cutoff Hz, its order)."""
        low = _hz(rng.uniform(_mel(self.lowpass_hz[0]), _mel(self.lowpass_hz[1])))
        high = _hz(rng.uniform(_mel(self.highpass_hz[0]), _mel(self.highpass_hz[1])))
        return low, int(rng.choice(self.orders)), high, int(rng.choice(self.orders))

    def apply(self, signal: np.ndarray, low: float, low_order: int, high: float, high_order: int) -> np.ndarray:
        out = scipy.signal.sosfilt(scipy.signal.butter(low_order, low, "lowpass", fs=self.sr, output="sos"), signal)
        out = scipy.signal.sosfilt(scipy.signal.butter(high_order, high, "highpass", fs=self.sr, output="sos"), out)
        return out.astype(np.float32)

    def __call__(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(signal, *self.draw(rng))


class QueryDegrader:
    """Room IR (optional) -> background noise at an SNR -> cut-off filters (optional), per query.

    ``noise_clips`` and ``impulses``: lists of (n,) float32 at the query sample rate, decoded once.
    """

    def __init__(self, noise_clips: list[np.ndarray], impulses: list[np.ndarray] | None, cutoff: CutoffFilters | None):
        usable = [clip for clip in noise_clips if len(clip) and np.any(clip)]
        if not usable:
            raise ValueError("no non-silent background noise clip to degrade queries with")
        self.noise_clips = usable
        self.impulses = impulses or []
        self.cutoff = cutoff

    def __call__(self, query: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
        """(n,) float32 clean query -> (n,) float32 degraded query. ``snr_db`` None adds no noise."""
        out = query
        if self.impulses:
            out = apply_impulse(out, self.impulses[int(rng.integers(len(self.impulses)))])
        if snr_db is not None:
            out = add_noise_at_snr(out, self.noise_clips[int(rng.integers(len(self.noise_clips)))], snr_db, rng)
        if self.cutoff is not None:
            out = self.cutoff(out, rng)
        return out
