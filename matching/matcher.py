"""Query matching (docs/database.md): query embeddings -> (song, offset in the song, score), or no match.

Sequence search ("sequence", the default). Query row i (window starting 0.5 i s into the
query) is searched for its ``neighbors`` nearest database vectors. Each hit id (faiss's -1
"no hit" is skipped) lies in some song at row r and proposes that the query starts at row
c = r - i of that song. A candidate (song, c) is kept only when c >= 0 (the query cannot start
before the song) and the query overlaps the song for at least ``min_overlap`` of its rows
(or the whole song, when the song is shorter than that). Its score is the mean inner product
between query row i and the song's exact vector c + i over the rows i that fall inside the
song: a query running past the song's end (possible when a sub-hop start is rounded up to the
next row) is scored on its rows inside the song.

Majority vote ("vote", the reference's recording-protocol rule): every valid hit votes for its
song; the song with most votes wins and its offset is the most voted start row among its hits.
Its score is the same mean inner product of aligned rows at that offset as sequence search
gives, not the vote share: a share of J x neighbors hits is too coarse to threshold (short
out-of-database queries often get every hit from one song, a share of 1.0 that no threshold
can separate from a true match), while the aligned similarity is continuous and means the same
for both methods, so one calibrated rule serves both.

Ties are broken deterministically and never by position in the index: higher score first (for
"vote": more votes first, then higher score), then more supporting hits, then song name, then
earlier offset. ``Match.margin`` (best score minus
the best score of any other song) shows how close a decision was; 0 means an exact tie.

The best candidate is accepted when its score >= ``threshold`` (a fixed number), or else when
the decision ``rule`` accepts it (``matching.decision``: a threshold per number of query rows,
fitted for a false-match rate), or when neither is given; otherwise
``Match.song`` is None ("no match") while ``score`` and ``offset_seconds`` still describe the
rejected candidate, which is what ``matching.decision.choose_threshold`` needs from
out-of-database queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from database import Database

METHODS = ("sequence", "vote")
NO_CANDIDATE_SCORE = {"sequence": -1.0, "vote": -1.0}  # the lowest score each method can give


@dataclass
class Match:
    """A matcher's answer. ``song`` None means "no match"."""

    song: str | None
    song_index: int | None
    offset_seconds: float  # where the query starts in the song (seconds)
    score: float  # mean inner product of the query's rows and the song's rows aligned at the offset
    ranked: list[tuple[str, float, float]] = field(default_factory=list)  # (song, offset s, score), best first
    margin: float = 0.0  # best score minus the best score of another song (inf when only one song is a candidate)
    hits: int = 0  # faiss hits that support the best candidate (for "vote": the song's votes)


