"""Ground truth for the real-world protocol (docs/evaluation.md): where each song of a playlist lies in a recording.

A recording holds the songs of a playlist played back to back. Song k occupies
``[start_k, end_k)`` seconds of the recording. Either the playlist CSV gives ``start``/``end``
for every song, or only the song order is known: then ``start_1`` is found by cross-correlating
the recording with the first reference song (the reference code assumed 0, which breaks on any
lead-in) and ``start_{k+1} = start_k + duration_k`` with durations measured from the reference
files.

Queries are cut inside one song's interval only: a song of length D gives floor(D / L)
non-overlapping queries of L seconds starting at ``start_k``, ``start_k + L``, ... A query never
straddles two songs, so its label (and its offset inside the song) is exact; the tail of each
song shorter than L is not used. This is the rule of the reference's recording test.

The playlist CSV itself (columns, reading, writing) is ``common.playlist``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft


@dataclass(frozen=True)
class SongInterval:
    """Song ``name`` plays during ``[start, end)`` seconds of the recording."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class LabelledQuery:
    """A query of ``end - start`` seconds cut from a recording, with its true song and offset in that song (s)."""

    song: str
    start: float
    end: float
    offset_in_song: float


def find_song_start(
    recording: np.ndarray,
    song: np.ndarray,
    sr: int,
    search_seconds: float = 60.0,
    excerpt_seconds: float = 10.0,
    band_hz: tuple[float, float] = (300.0, 3000.0),
) -> tuple[float, float]:
    """Where ``song`` starts in ``recording``, by cross-correlation; returns (start s, peak ratio).

    recording, song: (n,) float32 at ``sr`` Hz. The first ``excerpt_seconds`` of the song are
    cross-correlated with the first ``search_seconds`` (+ excerpt) of the recording; only
    non-negative lags are searched (a lead-in, not a recording that starts mid-song).

    The correlation is the generalized cross-correlation with phase transform (GCC-PHAT): the
    cross-spectrum is divided by its magnitude, so every frequency counts equally and the
    peak stays one sample wide through a reverberant room, where a plain correlation
    (scipy.signal.correlate) smears over the reflections and is pulled towards loud bass
    notes. Only ``band_hz``, where a loudspeaker and a phone microphone both pass sound, is
    used. scipy has no weighted correlation, hence the few lines of numpy FFT here.

    The ratio is the peak over the highest value more than 50 ms away from it (the runner-up
    lag): near 1 the estimate is a coin toss between two places; above about 1.3 the peak has
    been right in every test down to -5 dB SNR.
    """
    excerpt = song[: int(excerpt_seconds * sr)].astype(np.float64)
    window = recording[: int((search_seconds + excerpt_seconds) * sr)].astype(np.float64)
    excerpt = excerpt[: len(window)]
    size = scipy.fft.next_fast_len(len(window) + len(excerpt))
    cross = scipy.fft.rfft(window, size) * np.conj(scipy.fft.rfft(excerpt, size))
    frequencies = scipy.fft.rfftfreq(size, 1.0 / sr)
    cross[(frequencies < band_hz[0]) | (frequencies > band_hz[1])] = 0.0
    cross /= np.abs(cross) + 1e-12
    # Absolute value: a loudspeaker wired the other way round inverts the polarity.
    correlation = np.abs(scipy.fft.irfft(cross, size)[: len(window) - len(excerpt) + 1])
    lag = int(np.argmax(correlation))
    runner_up = correlation.copy()
    runner_up[max(0, lag - sr // 20) : lag + sr // 20 + 1] = -np.inf
    best_other = float(runner_up.max()) if np.isfinite(runner_up).any() else 0.0
    ratio = float(correlation[lag] / best_other) if best_other > 0 else float("inf")
    return lag / sr, ratio


def song_intervals(
    names: list[str], durations: list[float], first_start: float, recording_seconds: float
) -> list[SongInterval]:
    """Back-to-back intervals: song k starts where song k-1 ends, song 1 at ``first_start`` (s).

    Intervals are clipped to the recording; a song that starts after the recording ends is left out.
    """
    intervals = []
    start = first_start
    for name, duration in zip(names, durations):
        end = min(start + duration, recording_seconds)
        if end > start:
            intervals.append(SongInterval(name, start, end))
        start += duration
    return intervals


def cut_queries(intervals: list[SongInterval], query_seconds: float) -> list[LabelledQuery]:
    """floor(D_k / L) non-overlapping queries per song interval, from its start; none straddles two songs."""
    queries = []
    for interval in intervals:
        # A small tolerance so that a song of exactly 3 L seconds gives 3 queries despite float sums.
        count = int(np.floor((interval.end - interval.start) / query_seconds + 1e-9))
        for index in range(count):
            offset = index * query_seconds
            queries.append(
                LabelledQuery(interval.name, interval.start + offset, interval.start + offset + query_seconds, offset)
            )
    return queries
