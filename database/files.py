"""A database's files on disk, replaced together so that a crash leaves a usable database.

Files written by ``Database.save`` (all beside each other):

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

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from common.atomic import writable_folder
from database.errors import DatabaseError
from database.index import faiss_message
from database.songs import SongEntry

FORMAT = "deep-audio-fingerprint-database"
FORMAT_VERSION = 1
# What every database JSON holds; ``identity``, ``nprobe`` and ``fingerprint_dir`` are optional.
REQUIRED_KEYS = ("d", "factory", "hop_seconds", "files", "songs")
VECTOR_STORE_DTYPE = np.float16
# Bytes read from each end of a data file for its digest (a full hash of a 5 GB index is slow).
_DIGEST_EDGE_BYTES = 1 << 20


def default_json_path(index_path: str | os.PathLike) -> Path:
    return Path(index_path).with_suffix(".json")


def default_index_path(json_path: str | os.PathLike) -> Path:
    return Path(json_path).with_suffix(".index")


def vectors_path(index_path: str | os.PathLike) -> Path:
    return Path(index_path).with_suffix(".vectors.npy")


def file_digest(path: Path) -> dict:
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


def write_database_files(
    index: faiss.Index,
    table: dict,
    index_path: Path,
    json_path: Path,
    write_vectors: Callable[[Path], None] | None = None,
) -> None:
    """Write the index, the JSON ``table`` (its ``files`` entry filled in here) and, with ``write_vectors``, the store.

    Every file is written to a temporary beside its target and moved into place by
    ``_commit_files``: a crash at any moment leaves either the previous set or the new one loadable.
    """
    writable_folder(index_path.parent, "database folder")
    writable_folder(json_path.parent, "database folder")
    temporaries: list[Path] = []
    try:
        index_tmp = _temporary_beside(index_path)
        temporaries.append(index_tmp)
        faiss.write_index(index, str(index_tmp))
        _fsync(index_tmp)
        pairs = [(index_tmp, index_path)]
        files = {"index": {"file": index_path.name, **file_digest(index_tmp)}}
        if write_vectors is not None:
            store_path = vectors_path(index_path)
            vectors_tmp = _temporary_beside(store_path)
            temporaries.append(vectors_tmp)
            write_vectors(vectors_tmp)
            pairs.append((vectors_tmp, store_path))
            files["vectors"] = {"file": store_path.name, "dtype": "float16", **file_digest(vectors_tmp)}
        json_tmp = _temporary_beside(json_path)
        temporaries.append(json_tmp)
        json_tmp.write_text(json.dumps({**table, "files": files}, indent=1) + "\n", encoding="utf-8")
        _fsync(json_tmp)
        _commit_files(pairs, json_tmp, json_path)
    finally:
        for tmp in temporaries:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def read_database_files(index_path: Path, json_path: Path) -> tuple[dict, faiss.Index, np.ndarray | None]:
    """(JSON table, faiss index, memory-mapped float16 store or None) of a saved database.

    Restores the previous files after an interrupted save (warning); DatabaseError when the files
    are missing or do not belong together.
    """
    table = read_table(json_path)
    data_files = {"index": index_path}
    if "vectors" in table["files"]:
        data_files["vectors"] = index_path.parent / table["files"]["vectors"]["file"]
    if not all(_matches(data_files[key], table["files"][key]) for key in data_files):
        prevs = {key: _prev_path(path) for key, path in data_files.items()}
        if all(_matches(prevs[key], table["files"][key]) for key in data_files):
            warnings.warn(
                f"{index_path}: an interrupted update left files that do not match {json_path}; "
                "restoring the previous database",
                stacklevel=3,
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
        raise DatabaseError(f"{index_path}: faiss cannot read the index ({faiss_message(error)})") from None
    store = np.load(data_files["vectors"], mmap_mode="r") if "vectors" in data_files else None
    return table, index, store


def read_table(json_path: Path) -> dict:
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
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing:
        raise DatabaseError(f"{json_path}: database JSON lacks {', '.join(map(repr, missing))}")
    if not isinstance(table["files"], dict) or not isinstance(table["files"].get("index"), dict):
        raise DatabaseError(f'{json_path}: \'files\' must name the index file ({{"index": {{"file": ...}}}})')
    if not isinstance(table["songs"], list):
        raise DatabaseError(f"{json_path}: 'songs' must be a list, got {type(table['songs']).__name__}")
    fields = [field.name for field in dataclasses.fields(SongEntry)]
    required = [field.name for field in dataclasses.fields(SongEntry) if field.default is dataclasses.MISSING]
    for number, song in enumerate(table["songs"]):
        if not isinstance(song, dict):
            raise DatabaseError(f"{json_path}: songs[{number}] must be an object, got {song!r}")
        unknown = [key for key in song if key not in fields]
        lacking = [key for key in required if key not in song]
        if unknown or lacking:
            problem = f"unknown field {unknown[0]!r}" if unknown else f"no {lacking[0]!r}"
            raise DatabaseError(
                f"{json_path}: songs[{number}] ({song.get('name', '?')}) has {problem} (fields: {', '.join(fields)})"
            )
    return table


def _matches(path: Path, recorded: dict) -> bool:
    return path.is_file() and file_digest(path) == {"bytes": recorded["bytes"], "digest": recorded["digest"]}
