"""Build the training/evaluation data sets from Debian packages: the runner that wires the stages.

``build_dataset(config)`` downloads and extracts the packages (``debian``), decodes the chosen
files into a shared cache (``decode``), splits and de-duplicates them (``splits``), mixes
babble (``babble``), simulates and cleans impulse responses (``impulses``), writes one manifest
per set (``manifest``), a ready-to-use training config, a summary table, and ``summary.json``
last. Each of the three stages (music, noise, impulse) records a hash of its configuration
when complete; a rerun with the same configuration reuses it in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyroomacoustics
import soundfile as sf
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from common.audio import write_wav
from common.config import Config, ConfigError, Key, Schema, validate
from data_prep import debian
from data_prep.babble import mix_babble
from data_prep.decode import DecodedAudio, DecodeJob, cache_target, decode_many, link_or_copy
from data_prep.impulses import RoomRanges, clean_ir, draw_room, simulate_rir
from data_prep.manifest import ManifestRow, copyright_file, licence_for, read_manifest, write_manifest
from data_prep.splits import (
    SILENCE_DB,
    SelectionStats,
    SourceFile,
    check_disjoint,
    check_files_disjoint,
    list_candidates,
    loudest_window_db,
    output_name,
    shuffled,
    split_validation,
    take_unique,
)

FORMAT_VERSION = 1
# Bumped when a stage's code changes what it writes, so a rerun rebuilds that stage only.
STAGE_VERSIONS = {"music": 2, "noise": 2, "impulse": 2}
NOISE_SPLITS = ("train", "val", "test")
NOISE_SOURCE_KEYS = {"package", "include", "exclude", "min_seconds", "max_files", "speech", "noise"}
# Every set and its manifest, relative to the output folder (music_val's files live in music/train).
MANIFESTS = {
    "music_train": "music/train.csv",
    "music_val": "music/val.csv",
    "music_test": "music/test.csv",
    **{f"noise_{s}": f"noise/background_{s}.csv" for s in NOISE_SPLITS},
    **{f"impulse_{s}": f"impulse/impulse_{s}.csv" for s in ("train", "val", "test")},
}
# Speech clips shorter than this carry too little to be a talker in babble.
BABBLE_MIN_CLIP_SECONDS = 0.3

SCHEMA = Schema(
    "data_prep/prepare_data.py",
    [
        Key("output_dir", "path", "data/demo", "folder the sets are written to"),
        Key(
            "cache_dir", "path", "data/cache", "downloaded .deb files, extractions and decoded audio, shared by configs"
        ),
        Key("sample_rate", "int", 8000, "sample rate of every output WAV (Hz)"),
        Key("seed", "int", 0, "seed for every random choice (subsets, validation songs, babble, rooms)"),
        Key("workers", "int", 2, "decoding / simulation processes"),
        Key("music_train", "dict", help="training music: {package: max tracks or null for all}"),
        Key("music_test", "dict", help="test music (the reference database): {package: max tracks or null}"),
        Key("music_min_seconds", "float", 60.0, "music files shorter than this are not songs (s)"),
        Key("val_fraction", "float", 0.1, "share of the training songs held out as validation songs"),
        Key("noise_sources", "dict", {}, "{name: {package, include, exclude, min_seconds, max_files, speech, noise}}"),
        Key("noise_splits", "dict", {}, "{train|val|test: [source names]}; a source may be in one split only"),
        Key("noise_min_seconds", "float", 1.0, "noise files shorter than this are dropped (s); per-source override"),
        Key("babble_clips", "dict", {}, "{train|val|test: number of babble clips mixed from that split's speech}"),
        Key("babble_seconds", "float", 10.0, "length of each babble clip (s)"),
        Key("babble_talkers", "list", [5, 12], "[min, max] talkers per babble clip"),
        Key("impulse_simulated", "dict", {}, "{train|val: number of simulated room impulse responses}"),
        Key(
            "room_ranges",
            "dict",
            {},
            "simulated room ranges: length_m, width_m, height_m, rt60_s, distance_m ([lo, hi])",
        ),
        Key(
            "impulse_test_files", "list", [], "measured IRs for impulse_test: ['package:glob', ...], each channel kept"
        ),
    ],
)


# --------------------------------------------------------------------------- config checks


def _check_config(config: dict) -> None:
    for key in ("music_train", "music_test"):
        for package, limit in config[key].items():
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
                raise ConfigError(f"{key}: '{package}' must map to a positive track count or null, got {limit!r}")
    check_disjoint({"train": config["music_train"], "test": config["music_test"]}, "music package")
    if not 0 <= config["val_fraction"] < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {config['val_fraction']}")
    for name, spec in config["noise_sources"].items():
        if not isinstance(spec, dict) or "package" not in spec:
            raise ConfigError(f"noise_sources: '{name}' must be an object with at least a 'package'")
        unknown = set(spec) - NOISE_SOURCE_KEYS
        if unknown:
            raise ConfigError(
                f"noise_sources: '{name}' has unknown key(s) {sorted(unknown)}; known: {sorted(NOISE_SOURCE_KEYS)}"
            )
    for split, names in config["noise_splits"].items():
        if split not in NOISE_SPLITS:
            raise ConfigError(f"noise_splits: unknown split '{split}' (use {', '.join(NOISE_SPLITS)})")
        for name in names:
            if name not in config["noise_sources"]:
                raise ConfigError(f"noise_splits: '{split}' names unknown source '{name}'")
    check_disjoint(config["noise_splits"], "noise source")
    for split in config["babble_clips"]:
        if split not in NOISE_SPLITS:
            raise ConfigError(f"babble_clips: unknown split '{split}'")
    talkers = config["babble_talkers"]
    if len(talkers) != 2 or not 1 <= talkers[0] <= talkers[1]:
        raise ConfigError(f"babble_talkers must be [min, max] with 1 <= min <= max, got {talkers}")
    for split in config["impulse_simulated"]:
        if split not in ("train", "val"):
            raise ConfigError(f"impulse_simulated: unknown split '{split}' (use train, val)")
    try:
        RoomRanges.from_dict(config["room_ranges"])
    except (ValueError, TypeError) as error:
        raise ConfigError(f"room_ranges: {error}") from None
    for spec in config["impulse_test_files"]:
        if not isinstance(spec, str) or ":" not in spec:
            raise ConfigError(f"impulse_test_files: expected 'package:glob', got {spec!r}")


def validate_config(data: dict, where: str = "config") -> Config:
    """Check a plain dict against SCHEMA and the split rules; returns the config with defaults filled in."""
    config = validate(data, SCHEMA, where=where)
    _check_config(config)
    return config


def _packages(config: dict) -> list[str]:
    names = list(config["music_test"]) + list(config["music_train"])
    names += [
        config["noise_sources"][n]["package"] for split in NOISE_SPLITS for n in config["noise_splits"].get(split, [])
    ]
    names += [spec.split(":", 1)[0] for spec in config["impulse_test_files"]]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- the build


class Build:
    """State of one build: config, where things go, which packages are available, what was done."""

    def __init__(self, config: dict):
        _check_config(config)
        self.config = config
        self.output = Path(config["output_dir"])
        self.cache = Path(config["cache_dir"])
        self.sample_rate = config["sample_rate"]
        self.seed = config["seed"]
        self.extracted: dict[str, Path] = {}
        self.missing: dict[str, str] = {}
        self.stats: dict[str, SelectionStats] = {}
        self.rows: dict[str, list[ManifestRow]] = {}
        self.reused: list[str] = []
        self.stage_started = 0.0

    # ---- packages

    def fetch_packages(self) -> None:
        packages = _packages(self.config)
        needed = [p for p in packages if not (self.cache / "extracted" / p / debian.COMPLETE_MARKER).exists()]
        if any(debian.find_deb(p, self.cache / "debs") is None for p in needed):
            problem = debian.ensure_apt_lists()
            if problem:
                print(f"warning: {problem}")
        for package in tqdm(packages, desc="packages", unit="pkg", dynamic_ncols=True):
            try:
                self.extracted[package] = debian.fetch_package(package, self.cache)
            except debian.PackageUnavailable as error:
                self.missing[package] = str(error)
                tqdm.write(f"skipped: {error}")

    def licence(self, package: str, relative: str) -> tuple[str, str]:
        """(licence short name, licence file relative to the output folder) of a package file."""
        source = copyright_file(self.extracted[package], package)
        if source is None:
            return "unknown (no copyright file)", ""
        target = self.output / "licences" / f"{package}.copyright"
        if not target.exists():
            atomic_write_bytes(target, source.read_bytes())
        return licence_for(source, relative), f"licences/{package}.copyright"

    def row(self, file: Path, decoded_seconds: float, sha1: str, source: SourceFile) -> ManifestRow:
        licence, licence_file = self.licence(source.package, source.relative)
        return ManifestRow(
            file=file.relative_to(self.output).as_posix(),
            seconds=decoded_seconds,
            package=source.package,
            package_version=debian.package_version(self.extracted[source.package]),
            source_path=source.relative,
            channel="mix" if source.channel is None else str(source.channel),
            licence=licence,
            licence_file=licence_file,
            sha1=sha1,
        )

    def decoder(self, description: str):
        """A function decoding a batch of SourceFiles into the cache, with a progress bar in audio seconds."""

        def decode(files: list[SourceFile]) -> list[DecodedAudio | str]:
            jobs = [
                DecodeJob(
                    str(f.path),
                    str(cache_target(self.cache, self.sample_rate, f.package, f.relative, f.channel)),
                    self.sample_rate,
                    f.channel,
                )
                for f in files
            ]
            return decode_many(jobs, self.config["workers"], description, weights=[f.seconds for f in files])

        return decode

    # ---- stage bookkeeping

    def stage_hash(self, stage: str, keys: list[str], packages: list[str]) -> str:
        """Hash of everything a stage's output depends on: its keys, code version and available packages."""
        payload = {
            "format": FORMAT_VERSION,
            "stage_version": STAGE_VERSIONS[stage],
            "sample_rate": self.sample_rate,
            "seed": self.seed,
            "config": {key: self.config[key] for key in keys},
            "available": sorted(p for p in packages if p in self.extracted),
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def state_path(self, stage: str) -> Path:
        return self.output / ".state" / f"{stage}.json"

    def start_stage(self, stage: str, digest: str) -> bool:
        """Reuse a complete stage built with the same configuration (True), or prepare to (re)build it (False).

        A generated file already in the stage's folders is kept only when it was written after the
        current configuration's build of the stage started (an interrupted run being resumed;
        every file is written atomically, so it is whole); older files are rewritten in place,
        atomically, so readers never see a file missing, and files no longer wanted are removed
        when the stage finishes.
        """
        path = self.state_path(stage)
        state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if state.get("hash") == digest and state.get("complete") and self._load_stage(state):
            self.reused.append(stage)
            return True
        resumed = state.get("hash") == digest and "started" in state
        self.stage_started = state["started"] if resumed else time.time()
        atomic_write_text(path, json.dumps({"hash": digest, "complete": False, "started": self.stage_started}))
        return False

    def written_by_this_stage(self, path: Path) -> bool:
        """True when ``path`` exists and was written since the current configuration's stage build began."""
        return _written_since(path, self.stage_started)

    def _load_stage(self, state: dict) -> bool:
        rows = {}
        for name, manifest in state["manifests"].items():
            manifest_path = self.output / manifest
            if not manifest_path.exists():
                return False
            rows[name] = read_manifest(manifest_path)
            if not all((self.output / r.file).exists() for r in rows[name]):
                return False
        self.rows.update(rows)
        self.stats.update({name: SelectionStats(**value) for name, value in state.get("stats", {}).items()})
        return True

    def finish_stage(self, stage: str, digest: str, manifests: dict[str, str], folders: list[Path]) -> None:
        """Write the manifests, delete files a previous configuration left in the folders, then the state."""
        for name, manifest in manifests.items():
            write_manifest(self.output / manifest, self.rows[name])
        wanted = {self.output / r.file for name in manifests for r in self.rows[name]}
        for folder in folders:
            for stale in folder.glob("*.wav"):
                if stale not in wanted:
                    stale.unlink()
        state = {
            "hash": digest,
            "complete": True,
            "manifests": manifests,
            "stats": {name: asdict(self.stats[name]) for name in manifests if name in self.stats},
        }
        atomic_write_text(self.state_path(stage), json.dumps(state, indent=1))

    # ---- music

    def build_music(self) -> None:
        packages = list(self.config["music_test"]) + list(self.config["music_train"])
        digest = self.stage_hash("music", ["music_train", "music_test", "music_min_seconds", "val_fraction"], packages)
        manifests = {name: MANIFESTS[name] for name in ("music_train", "music_val", "music_test")}
        folders = [self.output / "music" / "test", self.output / "music" / "train"]
        if self.start_stage("music", digest):
            return
        seen: dict[str, str] = {}
        chosen: dict[str, list[tuple[SourceFile, DecodedAudio]]] = {"test": [], "train": []}
        min_seconds = self.config["music_min_seconds"]
        for split in ("test", "train"):  # test first: a track in both keeps its test copy
            stats = self.stats.setdefault(f"music_{split}", SelectionStats())
            for package, limit in self.config[f"music_{split}"].items():
                if package not in self.extracted:
                    continue
                files = list_candidates(package, package, self.extracted[package], min_seconds=min_seconds, stats=stats)
                files = shuffled(files, self.seed, package)
                decode = self.decoder(f"music {split} {package}")
                chosen[split] += take_unique(files, decode, seen, f"music/{split}", limit, min_seconds, stats)
        train, validation = split_validation(chosen["train"], self.config["val_fraction"], self.seed)
        self.stats["music_val"] = SelectionStats()
        for name, items, folder in (
            ("music_test", chosen["test"], self.output / "music" / "test"),
            ("music_train", train, self.output / "music" / "train"),
            ("music_val", validation, self.output / "music" / "train"),
        ):
            self.rows[name] = self._place(items, folder, taken=set() if name != "music_val" else self._taken(folder))
        self._write_song_lists()
        self.finish_stage("music", digest, manifests, folders)

    def _taken(self, folder: Path) -> set[str]:
        return {
            Path(r.file).name for rows in self.rows.values() for r in rows if (self.output / r.file).parent == folder
        }

    def _place(self, items, folder: Path, taken: set[str]) -> list[ManifestRow]:
        rows = []
        for source, decoded in sorted(items, key=lambda item: (item[0].package, item[0].relative)):
            name = output_name(source.source, source.relative, source.channel, taken)
            target = folder / name
            if not (target.exists() and os.path.samefile(target, decoded.path)):  # not yet a link to the cache
                link_or_copy(Path(decoded.path), target)
            rows.append(self.row(target, decoded.seconds, decoded.sha1, source))
        return rows

    def _write_song_lists(self) -> None:
        """train.pkl / val.pkl: pickled lists of file names relative to data_path (music/train)."""
        for name, key in (("train.pkl", "music_train"), ("val.pkl", "music_val")):
            names = [Path(r.file).name for r in self.rows[key]]
            atomic_write_bytes(self.output / name, pickle.dumps(names, protocol=4))

    # ---- noise

    def build_noise(self) -> None:
        keys = [
            "noise_sources",
            "noise_splits",
            "noise_min_seconds",
            "babble_clips",
            "babble_seconds",
            "babble_talkers",
        ]
        packages = [spec["package"] for spec in self.config["noise_sources"].values()]
        digest = self.stage_hash("noise", keys, packages)
        manifests = {f"noise_{s}": MANIFESTS[f"noise_{s}"] for s in NOISE_SPLITS}
        folders = [self.output / "noise" / f"background_{s}" for s in NOISE_SPLITS]
        if self.start_stage("noise", digest):
            return
        sources, splits = self.config["noise_sources"], self.config["noise_splits"]
        seen: dict[str, str] = {}
        listed: dict[str, list[tuple[str, str]]] = {}
        selected: dict[str, list[tuple[SourceFile, DecodedAudio]]] = {}
        pools: dict[str, list[tuple[str, list[SourceFile]]]] = {}
        for split in ("test", "val", "train"):  # test keeps its files when a duplicate turns up in training
            stats = self.stats.setdefault(f"noise_{split}", SelectionStats())
            selected[split], pools[split], listed[split] = [], [], []
            for name in splits.get(split, []):
                spec = sources[name]
                package = spec["package"]
                if package not in self.extracted:
                    continue
                include, exclude = spec.get("include", ["*"]), spec.get("exclude", [])
                everything = list_candidates(
                    name, package, self.extracted[package], include, exclude, 0.0, SelectionStats()
                )
                listed[split] += [(package, f.relative) for f in everything]
                ordered = shuffled(everything, self.seed, name)
                if spec.get("speech", False):
                    pool = [f for f in ordered if f.seconds >= BABBLE_MIN_CLIP_SECONDS][: spec.get("max_files")]
                    pools[split].append((name, pool))
                if spec.get("noise", True):
                    min_seconds = spec.get("min_seconds", self.config["noise_min_seconds"])
                    long_enough = [f for f in ordered if f.seconds >= min_seconds]
                    stats.candidates += len(everything)
                    stats.too_short += len(everything) - len(long_enough)
                    decode = self.decoder(f"noise {split} {name}")
                    selected[split] += take_unique(
                        long_enough, decode, seen, f"noise/{split}", spec.get("max_files"), min_seconds, stats
                    )
        check_files_disjoint(listed, "noise")
        for split in NOISE_SPLITS:
            folder = self.output / "noise" / f"background_{split}"
            rows = self._place(selected.get(split, []), folder, taken=set())
            rows += self._babble(split, pools.get(split, []), folder)
            self.rows[f"noise_{split}"] = rows
        self.finish_stage("noise", digest, manifests, folders)

    def _babble(self, split: str, pools: list[tuple[str, list[SourceFile]]], folder: Path) -> list[ManifestRow]:
        count = self.config["babble_clips"].get(split, 0)
        if not count:
            return []
        pools = [(name, files) for name, files in pools if files]
        if not pools:
            print(f"warning: no speech in noise split '{split}'; its {count} babble clips are not made")
            return []
        clips, licences = [], []
        for name, files in pools:
            results = self.decoder(f"speech {split} {name}")(files)
            decoded = [
                sf.read(r.path, dtype="float32")[0]
                for r in results
                if not isinstance(r, str) and loudest_window_db(Path(r.path), r.sample_rate) >= SILENCE_DB
            ]
            clips.append([clip for clip in decoded if len(clip)])
            licences.append(self.licence(files[0].package, files[0].relative))
        rows = []
        seconds = self.config["babble_seconds"]
        names = [name for name, _ in pools]
        for index in tqdm(range(count), desc=f"babble {split}", unit="clip", dynamic_ncols=True):
            target = folder / f"babble__{split}_{index:04d}.wav"
            rng = np.random.default_rng([self.seed, zlib.crc32(f"babble/{split}".encode()), index])
            mix, used = mix_babble(clips, seconds, rng, tuple(self.config["babble_talkers"]), self.sample_rate)
            if not self.written_by_this_stage(target):
                write_wav(target, mix, self.sample_rate)
            written, _ = sf.read(str(target), dtype="int16")
            used_names = sorted({names[k] for k in used})
            rows.append(
                ManifestRow(
                    file=target.relative_to(self.output).as_posix(),
                    seconds=len(written) / self.sample_rate,
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

    # ---- impulse responses

    def build_impulses(self) -> None:
        packages = [spec.split(":", 1)[0] for spec in self.config["impulse_test_files"]]
        digest = self.stage_hash("impulse", ["impulse_simulated", "room_ranges", "impulse_test_files"], packages)
        manifests = {f"impulse_{s}": MANIFESTS[f"impulse_{s}"] for s in ("train", "val", "test")}
        folders = [self.output / "impulse" / f"impulse_{s}" for s in ("train", "val", "test")]
        if self.start_stage("impulse", digest):
            return
        ranges = RoomRanges.from_dict(self.config["room_ranges"])
        for split in ("train", "val"):
            folder = self.output / "impulse" / f"impulse_{split}"
            count = self.config["impulse_simulated"].get(split, 0)
            tasks = [
                (folder / f"room__{split}_{index:04d}.wav", [self.seed, zlib.crc32(f"room/{split}".encode()), index])
                for index in range(count)
            ]
            self.rows[f"impulse_{split}"] = self._simulate(tasks, ranges, split)
            self.stats[f"impulse_{split}"] = SelectionStats(candidates=count)
        self.rows["impulse_test"] = self._measured_irs()
        self.finish_stage("impulse", digest, manifests, folders)

    def _simulate(self, tasks, ranges: RoomRanges, split: str) -> list[ManifestRow]:
        rows = []
        arguments = [(str(path), seed, ranges, self.sample_rate, self.stage_started) for path, seed in tasks]
        workers = self.config["workers"]
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
                        file=Path(path).relative_to(self.output).as_posix(),
                        seconds=len(written) / self.sample_rate,
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

    def _measured_irs(self) -> list[ManifestRow]:
        stats = self.stats.setdefault("impulse_test", SelectionStats())
        files: list[SourceFile] = []
        for spec in self.config["impulse_test_files"]:
            package, pattern = spec.split(":", 1)
            if package not in self.extracted:
                continue
            for found in list_candidates(package, package, self.extracted[package], [pattern], stats=stats):
                files += [
                    SourceFile(found.source, package, found.relative, found.path, found.seconds, found.channels, ch)
                    for ch in range(found.channels)
                ]
        seen: dict[str, str] = {}
        kept = take_unique(files, self.decoder("measured IRs"), seen, "impulse/test", None, 0.0, stats)
        folder = self.output / "impulse" / "impulse_test"
        rows, taken = [], set()
        for source, decoded in kept:
            target = folder / output_name(source.package, source.relative, source.channel, taken)
            ir = clean_ir(sf.read(decoded.path, dtype="float32")[0], self.sample_rate)
            if not self.written_by_this_stage(target):
                write_wav(target, ir, self.sample_rate)
            written, _ = sf.read(str(target), dtype="int16")
            row = self.row(target, len(written) / self.sample_rate, hashlib.sha1(written.tobytes()).hexdigest(), source)
            rows.append(row)
        return rows

    # ---- outputs

    def training_config(self) -> dict:
        """A training config (docs/training.md keys) for the built sets, with the reference's model settings."""
        root = self.output.resolve()
        return {
            "epochs": 120,
            "patience": 30,
            "batch_size": 256,
            "model_name": "fingerprinter_debian",
            "optimizer": "Lamb",
            "output_path": "runs/fingerprinter_debian",
            "data_path": str(root / "music" / "train"),
            "lr": 1e-3,
            "background_noise_train": str(root / "noise" / "background_train"),
            "background_noise_val": str(root / "noise" / "background_val"),
            "impulse_responses_train": str(root / "impulse" / "impulse_train"),
            "impulse_responses_val": str(root / "impulse" / "impulse_val"),
            "train_pickle": str(root / "train.pkl"),
            "val_pickle": str(root / "val.pkl"),
            "model_str": "fingerprinter",
            "freq_cut_bool": True,
        }

    def summary(self, seconds: float) -> dict:
        sets = {}
        for name in [name for name in MANIFESTS if name in self.rows]:
            rows = self.rows[name]
            stats = self.stats.get(name, SelectionStats())
            sets[name] = {
                "manifest": MANIFESTS[name],
                "files": len(rows),
                "hours": round(sum(r.seconds for r in rows) / 3600, 4),
                "too_short": stats.too_short,
                "duplicates": stats.duplicates,
                "silent": stats.silent,
                "unreadable": stats.unreadable,
                "unreadable_examples": stats.reasons[:3],
            }
        return {
            "format": FORMAT_VERSION,
            "output_dir": str(self.output.resolve()),
            "sample_rate": self.sample_rate,
            "sets": sets,
            "missing_packages": self.missing,
            "reused_stages": self.reused,
            "build_seconds": round(seconds, 1),
            "training_config": "training_config.json",
        }


def _simulate_one(arguments) -> tuple[str, str]:
    """Worker: simulate one room IR into ``path`` (unless this stage build already did); returns (path, description)."""
    path, seed, ranges, sample_rate, stage_started = arguments
    room = draw_room(np.random.default_rng(seed), ranges)
    description = (
        f"shoebox {room.size_m[0]:.2f}x{room.size_m[1]:.2f}x{room.size_m[2]:.2f} m, "
        f"RT60 {room.rt60_s:.2f} s, distance {room.distance_m:.2f} m"
    )
    if not _written_since(Path(path), stage_started):
        write_wav(path, clean_ir(simulate_rir(room, sample_rate), sample_rate), sample_rate)
    return path, description


def _written_since(path: Path, started: float) -> bool:
    try:
        return path.stat().st_mtime >= started
    except FileNotFoundError:
        return False


def summary_table(summary: dict) -> str:
    """Markdown table: set, files, hours, and what was dropped."""
    lines = ["| set | files | hours | too short | duplicates | silent | unreadable |", "|---|---|---|---|---|---|---|"]
    for name, values in summary["sets"].items():
        lines.append(
            f"| {name} | {values['files']} | {values['hours']:.2f} | {values['too_short']} | "
            f"{values['duplicates']} | {values['silent']} | {values['unreadable']} |"
        )
    return "\n".join(lines)


def plot_summary(summary: dict, path: Path) -> None:
    """Bar chart of hours per set (PNG, written atomically), beside the summary table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["sets"])
    hours = [summary["sets"][name]["hours"] for name in names]
    files = [summary["sets"][name]["files"] for name in names]
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    bars = axis.barh(names[::-1], hours[::-1], color="tab:blue")
    for bar, count in zip(bars, files[::-1]):
        axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {count} files", va="center", fontsize=8)
    axis.set_xlabel("hours of audio")
    axis.set_title(f"Data sets in {Path(summary['output_dir']).name} ({summary['sample_rate']} Hz)")
    axis.set_xlim(0, max(hours + [0.01]) * 1.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)


def build_dataset(config: dict) -> dict:
    """Build every set described by ``config`` (see SCHEMA) and return the summary (also in summary.json)."""
    started = time.time()
    build = Build(config)
    summary_path = build.output / "summary.json"
    build.fetch_packages()
    if summary_path.exists():
        # summary.json announces a complete build; take it down until this run has finished one.
        summary_path.unlink()
    build.build_music()
    build.build_noise()
    build.build_impulses()
    atomic_write_text(build.output / "training_config.json", json.dumps(build.training_config(), indent=2) + "\n")
    summary = build.summary(time.time() - started)
    table = summary_table(summary)
    atomic_write_text(build.output / "summary.md", table + "\n")
    plot_summary(summary, build.output / "summary.png")
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    print()
    print(table)
    for name, values in summary["sets"].items():
        for reason in values["unreadable_examples"]:
            print(f"  {name}: skipped {reason}")
    print(
        f"\nbuilt in {summary['build_seconds']} s into {summary['output_dir']} "
        f"(reused stages: {', '.join(build.reused) or 'none'})"
    )
    if build.missing:
        print("missing packages (their files are absent from the sets):")
        for package, reason in build.missing.items():
            print(f"  {package}: {reason}")
    print("\ntraining config (also in training_config.json):")
    print(json.dumps(build.training_config(), indent=2))
    return summary
