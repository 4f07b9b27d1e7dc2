"""The landmark table as a model of its own: offline and real-world protocols beside a neural model, and live."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.audio import write_wav
from common.config import ConfigError, load_config, run_script, validate
from common.errors import UserError
from database import Database
from evaluation import evaluate_recording, simulate_recording
from evaluation.live_query import SCHEMA as LIVE_SCHEMA
from evaluation.models_under_test import parse_model_specs
from evaluation.offline_protocol import SCHEMA as OFFLINE_SCHEMA
from evaluation.offline_protocol import run_offline
from landmarks import LandmarkConfig, LandmarkTable
from live.session import run_live
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.test_landmarks import SR, song_in_key

SONG_SECONDS = 20.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint):
    """Three songs in a landmark table and a tiny neural model's database, one unknown song, noise."""
    root = tmp_path_factory.mktemp("landmark_evaluation")
    (root / "tiny.pt").symlink_to(tiny_checkpoint)
    encoder, payload = load_encoder(root / "tiny.pt")
    indexed = []
    for seed in range(3):
        samples = song_in_key(seed, 2.5 * seed, SONG_SECONDS)
        path = root / "songs" / f"song_{seed}.wav"
        write_wav(path, samples)
        indexed.append((path.stem, embed_samples(encoder, samples), SONG_SECONDS, str(path)))
    write_wav(root / "unknown" / "other.wav", song_in_key(77, 1.25, SONG_SECONDS))
    write_wav(root / "noise" / "hum.wav", 0.1 * np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32))
    Database.build(indexed, identity=model_identity(payload)).save(root / "db.index")
    LandmarkTable.from_folder(root / "songs", LandmarkConfig.preset("dense"), progress=False).save(root / "table.npz")
    return root


def models(root) -> list[dict]:
    return [
        {"name": "tiny neural", "weights": str(root / "tiny.pt"), "database": str(root / "db.json")},
        {"kind": "landmarks", "name": "landmarks", "database": str(root / "table.npz")},
    ]


def test_the_offline_protocol_reports_a_landmark_row_beside_the_neural_one(setup):
    config = validate(
        {
            "models": models(setup),
            "test_songs": [str(setup / "songs")],
            "unknown_songs": [str(setup / "unknown")],
            "background_noises": str(setup / "noise"),
            "query_lengths": [4],
            "snrs": [10],
            "n_trials": 1,
            "queries_per_song": 4,
            "device": "cpu",
            "output_dir": str(setup / "offline"),
        },
        OFFLINE_SCHEMA,
    )
    cells = {cell["model"]: cell for cell in run_offline(config)}
    assert set(cells) == {"tiny neural", "landmarks"}
    landmark = cells["landmarks"]
    assert landmark["queries"] == 12 and landmark["unknown_queries"] == 4
    assert landmark["accuracy_mean"] >= 0.9 and landmark["exact_mean"] >= 0.9
    assert landmark["false_match_mean"] == 0.0  # the unknown song is rejected by the table's rule
    report = (setup / "offline" / "results.md").read_text()
    assert "landmarks" in report and "tiny neural" in report and "landmark table" in report
    metadata = json.loads((setup / "offline" / "results.json").read_text())["metadata"]
    assert {model["name"] for model in metadata["models"]} == {"tiny neural", "landmarks"}


def test_the_real_world_protocol_answers_with_the_landmark_table(setup, capsys):
    simulation = setup / "simulate.json"
    simulation.write_text(
        json.dumps(
            {
                "true_songs": str(setup / "songs"),
                "song_count": 3,
                "lead_in_seconds": 1.0,
                "seed": 2,
                "output_dir": str(setup / "recordings"),
                "snr_levels": {"low_t": 15},
                "background_noises": str(setup / "noise"),
                "room_rt60": 0.3,
                "room_size": [5.0, 4.0, 3.0],
            }
        )
    )
    assert (
        run_script(simulate_recording.SCHEMA, "simulate", simulate_recording.main, ["--config", str(simulation)]) == 0
    )
    evaluation = setup / "recording.json"
    evaluation.write_text(
        json.dumps(
            {
                "models": models(setup),
                "recording_wavs": [str(setup / "recordings" / "low_t.wav")],
                "csv_path": str(setup / "recordings" / "playlist.csv"),
                "true_songs": str(setup / "songs"),
                "query_lengths": [5],
                "device": "cpu",
                "output_dir": str(setup / "report_recording"),
            }
        )
    )
    assert run_script(evaluate_recording.SCHEMA, "eval", evaluate_recording.main, ["--config", str(evaluation)]) == 0
    cells = json.loads((setup / "report_recording" / "results.json").read_text())["cells"]
    landmark = next(cell for cell in cells if cell["model"] == "landmarks")
    assert landmark["queries"] >= 9  # 3 songs of about 20 s, three or four 5 s queries each
    assert landmark["accuracy_mean"] >= 0.9
    assert landmark["inference_ms_mean"] > 0 and landmark["search_ms_mean"] > 0


@pytest.mark.parametrize(
    "entry, named",
    [
        ({"kind": "landmarks", "database": "missing.npz"}, "missing.npz"),
        ({"kind": "landmarks", "database": "TABLE", "nprobe": 4}, "nprobe"),
        ({"kind": "landmarks", "database": "TABLE", "min_margin": -1}, "min_margin"),
        ({"kind": "landmark", "database": "TABLE"}, "kind"),
        ({"kind": "landmarks"}, "database"),
    ],
)
def test_a_bad_landmark_entry_is_a_one_line_error_naming_the_key(setup, entry, named):
    entry = {key: str(setup / "table.npz") if value == "TABLE" else value for key, value in entry.items()}
    with pytest.raises(ConfigError) as error:
        parse_model_specs([entry], "eval.json")
    message = str(error.value)
    assert "\n" not in message and named in message and "models[1]" in message


def test_live_recognition_runs_on_a_landmark_table_through_the_file_source(setup, tmp_path):
    songs = [song_in_key(seed, 2.5 * seed, SONG_SECONDS) for seed in (1, 0)]
    write_wav(tmp_path / "radio.wav", np.concatenate([songs[0][: 12 * SR], songs[1][: 12 * SR]]))
    config_path = tmp_path / "live.json"
    config_path.write_text(json.dumps({"kind": "landmarks", "database": str(setup / "table.npz"), "duration": 4.0}))
    lines = []
    summary = run_live(
        load_config(config_path, LIVE_SCHEMA), tmp_path / "radio.wav", speed=0, out=lines.append, max_seconds=24
    )
    assert summary.song_names == ["song_1", "song_0"]
    assert any("landmark rule" in line for line in lines)


def test_live_without_weights_for_a_neural_database_is_a_one_line_error(setup, tmp_path):
    config_path = tmp_path / "live.json"
    config_path.write_text(json.dumps({"database": str(setup / "db.json")}))
    with pytest.raises(UserError, match="live.json: key .weights. is required"):
        run_live(load_config(config_path, LIVE_SCHEMA), tmp_path / "none.wav", speed=0, out=lambda line: None)
