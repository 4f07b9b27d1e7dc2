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

Playlist CSV (UTF-8). Either the reference's header-less layout, one reference file name per
line, or a header row naming the columns:

    song,start,end
    Coldplay - Viva La Vida.wav,3.52,245.10
    ...

``song`` is a reference file name, relative to the ``true_songs`` folder or absolute. ``start`` and
``end`` (seconds in the recording) are optional, but when given must be given for every row.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from common.atomic import atomic_write_text
from common.errors import UserError

PLAYLIST_COLUMNS = ("song", "start", "end")


class PlaylistError(UserError):
    """A playlist CSV that cannot be read; the message names the file and the row."""


@dataclass(frozen=True)
class PlaylistEntry:
    """One row of a playlist: the reference file and, optionally, its known place in the recording (s)."""

    song: str
    start: float | None = None
    end: float | None = None


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


def read_playlist(path: str | os.PathLike) -> list[PlaylistEntry]:
    """Read a playlist CSV (header ``song[,start,end]``, or one file name per line without header)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise PlaylistError(f"{path}: cannot read playlist ({error.strerror})") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise PlaylistError(f"{path}: playlist is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    if header and header[0] == "song":
        unknown = [name for name in header if name not in PLAYLIST_COLUMNS]
        if unknown:
            raise PlaylistError(f"{path}: unknown column(s) {unknown}; columns are {', '.join(PLAYLIST_COLUMNS)}")
        if ("start" in header) != ("end" in header):
            raise PlaylistError(f"{path}: give both 'start' and 'end' columns, or neither")
        body, first_line = rows[1:], 2
    else:
        # The reference's layout: a file name per line. Names may contain commas, so rejoin the cells.
        header = ["song"]
        body, first_line = [[",".join(row)] for row in rows], 1
    entries = []
    for line_number, row in enumerate(body, start=first_line):
        values = dict(zip(header, (cell.strip() for cell in row)))
        song = values.get("song", "")
        if not song:
            raise PlaylistError(f"{path}: row {line_number}: empty song name")
        start = _seconds(values.get("start"), path, line_number, "start")
        end = _seconds(values.get("end"), path, line_number, "end")
        if (start is None) != (end is None) or (start is not None and not end > start >= 0):
            raise PlaylistError(f"{path}: row {line_number}: need 0 <= start < end, got start={start} end={end}")
        entries.append(PlaylistEntry(song, start, end))
    if not entries:
        raise PlaylistError(f"{path}: playlist has a header but no songs")
    timed = [entry.start is not None for entry in entries]
    if any(timed) and not all(timed):
        raise PlaylistError(f"{path}: start/end given for some songs but not all")
    return entries


def _seconds(value: str | None, path: Path, line_number: int, column: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise PlaylistError(f"{path}: row {line_number}: column '{column}' is not a number: {value!r}") from None


def write_playlist(path: str | os.PathLike, entries: list[PlaylistEntry]) -> None:
    """Write a playlist CSV atomically; start/end columns only when every entry has them."""
    timed = all(entry.start is not None for entry in entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PLAYLIST_COLUMNS if timed else PLAYLIST_COLUMNS[:1])
    for entry in entries:
        writer.writerow([entry.song, f"{entry.start:.4f}", f"{entry.end:.4f}"] if timed else [entry.song])
    atomic_write_text(path, buffer.getvalue())


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
