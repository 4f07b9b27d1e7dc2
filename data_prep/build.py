"""Build the training/evaluation data sets from Debian packages: the runner that wires the stages.

``build_dataset(config)`` downloads and extracts the packages (``debian``), then runs the four
stages, one module each: ``build_music``, ``build_renders`` (scores from music21's corpus
rendered with FluidSynth, when ``music_renders`` asks for them), ``build_noise`` (with babble)
and ``build_impulses`` (simulated and measured rooms). They decode the chosen files into a
shared cache (``decode``), split and de-duplicate them (``splits``) and write one manifest per
set (``manifest``); the state they share and their bookkeeping is ``build_state``. Last come the
song lists, a ready-to-use training config, a summary table, and ``summary.json``. Each stage
records a hash of its configuration when complete; a rerun with the same configuration reuses
it in seconds.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

from common.atomic import atomic_write_bytes, atomic_write_text, save_figure
from common.audio import SAMPLE_RATE
from common.config import Config, ConfigError, Key, Schema, validate
from data_prep.build_impulses import build_impulses
from data_prep.build_music import build_music
from data_prep.build_noise import build_noise
from data_prep.build_renders import DEFAULT_SOUNDFONTS, build_renders, check_render_config
from data_prep.build_state import FORMAT_VERSION, MANIFESTS, NOISE_SPLITS, RENDER_MANIFESTS, Build
from data_prep.impulses import RoomRanges
from data_prep.renders import DEFAULT_FAMILIES, GM_FAMILIES
from data_prep.splits import SelectionStats, check_disjoint

__all__ = ["MANIFESTS", "SCHEMA", "build_dataset", "validate_config"]

NOISE_SOURCE_KEYS = {"package", "include", "exclude", "min_seconds", "max_files", "speech", "noise"}

SCHEMA = Schema(
    "data_prep/prepare_data.py",
    [
        Key("output_dir", "path", "data/demo", "folder the sets are written to"),
        Key(
            "cache_dir", "path", "data/cache", "downloaded .deb files, extractions and decoded audio, shared by configs"
        ),
        Key("sample_rate", "int", SAMPLE_RATE, "sample rate of every output WAV (Hz)"),
        Key("seed", "int", 0, "seed for every random choice (subsets, validation songs, babble, rooms)"),
        Key("workers", "int", 2, "decoding / simulation processes"),
        Key("music_train", "dict", help="training music: {package: max tracks or null for all}"),
        Key("music_test", "dict", help="test music (the reference database): {package: max tracks or null}"),
        Key("music_min_seconds", "float", 60.0, "music files shorter than this are not songs (s)"),
        Key("val_fraction", "float", 0.1, "share of the training songs held out as validation songs"),
        Key(
            "music_renders",
            "dict",
            {},
            "music rendered from music21's corpus: {train|val: {collection: max scores or null}}; {} = none",
        ),
        Key("render_hours", "dict", {}, "{train|val: hours}: a split's scores are rendered until it has this much"),
        Key("render_soundfonts", "list", DEFAULT_SOUNDFONTS, "General MIDI soundfonts (.sf2); one drawn per score"),
        Key(
            "render_programs",
            "list",
            DEFAULT_FAMILIES,
            f"instrument families each part's GM program is drawn from ({', '.join(GM_FAMILIES)}); "
            "[] keeps the score's own",
        ),
        Key("render_min_seconds", "float", 20.0, "rendered scores shorter than this are dropped (s)", min=0.0),
        Key("render_max_seconds", "float", 300.0, "rendered scores longer than this are cut to it (s)", min=1.0),
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
    check_render_config(config)
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


# --------------------------------------------------------------------------- outputs


def write_song_lists(build: Build) -> None:
    """train.pkl / val.pkl: pickled lists of file names relative to data_path (music/train), songs then renders."""
    data_path = build.output / "music" / "train"
    for name, sets in (("train.pkl", ("music_train", "renders_train")), ("val.pkl", ("music_val", "renders_val"))):
        names = [(build.output / r.file).relative_to(data_path).as_posix() for s in sets for r in build.rows.get(s, [])]
        atomic_write_bytes(build.output / name, pickle.dumps(names, protocol=4))


def training_config(output: Path) -> dict:
    """A training config (docs/training.md keys) for the built sets, with the reference's model settings."""
    root = output.resolve()
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


def build_summary(build: Build, seconds: float) -> dict:
    """The content of ``summary.json``: files, hours and what was dropped per set, missing packages."""
    sets = {}
    music = {name: path for name, path in MANIFESTS.items() if name.startswith("music_")}
    manifests = {**music, **RENDER_MANIFESTS, **MANIFESTS}  # the rendered sets listed after the music sets
    for name in [name for name in manifests if name in build.rows]:
        rows = build.rows[name]
        stats = build.stats.get(name, SelectionStats())
        sets[name] = {
            "manifest": manifests[name],
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
        "output_dir": str(build.output.resolve()),
        "sample_rate": build.sample_rate,
        "sets": sets,
        "missing_packages": build.missing,
        "reused_stages": build.reused,
        "build_seconds": round(seconds, 1),
        "training_config": "training_config.json",
    }


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
    save_figure(figure, path)


def build_dataset(config: dict) -> dict:
    """Build every set described by ``config`` (see SCHEMA) and return the summary (also in summary.json)."""
    started = time.time()
    _check_config(config)
    build = Build(config)
    summary_path = build.output / "summary.json"
    build.fetch_packages()
    if summary_path.exists():
        # summary.json announces a complete build; take it down until this run has finished one.
        summary_path.unlink()
    build_music(build)
    build_renders(build)
    build_noise(build)
    build_impulses(build)
    write_song_lists(build)
    training = training_config(build.output)
    atomic_write_text(build.output / "training_config.json", json.dumps(training, indent=2) + "\n")
    summary = build_summary(build, time.time() - started)
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
    print(json.dumps(training, indent=2))
    return summary
