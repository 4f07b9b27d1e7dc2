"""The "no match" trade-off per query length: false matches on out-of-database queries against misses.

At a model's operating point (its threshold, calibrated rule, or none) a report gives, per query
length and over every SNR: the false-match rate (out-of-database queries answered with a song)
and the recall (database queries answered with the right song). The PNG sweeps a score
threshold over the same queries, one line per length (false-match rate against miss rate), and
marks the operating point on each line, so a reader sees what a stricter or looser rule costs.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)
import numpy as np  # noqa: E402

from common.atomic import save_figure  # noqa: E402
from evaluation.metrics import QueryOutcome, score_outcomes  # noqa: E402
from evaluation.report import percent  # noqa: E402


def operating_point(outcomes: list[QueryOutcome]) -> dict:
    """{"false_match", "recall", "unknown_queries", "queries"} of one length's outcomes (rates NaN without queries).

    Recall is ``score_outcomes``' song accuracy: database queries answered with the right song.
    """
    figures = score_outcomes(outcomes)
    return {
        "false_match": figures["false_match"],
        "recall": figures["accuracy"],
        "unknown_queries": figures["unknown_queries"],
        "queries": figures["queries"],
    }


def tradeoff_markdown(by_model: dict[str, dict[float, list[QueryOutcome]]], image: str | None) -> str:
    """A table per model: query length -> false-match rate and recall at the operating point; then the PNG."""
    lines = ["## False matches and recall per query length (all SNRs)", ""]
    for name, by_length in by_model.items():
        lines += [
            f"{name}:",
            "",
            "| query (s) | false-match rate | recall | out-of-database queries | database queries |",
            "|---|---|---|---|---|",
        ]
        for length, outcomes in by_length.items():
            point = operating_point(outcomes)
            lines.append(
                f"| {length:g} | {percent(point['false_match'])} | {percent(point['recall'])} | "
                f"{point['unknown_queries']} | {point['queries']} |"
            )
        lines.append("")
    if image:
        lines += [f"![false-match rate against miss rate per query length]({image})", ""]
    return "\n".join(lines)


def plot_tradeoff(path: str | os.PathLike, by_model: dict[str, dict[float, list[QueryOutcome]]], title: str) -> None:
    """PNG: per model a panel, per length a line of (miss rate, false-match rate) as a score threshold is swept."""
    figure, axes = plt.subplots(1, len(by_model), figsize=(5.5 * len(by_model), 4.2), squeeze=False)
    for axis, (name, by_length) in zip(axes[0], by_model.items(), strict=True):
        for length, outcomes in by_length.items():
            known = [outcome for outcome in outcomes if outcome.true_song is not None]
            unknown = np.array([outcome.score for outcome in outcomes if outcome.true_song is None])
            if not known or not len(unknown):
                continue
            scores = np.array([outcome.score for outcome in known])
            right = np.array([outcome.candidate_song == outcome.true_song for outcome in known])
            thresholds = np.unique(np.concatenate([scores, unknown, [np.inf]]))
            false_match = (unknown[None, :] >= thresholds[:, None]).mean(axis=1)
            miss = 1.0 - ((scores[None, :] >= thresholds[:, None]) & right[None, :]).mean(axis=1)
            (line,) = axis.plot(miss, np.maximum(false_match, 1e-4), label=f"{length:g} s")
            point = operating_point(outcomes)
            axis.plot(1 - point["recall"], max(point["false_match"], 1e-4), "o", color=line.get_color())
        axis.set_yscale("log")
        axis.set_ylim(1e-4 * 0.8, 1.05)
        axis.set_xlim(0, 1)
        axis.set_xlabel("miss rate (database queries not named right)")
        axis.set_ylabel("false-match rate (out-of-database queries)")
        axis.set_title(name, fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(title="query; dot = operating point", fontsize=8, title_fontsize=8)
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path, dpi=110)
