"""Song lists for training: a pickled list (the reference's format), a .txt, a JSON list, or a folder."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

from common.audio import find_audio_files
from common.config import ConfigError


def read_song_list(list_path: str | os.PathLike, data_path: str | os.PathLike) -> list[str]:
    """Paths named by ``list_path``; relative entries are resolved against ``data_path``.

    Accepted formats: .pkl/.pickle (a pickled Python list of paths, as in the reference), .json
    (a JSON list of strings), anything else as text with one path per line (blank lines and
    lines starting with # are ignored). Raises ConfigError naming the file on a bad list.
    """
    list_path = Path(list_path)
    suffix = list_path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle"):
            with open(list_path, "rb") as handle:
                entries = pickle.load(handle)
        elif suffix == ".json":
            entries = json.loads(list_path.read_text(encoding="utf-8"))
        else:
            lines = list_path.read_text(encoding="utf-8").splitlines()
            entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    except (OSError, pickle.UnpicklingError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{list_path}: cannot read song list ({type(error).__name__}: {error})") from None
    if isinstance(entries, tuple):
        entries = list(entries)
    if not isinstance(entries, list) or not all(isinstance(entry, (str, os.PathLike)) for entry in entries):
        raise ConfigError(f"{list_path}: a song list must be a list of paths, got {type(entries).__name__}")
    if not entries:
        raise ConfigError(f"{list_path}: the song list is empty")
    base = Path(data_path)
    return [str(Path(entry) if Path(entry).is_absolute() else base / entry) for entry in entries]


def find_songs(data_path: str | os.PathLike) -> list[str]:
    """Every audio file under ``data_path`` (recursive, sorted)."""
    songs = [str(path) for path in find_audio_files(data_path)]
    if not songs:
        raise ConfigError(f"{data_path}: no audio files found under data_path")
    return songs
