"""The impulse-response stage of a data build: simulated rooms (train, val) and measured IRs (test).

Simulated rooms come from ``data_prep.impulses`` (one seeded room per file, in worker
processes); measured IRs are taken from packages (``impulse_test_files``), one file per
channel. Every IR is cleaned by ``clean_ir``. Writes ``impulse/impulse_{train,val,test}`` and
their manifests.
"""

from __future__ import annotations

import contextlib
import hashlib
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyroomacoustics
import soundfile as sf
from tqdm import tqdm

from common.audio import write_wav
from data_prep.build_state import (
    MANIFESTS,
    Build,
    finish_stage,
    stage_hash,
    start_stage,
    written_by_this_stage,
    written_since,
)
from data_prep.impulses import RoomRanges, clean_ir, draw_room, simulate_rir
from data_prep.manifest import ManifestRow
from data_prep.splits import SelectionStats, SourceFile, list_candidates, output_name, take_unique


def build_impulses(build: Build) -> None:
    """Simulate the train/val rooms and clean the measured test IRs (module docstring), unless reused."""
    packages = [spec.split(":", 1)[0] for spec in build.config["impulse_test_files"]]
    digest = stage_hash(build, "impulse", ["impulse_simulated", "room_ranges", "impulse_test_files"], packages)
    manifests = {f"impulse_{s}": MANIFESTS[f"impulse_{s}"] for s in ("train", "val", "test")}
    folders = [build.output / "impulse" / f"impulse_{s}" for s in ("train", "val", "test")]
    if start_stage(build, "impulse", digest):
        return
    ranges = RoomRanges.from_dict(build.config["room_ranges"])
    for split in ("train", "val"):
        folder = build.output / "impulse" / f"impulse_{split}"
        count = build.config["impulse_simulated"].get(split, 0)
        tasks = [
            (folder / f"room__{split}_{index:04d}.wav", [build.seed, zlib.crc32(f"room/{split}".encode()), index])
            for index in range(count)
        ]
        build.rows[f"impulse_{split}"] = _simulate(build, tasks, ranges, split)
        build.stats[f"impulse_{split}"] = SelectionStats(candidates=count)
    build.rows["impulse_test"] = _measured_irs(build)
    finish_stage(build, "impulse", digest, manifests, folders)


def _simulate(build: Build, tasks, ranges: RoomRanges, split: str) -> list[ManifestRow]:
    rows = []
    arguments = [(str(path), seed, ranges, build.sample_rate, build.stage_started) for path, seed in tasks]
    workers = build.config["workers"]
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(tasks), desc=f"rooms {split}", unit="IR", dynamic_ncols=True))
        if workers > 1 and len(tasks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            results = pool.map(_simulate_one, arguments, chunksize=4)
        else:
            results = map(_simulate_one, arguments)
        for path, description in results:
            written, _ = sf.read(path, dtype="int16")
            rows.append(
                ManifestRow(
                    file=Path(path).relative_to(build.output).as_posix(),
                    seconds=len(written) / build.sample_rate,
                    package="generated",
                    package_version=f"pyroomacoustics {pyroomacoustics.__version__}",
                    source_path=description,
                    channel="mix",
                    licence="generated",
                    licence_file="",
                    sha1=hashlib.sha1(written.tobytes()).hexdigest(),
                )
            )
            bar.update(1)
    return rows


def _simulate_one(arguments) -> tuple[str, str]:
    """Worker: simulate one room IR into ``path`` (unless this stage build already did); returns (path, description)."""
    path, seed, ranges, sample_rate, stage_started = arguments
    room = draw_room(np.random.default_rng(seed), ranges)
    description = (
        f"shoebox {room.size_m[0]:.2f}x{room.size_m[1]:.2f}x{room.size_m[2]:.2f} m, "
        f"RT60 {room.rt60_s:.2f} s, distance {room.distance_m:.2f} m"
    )
    if not written_since(Path(path), stage_started):
        write_wav(path, clean_ir(simulate_rir(room, sample_rate), sample_rate), sample_rate)
    return path, description


def _measured_irs(build: Build) -> list[ManifestRow]:
    stats = build.stats.setdefault("impulse_test", SelectionStats())
    files: list[SourceFile] = []
    for spec in build.config["impulse_test_files"]:
        package, pattern = spec.split(":", 1)
        if package not in build.extracted:
            continue
        for found in list_candidates(package, package, build.extracted[package], [pattern], stats=stats):
            files += [
                SourceFile(found.source, package, found.relative, found.path, found.seconds, found.channels, ch)
                for ch in range(found.channels)
            ]
    seen: dict[str, str] = {}
    kept = take_unique(files, build.decoder("measured IRs"), seen, "impulse/test", None, 0.0, stats)
    folder = build.output / "impulse" / "impulse_test"
    rows, taken = [], set()
    for source, decoded in kept:
        target = folder / output_name(source.package, source.relative, source.channel, taken)
        ir = clean_ir(sf.read(decoded.path, dtype="float32")[0], build.sample_rate)
        if not written_by_this_stage(build, target):
            write_wav(target, ir, build.sample_rate)
        written, _ = sf.read(str(target), dtype="int16")
        row = build.row(target, len(written) / build.sample_rate, hashlib.sha1(written.tobytes()).hexdigest(), source)
        rows.append(row)
    return rows
