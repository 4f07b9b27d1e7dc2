import json

import numpy as np
import pytest

from common.audio import AudioError, write_wav
from common.config import ConfigError, run_script, validate
from database import Database
from evaluation import evaluate_offline
from evaluation.models_under_test import parse_model_specs
from evaluation.offline_protocol import SCHEMA, run_offline
from evaluation.queries import QueryDegrader, checked_query_lengths, checked_snrs
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.signals import synth_song

SR = 8000


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint):
    """Three indexed songs (whole multiples of the 0.5 s hop), one song not in the database, noise, a tiny model."""
    root = tmp_path_factory.mktemp("offline")
    (root / "tiny.pt").symlink_to(tiny_checkpoint)
    encoder, payload = load_encoder(root / "tiny.pt")
    indexed = []
    for number, seconds in enumerate((6.0, 5.0, 4.5)):
        samples = synth_song(seconds, 60 + number)
        path = root / "test" / f"t{number}.wav"
        write_wav(path, samples)
        indexed.append((path.stem, embed_samples(encoder, samples), seconds, str(path)))
    write_wav(root / "unknown" / "u0.wav", synth_song(5.0, 70))
    write_wav(root / "noise" / "n0.wav", 0.1 * np.random.default_rng(1).standard_normal(3 * SR).astype(np.float32))
    Database.build(indexed, identity=model_identity(payload)).save(root / "db.index")
    return root


def offline_config(root, **changes):
    values = {
        "models": [{"weights": str(root / "tiny.pt"), "database": str(root / "db.json")}],
        "test_songs": [str(root / "test")],
        "unknown_songs": [str(root / "unknown")],
        "background_noises": str(root / "noise"),
        "query_lengths": [1, 2],
        "snrs": [0, None],
        "n_trials": 2,
        "queries_per_song": 3,
        "device": "cpu",
        "output_dir": str(root / "report"),
        **changes,
    }
    return validate(values, SCHEMA)


FIGURES = ("accuracy_mean", "exact_mean", "near_mean", "false_match_mean", "queries", "unknown_queries")


def test_the_same_seed_gives_the_same_table(setup, capsys):
    first = run_offline(offline_config(setup, output_dir=str(setup / "first")))
    second = run_offline(offline_config(setup, output_dir=str(setup / "second")))
    assert [[cell[key] for key in FIGURES] for cell in first] == [[cell[key] for key in FIGURES] for cell in second]
    assert [[trial["accuracy"] for trial in cell["per_trial"]] for cell in first] == [
        [trial["accuracy"] for trial in cell["per_trial"]] for cell in second
    ]

    def accuracy_table(folder):
        text = (setup / folder / "results.md").read_text()
        return text[text.index("song top-1 accuracy") : text.index("## ", text.index("song top-1 accuracy"))]

    assert accuracy_table("first") == accuracy_table("second")
    assert "| query (s) / SNR | 0 dB | clean |" in capsys.readouterr().out
    # 3 indexed songs x 3 queries per trial, 2 trials; the unknown song's queries are counted apart.
    assert first[0]["queries"] == 18 and first[0]["unknown_queries"] == 6
    # Fewer lengths and SNRs in another order: the remaining cells see the very same queries.
    subset = run_offline(offline_config(setup, output_dir=str(setup / "subset"), query_lengths=[2], snrs=[None, 0]))

    def rates(cell):
        keys = ("accuracy", "exact", "near", "false_match", "queries", "unknown_queries")
        return [[trial[key] for key in keys] for trial in cell["per_trial"]]

    by_cell = {(cell["query_seconds"], cell["condition"]): rates(cell) for cell in first}
    for cell in subset:
        assert rates(cell) == by_cell[(cell["query_seconds"], cell["condition"])]


def test_grid_aligned_clean_queries_of_database_audio_are_all_exact_hits(setup):
    cells = run_offline(
        offline_config(setup, aligned=True, snrs=[None], query_lengths=[1, 3], n_trials=1, unknown_songs=[])
    )
    for cell in cells:
        assert cell["accuracy_mean"] == 1.0 and cell["exact_mean"] == 1.0
    # Every non-overlapping segment: 6 + 5 + 4 one-second queries; 2 + 1 + 1 three-second ones.
    assert [cell["queries"] for cell in cells] == [15, 4]


def test_false_match_rate_follows_the_threshold(setup):
    model = {"weights": str(setup / "tiny.pt"), "database": str(setup / "db.json")}
    cells = run_offline(
        offline_config(
            setup,
            models=[{**model, "name": "open"}, {**model, "name": "closed", "threshold": 1.5}],
            snrs=[10],
            query_lengths=[2],
            n_trials=1,
        )
    )
    open_cell, closed_cell = cells
    assert open_cell["false_match_mean"] == 1.0  # no threshold: every out-of-database query gets a song
    assert closed_cell["false_match_mean"] == 0.0  # a score of 1.5 is unreachable: nothing is accepted
    assert closed_cell["no_match_mean"] == 1.0 and closed_cell["accuracy_mean"] == 0.0
    report = json.loads((setup / "report" / "results.json").read_text())
    assert [model["threshold"] for model in report["metadata"]["models"]] == [None, 1.5]


