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
            name = stem if len(group) == 1 else f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
            sources.append(SongSource(name, path))
    return sorted(sources, key=lambda source: source.name)
