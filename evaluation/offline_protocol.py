"""Offline protocol (docs/evaluation.md): degraded excerpts of indexed songs, per model, query length, SNR, trial.

For every trial and query length, query positions are drawn per test song (random sample
starts, or the reference's grid-aligned segments with ``aligned: true``); for every SNR the
same positions are degraded with test-split noise (and optionally test-split IRs and the
cut-off filters), and every model answers the same degraded queries. A query from a song that
is not in a model's database measures that model's false-match rate at its threshold.

Seeding: positions come from ``default_rng([seed, 0, trial, length ms, song number])``,
degradations from ``default_rng([seed, 1, trial, length ms, SNR code, song number, query
number])`` (the SNR code is the SNR in centi-dB offset to be non-negative, or 0 for clean), so
the same config gives the same numbers, models are compared on identical queries, and adding
a model, a length or an SNR leaves the other cells' queries unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from augmentation import CutOffFilter
from common.audio import WINDOW_SAMPLES, AudioError, find_audio_files, is_silent, load_song
from common.config import ConfigError, Key, Schema, config_folder
from common.devices import DEVICE_HELP, device_problem, resolve_device
from database.calibration import read_calibration
from evaluation.metrics import (
    EXACT_TOLERANCE_SECONDS,
    NEAR_TOLERANCE_SECONDS,
    QueryOutcome,
    score_outcomes,
    summarize_trials,
)
from evaluation.models_under_test import MODEL_KEYS, ModelUnderTest, load_models, parse_model_specs
from evaluation.queries import (
    QueryDegrader,
    aligned_starts,
    checked_query_lengths,
    checked_snrs,
    random_starts,
    snr_seed,
)
from evaluation.report import (
    close_log,
    figure_titles,
    open_log,
    percent,
    publish_report,
    report_markdown,
    run_stamp,
)
from evaluation.tradeoff import plot_tradeoff, tradeoff_markdown
from matching.matcher import METHODS

# Queries per cell embedded alone to measure a standalone query's inference time.
TIMING_QUERIES = 5

SCHEMA = Schema(
    "evaluation/evaluate_offline.py",
    [
        Key("models", "list", help="models to compare, each {" + ", ".join(MODEL_KEYS) + "}"),
        Key(
            "test_songs", "paths", must_exist=True, help="folder(s) of test songs; those in a model's index are queried"
        ),
        Key(
            "unknown_songs",
            "paths",
            [],
            must_exist=True,
            help="folder(s) of songs NOT in the databases: their queries give the false-match rate",
        ),
        Key("background_noises", "path", must_exist=True, help="folder of test-split background noise"),
        Key("impulse_responses", "path", None, must_exist=True, help="folder of test-split room IRs (null: none)"),
        Key("cutoff_filters", "bool", False, help="apply the low-pass + high-pass cut-off filters to every query"),
        Key(
            "aligned",
            "bool",
            False,
            help="reference protocol: grid-aligned non-overlapping queries, noise only (no IR, no filters)",
        ),
        Key("query_lengths", "list", [1, 2, 3, 5, 10], help="query lengths in seconds"),
        Key("snrs", "list", [0, 5, 10, 15], help="SNRs in dB (null: clean, no noise)"),
        Key("n_trials", "int", 3, min=1, help="trials; each draws new positions and noise"),
        Key(
            "queries_per_song", "int", 5, min=1, help="random queries per song, length and trial (ignored when aligned)"
        ),
        Key(
            "max_songs",
            "int",
            None,
            min=1,
            help="use at most this many test songs (and as many unknown songs), drawn with 'seed'",
        ),
        Key("seed", "int", 0, min=0, help="seed of every random draw"),
        Key("method", "choice", "sequence", choices=METHODS, help="default matching method of models"),
        Key("device", "str", "auto", help=DEVICE_HELP, check=device_problem),
        Key("exact_tolerance", "float", EXACT_TOLERANCE_SECONDS, help="offset error (s) of an exact hit"),
        Key("near_tolerance", "float", NEAR_TOLERANCE_SECONDS, help="offset error (s) of a near hit"),
        Key("output_dir", "path", "runs/reports/offline", help="report folder (created; files replaced)"),
        Key("experiment_name", "str", "offline", help="title of the report"),
    ],
)


def snr_label(snr: float | None) -> str:
    return "clean" if snr is None else f"{snr:g} dB"


def _load_folder(
    folders: list[str],
    sr: int,
    limit: int | None,
    logger,
    loader,
    rng: np.random.Generator | None = None,
    exclude: set[str] = frozenset(),
) -> list[tuple[Path, np.ndarray]]:
    """(path, samples) of the decodable files under ``folders``, sorted by path; unusable files are logged.

    With ``limit``, a random subset of that many files drawn with ``rng`` (a first-N cut would
    take every song from one album or package when files are named after it). Files whose
    resolved path is in ``exclude`` are left out first (and counted in the log).
    """
    paths = sorted({path for folder in folders for path in find_audio_files(folder)})
    kept = [path for path in paths if str(path.resolve()) not in exclude]
    if len(kept) < len(paths):
        logger.info(f"{len(paths) - len(kept)} songs left out: a model's calibration was fitted on them")
        paths = kept
    if limit is not None and len(paths) > limit:
        chosen = (rng or np.random.default_rng(0)).choice(len(paths), size=limit, replace=False)
        paths = [paths[number] for number in sorted(chosen)]
    loaded = []
    for path in paths:
        try:
            loaded.append((path, loader(path, sr)))
        except AudioError as error:
            logger.info(f"skipped: {error}")
    return loaded


def run_offline(config: dict) -> list[dict]:
    """Run the offline protocol described by ``config`` (see SCHEMA); writes the report; returns the cells."""
    where = str(getattr(config, "source", None) or "config")
    lengths, snrs = checked_query_lengths(config["query_lengths"], where), checked_snrs(config["snrs"], where)
    specs = parse_model_specs(config["models"], where, config["method"], config_folder(config))
    output_dir = Path(config["output_dir"])
    logger = open_log(output_dir, "offline")
    try:
        return _run(config, lengths, snrs, specs, output_dir, logger)
    finally:
        close_log(logger)


@dataclass
class OfflinePlan:
    """What an offline run queries: the loaded models, the decoded songs and the degradation."""

    device: str
    models: list[ModelUnderTest]
    sample_rate: int
    songs: list[tuple[Path, np.ndarray]]  # test songs (path, (n,) samples at sample_rate)
    unknown: list[tuple[Path, np.ndarray]]  # songs in no model's database
    degrade: QueryDegrader

    @property
    def all_songs(self) -> list[tuple[Path, np.ndarray]]:
        """Test songs then unknown songs; a query's song number indexes this list."""
        return self.songs + self.unknown


