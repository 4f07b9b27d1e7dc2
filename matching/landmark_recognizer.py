"""Audio in, match out, for a landmark table: the classical baseline behind the neural recogniser's interface.

``LandmarkRecognizer`` answers ``identify(samples) -> (Match, analysis ms, search ms)`` like
``matching.recognizer.Recognizer``, so the evaluation protocols and the live session take either.
A ``landmarks.LandmarkMatch`` (aligned hash counts, docs/landmarks.md) becomes a
``matching.matcher.Match``: ``score`` is the best song's aligned hash count, ``margin`` its lead
over the runner-up song, ``hits`` the aligned count again, ``ranked`` the best candidate (even
when the table's no-match rule rejected it).
"""

from __future__ import annotations

import os
import time

import numpy as np

from landmarks import LandmarkMatch, LandmarkTable
from matching.matcher import Match


class LandmarkRecognizer:
    """A landmark table: (n,) samples at ``sample_rate`` -> (Match, analysis ms, search ms).

    "Inference" is the analysis (spectrogram, peaks, hashes); "search" is the table lookup and
    the offset vote. ``query_changes`` override the table's query parameters (``min_count``,
    ``min_margin``, ...; see ``LandmarkTable.with_query``).
    """

    def __init__(self, table: LandmarkTable, **query_changes):
        self.table = table.with_query(**query_changes) if query_changes else table
        self.sample_rate = int(self.table.config.sample_rate)
        self._numbers = {name: number for number, name in enumerate(self.table.names)}
        config = self.table.config
        per_runner_up = f" + {config.margin_per_runner_up:g} x its count" if config.margin_per_runner_up else ""
        self.decision_note = (
            f"decision: landmark rule, at least {config.min_count} aligned hashes and "
            f"{config.min_margin}{per_runner_up} more than the runner-up song"
        )

    @classmethod
    def load(cls, path: str | os.PathLike, **query_changes) -> LandmarkRecognizer:
        """Load the table saved at ``path`` (``LandmarkTable.save``); UserError naming the file when it is not one."""
        return cls(LandmarkTable.load(path), **query_changes)

    @property
    def song_names(self) -> list[str]:
        return list(self.table.names)

    def identify(self, samples: np.ndarray) -> tuple[Match, float, float]:
        """(n,) float32 query at ``sample_rate`` -> (match, analysis ms, search ms)."""
        start = time.perf_counter()
        hashes, frames = self.table.analyse(samples)
        analysed = time.perf_counter()
        answer = self.table.match_landmarks(hashes, frames)
        searched = time.perf_counter()
        return self.as_match(answer), 1000.0 * (analysed - start), 1000.0 * (searched - analysed)

    def as_match(self, answer: LandmarkMatch) -> Match:
        """A LandmarkMatch in the neural matcher's terms (see the module docstring)."""
        if answer.candidate is None:  # the query gave no hash found in the table
            return Match(None, None, 0.0, 0.0, [], 0.0, 0)
        offset = float(answer.offset_seconds)
        return Match(
            song=answer.song,
            song_index=self._numbers[answer.song] if answer.song is not None else None,
            offset_seconds=offset,
            score=float(answer.score),
            ranked=[(answer.candidate, offset, float(answer.score))],
            margin=float(answer.score - answer.runner_up_score),
            hits=int(answer.score),
        )
