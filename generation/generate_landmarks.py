"""Build a landmark table from audio folders: ``python generation/generate_landmarks.py --config FILE``.

The classical baseline's counterpart of generate_fingerprints.py + generate_index.py: every
audio file under ``input dirs`` is fingerprinted with landmark hashes (docs/landmarks.md) and
the table is written to ``<output dir>/<name>.npz`` in one atomic step (an interrupted build
leaves any earlier table as it was). Songs are named by file stem, as extraction names them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common.atomic import writable_folder
from common.config import Key, Schema, run_script
from common.errors import UserError
from landmarks import PRESETS, LandmarkConfig, LandmarkTable
from landmarks.table import song_files

SCHEMA = Schema(
    "generation/generate_landmarks.py",
    [
        Key("input dirs", "paths", help="folders searched (recursively) for audio files", must_exist=True, min=1),
        Key("output dir", "path", help="folder for <name>.npz"),
        Key("name", "filename", help="file name of the table, without .npz (no folder part)"),
        Key("preset", "choice", "dense", choices=tuple(PRESETS), help="landmark settings (docs/landmarks.md)"),
        Key(
            "parameters",
            "dict",
            {},
            help='LandmarkConfig fields that override the preset, e.g. {"density": 50, "min_margin": 10}',
        ),
        Key("overwrite", "bool", False, "replace an existing <name>.npz instead of refusing"),
        Key("progress", "bool", True, "show a progress bar"),
    ],
)


def landmark_config(config) -> LandmarkConfig:
    """The preset with the config's ``parameters``; a bad one is a UserError naming the file and the key."""
    try:
        return LandmarkConfig.preset(config["preset"], **config["parameters"])
    except UserError as error:
        raise UserError(f"{config.source}: key 'parameters': {error}") from None


def build_landmarks(config) -> tuple[LandmarkTable, Path, float]:
    """Fingerprint every song and save the table; returns (table, its path, wall seconds of the build)."""
    settings = landmark_config(config)
    path = writable_folder(config["output dir"], f"{config.source}: key 'output dir'") / f"{config['name']}.npz"
    if path.exists() and not config["overwrite"]:
        raise UserError(f'{path} exists; set "overwrite": true or use update_landmarks.py to add songs')
    files = song_files(config["input dirs"], f"{config.source}: key 'input dirs'")
    if not files:
        raise UserError(f"{config.source}: key 'input dirs': no audio files in {', '.join(config['input dirs'])}")
    start = time.perf_counter()
    table = LandmarkTable(settings).add_files(files, progress=config["progress"])
    table.sort()
    seconds = time.perf_counter() - start
    table.save(path)
    return table, path, seconds


def main(config) -> int:
    table, path, seconds = build_landmarks(config)
    hours = table.total_seconds / 3600
    print(
        f"{config['name']}: {len(table)} songs ({hours:.2f} h of audio), {table.entries} hashes, "
        f"{table.nbytes / 1e6:.1f} MB ({table.nbytes / 1e6 / max(hours, 1e-9):.1f} MB per audio hour); "
        f"ingest {table.total_seconds / max(seconds, 1e-9):.0f} audio s per s -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
