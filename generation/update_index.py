"""Add songs to or remove songs from a database: ``python generation/update_index.py --config FILE``.

The reference's ``wavs_to_faiss_index`` job. Removals happen first, then additions; the index
is never retrained. The index, JSON (and vector store) are replaced together, so a crash leaves
the previous database intact. See docs/database.md for the keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.atomic import writable_folder
from common.config import Key, Schema, run_script
from common.devices import DEVICE_HELP, device_problem, resolve_device
from database import Database, DatabaseError
from extraction.extractor import extract_fingerprints
from extraction.manifest import load_fingerprint_folder
from extraction.songs import plan_songs
from models.checkpoint import model_identity
from models.encoder import load_encoder

SCHEMA = Schema(
    "generation/update_index.py",
    [
        Key(
            "database", "path", help="the database's JSON (<name>.json; its index file lies beside it)", must_exist=True
        ),
        Key("remove", "list", [], "names of songs to remove"),
        Key(
            "add_fingerprint_dirs", "paths", [], "fingerprint folders (generate_fingerprints.py) whose songs are added"
        ),
        Key(
            "add_audio_dirs", "paths", [], "audio folders fingerprinted with 'weights' and then added", must_exist=True
        ),
        Key("weights", "path", None, "checkpoint for add_audio_dirs; must be the database's model", nullable=True),
        Key(
            "fingerprints_dir",
            "path",
            None,
            "where add_audio_dirs' fingerprints go (default <name>_added/ beside the database)",
            nullable=True,
        ),
        Key("batch size", "int", 256, min=1, help="1 s windows per model batch when fingerprinting add_audio_dirs"),
        Key("num_workers", "int", 2, min=0, help="DataLoader workers decoding add_audio_dirs"),
        Key("device", "str", "auto", DEVICE_HELP, check=device_problem),
        Key(
            "output_database",
            "path",
            None,
            "write the result to this JSON (and the index beside it) instead of replacing 'database'",
            nullable=True,
        ),
        Key("progress", "bool", True, "show progress bars"),
    ],
    renamed={"index": "database", "json": "database", "output_index": "output_database"},
)


def update_index(config) -> Database:
    """Apply ``remove`` then the additions to the database, then save it atomically."""
    json_path = Path(config["database"])
    output = Path(config["output_database"] or json_path)
    output_key = "output_database" if config["output_database"] else "database"
    writable_folder(output.parent, f"{config.source}: key '{output_key}'")
    database = Database.open(json_path)
    # (folder, names to add or None for all of the folder's songs)
    fingerprint_dirs: list[tuple[str, set[str] | None]] = [(folder, None) for folder in config["add_fingerprint_dirs"]]
    if config["add_audio_dirs"]:
        if config["weights"] is None:
            raise DatabaseError(f"{config.source}: 'add_audio_dirs' needs 'weights' (the database's model)")
        encoder, payload = load_encoder(config["weights"], resolve_device(config["device"], config.source))
        database.check_compatible(model_identity(payload))
        folder = config["fingerprints_dir"] or str(json_path.with_name(json_path.stem + "_added"))
        sources = plan_songs(config["add_audio_dirs"])
        summary = extract_fingerprints(
            encoder,
            payload,
            sources,
            folder,
            hop_samples=round(database.hop_seconds * encoder.frontend_config.sample_rate),
            batch_size=config["batch size"],
            num_workers=config["num_workers"],
            progress=config["progress"],
        )
        for _source, reason in summary.skipped:
            print(f"skipped: {reason}", file=sys.stderr)
        # the folder may hold songs of earlier updates: add only this run's (by the names extraction gave them)
        fingerprint_dirs.append((folder, {source.name for source in summary.songs}))
    if config["remove"]:
        database.remove_songs([str(name) for name in config["remove"]])
    for folder, names in fingerprint_dirs:
        manifest, songs = load_fingerprint_folder(folder)
        if names is not None:
            songs = [song for song in songs if song[0] in names]
        database.add_songs(
            songs,
            progress=config["progress"],
            identity=manifest["identity"],
            hop_seconds=manifest["hop_seconds"],
            source=folder,
        )
    database.save(output.with_suffix(".index"), output)
    return database


def main(config) -> int:
    database = update_index(config)
    print(
        f"{len(database.songs)} songs, {database.ntotal} vectors -> {config['output_database'] or config['database']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
