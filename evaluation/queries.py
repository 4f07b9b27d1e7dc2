"""Offline queries (docs/evaluation.md): where to cut them in a song, and how to degrade them.

Positions: ``random_starts`` draws starts uniformly over every sample of the song (not on the
0.5 s database grid), which is what a listener pressing "recognise" does; ``aligned_starts``
reproduces the reference: every non-overlapping L-second segment from 0, i.e. starts on the
grid, which flatters a model because its query windows coincide with database windows.

Degradation order, physical rather than the training chain's (noise, then IR): the song through
the room (test IR), background noise added at the microphone at the target SNR relative to the
(reverberant) query, then the phone-like cut-off filters. SNR = 20 log10(RMS_query / RMS_noise)
over the query's samples. The transforms are the training's own (``augmentation``).
"""

from __future__ import annotations

import os

import numpy as np

from augmentation import BackgroundNoise, CutOffFilter, ImpulseResponse
from augmentation.clips import load_clip_set
from common.config import ConfigError


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_query_lengths(values, where: str) -> list[float]:
    """A config's ``query_lengths``: a non-empty list of seconds >= 1, else a ConfigError naming ``where``."""
    if not values or not all(_is_number(value) and value >= 1 for value in values):
        raise ConfigError(f"{where}: key 'query_lengths' must be a list of numbers >= 1 (s), got {values!r}")
    return [float(value) for value in values]


def checked_snrs(values, where: str) -> list[float | None]:
    """A config's ``snrs``: a non-empty list of dB or null (no noise), else a ConfigError naming ``where``."""
    if not values or not all(value is None or _is_number(value) for value in values):
        raise ConfigError(f"{where}: key 'snrs' must be a list of numbers (dB) or null, got {values!r}")
    return [None if value is None else float(value) for value in values]


def snr_seed(snr: float | None) -> int:
    """A non-negative integer per SNR for seeding random draws: centi-dB from -1000 dB, 0 for no noise."""
    return 0 if snr is None else int(round((snr + 1000.0) * 100))


def random_starts(song_samples: int, query_samples: int, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` query starts (samples), uniform over [0, song_samples - query_samples]; [] if the song is shorter."""
    if song_samples < query_samples:
        return []
    return [int(start) for start in rng.integers(0, song_samples - query_samples + 1, size=count)]


def aligned_starts(song_samples: int, query_samples: int) -> list[int]:
    """Every non-overlapping query from 0: starts 0, L, 2L, ... (the reference's grid-aligned protocol)."""
    return list(range(0, song_samples - query_samples + 1, query_samples))


class QueryDegrader:
    """Room IR (optional) -> background noise at an SNR -> cut-off filters (optional), per query.

    The transforms are the training's (``augmentation``), applied with probability 1 and, for the
    noise, a fixed SNR: ``BackgroundNoise`` (random clip and start, SNR relative to the query's
    RMS after the room), ``ImpulseResponse`` (random IR, FFT convolution, peak normalised),
    ``CutOffFilter`` (low-pass 2-3 kHz then high-pass 0.5-1 kHz, mel-uniform cut-offs, 12-36
    dB/octave). ``noise_clips`` and ``impulses``: lists of (n,) float32 at the query sample rate.
    """

    def __init__(self, noise_clips: list[np.ndarray], impulses: list[np.ndarray] | None, cutoff: CutOffFilter | None):
        usable = [clip for clip in noise_clips if len(clip) and np.any(clip)]
        if not usable:
            raise ValueError("no non-silent background noise clip to degrade queries with")
        self.noise_clips = usable
        self.room = ImpulseResponse(impulses, p=1.0) if impulses else None
        self.cutoff = cutoff
        self._noise_at: dict[float, BackgroundNoise] = {}

    @classmethod
    def from_folders(
        cls,
        noise_folder: str | os.PathLike,
        impulse_folder: str | os.PathLike | None,
        sample_rate: int,
        cutoff: CutOffFilter | None = None,
    ) -> tuple[QueryDegrader, list[str]]:
        """The degrader of the clips under two folders, and one line per file skipped as unusable.

        Each IR starts at its direct sound (its peak): a measured IR's leading silence would delay
        the query's content and count against its offset, which is not the model's error. A folder
        with no usable clip is an AudioError naming it.
        """
        noise, skipped = load_clip_set(noise_folder, sample_rate)
        impulses = None
        if impulse_folder:
            responses, skipped_responses = load_clip_set(impulse_folder, sample_rate)
            impulses = [response[int(np.argmax(np.abs(response))) :] for response in responses]
            skipped += skipped_responses
        return cls(noise, impulses, cutoff), skipped

    @property
    def impulse_count(self) -> int:
        """Room IRs the queries are drawn through (0: no room)."""
        return len(self.room.responses) if self.room is not None else 0

    def noise_at(self, snr_db: float) -> BackgroundNoise:
        """The noise transform for one SNR (a single bucket [snr, snr] drawn with probability 1)."""
        if snr_db not in self._noise_at:
            self._noise_at[snr_db] = BackgroundNoise(self.noise_clips, p=1.0, snr_buckets=((1.0, (snr_db, snr_db)),))
        return self._noise_at[snr_db]

    def __call__(self, query: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
        """(n,) float32 clean query -> (n,) float32 degraded query. ``snr_db`` None adds no noise."""
        out = query
        if self.room is not None:
            out = self.room(out, rng)
        if snr_db is not None:
            out = self.noise_at(snr_db)(out, rng)
        if self.cutoff is not None:
            out = self.cutoff(out, rng)
        return out
