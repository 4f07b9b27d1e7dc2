"""The calibrated "no match" rule: its fit, its interpolation, the matcher using it, its place in the database JSON."""

import json

import numpy as np
import pytest

from common.audio import write_wav
from common.config import ConfigError, validate
from database import Database, DatabaseError
from database.calibration import read_calibration, store_calibration
from evaluation.calibration import SCHEMA, run_calibration, song_files
from matching.decision import DecisionRule, allowed_exceedances, fit_rule, stored_rule
from matching.matcher import Matcher
from matching.recognizer import Recognizer
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.fakes import save_tiny_checkpoint
from tests.signals import synth_song

SR = 8000


def test_a_rule_fitted_per_row_count_holds_the_false_match_rate_at_every_length():
    rng = np.random.default_rng(0)
    rows = np.repeat([1, 3, 9, 19], 2000)
    # Out-of-database scores spread more the fewer rows a query has, as a mean of J similarities does.
    scores = 0.6 + rng.standard_normal(len(rows)) * 0.15 / np.sqrt(rows)
    rule = fit_rule("sequence", rows[::2], scores[::2], rate=0.01, confidence=0.95)
    assert rule.rows == (1, 3, 9, 19)
    assert list(rule.thresholds) == sorted(rule.thresholds, reverse=True)  # non-increasing in J
    for row_count in (1, 3, 9, 19):
        held_out = scores[1::2][rows[1::2] == row_count]
        rate = np.mean([rule.accepts(score, 0.0, row_count) for score in held_out])
        assert rate <= 0.015, (row_count, rate)
    # One threshold for every length would let short queries through far more often.
    pooled = fit_rule("sequence", np.ones_like(rows[::2]), scores[::2], rate=0.01, confidence=0.95)
    short = scores[1::2][rows[1::2] == 1]
    assert np.mean(short >= pooled.threshold_at(1)) > 0.02


def test_thresholds_are_interpolated_between_fitted_lengths_and_held_beyond_them():
    rule = DecisionRule("sequence", (1, 9), (0.9, 0.7))
    assert rule.threshold_at(1) == 0.9 and rule.threshold_at(9) == 0.7
    assert rule.threshold_at(29) == 0.7 and rule.threshold_at(0) == 0.9
    # Linear in 1/sqrt(J): J=4 lies halfway between 1/sqrt(1)=1 and 1/sqrt(9)=1/3 at 1/2 ... 0.75 of the way.
    assert rule.threshold_at(4) == pytest.approx(0.7 + 0.2 * (0.5 - 1 / 3) / (1 - 1 / 3))
    assert DecisionRule.from_json(rule.to_json()) == rule
    with pytest.raises(ValueError, match="calibration.rules.vote"):
        DecisionRule.from_json({"method": "vote", "rows": [1]}, "calibration.rules.vote")


def test_the_confidence_bound_allows_fewer_exceedances_than_the_plain_quantile():
    assert allowed_exceedances(1000, 0.01, 0.0) == 10
    assert 0 <= allowed_exceedances(1000, 0.01, 0.95) < 10
    assert allowed_exceedances(100, 0.01, 0.95) == -1  # 100 queries cannot show 1 % with 95 % confidence
    with pytest.raises(ValueError, match="cannot show a false-match rate"):
        fit_rule("sequence", np.ones(100, int), np.zeros(100))


@pytest.fixture(scope="module")
def small_database(tmp_path_factory, tiny_checkpoint):
    """Three indexed songs, a folder of out-of-database songs, noise; the database's JSON path."""
    root = tmp_path_factory.mktemp("calibration")
    encoder, payload = load_encoder(tiny_checkpoint)
    songs = [(f"song{n}", synth_song(8.0, n)) for n in range(3)]
    Database.build(
        [(name, embed_samples(encoder, audio), 8.0, "") for name, audio in songs], identity=model_identity(payload)
    ).save(root / "db.index")
    for n in range(4):
        write_wav(root / "unknown" / f"other{n}.wav", synth_song(12.0, 50 + n))
    write_wav(root / "noise" / "n.wav", 0.1 * np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32))
    return root


def calibration_config(root, weights, **changes):
    values = {
        "weights": str(weights),
        "database": str(root / "db.json"),
        "songs": [str(root / "unknown")],
        "background_noises": str(root / "noise"),
        "query_lengths": [1, 2],
        "snrs": [10],
        "queries_per_song": 80,
        "confidence": 0.0,
        "device": "cpu",
        "output_dir": str(root / "report"),
        **changes,
    }
    return validate(values, SCHEMA)


