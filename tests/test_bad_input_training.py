"""The trainer given bad keys: a one-line error naming the file and the key, and nothing written outside output_path."""

import json

import pytest

from common.config import run_script
from tests.fakes import error_line
from training.config import SCHEMA
from training.trainer import main


@pytest.fixture
def config_file(tmp_path):
    """Factory: a trainer config over empty input folders (every error here comes before any song is read)."""
    for folder in ("songs", "noise_train", "noise_val", "ir_train", "ir_val"):
        (tmp_path / folder).mkdir()

    def make(**changes):
        config = {
            "epochs": 1,
            "patience": 1,
            "batch_size": 4,
            "model_name": "tiny.pt",
            "optimizer": "Adam",
            "output_path": str(tmp_path / "runs" / "out"),
            "data_path": str(tmp_path / "songs"),
            "lr": 0.05,
            "background_noise_train": str(tmp_path / "noise_train"),
            "background_noise_val": str(tmp_path / "noise_val"),
            "impulse_responses_train": str(tmp_path / "ir_train"),
            "impulse_responses_val": str(tmp_path / "ir_val"),
            "model_str": "fingerprinter",
            "freq_cut_bool": False,
            "width": 0.125,
            "device": "cpu",
            "progress": False,
        }
        config.update(changes)
        path = tmp_path / "train.json"
        path.write_text(json.dumps(config))
        return path

    return make


def run(config_path) -> int:
    return run_script(SCHEMA, "test", main, ["--config", str(config_path)])


@pytest.mark.parametrize("name", ["../x.pt", "sub/x.pt", "/tmp/x.pt", "", ".pt"])
def test_a_model_name_outside_output_path_or_hidden_is_refused_before_anything_is_written(
    tmp_path, config_file, capsys, name
):
    config = config_file(model_name=name)
    assert run(config) == 2
    assert error_line(capsys).startswith(f"error: {config}: key 'model_name': ")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_workers", -1, "key 'num_workers' must be at least 0, got -1"),
        ("val_windows_per_song", 0, "key 'val_windows_per_song' must be at least 1, got 0"),
        ("windows_per_song", 0, "key 'windows_per_song' must be at least 1, got 0"),
        ("batch_size", 0, "key 'batch_size' must be at least 1, got 0"),
    ],
)
def test_a_count_below_its_lower_bound_is_a_one_line_error_naming_the_key(config_file, capsys, key, value, message):
    config = config_file(**{key: value})
    assert run(config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"


def test_an_output_path_that_cannot_be_written_is_a_one_line_error_naming_it(tmp_path, config_file, capsys):
    (tmp_path / "runs").write_text("a file where the folder should go")
    config = config_file()
    assert run(config) == 2
    assert error_line(capsys) == (
        f"error: {config}: key 'output_path': cannot write to {tmp_path / 'runs' / 'out'} (Not a directory)"
    )
