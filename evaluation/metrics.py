"""Hit-rate arithmetic shared by the offline and recording protocols (docs/evaluation.md).

Every query gives one ``QueryOutcome``. For a query from a song in the database:
- song hit (top-1 accuracy): the predicted song is the true song;
- exact hit: song hit and |predicted offset - true offset| <= 0.25 s (half the 0.5 s database
  hop, so a query at any start can reach it);
- near hit: song hit and offset error <= 0.75 s.
A "no match" answer (score under the threshold) is a miss. For a query from a song NOT in the
database any answer other than "no match" is a false match.
Rates are fractions in [0, 1]; reports print them as percentages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_TOLERANCE_SECONDS = 0.25
NEAR_TOLERANCE_SECONDS = 0.75


@dataclass(frozen=True)
class QueryOutcome:
    """One answered query. ``true_song`` is None for a query from a song that is not in the database."""

    true_song: str | None
    true_offset: float
    predicted_song: str | None
    predicted_offset: float
    score: float = float("nan")
    inference_ms: float = float("nan")
    search_ms: float = float("nan")
    candidate_song: str | None = None  # the best candidate, also when the answer is "no match"


def score_outcomes(
    outcomes: list[QueryOutcome],
    exact_tolerance: float = EXACT_TOLERANCE_SECONDS,
    near_tolerance: float = NEAR_TOLERANCE_SECONDS,
) -> dict[str, float]:
    """The figures of one cell (one trial): rates in [0, 1], counts, mean times in ms.

    Keys: ``queries`` and ``unknown_queries`` (counts), ``accuracy``, ``exact``, ``near``,
    ``no_match`` (fractions of in-database queries), ``false_match`` (fraction of out-of-database
    queries answered with a song), ``inference_ms``, ``search_ms`` (means over all queries),
    ``hit_score_median`` (median score of right answers) and ``unknown_score_p99`` (99th
    percentile of out-of-database queries' best scores: a threshold above it keeps the false-match
    rate under about 1 %; the matcher reports the score of a rejected candidate too).
    A rate without queries to measure it on is NaN.
    """
    known = [outcome for outcome in outcomes if outcome.true_song is not None]
    unknown = [outcome for outcome in outcomes if outcome.true_song is None]
    song_hits = np.array([outcome.predicted_song == outcome.true_song for outcome in known], dtype=bool)
    errors = np.array([abs(outcome.predicted_offset - outcome.true_offset) for outcome in known], dtype=np.float64)
    # A small slack so that an error of exactly the tolerance (0.25 s from float sums) counts as a hit.
    slack = 1e-9
    return {
        "queries": len(known),
        "unknown_queries": len(unknown),
        "accuracy": _rate(song_hits),
        "exact": _rate(song_hits & (errors <= exact_tolerance + slack)) if known else float("nan"),
        "near": _rate(song_hits & (errors <= near_tolerance + slack)) if known else float("nan"),
        "no_match": _rate(np.array([outcome.predicted_song is None for outcome in known], dtype=bool)),
        "false_match": _rate(np.array([outcome.predicted_song is not None for outcome in unknown], dtype=bool)),
        "inference_ms": _mean([outcome.inference_ms for outcome in outcomes]),
        "search_ms": _mean([outcome.search_ms for outcome in outcomes]),
        # Best-candidate scores, to choose a threshold: true songs' median, unknown songs' 99th percentile.
        "hit_score_median": _percentile([o.score for o in known if o.predicted_song == o.true_song], 50),
        "unknown_score_p99": _percentile([outcome.score for outcome in unknown], 99),
    }


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else float("nan")


def _percentile(values: list[float], q: float) -> float:
    values = [value for value in values if not np.isnan(value)]
    return float(np.percentile(values, q)) if values else float("nan")


def _mean(values: list[float]) -> float:
    values = [value for value in values if not np.isnan(value)]
    return float(np.mean(values)) if values else float("nan")


RATE_KEYS = (
    "accuracy",
    "exact",
    "near",
    "no_match",
    "false_match",
    "inference_ms",
    "search_ms",
    "hit_score_median",
    "unknown_score_p99",
)


def summarize_trials(trials: list[dict[str, float]]) -> dict[str, float]:
    """Mean and population std over trials of every figure: ``<key>_mean``, ``<key>_std``; counts summed.

    NaN figures (nothing to measure in a trial) are left out of that figure's mean.
    """
    summary: dict[str, float] = {
        "trials": len(trials),
        "queries": int(sum(trial["queries"] for trial in trials)),
        "unknown_queries": int(sum(trial["unknown_queries"] for trial in trials)),
    }
    for key in RATE_KEYS:
        values = np.array([trial[key] for trial in trials], dtype=np.float64)
        values = values[~np.isnan(values)]
        summary[f"{key}_mean"] = float(values.mean()) if len(values) else float("nan")
        summary[f"{key}_std"] = float(values.std()) if len(values) else float("nan")
    return summary
