"""The fingerprint database: a faiss inner-product index plus the song table.

``Database`` builds, extends, shrinks, saves and loads one; the pieces it wires live beside it:
``database.songs`` (the song table and its checks), ``database.index`` (faiss: building,
training, nprobe) and ``database.files`` (the files on disk, replaced together). See
docs/database.md.

Vector ids are consecutive: song k owns ids ``first_id .. first_id + count - 1`` and row j of
its fingerprints (window j, starting at ``j * hop_seconds`` s) has id ``first_id + j``.
``locate`` maps an id back to (song, row) by binary search over the first ids.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from database.errors import DatabaseError
from database.files import (
    FORMAT,
    FORMAT_VERSION,
    VECTOR_STORE_DTYPE,
    default_index_path,
    default_json_path,
    read_database_files,
    read_table,
    vectors_path,
    write_database_files,
)
from database.index import is_flat, new_index, set_index_nprobe
from database.songs import SongEntry, SongInput, check_songs, describe_identity
from models.checkpoint import identity_differences
from models.frontend import FrontEndConfig

# Rows added to faiss (and copied between files) per step: bounds memory to about 50 MB at d=128.
DEFAULT_CHUNK_ROWS = 100_000


class Database:
    """A faiss index (inner product) over the fingerprints of a song collection, with its song table.

    Attributes: ``index`` (faiss.Index), ``songs`` (list[SongEntry], in id order), ``identity``
    (``models.checkpoint.model_identity`` of the model that made the vectors, or None), ``d``,
    ``factory`` (faiss index_factory string), ``hop_seconds`` (seconds between rows),
    ``fingerprint_dir`` (folder the vectors came from, informational).
    """

    def __init__(
        self,
        index: faiss.Index,
        songs: list[SongEntry],
        identity: dict | None,
        factory: str,
        hop_seconds: float,
        song_arrays: list[np.ndarray] | None = None,
        fingerprint_dir: str = "",
    ):
        self.index = index
        self.songs = songs
        self.identity = identity
        self.d = int(index.d)
        self.factory = factory
        self.hop_seconds = float(hop_seconds)
        self.fingerprint_dir = fingerprint_dir
        self.nprobe: int | None = None
        # Exact vectors per song for non-flat indexes (ndarray, or slices of the memory-mapped
        # float16 store after load); None for flat indexes, which reconstruct exactly.
        self._song_arrays = None if is_flat(index) else list(song_arrays or [])
        self._store: np.ndarray | None = None  # the loaded float16 store, indexed by vector id
        self._first_ids: list[int] = []
        self._refresh_table()

    # ----------------------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        songs: Sequence[SongInput],
        factory: str = "Flat",
        identity: dict | None = None,
        hop_seconds: float = FrontEndConfig().default_hop_seconds,
        max_train_vectors: int = 100_000,
        seed: int = 0,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        fingerprint_dir: str = "",
        progress: bool = False,
    ) -> Database:
        """Build a database from ``songs`` = [(name, (J, d) float32, duration s, source), ...].

        Songs are stored in the order given (callers sort them; ``generate_index`` sorts by name).
        The vectors may be memory-mapped arrays (``np.load(..., mmap_mode="r")``): training uses
        a random sample of at most ``max_train_vectors`` rows (drawn with ``seed``) and vectors
        are added ``chunk_rows`` at a time, so memory stays bounded for big collections.
        """
        songs = list(songs)
        if not songs:
            raise DatabaseError("cannot build a database from no songs")
        d = check_songs(songs, None, set())
        if identity is not None and int(identity.get("embedding_dim", d)) != d:
            raise DatabaseError(
                f"vectors have d={d} but the model {describe_identity(identity)} makes d={identity['embedding_dim']}"
            )
        index = new_index(d, factory, [song[1] for song in songs], max_train_vectors, seed)
        database = cls(index, [], identity, factory, hop_seconds, fingerprint_dir=fingerprint_dir)
        database._append(songs, chunk_rows, progress)
        return database

    def add_songs(
        self,
        songs: Sequence[SongInput],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: bool = False,
        identity: dict | None = None,
        hop_seconds: float | None = None,
        source: str = "the new songs",
    ) -> None:
        """Append songs without retraining; refuses a name already present (DatabaseError).

        ``identity`` and ``hop_seconds``, when given (a fingerprint folder's manifest records
        both), must be the database's: otherwise a DatabaseError naming ``source``.
        """
        if identity is not None:
            self.check_compatible(identity)
        if hop_seconds is not None and abs(hop_seconds - self.hop_seconds) > 1e-9:
            raise DatabaseError(
                f"{source}: fingerprints at a {hop_seconds} s hop, the database uses {self.hop_seconds} s"
            )
        songs = list(songs)
        check_songs(songs, self.d, {song.name for song in self.songs})
        self._append(songs, chunk_rows, progress)

    def remove_songs(self, names: Iterable[str]) -> None:
        """Remove songs by name; later songs' ids move down so that ids stay consecutive.

        Flat indexes compact in place (``remove_ids`` shifts later ids). Other indexes keep their
        training: the index is emptied and the remaining vectors are re-added from the exact store.
        """
        names = list(names)
        present = {song.name: number for number, song in enumerate(self.songs)}
        missing = [name for name in names if name not in present]
        if missing:
            raise DatabaseError(f"cannot remove song(s) not in the database: {', '.join(missing)}")
        doomed = sorted({present[name] for name in names}, reverse=True)
        self._store = None
        if is_flat(self.index):
            for number in doomed:  # from the end, so earlier first ids stay valid
                song = self.songs[number]
                self.index.remove_ids(faiss.IDSelectorRange(song.first_id, song.first_id + song.count))
                del self.songs[number]
            next_id = 0
            for song in self.songs:
                song.first_id, next_id = next_id, next_id + song.count
        else:
            for number in doomed:
                del self.songs[number]
                del self._song_arrays[number]
            kept = [(song, array) for song, array in zip(self.songs, self._song_arrays, strict=True)]
            self.index.reset()
            self.songs, self._song_arrays = [], []
            self._append(
                [(song.name, array, song.duration, song.source) for song, array in kept], DEFAULT_CHUNK_ROWS, False
            )
        self._refresh_table()

    def _append(self, songs: list[SongInput], chunk_rows: int, progress: bool) -> None:
        if chunk_rows < 1:
            raise DatabaseError(f"chunk size must be at least 1 vector, got {chunk_rows}")
        self._store = None  # ids are about to change; per-song arrays stay valid
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(len(song[1]) for song in songs), unit="vec", unit_scale=True, desc="adding")
        pending, pending_rows = [], 0

        def flush():
            nonlocal pending, pending_rows
            if pending:
                self.index.add(np.ascontiguousarray(np.concatenate(pending), dtype=np.float32))
                if bar is not None:
                    bar.update(pending_rows)
            pending, pending_rows = [], 0

        for name, vectors, duration, source in songs:
            first_id = self.index.ntotal + pending_rows
            for start in range(0, len(vectors), chunk_rows):
                part = np.asarray(vectors[start : start + chunk_rows], dtype=np.float32)
                pending.append(part)
                pending_rows += len(part)
                if pending_rows >= chunk_rows:
                    flush()
            self.songs.append(SongEntry(name, int(first_id), int(len(vectors)), float(duration), str(source)))
            if self._song_arrays is not None:
                self._song_arrays.append(vectors)
        flush()
        if bar is not None:
            bar.close()
        self._refresh_table()

    def _refresh_table(self) -> None:
        self._first_ids = [song.first_id for song in self.songs]
        self.first_ids = np.array(self._first_ids, dtype=np.int64)  # (songs,) for vectorised lookups
        self.song_counts = np.array([song.count for song in self.songs], dtype=np.int64)
        self._names = {song.name: number for number, song in enumerate(self.songs)}
        self._by_source: dict[str, str] | None = None  # built on first use: resolving paths touches the disk
        expected = sum(song.count for song in self.songs)
        if expected != self.index.ntotal:
            raise DatabaseError(f"song table holds {expected} vectors but the index holds {self.index.ntotal}")

    # ----------------------------------------------------------------------------- lookup
    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def name_of_file(self, path: str | os.PathLike) -> str | None:
        """The database's name for the audio file ``path``, or None when that song is not in it.

        Matched by the source path recorded at extraction first, then by file stem (the name
        extraction gives a song), so a moved collection is still recognised.
        """
        if self._by_source is None:
            self._by_source = {str(Path(song.source).resolve()): song.name for song in self.songs if song.source}
        path = Path(path)
        by_source = self._by_source.get(str(path.resolve()))
        return by_source or (path.stem if path.stem in self._names else None)

    def song_number(self, name: str) -> int:
        """Position of the song called ``name`` in ``songs`` (DatabaseError if absent)."""
        try:
            return self._names[name]
        except KeyError:
            raise DatabaseError(f"song '{name}' is not in the database") from None

    def locate(self, vector_id: int) -> tuple[int, int]:
        """(song index, row) of a faiss id, by binary search over the first ids."""
        if not 0 <= vector_id < self.index.ntotal:
            raise DatabaseError(f"vector id {vector_id} is outside the database (0..{self.index.ntotal - 1})")
        number = bisect.bisect_right(self._first_ids, vector_id) - 1
        return number, int(vector_id - self._first_ids[number])

    def locate_many(self, vector_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised ``locate`` for valid ids (>= 0): returns (song indexes, rows), int64 arrays."""
        numbers = np.searchsorted(self.first_ids, vector_ids, side="right") - 1
        return numbers, vector_ids - self.first_ids[numbers]

    def _flat_view(self) -> np.ndarray:
        """The flat index's own (ntotal, d) float32 storage, without a copy (valid until the next add)."""
        flat = faiss.downcast_index(self.index)
        return faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.d).reshape(self.ntotal, self.d)

    def vectors_at(self, vector_ids: np.ndarray) -> np.ndarray:
        """Exact (n, d) float32 vectors of valid ids (any order)."""
        vector_ids = np.asarray(vector_ids, dtype=np.int64)
        if self._song_arrays is None:
            return self._flat_view()[vector_ids]
        if self._store is not None:
            return np.asarray(self._store[vector_ids], dtype=np.float32)
        numbers, rows = self.locate_many(vector_ids)
        vectors = np.empty((len(vector_ids), self.d), dtype=np.float32)
        for number in np.unique(numbers):
            mine = numbers == number
            vectors[mine] = self._song_arrays[number][rows[mine]]
        return vectors

    def song_vectors(self, song_index: int) -> np.ndarray:
        """Exact (count, d) float32 vectors of a song (stored copy, or reconstructed from a flat index)."""
        song = self.songs[song_index]
        return self.song_rows(song_index, 0, song.count)

    def song_rows(self, song_index: int, start: int, stop: int) -> np.ndarray:
        """Exact (stop - start, d) float32 vectors of rows [start, stop) of a song."""
        song = self.songs[song_index]
        start, stop = max(0, start), min(song.count, stop)
        if stop <= start:
            return np.zeros((0, self.d), dtype=np.float32)
        if self._song_arrays is None:
            return self._flat_view()[song.first_id + start : song.first_id + stop].copy()
        return np.asarray(self._song_arrays[song_index][start:stop], dtype=np.float32)

    # ----------------------------------------------------------------------------- parameters
    def set_nprobe(self, nprobe: int) -> None:
        """Number of inverted lists searched per query; no-op without IVF."""
        if set_index_nprobe(self.index, nprobe):
            self.nprobe = int(nprobe)

    def check_compatible(self, identity: dict | None) -> None:
        """DatabaseError naming both models when ``identity`` differs from the one that built the index."""
        if identity is None or self.identity is None:
            if identity is not None and int(identity.get("embedding_dim", self.d)) != self.d:
                raise DatabaseError(
                    f"the query model {describe_identity(identity)} makes d={identity['embedding_dim']} "
                    f"but the index holds d={self.d} vectors"
                )
            return
        differing = identity_differences(identity, self.identity)
        if differing:
            raise DatabaseError(
                f"model mismatch ({', '.join(differing)} differ): the index was built with "
                f"{describe_identity(self.identity)} but the query uses {describe_identity(identity)}"
            )

    # ----------------------------------------------------------------------------- files
    default_json_path = staticmethod(default_json_path)
    vectors_path = staticmethod(vectors_path)

    def save(self, index_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> None:
        """Write the index, the JSON (and the float16 vector store for non-flat indexes) atomically.

        A crash at any moment leaves either the previous set of files or the new one loadable.
        """
        index_path = Path(index_path)
        json_path = Path(json_path) if json_path is not None else default_json_path(index_path)
        table = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "identity": self.identity,
            "d": self.d,
            "factory": self.factory,
            "metric": "inner_product",
            "hop_seconds": self.hop_seconds,
            "ntotal": self.ntotal,
            "nprobe": self.nprobe,
            "fingerprint_dir": self.fingerprint_dir,
            "files": None,  # filled in by write_database_files
            "songs": [asdict(song) for song in self.songs],
        }
        write_vectors = self._write_vector_store if self._song_arrays is not None else None
        write_database_files(self.index, table, index_path, json_path, write_vectors)

    def _write_vector_store(self, path: Path) -> None:
        store = np.lib.format.open_memmap(path, mode="w+", dtype=VECTOR_STORE_DTYPE, shape=(self.ntotal, self.d))
        for song, array in zip(self.songs, self._song_arrays, strict=True):
            for start in range(0, song.count, DEFAULT_CHUNK_ROWS):
                stop = min(song.count, start + DEFAULT_CHUNK_ROWS)
                store[song.first_id + start : song.first_id + stop] = np.asarray(array[start:stop])
        store.flush()
        del store

    @classmethod
    def open(cls, json_path: str | os.PathLike) -> Database:
        """Read the database whose JSON is ``json_path``; its index file is the one the JSON names, beside it."""
        json_path = Path(json_path)
        table = read_table(json_path)
        index_file = (table.get("files") or {}).get("index", {}).get("file") or default_index_path(json_path).name
        return cls.load(json_path.parent / index_file, json_path)

    @classmethod
    def load(cls, index_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> Database:
        """Read a database written by ``save``; restores the previous files after an interrupted save."""
        index_path = Path(index_path)
        json_path = Path(json_path) if json_path is not None else default_json_path(index_path)
        table, index, store = read_database_files(index_path, json_path)
        songs = [SongEntry(**song) for song in table["songs"]]
        song_arrays = None
        if store is not None:
            song_arrays = [store[song.first_id : song.first_id + song.count] for song in songs]
        database = cls(
            index,
            songs,
            table.get("identity"),
            table["factory"],
            table["hop_seconds"],
            song_arrays=song_arrays,
            fingerprint_dir=table.get("fingerprint_dir", ""),
        )
        if database.d != table["d"]:
            raise DatabaseError(f"{index_path}: index has d={database.d} but {json_path} says d={table['d']}")
        if song_arrays is not None:
            database._store = store
        if table.get("nprobe"):
            database.set_nprobe(int(table["nprobe"]))
        return database
