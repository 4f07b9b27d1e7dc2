"""Stage 4: a query's hashes vote for (song, time offset); the best aligned count wins.

Every stored entry with the same hash as a query hash is a vote for its song at offset
(stored anchor frame - query anchor frame). A true match piles many votes on one offset;
chance collisions spread over all offsets. The score of an offset is the number of votes
within +-``offset_tolerance_frames`` of it; a song's score is that of its best offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landmarks.config import LandmarkConfig
from landmarks.hashes import landmark_hashes

# Songs whose best offset is rescored exactly; the rough score ranks the true song well within these.
CANDIDATES = 10


@dataclass(frozen=True)
class LandmarkMatch:
    """The answer to one query.

    ``song`` is None for "no match" (``LandmarkConfig.accepts``: ``score`` below ``min_count``, or
    too little above ``runner_up_score``); ``candidate`` is the
    best-scoring song even then, so a threshold can be studied after the fact. ``offset_seconds``
    is where the query starts in the candidate (None when no hash was found). ``score`` and
    ``runner_up_score`` are aligned hash counts of the best and the second-best song.
    ``query_hashes`` is how many hashes the query produced.
    """

    song: str | None
    offset_seconds: float | None
    score: int
    runner_up_score: int
    candidate: str | None
    query_hashes: int

    @property
    def matched(self) -> bool:
        return self.song is not None


def query_landmarks(samples: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n,) query samples -> distinct (hashes (Q,) uint32, anchor frames (Q,) int32).

    With ``query_shifts`` > 1 the query is also analysed starting 1/shifts, 2/shifts, ... of a
    hop later, and the landmarks of all shifts are pooled (a landmark found at several shifts
    counts once). Anchor frames stay in units of the unshifted analysis.
    """
    step = config.hop_samples // config.query_shifts
    found = [landmark_hashes(samples[shift * step :], config) for shift in range(config.query_shifts)]
    hashes = np.concatenate([hashes for hashes, _ in found])
    frames = np.concatenate([frames for _, frames in found])
    if config.query_shifts > 1:
        pairs = np.unique(hashes.astype(np.int64) << 32 | frames.astype(np.int64), axis=None)
        hashes, frames = (pairs >> 32).astype(np.uint32), (pairs & 0xFFFFFFFF).astype(np.int32)
    return hashes, frames


def lookup(
    query_hashes: np.ndarray,
    query_frames: np.ndarray,
    table_hashes: np.ndarray,
    table_songs: np.ndarray,
    table_frames: np.ndarray,
    max_entries_per_hash: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every vote of a query: one per stored entry sharing a query hash.

    query_hashes / query_frames: (Q,) hashes and anchor frames of the query. table_*: (N,)
    entries sorted by hash. Hashes stored more than ``max_entries_per_hash`` times are skipped
    (0 = none skipped). Returns (songs, offsets in frames, hashes), each (V,) int64.
    """
    start = np.searchsorted(table_hashes, query_hashes, side="left")
    stop = np.searchsorted(table_hashes, query_hashes, side="right")
    counts = stop - start
    if max_entries_per_hash:
        counts[counts > max_entries_per_hash] = 0
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    # Flat indices of all entries of all query hashes: start[q], start[q] + 1, ..., stop[q] - 1 for each q.
    first_vote = np.cumsum(counts) - counts
    rows = np.repeat(start - first_vote, counts) + np.arange(total)
    songs = table_songs[rows].astype(np.int64)
    offsets = table_frames[rows].astype(np.int64) - np.repeat(query_frames.astype(np.int64), counts)
    return songs, offsets, table_hashes[rows].astype(np.int64)


def best_offsets(
    songs: np.ndarray, offsets: np.ndarray, hashes: np.ndarray, tolerance: int = 1, candidates: int = CANDIDATES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes -> the best offset of the highest-scoring songs, best first.

    songs / offsets / hashes: (V,) int64 votes from ``lookup``. Returns (songs (S,) int64,
    offsets (S,) float64 frames, scores (S,) int64) for at most ``candidates`` songs, highest
    score first. A score is the number of distinct hash values among the song's votes within
    +-``tolerance`` frames of the offset: a held note repeats one hash at many times and would
    otherwise pile up votes at every offset of any song holding the same note. The offset is
    the mean of those votes, so it has sub-frame resolution.
    """
    if len(songs) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    lowest = offsets.min()
    span = int(offsets.max() - lowest) + 2 * tolerance + 1
    hash_span = int(hashes.max()) + 1
    # One integer per (song, offset) and one per (song, offset, hash): sorting the latter groups the
    # votes of each offset together, and the margin of `tolerance` keeps neighbours inside the song.
    song_offsets = songs * span + (offsets - lowest + tolerance)
    votes = _sorted_distinct(song_offsets * hash_span + hashes)  # a repeated (song, offset, hash) counts once
    vote_keys = votes // hash_span
    starts = np.flatnonzero(np.r_[True, vote_keys[1:] != vote_keys[:-1]])
    keys, counts = vote_keys[starts], np.diff(np.r_[starts, len(votes)])

    # Rough score: votes within the tolerance window of each offset; keep each song's best offset.
    window = np.zeros(len(keys), dtype=np.int64)
    for shift in range(-tolerance, tolerance + 1):
        neighbour = np.minimum(np.searchsorted(keys, keys + shift), len(keys) - 1)
        window += np.where(keys[neighbour] == keys + shift, counts[neighbour], 0)
    key_songs = keys // span
    by_song = np.lexsort((-window, key_songs))
    best = by_song[np.r_[True, key_songs[by_song][1:] != key_songs[by_song][:-1]]]
    best = best[np.argsort(-window[best], kind="stable")[:candidates]]

    # Exact score of the leading songs: distinct hashes among the votes within the window.
    result_songs = key_songs[best]
    result_offsets = np.zeros(len(best))
    result_scores = np.zeros(len(best), dtype=np.int64)
    for rank, key in enumerate(keys[best]):
        low, high = np.searchsorted(votes, [(key - tolerance) * hash_span, (key + tolerance + 1) * hash_span])
        aligned = votes[low:high]
        result_scores[rank] = len(_sorted_distinct(aligned % hash_span))
        result_offsets[rank] = (aligned // hash_span % span).mean() + lowest - tolerance
    ranking = np.argsort(-result_scores, kind="stable")
    return result_songs[ranking], result_offsets[ranking], result_scores[ranking]


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D int64 array (np.unique, without its slower hashing path)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values
