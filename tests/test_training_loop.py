"""The trainer end to end on tiny generated data: outputs, exact resume, torchrun (gloo), config errors."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from common.audio import write_wav
from common.config import ConfigError, load_config, run_script
from models.checkpoint import load_checkpoint, write_payload
from models.whitening import Whitening
from tests.signals import synth_song
from training.checkpointing import EarlyStopping
from training.config import SCHEMA
from training.loop import train
from training.trainer import main as trainer_main

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def tiny_run(tmp_path):
    """A complete tiny training set-up; returns (config path, config dict)."""
    rng = np.random.default_rng(0)
    for index in range(10):
        write_wav(tmp_path / "songs" / f"song{index}.wav", synth_song(3.0, seed=index))
    for split in ("train", "val"):
        for index in range(2):
            write_wav(tmp_path / f"noise_{split}" / f"n{index}.wav", (0.1 * rng.standard_normal(12000)).astype("f4"))
            decay = np.exp(-np.arange(300) / 60.0) * rng.standard_normal(300)
            write_wav(tmp_path / f"ir_{split}" / f"ir{index}.wav", (0.5 * decay).astype("f4"))
    songs = [f"song{index}.wav" for index in range(10)]
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(songs[:6]))
    (tmp_path / "val.txt").write_text("\n".join(songs[6:]))
    config = {
        "epochs": 2,
        "patience": 5,
        "batch_size": 4,
        "model_name": "tiny.pt",
        "optimizer": "Lamb",
        "output_path": str(tmp_path / "out"),
        "data_path": str(tmp_path / "songs"),
        "lr": 0.05,
        "background_noise_train": str(tmp_path / "noise_train"),
        "background_noise_val": str(tmp_path / "noise_val"),
        "impulse_responses_train": str(tmp_path / "ir_train"),
        "impulse_responses_val": str(tmp_path / "ir_val"),
        "train_pickle": str(tmp_path / "train.pkl"),
        "val_pickle": str(tmp_path / "val.txt"),
        "model_str": "fingerprinter",
        "freq_cut_bool": True,
        "width": 0.125,
        "num_workers": 0,
        "val_windows_per_song": 2,
        "progress": False,
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    return path, config


def loaded(path, **overrides):
    return load_config(path, SCHEMA, [f"{key}={json.dumps(value)}" for key, value in overrides.items()])


def test_a_tiny_run_writes_best_and_last_checkpoints_log_metrics_and_curves(tiny_run):
    path, config = tiny_run
    history = train(loaded(path))
    out = Path(config["output_path"])
    assert [row["epoch"] for row in history] == [0, 1]
    best, last = load_checkpoint(out / "tiny.pt"), load_checkpoint(out / "tiny_last.pt")
    assert "optimizer_state" not in best and "optimizer_state" in last and "scheduler_state" in last
    assert best["config"]["model_str"] == "fingerprinter" and best["width"] == 0.125
    assert best["best"]["val_loss"] == min(row["val_loss"] for row in history)
    rows = [json.loads(line) for line in (out / "tiny_metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1] and rows[0]["chance"] == 1 / 8
    assert rows[1]["lr"] < rows[0]["lr"]  # cosine schedule
    log = (out / "tiny.log").read_text()
    assert "lr_eff = 0.05 x 4 / 640" in log and "epoch 2/2" in log
    assert (out / "tiny_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_killed_after_one_epoch_and_resumed_ends_with_the_same_weights(tiny_run, tmp_path):
    path, config = tiny_run
    train(loaded(path, output_path=str(tmp_path / "straight")))
    train(loaded(path, output_path=str(tmp_path / "resumed")), stop_after_epochs=1)
    history = train(loaded(path, output_path=str(tmp_path / "resumed"), resume=True))
    assert [row["epoch"] for row in history] == [0, 1]
    straight = load_checkpoint(tmp_path / "straight" / "tiny_last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "tiny_last.pt")
    for name, tensor in straight["model_state"].items():
        assert torch.equal(tensor, resumed["model_state"][name]), name
    assert straight["extra"]["history"][1]["val_loss"] == resumed["extra"]["history"][1]["val_loss"]
    lines = (tmp_path / "resumed" / "tiny_metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_init_weights_starts_from_a_checkpoint_with_a_fresh_schedule_and_refuses_another_width(tiny_run, tmp_path):
    path, config = tiny_run
    train(loaded(path, output_path=str(tmp_path / "first"), epochs=1))
    first = load_checkpoint(tmp_path / "first" / "tiny_last.pt")
    warm = str(tmp_path / "first" / "tiny_last.pt")
    history = train(loaded(path, output_path=str(tmp_path / "warm"), init_weights=warm), stop_after_epochs=1)
    cold = train(loaded(path, output_path=str(tmp_path / "cold")), stop_after_epochs=1)
    assert history[0]["epoch"] == 0 and history[0]["lr"] == first["extra"]["history"][0]["lr"]  # fresh schedule
    assert history[0]["val_loss"] != cold[0]["val_loss"]  # but not from a fresh initialisation
    assert "weights from" in (tmp_path / "warm" / "tiny.log").read_text()
    with pytest.raises(ConfigError, match="init_weights.*width 0.125.*width 0.25"):
        train(loaded(path, output_path=str(tmp_path / "other"), init_weights=warm, width=0.25))


def test_init_weights_from_a_whitened_checkpoint_takes_the_network_and_says_so(tiny_run, tmp_path):
    path, _ = tiny_run
    train(loaded(path, output_path=str(tmp_path / "first"), epochs=1))
    payload = load_checkpoint(tmp_path / "first" / "tiny.pt")
    whitening = Whitening.fit(np.random.default_rng(0).standard_normal((500, 128)), 1.0)
    write_payload(tmp_path / "whitened.pt", {**payload, "whitening": whitening.to_payload()})
    history = train(loaded(path, output_path=str(tmp_path / "warm"), init_weights=str(tmp_path / "whitened.pt")))
    assert history and "its whitening is not trained or kept" in (tmp_path / "warm" / "tiny.log").read_text()
    assert "whitening" not in load_checkpoint(tmp_path / "warm" / "tiny.pt")  # trained weights carry none


def test_resume_and_init_weights_refuse_another_width_or_front_end_in_one_line(tiny_run, tmp_path):
    path, config = tiny_run
    train(loaded(path, output_path=str(tmp_path / "run")), stop_after_epochs=1)
    last = tmp_path / "run" / "tiny_last.pt"
    with pytest.raises(ConfigError, match=r"tiny_last.pt: holds fingerprinter width 0.125, .* width 0.25; use another"):
        train(loaded(path, output_path=str(tmp_path / "run"), resume=True, width=0.25))
    payload = torch.load(last, weights_only=False)
    payload["frontend"]["n_mels"] = 128
    other = tmp_path / "other_front_end.pt"
    torch.save(payload, other)
    with pytest.raises(ConfigError, match="init_weights.*another front end"):
        train(loaded(path, output_path=str(tmp_path / "warm"), init_weights=str(other)))


def test_early_stopping_fires_after_patience_epochs_without_a_lower_validation_loss():
    stopping = EarlyStopping(patience=2)
    improvements = [stopping.update(loss, epoch) for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.0, 1.9, 1.95])]
    assert improvements == [True, True, False, False, True, False] and not stopping.should_stop
    stopping.update(1.9, 6)
    assert stopping.should_stop and stopping.best_epoch == 4
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(stopping.state_dict())
    assert restored.should_stop and restored.best_loss == 1.9


def test_a_two_process_torchrun_with_gloo_completes(tiny_run, tmp_path):
    path, config = tiny_run
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29517",
         "training/trainer.py", "--config", str(path), "--set", "epochs=1", "--set", "device=\"cpu\""],
        cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x 2 process(es)" in result.stdout and "(2 per process)" in result.stdout
    assert result.stdout.count("epoch 1/1") == 1  # only rank 0 reports
    assert load_checkpoint(Path(config["output_path"]) / "tiny.pt")["epoch"] == 0


def run_trainer(path, capsys):
    status = run_script(SCHEMA, "trainer", lambda config: None, ["--config", str(path)])
    return status, capsys.readouterr().err


def test_an_unknown_key_is_an_error_naming_it_and_the_closest_valid_key(tiny_run, tmp_path, capsys):
    path, config = tiny_run
    path.write_text(json.dumps({**config, "batchsize": 8}))
    status, error = run_trainer(path, capsys)
    assert status == 2 and "unknown key 'batchsize'" in error and "batch_size" in error


def test_a_missing_path_is_an_error_naming_the_key_and_the_path(tiny_run, capsys):
    path, config = tiny_run
    path.write_text(json.dumps({**config, "impulse_responses_val": "/no/such/folder"}))
    status, error = run_trainer(path, capsys)
    assert status == 2 and "impulse_responses_val" in error and "/no/such/folder" in error


def test_python_true_in_the_config_is_an_error_that_says_how_json_spells_it(tiny_run, capsys):
    path, config = tiny_run
    path.write_text(json.dumps(config).replace('"freq_cut_bool": true', '"freq_cut_bool": True'))
    status, error = run_trainer(path, capsys)
    assert status == 2 and "JSON spells Python's True as true" in error


def test_a_missing_required_key_and_a_wrong_type_are_errors_naming_the_key(tiny_run, capsys):
    path, config = tiny_run
    path.write_text(json.dumps({k: v for k, v in config.items() if k != "lr"}))
    assert "missing required key(s): 'lr'" in run_trainer(path, capsys)[1]
    path.write_text(json.dumps({**config, "optimizer": "SGD"}))
    assert "'optimizer' must be one of 'Lamb', 'Adam'" in run_trainer(path, capsys)[1]


def test_the_trainer_reports_a_bad_batch_size_in_one_line(tiny_run, capsys):
    path, _ = tiny_run
    status = run_script(SCHEMA, "trainer", trainer_main, ["--config", str(path), "--set", "batch_size=1"])
    assert status == 2
    assert capsys.readouterr().err.startswith("error: key 'batch_size' (1) must be a multiple")


def test_a_width_the_model_cannot_take_is_a_config_error(tiny_run, capsys):
    path, _ = tiny_run
    status = run_script(SCHEMA, "trainer", trainer_main, ["--config", str(path), "--set", "width=0.0625"])
    assert status == 2 and "key 'width' 0.0625 does not fit fingerprinter" in capsys.readouterr().err


def test_the_published_recipe_configs_use_the_seed_readme_keys():
    readme_keys = {
        "epochs", "patience", "batch_size", "model_name", "optimizer", "output_path", "data_path", "lr",
        "background_noise_train", "background_noise_val", "impulse_responses_train", "impulse_responses_val",
        "train_pickle", "val_pickle", "model_str", "freq_cut_bool",
    }  # fmt: skip
    root = Path(__file__).resolve().parent.parent / "configs"
    for model_str in ("fingerprinter", "audsearch"):
        config = json.loads((root / f"train_{model_str}.json").read_text())
        assert set(config) == readme_keys and config["model_str"] == model_str
        assert (config["batch_size"], config["optimizer"], config["lr"]) == (256, "Lamb", 1e-3)
        assert (config["epochs"], config["patience"], config["freq_cut_bool"]) == (120, 30, True)
    assert set(json.loads((root / "train_demo.json").read_text())) <= set(SCHEMA.names())
