"""Report folders for evaluation runs: config, Markdown table, CSV, JSON, PNG plot and log.

A "cell" is one (model, query length, condition) result, a flat dict with at least ``model``,
``query_seconds``, ``condition`` (an SNR label such as "5 dB" or a recording name) and the
figures of ``evaluation.metrics.summarize_trials`` (``accuracy_mean``, ``accuracy_std``, ...).
Tables follow the paper's layout: one row per query length, one column per condition, one
table per model and figure. Every file is written atomically.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import math
import os
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)

from common.atomic import atomic_write_text, save_figure, writable_folder  # noqa: E402
from evaluation.metrics import EXACT_TOLERANCE_SECONDS, NEAR_TOLERANCE_SECONDS  # noqa: E402


def percent(value: float | None) -> str:
    """A rate in [0, 1] as "12.3%"; "n/a" when there was nothing to measure it on (None or NaN)."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def figure_titles(
    exact_tolerance: float = EXACT_TOLERANCE_SECONDS, near_tolerance: float = NEAR_TOLERANCE_SECONDS
) -> dict[str, str]:
    """The title of each reported figure; the hit titles name the run's tolerances (config keys, seconds)."""
    return {
        "accuracy": "song top-1 accuracy (%)",
        "exact": f"exact hit: right song, offset within {exact_tolerance:g} s (%)",
        "near": f"near hit: right song, offset within {near_tolerance:g} s (%)",
        "no_match": "no-match answers on in-database queries (%)",
        "false_match": "false-match rate on out-of-database queries (%)",
        "inference_ms": "mean inference time per query (ms)",
        "search_ms": "mean search time per query (ms)",
    }


FIGURE_TITLES = figure_titles()
PERCENT_FIGURES = {"accuracy", "exact", "near", "no_match", "false_match"}


def _format(cell: dict, figure: str) -> str:
    mean = cell.get(f"{figure}_mean", float("nan"))
    std = cell.get(f"{figure}_std", float("nan"))
    if mean is None or math.isnan(mean):
        return "n/a"
    scale = 100.0 if figure in PERCENT_FIGURES else 1.0
    digits = 1 if figure in PERCENT_FIGURES else 2
    text = f"{mean * scale:.{digits}f}"
    if cell.get("trials", 1) > 1 and std is not None and not math.isnan(std):
        text += f" ± {std * scale:.{digits}f}"
    return text


def _length_label(seconds: float) -> str:
    return f"{seconds:g}"


def markdown_table(
    cells: list[dict], model: str, figure: str, lengths: list[float], conditions: list[str], corner: str
) -> str:
    """A Markdown table of ``figure`` for ``model``: rows query length (s), columns condition."""
    lookup = {(cell["query_seconds"], cell["condition"]): cell for cell in cells if cell["model"] == model}
    lines = [f"| {corner} | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for length in lengths:
        row = [
            _format(lookup[(length, condition)], figure) if (length, condition) in lookup else "n/a"
            for condition in conditions
        ]
        lines.append(f"| {_length_label(length)} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def report_markdown(
    title: str,
    cells: list[dict],
    models: list[str],
    lengths: list[float],
    conditions: list[str],
    corner: str,
    figures: list[str],
    notes: list[str] = (),
    titles: dict[str, str] | None = None,
) -> str:
    """The whole Markdown report: a heading, notes, then one table per model and figure.

    ``titles``: ``figure_titles`` of the run's tolerances (default: the default tolerances).
    """
    titles = titles or FIGURE_TITLES
    parts = [f"# {title}", ""]
    parts += [f"- {note}" for note in notes]
    for model in models:
        for figure in figures:
            parts += ["", f"## {model}: {titles[figure]}", ""]
            parts.append(markdown_table(cells, model, figure, lengths, conditions, corner))
    return "\n".join(parts) + "\n"


def plot_accuracy(
    path: str | os.PathLike,
    cells: list[dict],
    models: list[str],
    lengths: list[float],
    conditions: list[str],
    figure: str = "accuracy",
    title: str = "",
) -> None:
    """PNG: ``figure`` (%) against query length, one line per condition, one panel per model; error bars = std."""
    columns = len(models)
    fig, axes = plt.subplots(1, columns, figsize=(max(7.0, 5.0 * columns), 4.5), squeeze=False, sharey=True)
    for axis, model in zip(axes[0], models):
        lookup = {(cell["query_seconds"], cell["condition"]): cell for cell in cells if cell["model"] == model}
        for condition in conditions:
            xs, means, stds = [], [], []
            for length in lengths:
                cell = lookup.get((length, condition))
                if cell is None or math.isnan(cell.get(f"{figure}_mean", float("nan"))):
                    continue
                xs.append(length)
                means.append(100.0 * cell[f"{figure}_mean"])
                stds.append(100.0 * (cell.get(f"{figure}_std") or 0.0))
            if xs:
                axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=condition)
        axis.set_title(model)
        axis.set_xticks(lengths)
        axis.set_xlabel("query length (s)")
        axis.set_ylim(-2, 102)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    axes[0][0].set_ylabel(FIGURE_TITLES[figure])
    if title:
        fig.suptitle(textwrap.fill(title, width=int(11 * max(7.0, 5.0 * columns))), fontsize="medium")
    save_figure(fig, path, dpi=120)


def _csv_text(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns and not isinstance(row[key], (list, dict))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _json_safe(value):
    """NaN is not JSON: write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_report(
    folder: str | os.PathLike,
    config: dict,
    markdown: str,
    cells: list[dict],
    metadata: dict,
    plot,
) -> dict[str, Path]:
    """Write ``config.json``, ``results.md``, ``results.csv``, ``results.json`` and ``accuracy.png`` into ``folder``.

    ``plot`` is called with the PNG path. Returns the paths by kind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": folder / "config.json",
        "markdown": folder / "results.md",
        "csv": folder / "results.csv",
        "json": folder / "results.json",
        "plot": folder / "accuracy.png",
    }
    atomic_write_text(paths["config"], json.dumps(_json_safe(dict(config)), indent=2) + "\n")
    atomic_write_text(paths["markdown"], markdown)
    atomic_write_text(paths["csv"], _csv_text(cells))
    document = {"metadata": metadata, "cells": cells}
    atomic_write_text(paths["json"], json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n")
    plot(paths["plot"])
    return paths


def run_stamp(device: str) -> str:
    """The first note of every report: when (UTC, to the minute) and on which device it ran."""
    return f"date {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}, device {device}"


def publish_report(
    folder: str | os.PathLike,
    config: dict,
    markdown: str,
    cells: list[dict],
    metadata: dict,
    names: list[str],
    lengths: list[float],
    conditions: list[str],
    title: str,
    logger: logging.Logger,
) -> dict[str, Path]:
    """The end of every protocol run: write the report folder with its accuracy plot, print the tables, log it."""
    paths = write_report(
        folder,
        config,
        markdown,
        cells,
        metadata,
        lambda path: plot_accuracy(path, cells, names, lengths, conditions, "accuracy", title),
    )
    print(markdown)
    logger.info(f"report written to {folder} ({', '.join(p.name for p in paths.values())}, run.log)")
    return paths


def open_log(folder: str | os.PathLike, name: str) -> logging.Logger:
    """A logger writing to ``folder/run.log`` (replaced at each run) and to stderr."""
    folder = writable_folder(folder, "key 'output_dir'")
    logger = logging.getLogger(f"evaluation.{name}.{folder.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(folder / "run.log", mode="w", encoding="utf-8")
    console = logging.StreamHandler(sys.stderr)
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def close_log(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
