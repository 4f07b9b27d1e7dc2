"""The "no match" decision (docs/calibration.md): a threshold per number of query rows, fitted for a false-match rate.

A matcher's best candidate has a score (``Match.score``: the mean cosine of the query's rows and
the song's rows aligned at the candidate's offset, for both methods). Out-of-database queries
score higher the fewer rows J they have (a mean over fewer rows spreads more), so one threshold
cannot hold one false-match rate at every query length. ``DecisionRule`` holds a threshold per
fitted J and accepts a candidate when its score reaches the threshold for the query's J:

- between two fitted J the threshold is interpolated linearly in 1 / sqrt(J) (the spread of a
  mean of J similarities), beyond the largest fitted J the largest J's threshold is kept, below
  the smallest the smallest's;
- thresholds are made non-increasing in J (each at least those of longer queries), which can
  only lower the false-match rate where sampling noise made a longer length's fit the higher.

``fit_rule`` chooses each threshold from the best-candidate scores of out-of-database queries:
the lowest threshold such that, with ``confidence``, the true false-match rate is at most the
target (the one-sided binomial bound on the exceedances counted; ``confidence`` 0 gives the
plain empirical quantile). bench/calibration.py compares this rule with others.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binom

from matching.matcher import METHODS, NO_CANDIDATE_SCORE
from models.checkpoint import identity_differences

STATISTICS = ("score", "margin")
# Fewer out-of-database queries than this at one J cannot support a 1 % rate (fit_rule refuses).
MIN_NEGATIVES = 50


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds per number of query rows for one matching method.

    ``rows``: fitted J, ascending; ``thresholds``: the threshold at each (non-increasing);
    ``statistic``: what is compared, ``"score"`` (``Match.score``) or ``"margin"`` (best score
    minus the best other song's, ``Match.margin``).
    """

    method: str
    rows: tuple[int, ...]
    thresholds: tuple[float, ...]
    statistic: str = "score"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, got {self.statistic!r}")
        if not self.rows or len(self.rows) != len(self.thresholds):
            raise ValueError("a decision rule needs one threshold per fitted number of rows")
        if list(self.rows) != sorted(set(self.rows)) or self.rows[0] < 1:
            raise ValueError(f"rows must be distinct positive integers in ascending order, got {self.rows}")
        if not all(math.isfinite(value) for value in self.thresholds):
            raise ValueError(f"thresholds must be finite numbers, got {self.thresholds}")

    def threshold_at(self, rows: int) -> float:
        """The threshold for a query of ``rows`` rows (interpolated in 1/sqrt(J), held beyond the ends)."""
        if rows <= self.rows[0]:
            return float(self.thresholds[0])
        if rows >= self.rows[-1]:
            return float(self.thresholds[-1])
        x = 1.0 / np.sqrt(np.asarray(self.rows, dtype=np.float64))
        # np.interp needs ascending x: 1/sqrt(J) descends as J ascends.
        return float(np.interp(1.0 / math.sqrt(rows), x[::-1], np.asarray(self.thresholds, dtype=np.float64)[::-1]))

    def accepts(self, score: float, margin: float, rows: int) -> bool:
        """True when a best candidate with this score and margin, for a query of ``rows`` rows, is a match."""
        value = score if self.statistic == "score" else finite_margin(self.method, score, margin)
        return bool(value >= self.threshold_at(rows))

    def to_json(self) -> dict:
        return {**asdict(self), "rows": list(self.rows), "thresholds": list(self.thresholds)}

    @classmethod
    def from_json(cls, value: dict, where: str = "decision rule") -> DecisionRule:
        """A rule from ``to_json``'s dict; ValueError naming ``where`` and the problem otherwise."""
        try:
            return cls(
                str(value["method"]),
                tuple(int(row) for row in value["rows"]),
                tuple(float(threshold) for threshold in value["thresholds"]),
                str(value.get("statistic", "score")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: not a valid decision rule ({error})") from None


def finite_margin(method: str, score, margin):
    """``Match.margin`` with "no other song" (inf) read as a margin over the lowest score the method gives."""
    return np.minimum(margin, np.asarray(score) - NO_CANDIDATE_SCORE[method])


def allowed_exceedances(negatives: int, rate: float, confidence: float) -> int:
    """How many of ``negatives`` out-of-database queries may pass a threshold fitted for ``rate``.

    With ``confidence`` c > 0: the largest k such that seeing at most k exceedances would happen
    with probability at most 1 - c if the true rate were ``rate`` (so k exceedances bound the
    true rate below ``rate`` with confidence c); -1 when even 0 exceedances cannot show it. With
    c = 0: floor(rate * negatives), the empirical quantile.
    """
    if confidence <= 0:
        return int(math.floor(rate * negatives + 1e-9))
    k = -1
    while k + 1 <= negatives and binom.cdf(k + 1, negatives, rate) <= 1.0 - confidence:
        k += 1
    return k


def threshold_for(values: np.ndarray, allowed: int) -> float:
    """The lowest threshold that at most ``allowed`` of ``values`` reach (ties at the boundary all rejected)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if allowed >= len(ordered):
        return float(ordered[-1])
    return float(np.nextafter(ordered[max(allowed, 0)], np.inf))


def fit_rule(
    method: str,
    rows: np.ndarray,
    values: np.ndarray,
    rate: float = 0.01,
    confidence: float = 0.99,
    statistic: str = "score",
) -> DecisionRule:
    """Fit thresholds per J on out-of-database queries: (N,) ``rows`` (J of each query), (N,) ``values``.

    ``values`` are the best candidates' scores (or margins, with ``statistic="margin"``). Each
    distinct J needs at least MIN_NEGATIVES queries, and enough that ``confidence`` can be met
    (ValueError naming the J otherwise). Thresholds are then made non-increasing in J.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"the target false-match rate must be in (0, 1), got {rate}")
    if not 0.0 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0, 1), got {confidence}")
    rows, values = np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("fit_rule needs finite values (see finite_margin for margins)")
    fitted_rows, thresholds = [], []
    for row_count in np.unique(rows):
        mine = values[rows == row_count]
        allowed = allowed_exceedances(len(mine), rate, confidence)
        if len(mine) < MIN_NEGATIVES or allowed < 0:
            raise ValueError(
                f"{len(mine)} out-of-database queries of {row_count} rows cannot show a false-match rate of "
                f"{rate:g} (with confidence {confidence:g}); use more songs or queries per song"
            )
        fitted_rows.append(int(row_count))
        thresholds.append(threshold_for(mine, allowed))
    # Non-increasing in J: each threshold at least every longer length's.
    thresholds = list(np.maximum.accumulate(np.asarray(thresholds)[::-1])[::-1])
    return DecisionRule(method, tuple(fitted_rows), tuple(float(value) for value in thresholds), statistic)


