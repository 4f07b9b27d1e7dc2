"""Add songs to or remove songs from a landmark table: ``python generation/update_landmarks.py --config FILE``.

The landmark counterpart of update_index.py: removals happen first, then every audio file under
``add_audio_dirs`` is fingerprinted with the table's own settings and added (named by file
stem). The table is written in one atomic step, to ``output_database`` or over ``database``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.atomic import writable_folder
from common.config import Key, Schema, run_script
from common.errors import UserError
from landmarks import LandmarkTable
from landmarks.table import song_files

SCHEMA = Schema(
    "generation/update_landmarks.py",
    [
        Key("database", "path", help="the landmark table (.npz from generate_landmarks.py)", must_exist=True),
        Key("remove", "list", [], "names of songs to remove"),
        Key("add_audio_dirs", "paths", [], "audio folders whose songs are fingerprinted and added", must_exist=True),
        Key(
            "output_database",
            "path",
            None,
            "write the result to this .npz instead of replacing 'database'",
            nullable=True,
        ),
        Key("progress", "bool", True, "show a progress bar"),
    ],
)


def update_landmarks(config) -> LandmarkTable:
    """Apply ``remove`` then the additions to the table, then save it atomically."""
    output = Path(config["output_database"] or config["database"])
    output_key = "output_database" if config["output_database"] else "database"
    writable_folder(output.parent, f"{config.source}: key '{output_key}'")
    table = LandmarkTable.load(config["database"])
    for name in config["remove"]:
        if str(name) not in table.names:
            raise UserError(f"{config.source}: key 'remove': no song '{name}' in {config['database']}")
        table.remove(str(name))
    files = song_files(config["add_audio_dirs"], f"{config.source}: key 'add_audio_dirs'")
    present = [file.stem for file in files if file.stem in table.names]
    if present:
        raise UserError(f"{config.source}: key 'add_audio_dirs': song '{present[0]}' is already in the table")
    table.add_files(files, progress=config["progress"])
    table.save(output)
    return table


def main(config) -> int:
    table = update_landmarks(config)
    print(f"{len(table)} songs, {table.entries} hashes -> {config['output_database'] or config['database']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
