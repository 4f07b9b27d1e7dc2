"""Time-offset jitter of the positive window (docs/training.md): the query never sits on the grid."""

from __future__ import annotations

import numpy as np

from common.audio import SAMPLE_RATE


class TimeShift:
    """With prob ``p``, move a window's start by +-U(min_seconds, max_seconds).

    The shift is chosen so the moved window stays inside the song: at the song's start only
    positive shifts are possible, at its end only negative ones.
    """

    def __init__(self, sr: int = SAMPLE_RATE, p: float = 0.3, min_seconds: float = 0.10, max_seconds: float = 0.25):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not 0 <= min_seconds <= max_seconds:
            raise ValueError(f"need 0 <= min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
        self.sr = sr
        self.p = p
        self.min_samples = int(round(min_seconds * sr))
        self.max_samples = int(round(max_seconds * sr))

    def randomize(self, rng: np.random.Generator, start: int, window_samples: int, song_samples: int) -> int:
        """Shift in samples (0 when not applied) for a window at ``start`` in a song of ``song_samples``."""
        if rng.random() >= self.p:
            return 0
        magnitude = int(rng.integers(self.min_samples, self.max_samples + 1))
        can_go_back = start - magnitude >= 0
        can_go_forward = start + magnitude + window_samples <= song_samples
        if can_go_back and can_go_forward:
            return magnitude if rng.random() < 0.5 else -magnitude
        if can_go_forward:
            return magnitude
        if can_go_back:
            return -magnitude
        return 0
