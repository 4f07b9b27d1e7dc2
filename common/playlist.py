"""The playlist CSV: which songs a recording plays, in order, and optionally where.

UTF-8. Either the reference's header-less layout, one reference file name per line, or a header
row naming the columns:

    song,start,end
    Coldplay - Viva La Vida.wav,3.52,245.10
    ...

``song`` is a reference file name, relative to the songs folder or absolute. ``start`` and
``end`` (seconds in the recording) are optional, but when given must be given for every row.
The recording simulator writes one, the real-world protocol and live recognition's ``--truth``
read it.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

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


def playlist_files(entries: list[PlaylistEntry], folder: str | os.PathLike, where: str) -> list[Path]:
    """The song file of every entry (relative names inside ``folder``); a missing one is an error naming ``where``."""
    files = []
    for entry in entries:
        path = Path(entry.song) if Path(entry.song).is_absolute() else Path(folder) / entry.song
        if not path.is_file():
            raise PlaylistError(f"{where}: song '{entry.song}' not found in true_songs ({path})")
        files.append(path)
    return files
