"""Live announcements checked against a truth file: which were right, which wrong, which songs were missed.

The truth file is the recording simulator's ``truth.csv`` (``song,start,end`` in seconds of the
recording; read with ``common.playlist.read_playlist``). Song names compare by file stem,
the name extraction gives a song in the database. An announcement made when a window ending at
``clock`` s completed its evidence (the agreeing windows' audio, ``evidence_seconds`` long) is
right when its song plays somewhere in ``[clock - evidence_seconds, clock]``; otherwise it is
wrong (a lead-in, a song the database lacks, or another song). A song counts as played when at
least ``evidence_seconds`` of it were heard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from common.playlist import PlaylistError, read_playlist
from live.stability import StableMatch


@dataclass(frozen=True)
class TruthInterval:
    song: str  # file stem
    start: float
    end: float


@dataclass
class TruthCheck:
    """The outcome of ``check_against``: announcements split into right and wrong, and the songs played."""

    source: str
    right: list[StableMatch] = field(default_factory=list)
    wrong: list[tuple[StableMatch, list[str]]] = field(default_factory=list)  # (announcement, songs playing)
    played: list[str] = field(default_factory=list)  # songs heard long enough to be recognised, in order

    @property
    def songs_announced(self) -> list[str]:
        """The played songs that had a right announcement, in playing order."""
        right = {match.song for match in self.right}
        return [song for song in self.played if song in right]

    def lines(self) -> list[str]:
        lines = [
            f"  checked against {self.source}: {len(self.right)} announcements right, {len(self.wrong)} wrong; "
            f"{len(self.songs_announced)} of the {len(self.played)} songs played were announced"
        ]
        lines += [
            f"    WRONG {match.clock_seconds:7.1f} s  {match.song}  (playing: {', '.join(playing) or 'no song'})"
            for match, playing in self.wrong
        ]
        missed = [song for song in self.played if song not in self.songs_announced]
        if missed:
            lines.append(f"    never announced: {', '.join(missed)}")
        return lines


def read_truth(path: str | os.PathLike) -> list[TruthInterval]:
    """The song intervals of a truth CSV (``song,start,end``); UserError naming the file if it lacks times."""
    try:
        entries = read_playlist(path)
    except PlaylistError as error:
        raise UserError(str(error)) from None
    if entries[0].start is None:
        raise UserError(f"{path}: a truth file needs 'start' and 'end' columns (song,start,end in seconds)")
    return [TruthInterval(Path(entry.song).stem, entry.start, entry.end) for entry in entries]


def check_against(
    announcements: list[StableMatch],
    truth: list[TruthInterval],
    evidence_seconds: float,
    audio_seconds: float,
    source: str = "truth file",
) -> TruthCheck:
    """Split ``announcements`` into right and wrong by ``truth``; list the songs heard for ``evidence_seconds``."""
    check = TruthCheck(source)
    for match in announcements:
        start = match.clock_seconds - evidence_seconds
        playing = [interval.song for interval in truth if interval.start < match.clock_seconds and interval.end > start]
        if match.song in playing:
            check.right.append(match)
        else:
            check.wrong.append((match, playing))
    for interval in truth:
        heard = min(interval.end, audio_seconds) - interval.start
        if heard >= evidence_seconds and interval.song not in check.played:
            check.played.append(interval.song)
    return check
