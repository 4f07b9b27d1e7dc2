"""The fingerprint database stage: a faiss index over every song's fingerprints plus the song table.

``from database import Database``; see ``database.database`` for the class and docs/database.md.
"""

from database.database import DEFAULT_CHUNK_ROWS, Database
from database.errors import DatabaseError
from database.songs import SongEntry, describe_identity

__all__ = ["DEFAULT_CHUNK_ROWS", "Database", "DatabaseError", "SongEntry", "describe_identity"]
