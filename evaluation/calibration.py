"""Calibration (docs/calibration.md): fit the "no match" rule of a model and database, and store it with the database.

Out-of-database songs (none of them in the database), cut into random-start queries at every
length, degraded with noise at every SNR and room IRs (``evaluation.calibration_queries``), are
embedded by the model and matched by both methods with no threshold. For each method, a
threshold per number of query rows J is fitted so that, with ``confidence``, at most
``target_false_match_rate`` of such queries are answered with a song
(``matching.decision.fit_rule``). The rules, the model identity, the data used and the date are
written into the database JSON's ``calibration`` field (``database.calibration``), which
matching, the evaluation protocols and live recognition then use whenever a config gives no
``threshold``. A short report (thresholds and counts per J) goes to ``output_dir``.

Use songs, noise and IRs that the evaluation does not use (the demo: validation songs, noise
and IRs; the offline protocol uses training songs, test noise and test IRs), so that the
protocols measure the calibrated rule on data it was not fitted on; the offline protocol
leaves out of its unknown songs any song a model's calibration used.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from augmentation import CutOffFilter
from common.atomic import atomic_write_text
from common.audio import AudioError, find_audio_files, load_song
from common.config import ConfigError, Key, Schema
from common.devices import DEVICE_HELP, device_problem, resolve_device
from data_prep.manifest import read_manifest
from database.calibration import store_calibration
from database.files import read_table
from evaluation.calibration_queries import answer_queries
from evaluation.queries import QueryDegrader, checked_query_lengths, checked_snrs
from evaluation.report import close_log, open_log, run_stamp
from matching.decision import allowed_exceedances, fit_rule
from matching.matcher import METHODS
from matching.recognizer import Recognizer

SCHEMA = Schema(
    "evaluation/calibrate.py",
    [
        Key("weights", "path", must_exist=True, help="model checkpoint (.pt) that made the database"),
        Key("database", "path", must_exist=True, help="the database's JSON; its 'calibration' field is (re)written"),
        Key(
            "songs",
            "paths",
            must_exist=True,
            help="out-of-database songs: folders of audio files and/or data manifests (CSV with a 'file' column)",
        ),
        Key("background_noises", "path", must_exist=True, help="folder of noise clips (not the evaluation's)"),
        Key("impulse_responses", "path", None, must_exist=True, help="folder of room IRs (null: none)"),
        Key("cutoff_filters", "bool", False, help="apply the phone-like cut-off filters to every query"),
        Key("query_lengths", "list", [1, 2, 3, 5, 10, 15], help="query lengths (s); one threshold per length's J"),
        Key("snrs", "list", [0, 5, 10, 15], help="SNRs in dB (null: clean)"),
        Key("queries_per_song", "int", 20, min=1, help="random queries per song, length and SNR"),
        Key("max_songs", "int", None, min=1, help="use at most this many songs, drawn with 'seed'"),
        Key("target_false_match_rate", "float", 0.01, help="false matches per out-of-database query"),
        Key(
            "confidence", "float", 0.99, help="confidence that the true rate is at most the target (0: plain quantile)"
        ),
        Key("methods", "list", list(METHODS), help="matching methods to calibrate"),
        Key("neighbors", "int", 4, min=1, help="nearest neighbours per query row (use the value matching will use)"),
        Key("seed", "int", 0, min=0, help="seed of every random draw"),
        Key("device", "str", "auto", help=DEVICE_HELP, check=device_problem),
        Key("output_dir", "path", "runs/reports/calibration", help="folder of the report and log (files replaced)"),
    ],
)


def song_files(entries: list[str]) -> list[Path]:
    """Audio files named by folders (every audio file under them) and data manifests (their 'file' rows).

    A manifest row's file is looked up beside the manifest, then in the folder above it (the
    data build writes ``music/val.csv`` with rows ``music/train/<song>.wav``).
    """
    files = set()
    for entry in map(Path, entries):
        if entry.is_dir():
            files.update(find_audio_files(entry))
            continue
        for row in read_manifest(entry):
            candidates = [entry.parent / row.file, entry.parent.parent / row.file]
            found = next((path for path in candidates if path.is_file()), None)
            if found is None:
                raise ConfigError(f"{entry}: song '{row.file}' not found beside it or in {entry.parent.parent}")
            files.add(found)
    return sorted(files)


def _check(config: dict, where: str) -> None:
    checked_query_lengths(config["query_lengths"], where)
    checked_snrs(config["snrs"], where)
    if not 0 < config["target_false_match_rate"] < 1:
        raise ConfigError(
            f"{where}: key 'target_false_match_rate' must be in (0, 1), got {config['target_false_match_rate']}"
        )
    if not 0 <= config["confidence"] < 1:
        raise ConfigError(f"{where}: key 'confidence' must be in [0, 1), got {config['confidence']}")
    unknown = [method for method in config["methods"] if method not in METHODS]
    if not config["methods"] or unknown:
        raise ConfigError(f"{where}: key 'methods' must list some of {', '.join(METHODS)}, got {config['methods']!r}")


def run_calibration(config: dict) -> dict:
    """Fit the rules described by ``config`` (see SCHEMA), store them in the database JSON, write the report."""
    where = str(getattr(config, "source", None) or "config")
    _check(config, where)
    output_dir = Path(config["output_dir"])
    logger = open_log(output_dir, "calibration")
    try:
        return _run(config, output_dir, logger)
    finally:
        close_log(logger)


def calibration_songs(entries: list[str], max_songs: int | None, seed: int) -> list[Path]:
    """The song files a calibration uses: ``song_files(entries)``, at most ``max_songs`` of them drawn with ``seed``."""
    paths = song_files(entries)
    if max_songs is not None and len(paths) > max_songs:
        chosen = np.random.default_rng([seed, 2]).choice(len(paths), max_songs, replace=False)
        paths = [paths[number] for number in sorted(chosen)]
    return paths


def _load_data(config: dict, recognizer: Recognizer, logger) -> tuple[list, QueryDegrader]:
    sr = recognizer.sample_rate
    paths = calibration_songs(config["songs"], config["max_songs"], config["seed"])
    songs = []
    for path in paths:
        if recognizer.database.name_of_file(path) is not None:
            raise ConfigError(f"songs: {path} is in the database {config['database']}; calibrate on songs it lacks")
        try:
            songs.append((path, load_song(path, sr)))
        except AudioError as error:
            logger.info(f"skipped: {error}")
    if not songs:
        raise ConfigError(f"songs: no usable audio file in {config['songs']}")
    cutoff = CutOffFilter(sr, p=1.0) if config["cutoff_filters"] else None
    degrade, skipped = QueryDegrader.from_folders(config["background_noises"], config["impulse_responses"], sr, cutoff)
    for line in skipped:
        logger.info(f"skipped: {line}")
    logger.info(
        f"{len(songs)} out-of-database songs, {len(degrade.noise_clips)} noise clips, "
        f"{degrade.impulse_count} IRs, "
        f"cut-off filters {'on' if cutoff else 'off'}"
    )
    return songs, degrade


def _run(config: dict, output_dir: Path, logger) -> dict:
    device = resolve_device(config["device"], getattr(config, "source", None))
    logger.info(f"calibration on {device}; config:\n{json.dumps(config, indent=2)}")
    recognizer = Recognizer.load(config["weights"], config["database"], device, calibrated=False)
    songs, degrade = _load_data(config, recognizer, logger)
    lengths = [float(length) for length in config["query_lengths"]]
    snrs = [None if snr is None else float(snr) for snr in config["snrs"]]
    methods = tuple(config["methods"])
    table = answer_queries(
        recognizer,
        songs,
        degrade,
        lengths,
        snrs,
        config["queries_per_song"],
        config["seed"],
        methods,
        config["neighbors"],
        desc="calibration queries",
    )
    rate, confidence = config["target_false_match_rate"], config["confidence"]
    rules, fitted = {}, {}
    for method in methods:
        try:
            rule = fit_rule(method, table.rows, table.score[method], rate, confidence)
        except ValueError as error:
            raise ConfigError(f"{getattr(config, 'source', None) or 'config'}: {error}") from None
        rules[method] = rule.to_json()
        fitted[method] = []
        for rows, threshold in zip(rule.rows, rule.thresholds, strict=True):
            scores = table.score[method][table.rows == rows]
            fitted[method].append(
                {
                    "rows": rows,
                    "queries": int(len(scores)),
                    "allowed": allowed_exceedances(len(scores), rate, confidence),
                    "false_matches": int(np.sum(scores >= threshold)),
                    "threshold": threshold,
                }
            )
    database = recognizer.database
    calibration = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": recognizer.identity,
        "weights": str(config["weights"]),
        "database": {"songs": len(database.songs), "ntotal": database.ntotal},
        "target_false_match_rate": rate,
        "confidence": confidence,
        "neighbors": config["neighbors"],
        "data": {
            "songs": [str(path) for path, _ in songs],
            "background_noises": str(config["background_noises"]),
            "impulse_responses": config["impulse_responses"] and str(config["impulse_responses"]),
            "cutoff_filters": config["cutoff_filters"],
            "snrs": config["snrs"],
            "query_lengths": config["query_lengths"],
            "queries_per_song": config["queries_per_song"],
            "seed": config["seed"],
            "queries": len(table),
        },
        "rules": rules,
        "fitted": fitted,
    }
    # The database may have been rebuilt (another model, other songs) while the queries ran.
    now = read_table(Path(config["database"]))
    if now.get("identity") != database.identity or now.get("ntotal") != database.ntotal:
        raise ConfigError(f"database: {config['database']} changed while calibrating; run the calibration again")
    store_calibration(config["database"], calibration)
    logger.info(f"calibration stored in {config['database']}")
    _write_report(output_dir, config, calibration, device)
    return calibration


def _write_report(output_dir: Path, config: dict, calibration: dict, device: str) -> None:
    lines = [
        f"# Calibration of {config['database']}",
        "",
        run_stamp(device),
        f"model {calibration['model'].get('model_str')} {calibration['model'].get('model_id')} ({config['weights']}); "
        f"{calibration['database']['songs']} songs in the database",
        f"{len(calibration['data']['songs'])} out-of-database songs, {calibration['data']['queries']} queries "
        f"(lengths {config['query_lengths']} s, SNRs {config['snrs']} dB, noise {config['background_noises']}, "
        f"IRs {config['impulse_responses']})",
        f"target: at most {100 * calibration['target_false_match_rate']:g} % false matches per query, "
        f"with confidence {calibration['confidence']:g}",
        "",
    ]
    for method, rows in calibration["fitted"].items():
        lines += [
            f"## method `{method}`",
            "",
            "| query rows J | queries | allowed | false matches at the threshold | threshold |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['rows']} | {row['queries']} | {row['allowed']} | {row['false_matches']} | {row['threshold']:.4f} |"
            for row in rows
        ]
        lines.append("")
    text = "\n".join(lines)
    atomic_write_text(output_dir / "calibration.md", text)
    print(text)
