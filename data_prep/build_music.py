"""The music stage of a data build: test songs, training songs and validation songs.

Test packages are read first, so a track found in both keeps its test copy; the training songs
are then split into training and validation songs (``val_fraction``). Writes ``music/test``,
``music/train`` (both training and validation songs) and their manifests; the runner writes
``train.pkl`` / ``val.pkl`` (the song lists the trainer reads) from them and the rendered music.
"""

from __future__ import annotations

from pathlib import Path

from data_prep.build_state import MANIFESTS, Build, finish_stage, stage_hash, start_stage
from data_prep.decode import DecodedAudio
from data_prep.splits import SelectionStats, SourceFile, list_candidates, shuffled, split_validation, take_unique


def build_music(build: Build) -> None:
    """Select, decode and place the music sets (module docstring), unless a complete build is reused."""
    packages = list(build.config["music_test"]) + list(build.config["music_train"])
    digest = stage_hash(build, "music", ["music_train", "music_test", "music_min_seconds", "val_fraction"], packages)
    manifests = {name: MANIFESTS[name] for name in ("music_train", "music_val", "music_test")}
    folders = [build.output / "music" / "test", build.output / "music" / "train"]
    if start_stage(build, "music", digest):
        return
    seen: dict[str, str] = {}
    chosen: dict[str, list[tuple[SourceFile, DecodedAudio]]] = {"test": [], "train": []}
    min_seconds = build.config["music_min_seconds"]
    for split in ("test", "train"):  # test first: a track in both keeps its test copy
        stats = build.stats.setdefault(f"music_{split}", SelectionStats())
        for package, limit in build.config[f"music_{split}"].items():
            if package not in build.extracted:
                continue
            files = list_candidates(package, package, build.extracted[package], min_seconds=min_seconds, stats=stats)
            files = shuffled(files, build.seed, package)
            decode = build.decoder(f"music {split} {package}")
            chosen[split] += take_unique(files, decode, seen, f"music/{split}", limit, min_seconds, stats)
    train, validation = split_validation(chosen["train"], build.config["val_fraction"], build.seed)
    build.stats["music_val"] = SelectionStats()
    for name, items, folder in (
        ("music_test", chosen["test"], build.output / "music" / "test"),
        ("music_train", train, build.output / "music" / "train"),
        ("music_val", validation, build.output / "music" / "train"),
    ):
        build.rows[name] = build.place(items, folder, taken=set() if name != "music_val" else _taken(build, folder))
    finish_stage(build, "music", digest, manifests, folders)


def _taken(build: Build, folder: Path) -> set[str]:
    return {Path(r.file).name for rows in build.rows.values() for r in rows if (build.output / r.file).parent == folder}
