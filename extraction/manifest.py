"""A fingerprint folder's manifest: what was extracted, by which model, and what was skipped.

Folder layout (written by ``extraction.extractor.extract_fingerprints``):

- ``<song>.npy``: (J, d) float32, row j embedding the window starting at j * hop_samples.
- ``manifest.json``: the model identity (incl. front end), sample rate, hop, window, and per
  song: name, file, source path, duration (s), rows; plus the skipped files with their reason.
- ``.progress-rank<r>.jsonl``: while a run is going, one line per finished or skipped song (so an
  interrupted run resumes without redoing finished songs); merged into the manifest at the end.

Not to be confused with ``data_prep.manifest`` (the CSV listing of a prepared data set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from database import describe_identity
from extraction.errors import ExtractionError
from extraction.songs import SongSource

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "deep-audio-fingerprint-fingerprints"
MANIFEST_VERSION = 1


def read_fingerprint_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a fingerprint folder, or None when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExtractionError(f"{path}: cannot read fingerprint manifest ({error})") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ExtractionError(f"{path}: not a fingerprint manifest of this toolkit")
    return manifest


def progress_logs(folder: Path) -> list[Path]:
    return sorted(folder.glob(".progress-rank*.jsonl"))


def read_records(folder: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Finished songs (name -> record) and skipped files (source -> reason) from manifest + logs."""
    songs: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    manifest = read_fingerprint_manifest(folder)
    if manifest:
        songs.update({song["name"]: song for song in manifest["songs"]})
        skipped.update({entry["source"]: entry["reason"] for entry in manifest.get("skipped", [])})
    for log in progress_logs(folder):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if "reason" in record:
                skipped[record["source"]] = record["reason"]
            else:
                songs[record["name"]] = record
                skipped.pop(record["source"], None)
    return songs, skipped


def is_complete(folder: Path, source: SongSource, records: dict[str, dict]) -> bool:
    record = records.get(source.name)
    if record is None or record.get("source") != str(source.path):
        return False
    try:
        rows = np.load(folder / record["file"], mmap_mode="r").shape[0]
    except (OSError, ValueError):
        return False
    return rows == record["rows"]


def check_folder_identity(folder: Path, identity: dict, overwrite: bool = False) -> None:
    """Refuse a folder holding another model's fingerprints; with ``overwrite``, empty it instead.

    Emptying removes the manifest first, so a crash part-way leaves a folder that claims no
    model (its leftover .npy files are rewritten by the next run, as after any crash).
    """
    manifest = read_fingerprint_manifest(folder)
    if manifest is None or manifest.get("identity") == identity:
        return
    if not overwrite:
        raise ExtractionError(
            f"{folder}: holds fingerprints of {describe_identity(manifest.get('identity'))}, "
            f"not of {describe_identity(identity)}; use another output dir or set overwrite"
        )
    (folder / MANIFEST_NAME).unlink()
    for path in [*folder.glob("*.npy"), *progress_logs(folder)]:
        path.unlink()


def _manifest(identity: dict, sample_rate: int, window_samples: int, hop_samples: int, songs, skipped) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "identity": identity,
        "sample_rate": sample_rate,
        "window_samples": window_samples,
        "hop_samples": hop_samples,
        "hop_seconds": hop_samples / sample_rate,
        "songs": sorted(songs, key=lambda song: song["name"]),
        "skipped": [{"source": source, "reason": reason} for source, reason in sorted(skipped.items())],
    }


def write_fingerprint_manifest(
    folder: Path, identity: dict, sample_rate: int, window_samples: int, hop_samples: int
) -> dict:
    """Merge the manifest and all progress logs into a new manifest (atomically); delete the logs."""
    records, skipped = read_records(folder)
    songs = [record for record in records.values() if (folder / record["file"]).exists()]
    manifest = _manifest(identity, sample_rate, window_samples, hop_samples, songs, skipped)
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    for log in progress_logs(folder):
        log.unlink()
    return manifest


def load_fingerprint_folder(folder: str | os.PathLike, mmap: bool = True) -> tuple[dict, list[tuple]]:
    """A fingerprint folder as (manifest, [(name, (J, d) vectors, duration s, source), ...]) sorted by name.

    Vectors are memory-mapped by default, so a whole collection can be indexed in bounded memory.
    Raises ExtractionError when the folder has no manifest or a listed file is missing or malformed.
    """
    folder = Path(folder)
    manifest = read_fingerprint_manifest(folder)
    if manifest is None:
        raise ExtractionError(f"{folder}: no {MANIFEST_NAME} (not a folder written by generate_fingerprints)")
    if progress_logs(folder):
        raise ExtractionError(f"{folder}: an extraction is unfinished (progress logs present); rerun it first")
    songs = []
    for song in sorted(manifest["songs"], key=lambda song: song["name"]):
        path = folder / song["file"]
        try:
            vectors = np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as error:
            raise ExtractionError(f"{path}: cannot read fingerprints ({error})") from None
        if vectors.ndim != 2 or vectors.shape[0] != song["rows"] or vectors.dtype != np.float32:
            raise ExtractionError(
                f"{path}: expected float32 ({song['rows']}, d), found {vectors.dtype} {vectors.shape}"
            )
        songs.append((song["name"], vectors, float(song["duration"]), song["source"]))
    return manifest, songs