class Matcher:
    """Turns (J, d) query embeddings into a Match against one Database.

    ``neighbors``: hits searched per query row (k). ``threshold``: minimum score of an accepted
    match (None accepts any candidate). ``method``: "sequence" or "vote". ``nprobe``: inverted
    lists searched (IVF indexes; sets it on the database's index). ``min_overlap``: fraction of
    query rows a sequence candidate must have inside its song. ``top``: songs in ``Match.ranked``.
    ``identity``: ``model_identity`` of the query model; refused (DatabaseError) unless it made the index.
    ``rule``: a ``matching.decision.DecisionRule`` for ``method``, used when ``threshold`` is None.
    """

    def __init__(
        self,
        database: Database,
        neighbors: int = 4,
        threshold: float | None = None,
        method: str = "sequence",
        nprobe: int | None = None,
        min_overlap: float = 0.5,
        top: int = 5,
        identity: dict | None = None,
        rule=None,
    ):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if neighbors < 1:
            raise ValueError(f"neighbors must be at least 1, got {neighbors}")
        if not 0.0 < min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
        self.database = database
        self.neighbors = int(neighbors)
        self.threshold = threshold
        self.method = method
        self.min_overlap = float(min_overlap)
        self.top = int(top)
        if rule is not None and rule.method != method:
            raise ValueError(f"the decision rule is for method '{rule.method}', the matcher uses '{method}'")
        self.rule = rule
        if identity is not None:
            database.check_compatible(identity)  # DatabaseError naming both models when they differ
        if nprobe is not None:
            database.set_nprobe(nprobe)

    def match(self, query_embeddings: np.ndarray) -> Match:
        """(J, d) float32 query rows at the database hop -> Match."""
        return self.match_many([query_embeddings])[0]

    def match_many(self, queries: list[np.ndarray]) -> list[Match]:
        """Several queries ((J_q, d) each) with one faiss search over all their rows; same answers as ``match``."""
        arrays = [self._checked(query) for query in queries]
        if not arrays:
            return []
        if self.database.ntotal == 0:
            return [self._no_candidate() for _ in arrays]
        rows = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        ids = np.zeros((0, 1), dtype=np.int64)
        if len(rows):
            _, ids = self.database.index.search(rows, min(self.neighbors, self.database.ntotal))
        ends = np.cumsum([len(query) for query in arrays])
        return [self._match_hits(query, ids[end - len(query) : end]) for query, end in zip(arrays, ends, strict=True)]

    def _checked(self, query_embeddings: np.ndarray) -> np.ndarray:
        query = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        if query.ndim != 2 or query.shape[1] != self.database.d:
            raise ValueError(f"query embeddings must be (J, {self.database.d}), got shape {query.shape}")
        return query

    def _match_hits(self, query: np.ndarray, ids: np.ndarray) -> Match:
        """Decide one query from its faiss hits ``ids`` ((J, k), -1 = no hit)."""
        if len(query) == 0:
            return self._no_candidate()
        query_rows = np.broadcast_to(np.arange(len(query))[:, None], ids.shape)
        valid = ids >= 0
        hit_ids, hit_query_rows = ids[valid].astype(np.int64), query_rows[valid]
        if len(hit_ids) == 0:
            return self._no_candidate()
        songs, rows = self.database.locate_many(hit_ids)
        starts = rows - hit_query_rows
        if self.method == "vote":
            return self._vote(query, songs, starts)
        return self._sequence(query, songs, starts)

    # ----------------------------------------------------------------------------- sequence
    def _sequence(self, query: np.ndarray, songs: np.ndarray, starts: np.ndarray) -> Match:
        keep = starts >= 0
        if not keep.any():
            return self._no_candidate()
        pairs, hits = np.unique(np.stack([songs[keep], starts[keep]], axis=1), axis=0, return_counts=True)
        candidate_songs, candidate_starts = pairs[:, 0], pairs[:, 1]
        query_length = len(query)
        counts = self.database.song_counts[candidate_songs]
        overlap = np.minimum(query_length, counts - candidate_starts)  # query rows inside the song
        enough = overlap >= np.minimum(math.ceil(self.min_overlap * query_length), counts)
        if not enough.any():
            return self._no_candidate()
        candidate_songs, candidate_starts, hits = candidate_songs[enough], candidate_starts[enough], hits[enough]
        scores = self._aligned_scores(query, candidate_songs, candidate_starts)
        return self._decide(candidate_songs, candidate_starts, scores, hits, query_length)

    def _aligned_rows(self, query_length: int, songs: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, inside), both (candidates, J): the database vector aligned with query row i of
        every candidate, and whether that row lies inside the song (outside rows hold the start's id)."""
        counts = self.database.song_counts[songs]
        rows = starts[:, None] + np.arange(query_length)[None, :]
        inside = rows < counts[:, None]
        return self.database.first_ids[songs][:, None] + np.where(inside, rows, starts[:, None]), inside

    def _aligned_scores(self, query: np.ndarray, songs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Mean inner product of query row i and the song's exact vector start + i, over the rows inside the song."""
        query_length = len(query)
        vector_ids, inside = self._aligned_rows(query_length, songs, starts)
        overlap = inside.sum(axis=1)  # >= 1: every start lies inside its song
        unique_ids, position = np.unique(vector_ids, return_inverse=True)
        similarities = query @ self.database.vectors_at(unique_ids).T  # (J, unique rows), exact vectors
        aligned = similarities[np.arange(query_length)[None, :], position.reshape(vector_ids.shape)]
        return (np.where(inside, aligned, 0.0).sum(axis=1) / overlap).astype(np.float64)

    # ----------------------------------------------------------------------------- vote
    def _vote(self, query: np.ndarray, songs: np.ndarray, starts: np.ndarray) -> Match:
        song_numbers, votes = np.unique(songs, return_counts=True)
        offsets = np.empty(len(song_numbers), dtype=np.int64)
        for position, song_index in enumerate(song_numbers):
            mine = starts[songs == song_index]
            mine = np.clip(mine, 0, None)  # a start before the song means the query began at its start
            values, counts = np.unique(mine, return_counts=True)
            offsets[position] = values[np.argmax(counts)]  # most voted start; earliest on ties
        scores = self._aligned_scores(query, song_numbers, offsets)
        return self._decide(song_numbers, offsets, scores, votes, len(query), votes_first=True)

    # ----------------------------------------------------------------------------- decision
    def _decide(
        self,
        songs: np.ndarray,
        starts: np.ndarray,
        scores: np.ndarray,
        hits: np.ndarray,
        query_rows: int,
        votes_first: bool = False,
    ) -> Match:
        names = np.array([self.database.songs[int(number)].name for number in songs], dtype=str)
        name_rank = np.unique(names, return_inverse=True)[1]
        # np.lexsort sorts by the last key first: score desc, hits desc, name asc, start asc
        # (votes_first: hits desc, then score desc).
        keys = (starts, name_rank, -scores, -hits) if votes_first else (starts, name_rank, -hits, -scores)
        order = np.lexsort(keys)
        best_per_song: list[int] = []
        seen: set[int] = set()
        for position in order:
            if int(songs[position]) not in seen:
                seen.add(int(songs[position]))
                best_per_song.append(int(position))
        hop = self.database.hop_seconds
        ranked = [
            (str(names[position]), float(starts[position] * hop), float(scores[position]))
            for position in best_per_song[: self.top]
        ]
        best = best_per_song[0]
        margin = float(scores[best] - scores[best_per_song[1]]) if len(best_per_song) > 1 else math.inf
        score = float(scores[best])
        accepted = self.accepts(score, margin, query_rows)
        return Match(
            song=str(names[best]) if accepted else None,
            song_index=int(songs[best]) if accepted else None,
            offset_seconds=float(starts[best] * hop),
            score=score,
            ranked=ranked,
            margin=margin,
            hits=int(hits[best]),
        )

    @property
    def decides(self) -> bool:
        """True when some answers can be "no match" (a threshold or a rule is set)."""
        return self.threshold is not None or self.rule is not None

    def accepts(self, score: float, margin: float, query_rows: int) -> bool:
        """Whether a best candidate with this score and margin, for a query of ``query_rows`` rows, is a match."""
        if self.threshold is not None:
            return score >= self.threshold
        if self.rule is not None:
            return self.rule.accepts(score, margin, query_rows)
        return True

    def _no_candidate(self) -> Match:
        return Match(None, None, 0.0, NO_CANDIDATE_SCORE[self.method], [], 0.0, 0)


__all__ = ["METHODS", "Match", "Matcher"]
