"""Build a faiss database from a fingerprint folder: ``python generation/generate_index.py --config FILE``.

Writes ``<output_dir>/<name>.index`` and ``<output_dir>/<name>.json`` (and ``<name>.vectors.npy``
for indexes that cannot reconstruct their vectors exactly). See docs/database.md for the keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.atomic import writable_folder
from common.config import Key, Schema, run_script
from database import Database, DatabaseError
from extraction.manifest import load_fingerprint_folder
from models.frontend import EMBEDDING_DIM

SCHEMA = Schema(
    "generation/generate_index.py",
    [
        Key("input_dir", "path", help="fingerprint folder written by generate_fingerprints.py", must_exist=True),
        Key("output_dir", "path", help="folder for <name>.index and <name>.json"),
        Key("name", "filename", help="file name prefix of the index and its JSON (no folder part)"),
        Key("index", "str", "Flat", "faiss index_factory string, e.g. Flat, IVF200,PQ32, IVF1024,PQ64"),
        Key("d", "int", EMBEDDING_DIM, min=1, help="embedding dimension; must equal the fingerprints'"),
        Key("nprobe", "int", 10, min=1, help="inverted lists searched per query (IVF indexes), stored in the JSON"),
        Key(
            "max_train_vectors", "int", 100_000, min=1, help="training sample size for IVF/PQ (random rows, all songs)"
        ),
        Key("chunk_size", "int", 100_000, min=1, help="vectors added to faiss per step (bounds memory)"),
        Key("seed", "int", 0, min=0, help="random seed of the training sample"),
        Key("overwrite", "bool", False, "replace an existing <name>.index instead of refusing"),
        Key("progress", "bool", True, "show a progress bar while adding"),
    ],
)


def build_index(config) -> Database:
    """Build and save the database described by a validated ``config``; returns it."""
    index_path = writable_folder(config["output_dir"], f"{config.source}: key 'output_dir'") / f"{config['name']}.index"
    if index_path.exists() and not config["overwrite"]:
        raise DatabaseError(f'{index_path} exists; set "overwrite": true or use update_index.py to add songs')
    manifest, songs = load_fingerprint_folder(config["input_dir"])
    if not songs:
        raise DatabaseError(f"{config['input_dir']}: the fingerprint folder holds no songs")
    found_d = int(songs[0][1].shape[1])
    if found_d != config["d"]:
        raise DatabaseError(
            f"{config.source}: d is {config['d']} but the fingerprints in {config['input_dir']} have d={found_d}"
        )
    database = Database.build(
        songs,
        factory=config["index"],
        identity=manifest["identity"],
        hop_seconds=manifest["hop_seconds"],
        max_train_vectors=config["max_train_vectors"],
        seed=config["seed"],
        chunk_rows=config["chunk_size"],
        fingerprint_dir=str(Path(config["input_dir"]).resolve()),
        progress=config["progress"],
    )
    database.set_nprobe(config["nprobe"])
    database.save(index_path)
    return database


def main(config) -> int:
    database = build_index(config)
    hours = sum(song.duration for song in database.songs) / 3600
    print(
        f"{config['name']}: {len(database.songs)} songs, {database.ntotal} vectors ({hours:.2f} h of audio), "
        f"index '{database.factory}' -> {Path(config['output_dir']) / config['name']}.index"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