def test_calibration_is_stored_in_the_database_json_and_used_when_no_threshold_is_given(
    small_database, tiny_checkpoint
):
    json_path = small_database / "db.json"
    before = json.loads(json_path.read_text())
    assert read_calibration(json_path) is None
    uncalibrated = Recognizer.load(tiny_checkpoint, json_path)
    assert uncalibrated.matcher.rule is None and "has no calibration" in uncalibrated.decision_note

    calibration = run_calibration(calibration_config(small_database, tiny_checkpoint))
    stored = read_calibration(json_path)
    assert stored == json.loads(json.dumps(calibration))
    assert stored["model"] == uncalibrated.identity and stored["target_false_match_rate"] == 0.01
    assert set(stored["rules"]) == {"sequence", "vote"} and len(stored["data"]["songs"]) == 4
    assert stored["rules"]["sequence"]["rows"] == [1, 3]  # 1 s and 2 s queries at the 0.5 s hop
    after = json.loads(json_path.read_text())
    assert {key: value for key, value in after.items() if key != "calibration"} == before
    Database.open(json_path)  # the index files still match the rewritten JSON
    assert (small_database / "report" / "calibration.md").is_file()

    calibrated = Recognizer.load(tiny_checkpoint, json_path)
    assert calibrated.matcher.rule is not None and "calibrated rule" in calibrated.decision_note
    vote = Recognizer.load(tiny_checkpoint, json_path, method="vote")
    assert vote.matcher.rule.method == "vote"
    overridden = Recognizer.load(tiny_checkpoint, json_path, threshold=0.5)
    assert overridden.matcher.rule is None and overridden.matcher.threshold == 0.5
    assert "from the config" in overridden.decision_note
    # Calibrating on songs the database holds would measure nothing.
    with pytest.raises(ConfigError, match="is in the database"):
        write_wav(small_database / "known" / "song1.wav", synth_song(8.0, 1))
        run_calibration(calibration_config(small_database, tiny_checkpoint, songs=[str(small_database / "known")]))


def test_a_calibration_made_by_another_model_is_ignored_with_one_line(small_database, tiny_checkpoint, tmp_path):
    other = save_tiny_checkpoint(tmp_path / "other.pt", seed=7)
    calibration = {
        "created": "2026-01-01T00:00:00+00:00",
        "model": model_identity(load_encoder(other)[1]),
        "target_false_match_rate": 0.01,
        "rules": {"sequence": {"method": "sequence", "rows": [1], "thresholds": [0.5]}},
    }
    identity = model_identity(load_encoder(tiny_checkpoint)[1])
    rule, line = stored_rule(calibration, identity, "sequence", 4, "db.json")
    assert rule is None and "was made with model" in line and "ignored" in line and "\n" not in line
    rule, line = stored_rule({**calibration, "model": identity}, identity, "vote", 4, "db.json")
    assert rule is None and "no rule for method 'vote'" in line
    rule, line = stored_rule({**calibration, "model": identity}, identity, "sequence", 10, "db.json")
    assert rule.thresholds == (0.5,) and "fitted with neighbors" not in line  # no neighbors recorded


def test_a_malformed_calibration_field_is_a_one_line_database_error(tmp_path, small_database):
    copy = tmp_path / "db.json"
    copy.write_text((small_database / "db.json").read_text())
    store_calibration(copy, {"created": "x"})
    with pytest.raises(DatabaseError, match="'calibration' lacks 'model'"):
        read_calibration(copy)
    store_calibration(copy, None)
    assert read_calibration(copy) is None


def test_the_matcher_decides_with_the_rule_for_the_query_length(small_database):
    database = Database.open(small_database / "db.json")
    rule = DecisionRule("sequence", (1, 9), (2.0, -2.0))  # rejects every 1-row query, accepts 9-row ones
    matcher = Matcher(database, rule=rule)
    query = database.song_rows(0, 0, 9)
    assert matcher.match(query).song == "song0"
    assert matcher.match(query[:1]).song is None and matcher.match(query[:1]).ranked[0][0] == "song0"
    assert Matcher(database, rule=rule, threshold=0.0).match(query[:1]).song == "song0"  # a threshold overrides
    with pytest.raises(ValueError, match="rule is for method 'sequence'"):
        Matcher(database, method="vote", rule=rule)


def test_song_lists_come_from_folders_and_data_manifests(tmp_path):
    write_wav(tmp_path / "data" / "music" / "train" / "a.wav", synth_song(2.0, 1))
    write_wav(tmp_path / "data" / "music" / "train" / "b.wav", synth_song(2.0, 2))
    manifest = tmp_path / "data" / "music" / "val.csv"
    manifest.write_text(
        "file,seconds,package,package_version,source_path,channel,licence,licence_file,sha1\n"
        "music/train/b.wav,2.0,p,1,x,mix,GPL,l,0\n"
    )
    assert song_files([str(manifest)]) == [tmp_path / "data" / "music" / "train" / "b.wav"]
    assert len(song_files([str(tmp_path / "data" / "music" / "train"), str(manifest)])) == 2


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"target_false_match_rate": 1.5}, "'target_false_match_rate' must be in \\(0, 1\\)"),
        ({"methods": ["votes"]}, "key 'methods' must list some of"),
        ({"query_lengths": [0.5]}, "key 'query_lengths' must be"),
    ],
)
def test_bad_calibration_settings_are_one_line_errors_naming_the_key(small_database, tiny_checkpoint, changes, message):
    with pytest.raises(ConfigError, match=message):
        run_calibration(calibration_config(small_database, tiny_checkpoint, **changes))


def test_queries_embedded_in_shared_batches_get_the_rows_of_queries_embedded_alone(small_database, tiny_checkpoint):
    recognizer = Recognizer.load(tiny_checkpoint, small_database / "db.json")
    queries = [synth_song(seconds, seed) for seed, seconds in enumerate((1, 2.3, 5))]
    batched = recognizer.embed_many(queries)
    for query, rows in zip(queries, batched, strict=True):
        np.testing.assert_allclose(rows, recognizer.embed(query)[0], atol=1e-5)
