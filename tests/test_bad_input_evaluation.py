"""The evaluation protocols given bad keys: a one-line error naming the file and the key, and no report."""

import json

import pytest

from common.config import run_script
from evaluation import evaluate_offline, evaluate_recording
from tests.fakes import error_line


@pytest.fixture
def files(tmp_path):
    """Stand-ins for the input files: the keys checked here fail before any of them is read."""
    for folder in ("songs", "noise"):
        (tmp_path / folder).mkdir()
    for name in ("tiny.pt", "demo.json", "low.wav", "playlist.csv"):
        (tmp_path / name).write_text("")
    return tmp_path


def offline_config(root, **changes):
    config = {
        "models": [{"weights": str(root / "tiny.pt"), "database": str(root / "demo.json")}],
        "test_songs": [str(root / "songs")],
        "background_noises": str(root / "noise"),
        "device": "cpu",
        "output_dir": str(root / "report"),
    }
    config.update(changes)
    path = root / "offline.json"
    path.write_text(json.dumps(config))
    return path


def recording_config(root, **changes):
    config = {
        "models": [{"weights": str(root / "tiny.pt"), "database": str(root / "demo.json")}],
        "recording_wavs": [str(root / "low.wav")],
        "csv_path": str(root / "playlist.csv"),
        "true_songs": str(root / "songs"),
        "device": "cpu",
        "output_dir": str(root / "report"),
    }
    config.update(changes)
    path = root / "recording.json"
    path.write_text(json.dumps(config))
    return path


def run(script, config_path) -> int:
    return run_script(script.SCHEMA, "test", script.main, ["--config", str(config_path)])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("device", "gpu", "key 'device': 'gpu' is not a device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"),
        ("max_songs", 0, "key 'max_songs' must be at least 1, got 0"),
        ("n_trials", 0, "key 'n_trials' must be at least 1, got 0"),
    ],
)
def test_an_offline_key_out_of_range_is_a_one_line_error_naming_it(files, capsys, key, value, message):
    config = offline_config(files, **{key: value})
    assert run(evaluate_offline, config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"
    assert not (files / "report").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("recording_wavs", [], "key 'recording_wavs' must list at least one entry, got []"),
        ("timing_queries", -1, "key 'timing_queries' must be at least 0, got -1"),
        ("device", "gpu", "key 'device': 'gpu' is not a device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"),
    ],
)
def test_a_recording_key_out_of_range_is_a_one_line_error_and_writes_no_report(files, capsys, key, value, message):
    config = recording_config(files, **{key: value})
    assert run(evaluate_recording, config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"
    assert not (files / "report").exists()


def test_a_report_folder_that_cannot_be_written_is_a_one_line_error_naming_it(files, capsys):
    (files / "taken").write_text("a file where the folder should go")
    config = offline_config(files, output_dir=str(files / "taken" / "report"))
    assert run(evaluate_offline, config) == 2
    assert (
        error_line(capsys) == f"error: key 'output_dir': cannot write to {files / 'taken' / 'report'} (Not a directory)"
    )
