"""The song table: one ``SongEntry`` per song (its consecutive faiss ids), input checks and model descriptions.

Vector ids are consecutive: song k owns ids ``first_id .. first_id + count - 1`` and row j of
its fingerprints (window j, starting at ``j * hop_seconds`` s) has id ``first_id + j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from database.errors import DatabaseError


@dataclass
class SongEntry:
    """One row of the song table."""

    name: str  # unique song name (file stem; disambiguated when two files share a stem)
    first_id: int  # faiss id of the song's row 0
    count: int  # number of vectors (J)
    duration: float  # seconds
    source: str = ""  # source audio path ("" if unknown)


SongInput = tuple[str, np.ndarray, float, str]  # (name, (J, d) float32 vectors, duration s, source)


def describe_identity(identity: dict | None) -> str:
    """One-line description of a model identity for error messages."""
    if not identity:
        return "an unknown model"
    frontend = identity.get("frontend") or {}
    front = ", ".join(f"{key}={frontend[key]}" for key in sorted(frontend))
    return (
        f"{identity.get('model_str')} (width {identity.get('width')}, d {identity.get('embedding_dim')}, "
        f"weights {identity.get('model_id')}; front end {front or 'unknown'})"
    )


def check_songs(songs: Sequence[SongInput], d: int | None, taken: set[str]) -> int:
    """Validate (name, vectors, duration, source) tuples; returns d."""
    seen = set(taken)
    for name, vectors, _duration, _source in songs:
        if name in seen:
            where = "already in the database" if name in taken else "given twice"
            raise DatabaseError(f"song '{name}' is {where}")
        seen.add(name)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise DatabaseError(
                f"song '{name}': expected a non-empty (J, d) array of vectors, got shape {vectors.shape}"
            )
        if d is None:
            d = int(vectors.shape[1])
        if vectors.shape[1] != d:
            raise DatabaseError(f"song '{name}': vectors have d={vectors.shape[1]}, the database has d={d}")
    return d