def test_the_script_reports_a_bad_model_entry_in_one_line(setup, tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(
        json.dumps(
            {
                "models": [{"weights": str(setup / "tiny.pt"), "database": str(setup / "db.json"), "nprobes": 4}],
                "test_songs": [str(setup / "test")],
                "background_noises": str(setup / "noise"),
            }
        )
    )
    assert run_script(evaluate_offline.SCHEMA, "offline", evaluate_offline.main, ["--config", str(config)]) == 2
    assert "models[1]: unknown key 'nprobes' (did you mean 'nprobe'?)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="missing required key 'database'"):
        parse_model_specs([{"weights": str(setup / "tiny.pt")}], "cfg")


@pytest.mark.parametrize("with_room", [False, True])
def test_a_degraded_query_carries_noise_at_the_target_snr(with_room):
    rng = np.random.default_rng(4)
    noise = [rng.standard_normal(SR).astype(np.float32), 0.01 * rng.standard_normal(3 * SR).astype(np.float32)]
    rooms = [np.exp(-np.arange(800) / 100.0).astype(np.float32) * rng.standard_normal(800).astype(np.float32)]
    degrade = QueryDegrader(noise, rooms if with_room else None, None)
    query = synth_song(2.0, 9)
    for snr in (0.0, 7.5):
        noisy = degrade(query, snr, np.random.default_rng(11))
        clean = degrade(query, None, np.random.default_rng(11))  # the same room draw, no noise
        added = noisy - clean
        measured = 20 * np.log10(
            np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
        )
        assert measured == pytest.approx(snr, abs=0.05)
        assert np.any(clean != query) == with_room


def test_a_degrader_from_folders_starts_each_ir_at_its_peak_and_skips_unusable_files(tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "noise").mkdir()
    (tmp_path / "rooms").mkdir()
    write_wav(tmp_path / "noise" / "hum.wav", 0.1 * rng.standard_normal(SR).astype(np.float32))
    write_wav(tmp_path / "noise" / "silent.wav", np.zeros(SR, np.float32))
    (tmp_path / "noise" / "broken.wav").write_bytes(b"not audio")
    response = np.zeros(400, np.float32)
    response[100:] = np.exp(-np.arange(300) / 50.0)  # 100 samples of silence before the direct sound
    write_wav(tmp_path / "rooms" / "room.wav", response)
    degrade, skipped = QueryDegrader.from_folders(tmp_path / "noise", tmp_path / "rooms", SR)
    assert len(degrade.noise_clips) == 1 and len(skipped) == 2
    assert any("silent.wav" in line for line in skipped) and any("broken.wav" in line for line in skipped)
    assert len(degrade.room.responses) == 1 and np.argmax(np.abs(degrade.room.responses[0])) == 0
    assert QueryDegrader.from_folders(tmp_path / "noise", None, SR)[0].room is None
    with pytest.raises(AudioError, match="rooms_empty"):
        (tmp_path / "rooms_empty").mkdir()
        QueryDegrader.from_folders(tmp_path / "noise", tmp_path / "rooms_empty", SR)


@pytest.mark.parametrize(
    "key, values",
    [("query_lengths", []), ("query_lengths", [0.5]), ("query_lengths", [True]), ("snrs", []), ("snrs", ["5"])],
)
def test_bad_query_lengths_and_snrs_are_one_line_errors_naming_the_key(key, values):
    check = checked_query_lengths if key == "query_lengths" else checked_snrs
    with pytest.raises(ConfigError, match=rf"^eval.json: key '{key}' must be a list of numbers"):
        check(values, "eval.json")
    assert checked_query_lengths([1, 2.5], "x") == [1.0, 2.5] and checked_snrs([None, 5], "x") == [None, 5.0]


def test_model_paths_are_also_looked_for_beside_the_config(tmp_path, monkeypatch):
    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"")
    (folder / "db.json").write_text("{}")
    monkeypatch.chdir(tmp_path)  # the working folder holds neither file
    entry = {"weights": "model.pt", "database": "db.json"}
    (spec,) = parse_model_specs([entry], "experiment/eval.json", base_dir=folder)
    assert spec.weights == str(folder / "model.pt") and spec.database == str(folder / "db.json")
    with pytest.raises(ConfigError, match="path does not exist: model.pt"):
        parse_model_specs([entry], "eval.json")
