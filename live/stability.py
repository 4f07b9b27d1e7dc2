"""Stable matches: consecutive recognitions that agree on the song and on how far it has played."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import UserError


class StabilityTracker:
    """Counts consecutive windows that agree: same song, and the song offset advanced as much as the clock.

    ``update`` returns the length of the current agreeing run (0 after "no match"); a run of at
    least ``stable_count`` windows is a stable match. ``tolerance_seconds`` allows for offsets
    being quantised to the database hop (0.5 s) and for one-row slips.
    """

    def __init__(self, stable_count: int = 3, tolerance_seconds: float = 0.75):
        if stable_count < 1:
            raise UserError(f"stable_count must be at least 1, got {stable_count}")
        self.stable_count = stable_count
        self.tolerance_seconds = tolerance_seconds
        self.run_length = 0
        self._last: tuple[str, float, float] | None = None  # (song, offset s, clock s)

    def agrees(self, previous: tuple[str, float, float] | None, song: str, offset: float, clock: float) -> bool:
        if previous is None or previous[0] != song:
            return False
        return abs((offset - previous[1]) - (clock - previous[2])) <= self.tolerance_seconds

    def update(self, song: str | None, offset_seconds: float, clock_seconds: float) -> int:
        if song is None:
            self.run_length, self._last = 0, None
            return 0
        self.run_length = self.run_length + 1 if self.agrees(self._last, song, offset_seconds, clock_seconds) else 1
        self._last = (song, offset_seconds, clock_seconds)
        return self.run_length

    @property
    def stable(self) -> bool:
        return self.run_length >= self.stable_count


@dataclass
class StableMatch:
    song: str
    clock_seconds: float  # audio time when the match became stable
    offset_seconds: float  # song offset of the window that made it stable
