"""The state one data build shares between its stages, and each stage's bookkeeping.

``Build`` holds the config, the output and cache folders, the extracted packages, and the
manifest rows and selection statistics the stages produce. ``start_stage`` / ``finish_stage``
make a stage reusable: a stage records a hash of its configuration when complete, and a rerun
with the same hash reuses its manifests; an interrupted stage resumes, keeping the files it
already wrote (see ``start_stage``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from common.atomic import atomic_write_bytes, atomic_write_text
from data_prep import debian
from data_prep.decode import DecodedAudio, DecodeJob, cache_target, decode_many, link_or_copy
from data_prep.manifest import ManifestRow, copyright_file, licence_for, read_manifest, write_manifest
from data_prep.splits import SelectionStats, SourceFile, output_name

FORMAT_VERSION = 1
# Bumped when a stage's code changes what it writes, so a rerun rebuilds that stage only.
STAGE_VERSIONS = {"music": 2, "render": 1, "noise": 2, "impulse": 2}
NOISE_SPLITS = ("train", "val", "test")
# Every set and its manifest, relative to the output folder (music_val's files live in music/train).
MANIFESTS = {
    "music_train": "music/train.csv",
    "music_val": "music/val.csv",
    "music_test": "music/test.csv",
    **{f"noise_{s}": f"noise/background_{s}.csv" for s in NOISE_SPLITS},
    **{f"impulse_{s}": f"impulse/impulse_{s}.csv" for s in ("train", "val", "test")},
}
# The rendered sets and their manifests, present only when ``music_renders`` asks for them (their files
# live in music/train/rendered).
RENDER_MANIFESTS = {"renders_train": "music/renders_train.csv", "renders_val": "music/renders_val.csv"}


def _packages(config: dict) -> list[str]:
    names = list(config["music_test"]) + list(config["music_train"])
    names += [
        config["noise_sources"][n]["package"] for split in NOISE_SPLITS for n in config["noise_splits"].get(split, [])
    ]
    names += [spec.split(":", 1)[0] for spec in config["impulse_test_files"]]
    return list(dict.fromkeys(names))


class Build:
    """State of one build: config, where things go, which packages are available, what was done.

    The stages (``build_music``, ``build_renders``, ``build_noise``, ``build_impulses``) fill ``rows`` and ``stats``;
    ``stage_started`` is set by ``start_stage``.
    """

    def __init__(self, config: dict):
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

    def place(self, items, folder: Path, taken: set[str]) -> list[ManifestRow]:
        """Link (or copy) decoded (SourceFile, DecodedAudio) pairs into ``folder`` under unique names; their rows."""
        rows = []
        for source, decoded in sorted(items, key=lambda item: (item[0].package, item[0].relative)):
            name = output_name(source.source, source.relative, source.channel, taken)
            target = folder / name
            if not (target.exists() and os.path.samefile(target, decoded.path)):  # not yet a link to the cache
                link_or_copy(Path(decoded.path), target)
            rows.append(self.row(target, decoded.seconds, decoded.sha1, source))
        return rows

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


# --------------------------------------------------------------------------- stage bookkeeping


def stage_hash(build: Build, stage: str, keys: list[str], packages: list[str]) -> str:
    """Hash of everything a stage's output depends on: its keys, code version and available packages."""
    payload = {
        "format": FORMAT_VERSION,
        "stage_version": STAGE_VERSIONS[stage],
        "sample_rate": build.sample_rate,
        "seed": build.seed,
        "config": {key: build.config[key] for key in keys},
        "available": sorted(p for p in packages if p in build.extracted),
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def state_path(build: Build, stage: str) -> Path:
    return build.output / ".state" / f"{stage}.json"


def start_stage(build: Build, stage: str, digest: str) -> bool:
    """Reuse a complete stage built with the same configuration (True), or prepare to (re)build it (False).

    A generated file already in the stage's folders is kept only when it was written after the
    current configuration's build of the stage started (an interrupted run being resumed;
    every file is written atomically, so it is whole); older files are rewritten in place,
    atomically, so readers never see a file missing, and files no longer wanted are removed
    when the stage finishes.
    """
    path = state_path(build, stage)
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if state.get("hash") == digest and state.get("complete") and _load_stage(build, state):
        build.reused.append(stage)
        return True
    resumed = state.get("hash") == digest and "started" in state
    build.stage_started = state["started"] if resumed else time.time()
    atomic_write_text(path, json.dumps({"hash": digest, "complete": False, "started": build.stage_started}))
    return False


def _load_stage(build: Build, state: dict) -> bool:
    rows = {}
    for name, manifest in state["manifests"].items():
        manifest_path = build.output / manifest
        if not manifest_path.exists():
            return False
        rows[name] = read_manifest(manifest_path)
        if not all((build.output / r.file).exists() for r in rows[name]):
            return False
    build.rows.update(rows)
    build.stats.update({name: SelectionStats(**value) for name, value in state.get("stats", {}).items()})
    return True


def finish_stage(build: Build, stage: str, digest: str, manifests: dict[str, str], folders: list[Path]) -> None:
    """Write the manifests, delete files a previous configuration left in the folders, then the state."""
    for name, manifest in manifests.items():
        write_manifest(build.output / manifest, build.rows[name])
    wanted = {build.output / r.file for name in manifests for r in build.rows[name]}
    for folder in folders:
        for stale in folder.glob("*.wav"):
            if stale not in wanted:
                stale.unlink()
    state = {
        "hash": digest,
        "complete": True,
        "manifests": manifests,
        "stats": {name: asdict(build.stats[name]) for name in manifests if name in build.stats},
    }
    atomic_write_text(state_path(build, stage), json.dumps(state, indent=1))


def written_by_this_stage(build: Build, path: Path) -> bool:
    """True when ``path`` exists and was written since the current configuration's stage build began."""
    return written_since(path, build.stage_started)


def written_since(path: Path, started: float) -> bool:
    """True when ``path`` exists and was last written at or after ``started`` (time.time())."""
    try:
        return path.stat().st_mtime >= started
    except FileNotFoundError:
        return False