def _run(config, lengths, snrs, specs, output_dir, logger) -> list[dict]:
    plan = plan_offline(config, specs, logger)
    trials, answered = _answer(config, plan, lengths, snrs, logger)
    return _summarise(config, plan, lengths, snrs, trials, answered, output_dir, logger)


def plan_offline(config, specs, logger) -> OfflinePlan:
    """Load the models, the test and unknown songs, the noise and IRs; check which songs each model indexes."""
    device = resolve_device(config["device"], getattr(config, "source", None))
    logger.info(
        f"offline evaluation '{config['experiment_name']}' on {device}; config:\n{json.dumps(config, indent=2)}"
    )
    models = load_models(specs, device)
    sr = models[0].sample_rate
    for model in models:
        logger.info(model.report_line())
    limit, seed = config["max_songs"], config["seed"]
    songs = _load_folder(config["test_songs"], sr, limit, logger, load_song, np.random.default_rng([seed, 2]))
    # Songs a model's calibrated rule was fitted on would not measure its false-match rate.
    calibration_songs = {
        str(Path(path).resolve())
        for model in models
        if isinstance(model, ModelUnderTest) and model.matcher.rule is not None
        for path in (read_calibration(model.spec.database) or {}).get("data", {}).get("songs", [])
    }
    unknown = _load_folder(
        config["unknown_songs"], sr, limit, logger, load_song, np.random.default_rng([seed, 3]), calibration_songs
    )
    for model in models:
        indexed = [path for path, _ in songs if model.song_name(path) is not None]
        strays = [path for path, _ in unknown if model.song_name(path) is not None]
        if strays:
            raise ConfigError(f"unknown_songs: {strays[0]} is in the database of model '{model.name}'")
        logger.info(
            f"model '{model.name}': {len(indexed)} of {len(songs)} test songs are indexed; "
            f"{len(songs) - len(indexed) + len(unknown)} songs are out of its database"
        )
        if not indexed:
            raise ConfigError(f"test_songs: none of the test songs is in the database of model '{model.name}'")
    aligned = config["aligned"]
    if aligned and (config["impulse_responses"] or config["cutoff_filters"]):
        logger.info("aligned: true reproduces the reference's noise-only protocol: IRs and cut-off filters are off")
    cutoff = CutOffFilter(sr, p=1.0) if config["cutoff_filters"] and not aligned else None
    degrade, skipped = QueryDegrader.from_folders(
        config["background_noises"], None if aligned else config["impulse_responses"], sr, cutoff
    )
    for line in skipped:
        logger.info(f"skipped: {line}")
    logger.info(
        f"{len(songs)} test songs, {len(unknown)} unknown songs, {len(degrade.noise_clips)} noise clips, "
        f"{degrade.impulse_count} IRs, cut-off filters {'on' if cutoff else 'off'}, aligned {aligned}"
    )
    return OfflinePlan(device, models, sr, songs, unknown, degrade)


