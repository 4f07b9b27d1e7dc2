"""A training pack: a compact, self-contained copy of a built data folder's training sets.

``make_pack(config)`` takes a folder written by ``data_prep/prepare_data.py`` and writes the
training and validation music, noise and room impulse responses that a GPU machine without
network needs (docs/data.md, "Training packs"):

  music/train/*.ogg  music/val/*.ogg      whole songs drawn by seed, 8 kHz mono Opus in Ogg
  noise/train/*.ogg  noise/val/*.ogg      background noise clips, Opus at a lower bitrate
  impulse/train/*.flac  impulse/val/*.flac   impulse responses, lossless 16-bit FLAC
  train.txt  val.txt                      song lists, relative to music/
  manifest.csv                            every file: set, length, source package, path, licence
  licences/<package>.copyright            each package's copyright file
  training_config.json                    a training config whose paths are relative to the pack
  pack.json                               what was chosen and how much of it; written last

The trainer reads Opus and FLAC directly through libsndfile, so the pack is used as it is.
Everything is written into a hidden folder beside ``output_dir`` and renamed into place when
complete; ``tar`` also writes ``<output_dir>.tar``, one file to copy.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import shutil
import tarfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from common.atomic import atomic_path, atomic_write_text
from common.audio import SAMPLE_RATE, load_audio
from common.config import ConfigError, Key, Schema
from common.errors import UserError
from data_prep.build_state import MANIFESTS
from data_prep.manifest import ManifestRow, read_manifest

FORMAT_VERSION = 1
# libsndfile maps its Opus compression level 0..1 linearly onto 256..6 kbit/s per channel.
OPUS_KBPS_RANGE = (6.0, 256.0)


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be positive, got {value:g}"


SCHEMA = Schema(
    "data_prep/make_pack.py",
    [
        Key("data_dir", "path", "data/full", must_exist=True, help="a folder built by data_prep/prepare_data.py"),
        Key("output_dir", "path", "data/pack", help="the pack folder (replaced only once the new one is complete)"),
        Key("tar", "bool", True, help="also write <output_dir>.tar, the pack as one file"),
        Key("seed", "int", 0, min=0, help="seed of the choice of songs, noise clips and impulse responses"),
        Key(
            "music_hours", "float", 3.0, check=_positive, help="training music: whole songs drawn until this many hours"
        ),
        Key(
            "val_music_hours",
            "float",
            0.5,
            check=_positive,
            help="validation music: whole songs drawn until this many hours",
        ),
        Key(
            "noise_hours",
            "float",
            1.5,
            check=_positive,
            help="training background noise: clips drawn until this many hours",
        ),
        Key("val_noise_hours", "float", 0.25, check=_positive, help="validation background noise (hours)"),
        Key("impulse_files", "int", 800, min=1, help="training impulse responses drawn"),
        Key("val_impulse_files", "int", 200, min=1, help="validation impulse responses drawn"),
        Key("music_kbps", "float", 18.0, min=OPUS_KBPS_RANGE[0], help="Opus bitrate of the music (kbit/s)"),
        Key("noise_kbps", "float", 10.0, min=OPUS_KBPS_RANGE[0], help="Opus bitrate of the noise (kbit/s)"),
        Key("workers", "int", 2, min=1, help="encoding processes"),
    ],
)


@dataclass(frozen=True)
class PackSet:
    """One set of the pack: where it comes from in the built folder and how much of it is taken."""

    name: str  # the built folder's set name (data_prep.build_state.MANIFESTS)
    folder: str  # inside the pack
    amount_key: str  # config key: hours for music and noise, a file count for impulse responses
    codec: str  # "music", "noise" or "impulse"


PACK_SETS = (
    PackSet("music_train", "music/train", "music_hours", "music"),
    PackSet("music_val", "music/val", "val_music_hours", "music"),
    PackSet("noise_train", "noise/train", "noise_hours", "noise"),
    PackSet("noise_val", "noise/val", "val_noise_hours", "noise"),
    PackSet("impulse_train", "impulse/train", "impulse_files", "impulse"),
    PackSet("impulse_val", "impulse/val", "val_impulse_files", "impulse"),
)


@dataclass
class PackRow:
    """One file of the pack (``file`` relative to the pack) and where it came from."""

    set: str
    file: str
    seconds: float
    package: str
    package_version: str
    source_path: str  # path inside the Debian package, or how the file was made
    licence: str
    licence_file: str  # relative to the pack ("" for generated audio)
    built_file: str  # the file in the built data folder it was encoded from
    built_sha1: str  # that file's sha1 of 16-bit samples, from its manifest


PACK_FIELDNAMES = [field.name for field in fields(PackRow)]


def opus_compression_level(kbps: float) -> float:
    """libsndfile's compression level (0..1) for an Opus bitrate in kbit/s (mono)."""
    low, high = OPUS_KBPS_RANGE
    if not low <= kbps <= high:
        raise ConfigError(f"an Opus bitrate must be between {low:g} and {high:g} kbit/s, got {kbps:g}")
    return (high - kbps) / (high - low)


