"""The fingerprint database: a faiss inner-product index plus the song table (SPEC 6).

Vector ids are consecutive: song k owns ids ``first_id .. first_id + count - 1`` and row j of
its fingerprints (window j, starting at ``j * hop_seconds`` s) has id ``first_id + j``.
``locate`` maps an id back to (song, row) by binary search over the first ids.

Files written by ``save`` (all beside each other, replaced together, see ``_commit_files``):

- ``<name>.index``: the faiss index (``faiss.write_index``).
- ``<name>.json``: the song table and everything needed to use the index (format version,
  model identity incl. front end, d, factory string, hop, per song name/first id/count/
  duration/source), plus the size and a digest of each data file so that a pair left
  mismatched by a crash is detected and the previous pair restored.
- ``<name>.vectors.npy``: only for indexes that cannot return their vectors exactly (PQ, SQ,
  anything but a flat index). A float16 copy of every vector, memory-mapped on load so that
  the matcher reads only the rows it scores. Why a copy beside the index and not the
  fingerprint folder: the database stays usable (and consistent under add/remove) when the
  fingerprint folder is moved or deleted, and float16 halves its size; unit vectors lose less
  than 1e-3 in their inner products. Flat indexes hold exact float32 vectors already, so they
  are read back with ``reconstruct_n`` and get no copy.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from common.errors import UserError

FORMAT = "deep-audio-fingerprint-database"
FORMAT_VERSION = 1
VECTOR_STORE_DTYPE = np.float16
# Rows added to faiss (and copied between files) per step: bounds memory to about 50 MB at d=128.
DEFAULT_CHUNK_ROWS = 100_000
# Bytes read from each end of a data file for its digest (a full hash of a 5 GB index is slow).
_DIGEST_EDGE_BYTES = 1 << 20


class DatabaseError(UserError):
    """A database that cannot be built, read or used as asked; the message names the file or song."""


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


def _is_flat(index: faiss.Index) -> bool:
    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def _file_digest(path: Path) -> dict:
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_DIGEST_EDGE_BYTES))
        if size > _DIGEST_EDGE_BYTES:
            handle.seek(max(_DIGEST_EDGE_BYTES, size - _DIGEST_EDGE_BYTES))
            digest.update(handle.read())
    return {"bytes": size, "digest": digest.hexdigest()[:32]}


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _prev_path(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def _commit_files(pairs: list[tuple[Path, Path]], json_tmp: Path, json_path: Path) -> None:
    """Move finished temporary files onto their targets so that a crash leaves a usable database.

    Order: hard-link every existing target (data files and JSON) to ``<target>.prev``; replace
    the data files; replace the JSON last (the commit point); delete the ``.prev`` links. A crash
    before the JSON is replaced leaves the old JSON, whose recorded digests no longer match the
    new data files: ``Database.load`` then restores the ``.prev`` files (the previous pair).
    """
    for target in [target for _, target in pairs] + [json_path]:
        prev = _prev_path(target)
        with contextlib.suppress(FileNotFoundError):
            prev.unlink()
        if target.exists():
            os.link(target, prev)
    for tmp, target in pairs:
        os.replace(tmp, target)
    os.replace(json_tmp, json_path)
    for target in [target for _, target in pairs] + [json_path]:
        with contextlib.suppress(FileNotFoundError):
            _prev_path(target).unlink()


def _temporary_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")


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
        self._song_arrays = None if _is_flat(index) else list(song_arrays or [])
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
        hop_seconds: float = 0.5,
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
        d = _check_songs(songs, None, set())
        if identity is not None and int(identity.get("embedding_dim", d)) != d:
            raise DatabaseError(
                f"vectors have d={d} but the model {describe_identity(identity)} makes d={identity['embedding_dim']}"
            )
        try:
            index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as error:
            raise DatabaseError(f"faiss cannot build index '{factory}': {_faiss_message(error)}") from None
        if not index.is_trained:
            sample = _training_sample([song[1] for song in songs], max_train_vectors, seed)
            try:
                index.train(sample)
            except RuntimeError as error:
                raise DatabaseError(
                    f"faiss cannot train '{factory}' on {len(sample)} vectors: {_faiss_message(error)}"
                ) from None
        database = cls(index, [], identity, factory, hop_seconds, fingerprint_dir=fingerprint_dir)
        database._append(songs, chunk_rows, progress)
        return database

    def add_songs(
        self, songs: Sequence[SongInput], chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool = False
    ) -> None:
        """Append songs without retraining; refuses a name already present (DatabaseError)."""
        songs = list(songs)
        _check_songs(songs, self.d, {song.name for song in self.songs})
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
        if _is_flat(self.index):
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
        expected = sum(song.count for song in self.songs)
        if expected != self.index.ntotal:
            raise DatabaseError(f"song table holds {expected} vectors but the index holds {self.index.ntotal}")

    # ----------------------------------------------------------------------------- lookup
    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

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
        """Number of inverted lists searched per query, through faiss.ParameterSpace; no-op without IVF."""
        if nprobe < 1:
            raise DatabaseError(f"nprobe must be at least 1, got {nprobe}")
        try:
            faiss.extract_index_ivf(self.index)
        except RuntimeError:
            return  # no inverted lists (Flat, PQ, HNSW...): nothing to set
        faiss.ParameterSpace().set_index_parameter(self.index, "nprobe", int(nprobe))
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
        fields = ("model_str", "width", "embedding_dim", "model_id", "frontend")
        differing = [name for name in fields if identity.get(name) != self.identity.get(name)]
        if differing:
            raise DatabaseError(
                f"model mismatch ({', '.join(differing)} differ): the index was built with "
                f"{describe_identity(self.identity)} but the query uses {describe_identity(identity)}"
            )

    # ----------------------------------------------------------------------------- files
    @staticmethod
    def default_json_path(index_path: str | os.PathLike) -> Path:
        return Path(index_path).with_suffix(".json")

    @staticmethod
    def vectors_path(index_path: str | os.PathLike) -> Path:
        return Path(index_path).with_suffix(".vectors.npy")

    def save(self, index_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> None:
        """Write the index, the JSON (and the float16 vector store for non-flat indexes) atomically.

        A crash at any moment leaves either the previous set of files or the new one loadable.
        """
        index_path = Path(index_path)
        json_path = Path(json_path) if json_path is not None else self.default_json_path(index_path)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        temporaries: list[Path] = []
        try:
            index_tmp = _temporary_beside(index_path)
            temporaries.append(index_tmp)
            faiss.write_index(self.index, str(index_tmp))
            _fsync(index_tmp)
            pairs = [(index_tmp, index_path)]
            files = {"index": {"file": index_path.name, **_file_digest(index_tmp)}}
            vectors_path = self.vectors_path(index_path)
            if self._song_arrays is not None:
                vectors_tmp = _temporary_beside(vectors_path)
                temporaries.append(vectors_tmp)
                self._write_vector_store(vectors_tmp)
                pairs.append((vectors_tmp, vectors_path))
                files["vectors"] = {"file": vectors_path.name, "dtype": "float16", **_file_digest(vectors_tmp)}
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
                "files": files,
                "songs": [asdict(song) for song in self.songs],
            }
            json_tmp = _temporary_beside(json_path)
            temporaries.append(json_tmp)
            json_tmp.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
            _fsync(json_tmp)
            _commit_files(pairs, json_tmp, json_path)
        finally:
            for tmp in temporaries:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def _write_vector_store(self, path: Path) -> None:
        store = np.lib.format.open_memmap(path, mode="w+", dtype=VECTOR_STORE_DTYPE, shape=(self.ntotal, self.d))
        for song, array in zip(self.songs, self._song_arrays, strict=True):
            for start in range(0, song.count, DEFAULT_CHUNK_ROWS):
                stop = min(song.count, start + DEFAULT_CHUNK_ROWS)
                store[song.first_id + start : song.first_id + stop] = np.asarray(array[start:stop])
        store.flush()
        del store

    @classmethod
    def load(cls, index_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> Database:
        """Read a database written by ``save``; restores the previous files after an interrupted save."""
        index_path = Path(index_path)
        json_path = Path(json_path) if json_path is not None else cls.default_json_path(index_path)
        table = _read_table(json_path)
        data_files = {"index": index_path}
        if "vectors" in table["files"]:
            data_files["vectors"] = index_path.parent / table["files"]["vectors"]["file"]
        if not all(_matches(data_files[key], table["files"][key]) for key in data_files):
            prevs = {key: _prev_path(path) for key, path in data_files.items()}
            if all(_matches(prevs[key], table["files"][key]) for key in data_files):
                warnings.warn(
                    f"{index_path}: an interrupted update left files that do not match {json_path}; "
                    "restoring the previous database",
                    stacklevel=2,
                )
                for key, path in data_files.items():
                    os.replace(prevs[key], path)
            else:
                missing = [str(path) for path in data_files.values() if not path.exists()]
                if missing:
                    raise DatabaseError(f"{json_path}: database file(s) missing: {', '.join(missing)}")
                raise DatabaseError(f"{index_path}: does not match {json_path} (written by another save?)")
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as error:
            raise DatabaseError(f"{index_path}: faiss cannot read the index ({_faiss_message(error)})") from None
        songs = [SongEntry(**song) for song in table["songs"]]
        song_arrays = None
        if "vectors" in data_files:
            store = np.load(data_files["vectors"], mmap_mode="r")
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


# --------------------------------------------------------------------------------- helpers
def _faiss_message(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line
    return lines[-1] if lines else type(error).__name__


def _check_songs(songs: Sequence[SongInput], d: int | None, taken: set[str]) -> int:
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


def _training_sample(arrays: list[np.ndarray], max_vectors: int, seed: int) -> np.ndarray:
    """At most ``max_vectors`` rows drawn uniformly without replacement across all songs (float32)."""
    counts = np.array([len(array) for array in arrays], dtype=np.int64)
    total = int(counts.sum())
    if total <= max_vectors:
        return np.ascontiguousarray(np.concatenate([np.asarray(a, dtype=np.float32) for a in arrays]))
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_vectors, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for number, array in enumerate(arrays):
        lo, hi = np.searchsorted(chosen, [starts[number], starts[number + 1]])
        if hi > lo:
            parts.append(np.asarray(array[chosen[lo:hi] - starts[number]], dtype=np.float32))
    return np.ascontiguousarray(np.concatenate(parts))


def _read_table(json_path: Path) -> dict:
    try:
        table = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatabaseError(f"{json_path}: database JSON not found") from None
    except (OSError, json.JSONDecodeError) as error:
        raise DatabaseError(f"{json_path}: cannot read database JSON ({error})") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        raise DatabaseError(f"{json_path}: not a database JSON of this toolkit (no '{FORMAT}' marker)")
    if table.get("format_version", 0) > FORMAT_VERSION:
        raise DatabaseError(f"{json_path}: format version {table['format_version']} is newer than this code")
    return table


def _matches(path: Path, recorded: dict) -> bool:
    return path.is_file() and _file_digest(path) == {"bytes": recorded["bytes"], "digest": recorded["digest"]}


__all__ = ["Database", "DatabaseError", "SongEntry", "describe_identity"]
