"""Real-world protocol (docs/evaluation.md): recordings of a playlist cut into labelled queries, answered per model.

For every recording: ground truth from the playlist CSV (explicit start/end, or the first song's
start found by cross-correlation plus the reference songs' durations, see
``evaluation.ground_truth``); for every query length, the non-overlapping queries inside each
song; every model answers every query. Reported per (model, length, recording): song accuracy,
and, because the position in the song is known too, exact and near hits (offsets of a real
recording carry the phone's clock error, a few ms per minute, far below the 0.25 s tolerance).
A playlist song missing from a model's database is counted as out-of-database for that model:
its queries measure false matches instead of accuracy, and the log says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.audio import load_audio, window_count
from common.config import ConfigError, Key, Schema, config_folder
from common.devices import DEVICE_HELP, device_problem, resolve_device
from common.playlist import PlaylistEntry, playlist_files, read_playlist
from evaluation.ground_truth import SongInterval, cut_queries, find_song_start, song_intervals
from evaluation.metrics import (
    EXACT_TOLERANCE_SECONDS,
    NEAR_TOLERANCE_SECONDS,
    QueryOutcome,
    score_outcomes,
    summarize_trials,
)
from evaluation.models_under_test import MODEL_KEYS, ModelUnderTest, load_models, parse_model_specs
from evaluation.queries import checked_query_lengths
from evaluation.report import (
    close_log,
    figure_titles,
    open_log,
    percent,
    publish_report,
    report_markdown,
    run_stamp,
)
from matching.matcher import METHODS

PAPER_QUERY_LENGTHS = [1, 2, 3, 4, 5, 10, 15]
# Below this peak-to-floor ratio the cross-correlation start is reported as doubtful.
DOUBTFUL_ALIGNMENT_RATIO = 1.3

SCHEMA = Schema(
    "evaluation/evaluate_recording.py",
    [
        Key("models", "list", help="models to compare, each {" + ", ".join(MODEL_KEYS) + "}"),
        Key(
            "recording_wavs",
            "paths",
            must_exist=True,
            min=1,
            help="recordings of the playlist (e.g. low_t.wav, mid_t.wav, high_t.wav); columns of the table",
        ),
        Key("csv_path", "path", must_exist=True, help="playlist CSV: 'song' column, optional 'start', 'end' (s)"),
        Key("true_songs", "path", must_exist=True, help="folder of the reference song files named in the CSV"),
        Key("query_lengths", "list", PAPER_QUERY_LENGTHS, help="query lengths in seconds"),
        Key(
            "method",
            "choice",
            "sequence",
            choices=METHODS,
            help="default matching method of models ('vote' is the reference's majority vote)",
        ),
        Key("align_search_seconds", "float", 60.0, help="how far into a recording song 1 may start (s)"),
        Key("align_excerpt_seconds", "float", 10.0, help="seconds of song 1 cross-correlated with the recording"),
        Key(
            "shared_embeddings",
            "bool",
            True,
            help="embed each song's stretch of a recording once and slice every query's rows from it "
            "(same windows; 5-7x faster for the paper's lengths)",
        ),
        Key(
            "timing_queries",
            "int",
            20,
            min=0,
            help="with shared_embeddings: queries per cell also embedded alone, for timing",
        ),
        Key("device", "str", "auto", help=DEVICE_HELP, check=device_problem),
        Key("exact_tolerance", "float", EXACT_TOLERANCE_SECONDS, help="offset error (s) of an exact hit"),
        Key("near_tolerance", "float", NEAR_TOLERANCE_SECONDS, help="offset error (s) of a near hit"),
        Key("output_dir", "path", "runs/reports/recording", help="report folder (created; files replaced)"),
        Key("experiment_name", "str", "recording", help="title of the report"),
    ],
)


def recording_ground_truth(
    recording: np.ndarray,
    sr: int,
    entries: list[PlaylistEntry],
    song_files: list[Path],
    references: list[np.ndarray] | None = None,
    search_seconds: float = 60.0,
    excerpt_seconds: float = 10.0,
    logger=None,
) -> list[SongInterval]:
    """Song intervals (s) in one (n,) recording at ``sr``: explicit CSV times, or cross-correlation + durations.

    ``references``: the decoded reference songs ((n_k,) at ``sr``), decoded here when not given.
    Interval names are the song files' stems; the caller maps them to database names.
    """
    seconds = len(recording) / sr
    if entries[0].start is not None:
        return [
            SongInterval(path.stem, entry.start, min(entry.end, seconds))
            for entry, path in zip(entries, song_files)
            if entry.start < seconds
        ]
    if references is None:
        references = [load_audio(path, sr) for path in song_files]
    start, ratio = find_song_start(recording, references[0], sr, search_seconds, excerpt_seconds)
    if logger:
        doubt = (
            " (doubtful: weak correlation peak; give start/end in the CSV)" if ratio < DOUBTFUL_ALIGNMENT_RATIO else ""
        )
        logger.info(f"song 1 starts at {start:.3f} s (cross-correlation peak ratio {ratio:.1f}){doubt}")
    durations = [len(samples) / sr for samples in references]
    return song_intervals([path.stem for path in song_files], durations, start, seconds)


def run_recording(config: dict) -> list[dict]:
    """Run the real-world protocol described by ``config`` (see SCHEMA); writes the report; returns the cells."""
    where = str(getattr(config, "source", None) or "config")
    lengths = checked_query_lengths(config["query_lengths"], where)
    specs = parse_model_specs(config["models"], where, config["method"], config_folder(config))
    output_dir = Path(config["output_dir"])
    logger = open_log(output_dir, "recording")
    try:
        return _run(config, lengths, specs, output_dir, logger)
    finally:
        close_log(logger)


@dataclass
class RecordingPlan:
    """What a real-world run answers: the loaded models, the playlist and its reference song files."""

    device: str
    models: list[ModelUnderTest]
    sample_rate: int
    entries: list[PlaylistEntry]
    song_files: list[Path]  # one per playlist entry
    conditions: list[str]  # one per recording: its file stem
    stem_to_file: dict[str, Path]
    references: list[np.ndarray] | None  # decoded songs, when the CSV has no explicit start/end


def _run(config, lengths, specs, output_dir, logger) -> list[dict]:
    plan = _plan(config, specs, logger)
    cells, alignment = _answer(config, plan, lengths, logger)
    return _summarise(config, plan, lengths, cells, alignment, output_dir, logger)


def _plan(config, specs, logger) -> RecordingPlan:
    """Load the models and the playlist; resolve its song files; log which songs each model indexes."""
    device = resolve_device(config["device"], getattr(config, "source", None))
    logger.info(
        f"recording evaluation '{config['experiment_name']}' on {device}; config:\n{json.dumps(config, indent=2)}"
    )
    models = load_models(specs, device)
    sr = models[0].sample_rate
    entries = read_playlist(config["csv_path"])
    song_files = playlist_files(entries, config["true_songs"], config["csv_path"])
    for model in models:
        missing = [path.name for path in song_files if model.song_name(path) is None]
        logger.info(
            f"model '{model.name}': {model.song_count} songs in its database; "
            + (
                f"playlist songs NOT in it (counted as out-of-database): {missing}"
                if missing
                else f"all {len(song_files)} playlist songs are in it"
            )
        )
    conditions = [Path(path).stem for path in config["recording_wavs"]]
    if len(set(conditions)) != len(conditions):
        raise ConfigError(
            f"recording_wavs: two recordings share a file name {conditions}; the table needs distinct names"
        )
    stem_to_file = {path.stem: path for path in song_files}
    if len(stem_to_file) != len(song_files):
        raise ConfigError(f"{config['csv_path']}: two playlist songs share a file name; list each song once")
    references = None if entries[0].start is not None else [load_audio(path, sr) for path in song_files]
    return RecordingPlan(device, models, sr, entries, song_files, conditions, stem_to_file, references)


def _answer(config, plan: RecordingPlan, lengths, logger) -> tuple[list[dict], dict[str, list[dict]]]:
    """Every model answers every query of every recording: (cells, ground-truth intervals per recording)."""
    models, sr, entries, song_files = plan.models, plan.sample_rate, plan.entries, plan.song_files
    references, stem_to_file = plan.references, plan.stem_to_file
    cells = []
    alignment = {}
    for recording_path, condition in zip(config["recording_wavs"], plan.conditions):
        recording = load_audio(recording_path, sr)
        logger.info(f"recording {recording_path}: {len(recording) / sr:.1f} s")
        intervals = recording_ground_truth(
            recording,
            sr,
            entries,
            song_files,
            references,
            config["align_search_seconds"],
            config["align_excerpt_seconds"],
            logger,
        )
        alignment[condition] = [asdict(interval) for interval in intervals]
        for model in models:
            # Only neural models cut a query into windows that a longer stretch's windows contain.
            shares = config["shared_embeddings"] and isinstance(model, ModelUnderTest)
            shared = _embed_intervals(model, recording, sr, intervals) if shares else None
            for length in lengths:
                outcomes = _answer_queries(
                    model,
                    recording,
                    sr,
                    intervals,
                    length,
                    shared,
                    config["timing_queries"],
                    stem_to_file,
                    desc=f"{condition} {length:g} s {model.name}",
                )
                figures = score_outcomes(outcomes, config["exact_tolerance"], config["near_tolerance"])
                logger.info(
                    f"{condition} | {model.name} | {length:g} s: accuracy {percent(figures['accuracy'])} "
                    f"of {figures['queries']} queries, exact {percent(figures['exact'])}, "
                    f"near {percent(figures['near'])}"
                    + (
                        f", false match {percent(figures['false_match'])} of {figures['unknown_queries']}"
                        if figures["unknown_queries"]
                        else ""
                    )
                    + f" ({figures['inference_ms']:.1f} + {figures['search_ms']:.2f} ms per query)"
                )
                cells.append(
                    {
                        "model": model.name,
                        "query_seconds": length,
                        "condition": condition,
                        "threshold": model.spec.threshold,
                        **summarize_trials([figures]),
                        "per_query": [asdict(outcome) for outcome in outcomes],
                    }
                )
    return cells, alignment


def _summarise(config, plan: RecordingPlan, lengths, cells, alignment, output_dir, logger) -> list[dict]:
    """The report (tables, notes, ground truth) written and published; returns the cells."""
    models, entries, conditions = plan.models, plan.entries, plan.conditions
    figures = ["accuracy", "exact", "near"]
    if any(cell["unknown_queries"] for cell in cells):
        figures.append("false_match")
    figures += ["inference_ms", "search_ms"]
    notes = [
        run_stamp(plan.device),
        f"playlist {config['csv_path']}: {len(entries)} songs; recordings: {', '.join(conditions)}",
        "ground truth: "
        + (
            "start/end from the CSV"
            if entries[0].start is not None
            else "song 1 found by cross-correlation, then reference durations back to back"
        ),
        "queries: non-overlapping, inside one song each (a song's tail shorter than the query is unused)",
    ] + [model.report_line() for model in models]
    names = [model.name for model in models]
    markdown = report_markdown(
        f"Real-world protocol: {config['experiment_name']}",
        cells,
        names,
        lengths,
        conditions,
        "query (s) / recording",
        figures,
        notes,
        figure_titles(config["exact_tolerance"], config["near_tolerance"]),
    )
    metadata = {
        "protocol": "recording",
        "device": plan.device,
        "notes": notes,
        "conditions": conditions,
        "query_lengths": lengths,
        "ground_truth": alignment,
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
        f"Real-world protocol: {config['experiment_name']}",
        logger,
    )
    return cells


def _embed_intervals(model, recording: np.ndarray, sr: int, intervals: list[SongInterval]) -> list[np.ndarray | None]:
    """Each song interval of the (n,) recording embedded once at the database hop: (J_k, d) rows, or None if < 1 s.

    Every query of a length that is a whole number of hops starts on this grid (queries are cut
    from the song's start), so its rows are a slice of these: the same windows, embedded once
    instead of once per query length (7 times for the paper's lengths).
    """
    window = model.encoder.frontend_config.window_samples
    shared = []
    for interval in tqdm(
        intervals, desc=f"embedding {model.name}", unit="song", dynamic_ncols=True, leave=False, mininterval=1.0
    ):
        first = int(round(interval.start * sr))
        region = recording[first : first + int(round((interval.end - interval.start) * sr))]
        shared.append(model.embed(region)[0] if len(region) >= window else None)
    return shared


def _answer_queries(
    model, recording, sr, intervals, length, shared, timing_queries, stem_to_file, desc
) -> list[QueryOutcome]:
    """Every query of ``length`` s in the recording, answered by ``model``.

    With ``shared`` rows (``_embed_intervals``), a query's rows are sliced from them and only the
    first ``timing_queries`` queries are also embedded on their own, to measure the inference
    time of a standalone query; otherwise every query is embedded on its own.
    """
    query_samples = int(round(length * sr))
    on_grid = shared is not None and query_samples % model.hop_samples == 0
    if on_grid:
        rows_per_query = window_count(query_samples, model.encoder.frontend_config.window_samples, model.hop_samples)
    number_of = {interval.name: number for number, interval in enumerate(intervals)}
    outcomes = []
    for count, query in enumerate(
        tqdm(cut_queries(intervals, length), desc=desc, unit="query", dynamic_ncols=True, leave=False, mininterval=1.0)
    ):
        interval = intervals[number_of[query.song]]
        offset_samples = int(round(query.offset_in_song * sr))
        first = int(round(interval.start * sr)) + offset_samples
        samples = recording[first : first + query_samples]
        if on_grid:
            row = offset_samples // model.hop_samples
            match, search_ms = model.search(shared[number_of[query.song]][row : row + rows_per_query])
            inference_ms = model.embed(samples)[1] if count < timing_queries else float("nan")
        else:
            match, inference_ms, search_ms = model.identify(samples)
        outcomes.append(
            QueryOutcome(
                true_song=model.song_name(stem_to_file[query.song]),
                true_offset=query.offset_in_song,
                predicted_song=match.song,
                predicted_offset=match.offset_seconds,
                score=match.score,
                inference_ms=inference_ms,
                search_ms=search_ms,
            )
        )
    return outcomes
