"""The noise stage of a data build: background noise per split, and babble mixed from speech.

Each noise source (a package with include/exclude patterns) belongs to one split; test is read
first, so a file found in two splits stays in test. Sources marked ``speech`` also give the
talkers of the babble clips mixed for their split (``data_prep.babble``). Writes
``noise/background_{train,val,test}`` and their manifests.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from common.audio import write_wav
from data_prep.babble import mix_babble
from data_prep.build_state import (
    MANIFESTS,
    NOISE_SPLITS,
    Build,
    finish_stage,
    stage_hash,
    start_stage,
    written_by_this_stage,
)
from data_prep.decode import DecodedAudio
from data_prep.manifest import ManifestRow
from data_prep.splits import (
    SILENCE_DB,
    SelectionStats,
    SourceFile,
    check_files_disjoint,
    list_candidates,
    loudest_window_db,
    shuffled,
    take_unique,
)

# Speech clips shorter than this carry too little to be a talker in babble.
BABBLE_MIN_CLIP_SECONDS = 0.3


def build_noise(build: Build) -> None:
    """Select, decode and place the noise sets and mix their babble (module docstring), unless reused."""
    keys = [
        "noise_sources",
        "noise_splits",
        "noise_min_seconds",
        "babble_clips",
        "babble_seconds",
        "babble_talkers",
    ]
    packages = [spec["package"] for spec in build.config["noise_sources"].values()]
    digest = stage_hash(build, "noise", keys, packages)
    manifests = {f"noise_{s}": MANIFESTS[f"noise_{s}"] for s in NOISE_SPLITS}
    folders = [build.output / "noise" / f"background_{s}" for s in NOISE_SPLITS]
    if start_stage(build, "noise", digest):
        return
    sources, splits = build.config["noise_sources"], build.config["noise_splits"]
    seen: dict[str, str] = {}
    listed: dict[str, list[tuple[str, str]]] = {}
    selected: dict[str, list[tuple[SourceFile, DecodedAudio]]] = {}
    pools: dict[str, list[tuple[str, list[SourceFile]]]] = {}
    for split in ("test", "val", "train"):  # test keeps its files when a duplicate turns up in training
        stats = build.stats.setdefault(f"noise_{split}", SelectionStats())
        selected[split], pools[split], listed[split] = [], [], []
        for name in splits.get(split, []):
            spec = sources[name]
            package = spec["package"]
            if package not in build.extracted:
                continue
            include, exclude = spec.get("include", ["*"]), spec.get("exclude", [])
            everything = list_candidates(
                name, package, build.extracted[package], include, exclude, 0.0, SelectionStats()
            )
            listed[split] += [(package, f.relative) for f in everything]
            ordered = shuffled(everything, build.seed, name)
            if spec.get("speech", False):
                pool = [f for f in ordered if f.seconds >= BABBLE_MIN_CLIP_SECONDS][: spec.get("max_files")]
                pools[split].append((name, pool))
            if spec.get("noise", True):
                min_seconds = spec.get("min_seconds", build.config["noise_min_seconds"])
                long_enough = [f for f in ordered if f.seconds >= min_seconds]
                stats.candidates += len(everything)
                stats.too_short += len(everything) - len(long_enough)
                decode = build.decoder(f"noise {split} {name}")
                selected[split] += take_unique(
                    long_enough, decode, seen, f"noise/{split}", spec.get("max_files"), min_seconds, stats
                )
    check_files_disjoint(listed, "noise")
    for split in NOISE_SPLITS:
        folder = build.output / "noise" / f"background_{split}"
        rows = build.place(selected.get(split, []), folder, taken=set())
        rows += _babble(build, split, pools.get(split, []), folder)
        build.rows[f"noise_{split}"] = rows
    finish_stage(build, "noise", digest, manifests, folders)


def _babble(build: Build, split: str, pools: list[tuple[str, list[SourceFile]]], folder: Path) -> list[ManifestRow]:
    count = build.config["babble_clips"].get(split, 0)
    if not count:
        return []
    pools = [(name, files) for name, files in pools if files]
    if not pools:
        print(f"warning: no speech in noise split '{split}'; its {count} babble clips are not made")
        return []
    clips, licences = [], []
    for name, files in pools:
        results = build.decoder(f"speech {split} {name}")(files)
        decoded = [
            sf.read(r.path, dtype="float32")[0]
            for r in results
            if not isinstance(r, str) and loudest_window_db(Path(r.path), r.sample_rate) >= SILENCE_DB
        ]
        clips.append([clip for clip in decoded if len(clip)])
        licences.append(build.licence(files[0].package, files[0].relative))
    rows = []
    seconds = build.config["babble_seconds"]
    names = [name for name, _ in pools]
    for index in tqdm(range(count), desc=f"babble {split}", unit="clip", dynamic_ncols=True):
        target = folder / f"babble__{split}_{index:04d}.wav"
        rng = np.random.default_rng([build.seed, zlib.crc32(f"babble/{split}".encode()), index])
        mix, used = mix_babble(clips, seconds, rng, tuple(build.config["babble_talkers"]), build.sample_rate)
        if not written_by_this_stage(build, target):
            write_wav(target, mix, build.sample_rate)
        written, _ = sf.read(str(target), dtype="int16")
        used_names = sorted({names[k] for k in used})
        rows.append(
            ManifestRow(
                file=target.relative_to(build.output).as_posix(),
                seconds=len(written) / build.sample_rate,
                package="generated",
                package_version="",
                source_path=f"babble of {len(used)} talkers from {'+'.join(used_names)}",
                channel="mix",
                licence="; ".join(sorted({licences[k][0] for k in set(used)})),
                licence_file=";".join(sorted({licences[k][1] for k in set(used)})),
                sha1=hashlib.sha1(written.tobytes()).hexdigest(),
            )
        )
    return rows
