import math

import numpy as np
import pytest

from evaluation.metrics import QueryOutcome, score_outcomes, summarize_trials


def test_hit_rates_on_hand_made_predictions():
    outcomes = [
        QueryOutcome("a", 10.0, "a", 10.25, inference_ms=10.0, search_ms=1.0),  # exact (error exactly 0.25 s)
        QueryOutcome("a", 10.0, "a", 9.3, inference_ms=20.0, search_ms=3.0),  # near only (0.7 s)
        QueryOutcome("b", 3.0, "b", 5.0),  # right song, wrong place: song hit only
        QueryOutcome("b", 3.0, "a", 3.0),  # wrong song at the right offset: miss
        QueryOutcome("c", 0.0, None, 0.0),  # no match: miss
        QueryOutcome(None, 1.0, "a", 1.0),  # out-of-database query answered: false match
        QueryOutcome(None, 2.0, None, 0.0),  # out-of-database query rejected: correct
        QueryOutcome(None, 4.0, None, 0.0),
    ]
    figures = score_outcomes(outcomes)
    assert figures["queries"] == 5 and figures["unknown_queries"] == 3
    assert figures["accuracy"] == pytest.approx(3 / 5)
    assert figures["exact"] == pytest.approx(1 / 5)
    assert figures["near"] == pytest.approx(2 / 5)
    assert figures["no_match"] == pytest.approx(1 / 5)
    assert figures["false_match"] == pytest.approx(1 / 3)
    assert figures["inference_ms"] == pytest.approx(15.0) and figures["search_ms"] == pytest.approx(2.0)


def test_tolerances_are_configurable_and_rates_without_queries_are_nan():
    outcomes = [QueryOutcome("a", 0.0, "a", 0.5)]
    assert score_outcomes(outcomes)["exact"] == 0.0
    assert score_outcomes(outcomes, exact_tolerance=0.5)["exact"] == 1.0
    only_unknown = score_outcomes([QueryOutcome(None, 0.0, None, 0.0)])
    assert math.isnan(only_unknown["accuracy"]) and only_unknown["false_match"] == 0.0
    assert math.isnan(score_outcomes([QueryOutcome("a", 0.0, "a", 0.0)])["false_match"])


def test_trials_are_summarised_by_mean_and_population_std():
    trials = [
        score_outcomes([QueryOutcome("a", 0.0, "a", 0.0), QueryOutcome("a", 0.0, "b", 0.0)]),  # 50 %
        score_outcomes([QueryOutcome("a", 0.0, "a", 0.0), QueryOutcome("a", 0.0, "a", 0.0)]),  # 100 %
    ]
    summary = summarize_trials(trials)
    assert summary["trials"] == 2 and summary["queries"] == 4
    assert summary["accuracy_mean"] == pytest.approx(0.75)
    assert summary["accuracy_std"] == pytest.approx(0.25)
    assert math.isnan(summary["false_match_mean"])


def test_score_statistics_guide_the_choice_of_a_threshold():
    outcomes = [QueryOutcome("a", 0.0, "a", 0.0, score=s) for s in (0.9, 0.8, 0.7)]
    outcomes += [QueryOutcome("a", 0.0, "b", 0.0, score=0.95)]  # a wrong answer's score is not a hit score
    outcomes += [QueryOutcome(None, 0.0, "b", 0.0, score=s) for s in np.linspace(0.3, 0.6, 101)]
    figures = score_outcomes(outcomes)
    assert figures["hit_score_median"] == pytest.approx(0.8)
    assert figures["unknown_score_p99"] == pytest.approx(0.597)
