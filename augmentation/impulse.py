"""Impulse-response convolution: room and device colouring (docs/training.md, augmentation step 2)."""

from __future__ import annotations

import numpy as np
import scipy.signal


class ImpulseResponse:
    """Convolve with a random impulse response, cut to the input length, normalise the peak.

    ``responses``: list of (m_i,) float32 impulse responses at the signal's rate, decoded once.
    Convolution is by FFT (scipy.signal.fftconvolve); the output keeps the input's first n
    samples (causal: the response's tail past the window is dropped) and its peak |y| is ``peak``.
    """

    def __init__(self, responses: list[np.ndarray], p: float = 1.0, peak: float = 0.5):
        if not responses:
            raise ValueError("ImpulseResponse needs at least one impulse response")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if peak <= 0:
            raise ValueError(f"peak must be positive, got {peak}")
        self.responses = responses
        self.p = p
        self.peak = peak

    def randomize(self, rng: np.random.Generator) -> int | None:
        """The index of the response to use, or None for "not applied" (prob 1 - p)."""
        if self.p < 1.0 and rng.random() >= self.p:
            return None
        return int(rng.integers(len(self.responses)))

    def apply(self, samples: np.ndarray, response_index: int | None) -> np.ndarray:
        """(n,) float32 -> (n,) float32 convolved, cut to n samples, peak normalised."""
        if response_index is None:
            return samples
        wet = scipy.signal.fftconvolve(samples, self.responses[response_index])[: len(samples)]
        top = np.abs(wet).max()
        if top == 0.0:
            return samples
        return (wet * (self.peak / top)).astype(np.float32)

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(samples, self.randomize(rng))