def choose_rows(rows: list[ManifestRow], amount: float, by_hours: bool, seed: int, stream: int) -> list[ManifestRow]:
    """Whole files drawn in a random order (``seed``, ``stream``) until ``amount`` hours or files.

    The file that reaches the hours is kept, so the total is at least ``amount`` when there is
    that much; the choice is returned sorted by file name.
    """
    order = np.random.default_rng([seed, stream]).permutation(len(rows))
    chosen, seconds = [], 0.0
    for index in order:
        if (seconds if by_hours else len(chosen)) >= (amount * 3600 if by_hours else amount):
            break
        chosen.append(rows[index])
        seconds += rows[index].seconds
    return sorted(chosen, key=lambda row: row.file)


def encode_file(job: tuple[str, str, str, float]) -> str:
    """Worker: decode a built file at the front end's rate and write it to the pack (atomically).

    ``job`` is (source path, target path, codec, kbit/s): Opus in Ogg for music and noise,
    16-bit FLAC for impulse responses. Returns the target path.
    """
    source, target, codec, kbps = job
    samples = load_audio(source, SAMPLE_RATE)
    with atomic_path(target) as tmp:
        if codec == "impulse":
            sf.write(tmp, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        else:
            level = opus_compression_level(kbps)
            sf.write(tmp, samples, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
    return target


def pack_training_config() -> dict:
    """The pack's training config: the published recipe, with paths relative to the pack."""
    return {
        "epochs": 120,
        "patience": 30,
        "batch_size": 256,
        "model_name": "fingerprinter_pack",
        "optimizer": "Lamb",
        "output_path": "runs/fingerprinter_pack",
        "data_path": "music",
        "lr": 1e-3,
        "background_noise_train": "noise/train",
        "background_noise_val": "noise/val",
        "impulse_responses_train": "impulse/train",
        "impulse_responses_val": "impulse/val",
        "train_pickle": "train.txt",
        "val_pickle": "val.txt",
        "model_str": "fingerprinter",
        "freq_cut_bool": True,
    }


def write_pack_manifest(path: Path, rows: list[PackRow]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PACK_FIELDNAMES, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**asdict(row), "seconds": f"{row.seconds:.3f}"})
    atomic_write_text(path, buffer.getvalue())


def _read_built_set(data_dir: Path, name: str) -> list[ManifestRow]:
    path = data_dir / MANIFESTS[name]
    if not path.exists():
        raise UserError(f"{path}: manifest not found; is {data_dir} a folder built by data_prep/prepare_data.py?")
    rows = read_manifest(path)
    if not rows:
        raise UserError(f"{path}: the set is empty")
    return rows


def _plan(config: dict, data_dir: Path) -> tuple[list[PackRow], list[tuple[str, str, str, float]]]:
    """(manifest rows of the pack, encoding jobs with targets relative to the pack)."""
    rows, jobs = [], []
    for stream, pack_set in enumerate(PACK_SETS):
        built = _read_built_set(data_dir, pack_set.name)
        by_hours = pack_set.codec != "impulse"
        chosen = choose_rows(built, config[pack_set.amount_key], by_hours, config["seed"], stream)
        suffix = ".flac" if pack_set.codec == "impulse" else ".ogg"
        kbps = config[f"{pack_set.codec}_kbps"] if by_hours else 0.0
        for row in chosen:
            target = f"{pack_set.folder}/{Path(row.file).stem}{suffix}"
            licence_file = f"licences/{Path(row.licence_file).name}" if row.licence_file else ""
            rows.append(
                PackRow(
                    pack_set.name,
                    target,
                    row.seconds,
                    row.package,
                    row.package_version,
                    row.source_path,
                    row.licence,
                    licence_file,
                    row.file,
                    row.sha1,
                )
            )
            jobs.append((str(data_dir / row.file), target, pack_set.codec, kbps))
    return rows, jobs


def _summary(config: dict, rows: list[PackRow], folder: Path, seconds: float) -> dict:
    sets = {}
    for pack_set in PACK_SETS:
        members = [row for row in rows if row.set == pack_set.name]
        size = sum((folder / row.file).stat().st_size for row in members)
        sets[pack_set.name] = {
            "folder": pack_set.folder,
            "files": len(members),
            "hours": round(sum(row.seconds for row in members) / 3600, 4),
            "megabytes": round(size / 1e6, 2),
        }
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return {
        "format": FORMAT_VERSION,
        "built_from": str(Path(config["data_dir"]).resolve()),
        "sample_rate": SAMPLE_RATE,
        "seed": config["seed"],
        "music_kbps": config["music_kbps"],
        "noise_kbps": config["noise_kbps"],
        "sets": sets,
        "megabytes": round(total / 1e6, 2),
        "build_seconds": round(seconds, 1),
        "training_config": "training_config.json",
    }


def _write_tar(folder: Path, target: Path) -> None:
    """``folder`` as an uncompressed tar (Opus and FLAC are compressed already), atomically."""
    with atomic_path(target) as tmp, tarfile.open(tmp, "w") as archive:
        archive.add(folder, arcname=folder.name)


def _replace_folder(new: Path, target: Path) -> None:
    """Move ``new`` onto ``target``; an older pack there is removed only after the move."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        if not (target / "pack.json").exists() and any(target.iterdir()):
            raise UserError(f"{target}: output_dir exists and is not a pack (no pack.json); choose another folder")
        target.rename(old)
    new.rename(target)
    if old.exists():
        shutil.rmtree(old)


def make_pack(config: dict) -> dict:
    """Write the training pack described by ``config`` (see SCHEMA); returns ``pack.json``'s content."""
    started = time.time()
    data_dir, output = Path(config["data_dir"]), Path(config["output_dir"])
    for kbps_key in ("music_kbps", "noise_kbps"):
        try:
            opus_compression_level(config[kbps_key])
        except ConfigError as error:
            raise ConfigError(f"key '{kbps_key}': {error}") from None
    rows, jobs = _plan(config, data_dir)
    partial = output.with_name(f".{output.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    jobs = [(source, str(partial / target), codec, kbps) for source, target, codec, kbps in jobs]
    if config["workers"] == 1:
        for job in tqdm(jobs, desc="encoding", unit="file"):
            encode_file(job)
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
        with context.Pool(config["workers"]) as pool:
            for _ in tqdm(pool.imap_unordered(encode_file, jobs), total=len(jobs), desc="encoding", unit="file"):
                pass
    for licence_file in sorted({row.licence_file for row in rows if row.licence_file}):
        source = data_dir / "licences" / Path(licence_file).name
        try:
            (partial / "licences").mkdir(exist_ok=True)
            shutil.copy2(source, partial / licence_file)
        except OSError as error:
            raise UserError(f"{source}: cannot copy the licence file ({error.strerror or error})") from None
    write_pack_manifest(partial / "manifest.csv", rows)
    for split in ("train", "val"):
        songs = [str(Path(row.file).relative_to("music")) for row in rows if row.set == f"music_{split}"]
        atomic_write_text(partial / f"{split}.txt", "\n".join(songs) + "\n")
    atomic_write_text(partial / "training_config.json", json.dumps(pack_training_config(), indent=2) + "\n")
    summary = _summary(config, rows, partial, time.time() - started)
    atomic_write_text(partial / "pack.json", json.dumps(summary, indent=2) + "\n")
    _replace_folder(partial, output)
    if config["tar"]:
        _write_tar(output, output.with_name(output.name + ".tar"))
    for name, values in summary["sets"].items():
        print(f"{name:14} {values['files']:5} files {values['hours']:7.2f} h {values['megabytes']:7.2f} MB")
    tar_note = f" and {output.name}.tar" if config["tar"] else ""
    print(f"pack: {summary['megabytes']} MB in {output}{tar_note}, built in {time.time() - started:.0f} s")
    return summary


def read_pack(folder: str | os.PathLike) -> dict:
    """``pack.json`` of a finished pack; raises UserError naming the folder when it is not one."""
    path = Path(folder) / "pack.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{folder}: not a finished training pack (cannot read pack.json: {error})") from None


def unpack(pack: Path, output_dir: Path) -> Path:
    """The pack folder: ``pack`` itself, or a .tar unpacked once into ``output_dir``/pack."""
    if pack.is_dir():
        return pack
    if not tarfile.is_tarfile(pack):
        raise UserError(f"{pack}: not a training pack (neither a folder nor a .tar)")
    target = output_dir / "pack"
    with tarfile.open(pack) as archive:
        names = archive.getnames()
        root = names[0].split("/")[0] if names else ""
        if not (target / root / "pack.json").exists():
            archive.extractall(target, filter="data")
    return target / root