def choose_threshold(negative_scores, false_match_rate: float = 0.01) -> float:
    """The lowest threshold at which at most ``false_match_rate`` of out-of-database queries match.

    ``negative_scores``: best-candidate scores (``Match.score``) of queries whose song is not in
    the database. Returns t such that the fraction of negatives with score >= t is at most the
    rate (ties at the boundary are all rejected): one query length, no confidence margin
    (``fit_rule`` fits one threshold per length). Raises ValueError for an empty list or a rate
    outside [0, 1].
    """
    scores = np.asarray(negative_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("choose_threshold needs at least one out-of-database score")
    if not 0.0 <= false_match_rate <= 1.0:
        raise ValueError(f"false_match_rate must be in [0, 1], got {false_match_rate}")
    return threshold_for(scores, allowed_exceedances(len(scores), false_match_rate, 0.0))


def false_match_rate(rule: DecisionRule, rows: np.ndarray, scores: np.ndarray, margins: np.ndarray) -> float:
    """Fraction of out-of-database queries ((N,) arrays) the rule accepts."""
    if len(rows) == 0:
        return float("nan")
    accepted = [rule.accepts(score, margin, int(row)) for row, score, margin in zip(rows, scores, margins, strict=True)]
    return float(np.mean(accepted))


def stored_rule(
    calibration: dict | None, identity: dict | None, method: str, neighbors: int, where: str
) -> tuple[DecisionRule | None, str]:
    """The rule stored with a database for ``method``, or None; plus one line saying which decision is used.

    ``calibration``: the database JSON's ``calibration`` field (``database.calibration``), or
    None. A calibration made by another model (``identity`` differs) or without a rule for
    ``method`` is ignored, and the line says why.
    """
    rerun = "run evaluation/calibrate.py to fit one"
    if calibration is None:
        return None, f"decision: {where} has no calibration, every best candidate is answered ({rerun})"
    stored_model = calibration.get("model") or {}
    if identity is not None and identity_differences(identity, stored_model):
        return None, (
            f"decision: the calibration in {where} was made with model {stored_model.get('model_id', '?')}, "
            f"not {identity.get('model_id', '?')}: ignored, every best candidate is answered ({rerun})"
        )
    if method not in calibration["rules"]:
        return None, f"decision: the calibration in {where} has no rule for method '{method}': ignored ({rerun})"
    rule = DecisionRule.from_json(calibration["rules"][method], f"{where}: calibration.rules.{method}")
    line = (
        f"decision: calibrated rule from {where} ({method}, false-match rate "
        f"{100 * float(calibration['target_false_match_rate']):g} % per query, fitted {calibration['created'][:10]})"
    )
    fitted_neighbors = calibration.get("neighbors")
    if fitted_neighbors is not None and int(fitted_neighbors) != int(neighbors):
        line += f"; fitted with neighbors {fitted_neighbors}, used with {neighbors}: the rate may differ"
    return rule, line