def query_positions(
    all_songs: list[tuple[Path, np.ndarray]], config, trial: int, length: float, sr: int
) -> tuple[list[tuple[int, int, int, np.ndarray]], int]:
    """The clean queries of one trial and length: ([(song number, query number, start sample, (n,) clean)], silent).

    Positions whose every window is below the silence floor are skipped and counted.
    """
    query_samples = int(round(length * sr))
    length_ms = int(round(length * 1000))
    positions, silent = [], 0
    for number, (_, samples) in enumerate(all_songs):
        if config["aligned"]:
            starts = aligned_starts(len(samples), query_samples)
        else:
            rng = np.random.default_rng([config["seed"], 0, trial, length_ms, number])
            starts = random_starts(len(samples), query_samples, config["queries_per_song"], rng)
        for query_number, start in enumerate(starts):
            clean = samples[start : start + query_samples]
            if is_silent(clean, WINDOW_SAMPLES, WINDOW_SAMPLES // 2):  # windows at the 0.5 s hop
                silent += 1
                continue
            positions.append((number, query_number, start, clean))
    return positions, silent


def degraded_queries(
    positions, degrade: QueryDegrader, seed: int, trial: int, length: float, snr: float | None
) -> list[tuple[int, int, np.ndarray]]:
    """The positions degraded at ``snr``: [(song number, start sample, (n,) query)], seeded per query."""
    length_ms = int(round(length * 1000))
    queries = []
    for number, query_number, start, clean in positions:
        rng = np.random.default_rng([seed, 1, trial, length_ms, snr_seed(snr), number, query_number])
        queries.append((number, start, degrade(clean, snr, rng)))
    return queries


def _answer(config, plan: OfflinePlan, lengths, snrs, logger) -> tuple[dict, dict[str, dict[float, list]]]:
    """Every model answers every degraded query.

    Returns the scored figures per (model, length, condition), one per trial, and every
    QueryOutcome per model and length (all trials and SNRs), for the trade-off per length.
    """
    models, sr, all_songs = plan.models, plan.sample_rate, plan.all_songs
    trials: dict[tuple[str, float, str], list[dict]] = {}
    answered: dict[str, dict[float, list[QueryOutcome]]] = {
        model.name: {length: [] for length in lengths} for model in models
    }
    silent_skipped = 0
    # Planned queries (silent positions, skipped later, are counted off the bar when found).
    planned = sum(
        len(aligned_starts(len(samples), int(round(length * sr))))
        if config["aligned"]
        else (config["queries_per_song"] if len(samples) >= int(round(length * sr)) else 0)
        for length in lengths
        for _, samples in all_songs
    )
    total = planned * config["n_trials"] * len(snrs) * len(models)
    with tqdm(total=total, desc="offline queries", unit="query", dynamic_ncols=True, mininterval=1.0) as progress:
        for trial in range(config["n_trials"]):
            for length in lengths:
                positions, silent = query_positions(all_songs, config, trial, length, sr)
                silent_skipped += silent
                progress.update(silent * len(snrs) * len(models))
                for snr in snrs:
                    queries = degraded_queries(positions, plan.degrade, config["seed"], trial, length, snr)
                    embedded = {}  # neural models with the same weights and hop embed each query once
                    for model in models:
                        outcomes = []
                        neural = isinstance(model, ModelUnderTest)
                        shared = embedded.setdefault((model.spec.weights, model.hop_samples), []) if neural else None
                        for count, (number, start, query) in enumerate(queries):
                            if not neural:
                                match, inference_ms, search_ms = model.identify(query)
                            else:
                                if not shared:
                                    shared += _embed_cell(model, [query for _, _, query in queries])
                                rows, inference_ms = shared[count]
                                match, search_ms = model.search(rows)
                            progress.update(1)
                            outcomes.append(
                                QueryOutcome(
                                    true_song=model.song_name(all_songs[number][0]),
                                    true_offset=start / sr,
                                    predicted_song=match.song,
                                    predicted_offset=match.offset_seconds,
                                    score=match.score,
                                    inference_ms=inference_ms,
                                    search_ms=search_ms,
                                    candidate_song=match.ranked[0][0] if match.ranked else None,
                                )
                            )
                        answered[model.name][length] += outcomes
                        figures = score_outcomes(outcomes, config["exact_tolerance"], config["near_tolerance"])
                        trials.setdefault((model.name, length, snr_label(snr)), []).append(figures)
                        logger.info(
                            f"trial {trial + 1} | {model.name} | {length:g} s | {snr_label(snr)}: "
                            f"accuracy {percent(figures['accuracy'])}, exact {percent(figures['exact'])}, "
                            f"near {percent(figures['near'])}, false match {percent(figures['false_match'])} "
                            f"({figures['queries']} + {figures['unknown_queries']} unknown queries, "
                            f"{figures['inference_ms']:.1f} + {figures['search_ms']:.2f} ms)"
                        )
    if silent_skipped:
        logger.info(f"{silent_skipped} silent query positions skipped (no window above the silence floor)")
    return trials, answered


def _embed_cell(model: ModelUnderTest, queries: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
    """[(rows, inference ms)] of one cell's queries, embedded in shared batches.

    The rows are those of embedding each query alone, many times faster for short queries; the
    first TIMING_QUERIES are also embedded alone to time a standalone query (the others' time is
    NaN, left out of the mean).
    """
    rows = model.embed_many(queries)
    timed = [model.embed(query)[1] for query in queries[:TIMING_QUERIES]]
    return [(part, timed[number] if number < len(timed) else math.nan) for number, part in enumerate(rows)]


def _summarise(config, plan: OfflinePlan, lengths, snrs, trials, answered, output_dir, logger) -> list[dict]:
    """Cells (mean ± std over trials) per model, length and condition; the report written and published."""
    models, seed = plan.models, config["seed"]
    conditions = [snr_label(snr) for snr in snrs]
    cells = []
    for model in models:
        for length in lengths:
            for condition in conditions:
                per_trial = trials[(model.name, length, condition)]
                cells.append(
                    {
                        "model": model.name,
                        "query_seconds": length,
                        "condition": condition,
                        "threshold": model.spec.threshold,
                        "decision": model.decision_label,
                        **summarize_trials(per_trial),
                        "per_trial": per_trial,
                    }
                )
    figures = ["accuracy", "exact", "near"]
    if any(cell["unknown_queries"] for cell in cells):
        figures.append("false_match")
    if any(model.decides for model in models):
        figures.append("no_match")
    figures += ["inference_ms", "search_ms"]
    notes = [
        run_stamp(plan.device),
        f"{len(plan.songs)} test songs, {len(plan.unknown)} out-of-database songs, "
        f"{config['n_trials']} trial(s), seed {seed}",
        "queries: "
        + (
            "grid-aligned non-overlapping segments, noise only (reference protocol)"
            if config["aligned"]
            else f"{config['queries_per_song']} per song at random sample starts"
        ),
        f"degradation: test noise at each SNR, IRs {'on' if plan.degrade.impulse_count else 'off'}, "
        f"cut-off filters {'on' if plan.degrade.cutoff else 'off'}",
        "cells: mean ± std over trials",
    ] + [model.report_line() for model in models]
    names = [model.name for model in models]
    markdown = report_markdown(
        f"Offline evaluation: {config['experiment_name']}",
        cells,
        names,
        lengths,
        conditions,
        "query (s) / SNR",
        figures,
        notes,
        figure_titles(config["exact_tolerance"], config["near_tolerance"]),
    )
    if any(cell["unknown_queries"] for cell in cells):
        plot_tradeoff(output_dir / "tradeoff.png", answered, f"Offline: {config['experiment_name']}")
        markdown = markdown.rstrip() + "\n\n" + tradeoff_markdown(answered, "tradeoff.png")
    metadata = {
        "protocol": "offline",
        "device": plan.device,
        "notes": notes,
        "conditions": conditions,
        "query_lengths": lengths,
        "models": [model.report_metadata() for model in models],
    }
    publish_report(
        output_dir,
        dict(config),
        markdown,
        cells,
        metadata,
        names,
        lengths,
        conditions,
        f"Offline: {config['experiment_name']}",
        logger,
    )
    return cells
