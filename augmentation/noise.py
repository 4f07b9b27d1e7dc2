"""Background noise mixed in at a target signal-to-noise ratio (docs/training.md, augmentation step 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The reference's SNR buckets: (probability, (low dB, high dB)); the SNR is uniform inside a bucket.
SNR_BUCKETS = ((0.5, (0.0, 5.0)), (0.3, (5.0, 10.0)), (0.2, (10.0, 15.0)))


@dataclass(frozen=True)
class NoiseParams:
    noise_index: int  # which clip of the noise set
    start: int  # first noise sample used
    snr_db: float  # clean RMS over scaled-noise RMS, in dB


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + noise scaled so that 20 log10(rms(clean) / rms(scaled noise)) = snr_db.

    Both are (n,) float32 at the same rate. A silent clean or noise segment returns ``clean`` unchanged.
    """
    clean_rms, noise_rms = rms(clean), rms(noise)
    if clean_rms == 0.0 or noise_rms == 0.0:
        return clean
    gain = clean_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (clean + gain * noise).astype(np.float32)


class BackgroundNoise:
    """Add a random segment of a random noise clip at an SNR drawn from ``snr_buckets``.

    ``noises``: list of (m_i,) float32 clips at the signal's sample rate, decoded once.
    A clip shorter than the signal is repeated to cover it.
    """

    def __init__(self, noises: list[np.ndarray], p: float = 0.8, snr_buckets=SNR_BUCKETS):
        if not noises:
            raise ValueError("BackgroundNoise needs at least one noise clip")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        weights = np.array([weight for weight, _ in snr_buckets], dtype=np.float64)
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"SNR bucket probabilities must be non-negative and sum to 1, got {weights.tolist()}")
        self.noises = noises
        self.p = p
        self.bucket_weights = weights
        self.bucket_ranges = [tuple(map(float, bounds)) for _, bounds in snr_buckets]

    def randomize(self, rng: np.random.Generator, n_samples: int) -> NoiseParams | None:
        """Draw the parameters for a signal of ``n_samples``; None means "not applied" (prob 1 - p)."""
        if rng.random() >= self.p:
            return None
        noise_index = int(rng.integers(len(self.noises)))
        length = len(self.noises[noise_index])
        start = int(rng.integers(length - n_samples + 1)) if length > n_samples else int(rng.integers(length))
        low, high = self.bucket_ranges[int(rng.choice(len(self.bucket_ranges), p=self.bucket_weights))]
        return NoiseParams(noise_index, start, float(rng.uniform(low, high)))

    def apply(self, samples: np.ndarray, params: NoiseParams | None) -> np.ndarray:
        """(n,) float32 -> (n,) float32 with the noise segment described by ``params`` added."""
        if params is None:
            return samples
        noise = self.noises[params.noise_index]
        n = len(samples)
        segment = noise[params.start : params.start + n]
        if len(segment) < n:  # short clip: wrap around from its start as often as needed
            segment = np.resize(np.roll(noise, -params.start), n)
        return mix_at_snr(samples, segment, params.snr_db)

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(samples, self.randomize(rng, len(samples)))
