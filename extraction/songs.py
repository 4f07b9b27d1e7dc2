"""Which audio files a run fingerprints, and the unique song name each one's outputs use."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from common.audio import AudioError, find_audio_files
from extraction.errors import ExtractionError


@dataclass(frozen=True)
class SongSource:
    """One audio file to fingerprint and the unique song name its outputs use."""

    name: str
    path: Path


def plan_songs(input_dirs: list[str | os.PathLike]) -> list[SongSource]:
    """Every audio file under ``input_dirs``, with unique song names, sorted by name.

    The name is the file stem; when several files share a stem, each gets ``<stem>-<8 hex>``
    where the hex is a hash of its resolved path, so names are stable across runs and folders.
    """
    paths = []
    for folder in input_dirs:
        try:
            paths.extend(find_audio_files(folder))
        except AudioError as error:
            raise ExtractionError(f"input dirs: {error}") from None
    by_stem: dict[str, list[Path]] = {}
    for path in dict.fromkeys(p.resolve() for p in paths):  # the same file listed twice counts once
        by_stem.setdefault(path.stem, []).append(path)
    sources = []
    for stem, group in by_stem.items():
        for path in group:
            sources.append(SongSource(stem if len(group) == 1 else _tagged_name(path), path))
    return sorted(sources, key=lambda source: source.name)


def _tagged_name(path: Path) -> str:
    """``<stem>-<8 hex>``, the hex a hash of the resolved path: a name no other file gets."""
    return f"{path.stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def keep_names_unique(sources: list[SongSource], records: dict[str, dict]) -> list[SongSource]:
    """``sources`` with names that stay unique across runs into one fingerprint folder.

    ``records`` (name -> record with its ``source`` path) are the songs the folder holds already.
    A file the folder holds keeps the name it was given then; a file whose name the folder gives
    to another file becomes ``<stem>-<8 hex>``. Raises ExtractionError, before anything is
    written, when that still leaves two files with one name.
    """
    recorded = {str(record["source"]): name for name, record in records.items()}
    renamed, used = [], {}
    for source in sources:
        path = Path(source.path).resolve()
        name = recorded.get(str(path))
        if name is None:
            name = source.name if source.name not in records else _tagged_name(path)
            if name in records:
                raise ExtractionError(
                    f"{path}: its song name '{name}' is taken in the output dir by {records[name]['source']}; "
                    "rename one of the files or use another output dir"
                )
        if name in used:
            raise ExtractionError(f"{path} and {used[name]} would both be song '{name}'; rename one of the files")
        used[name] = path
        renamed.append(SongSource(name, source.path))
    return renamed
