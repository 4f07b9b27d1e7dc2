"""Whitening: the fitted map, its place in checkpoints (model_id) and the encoder, and the fit command."""

import json

import numpy as np
import pytest
import torch

from common.audio import write_wav
from common.config import ConfigError, load_config
from models import get_model
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_payload
from models.encoder import load_encoder
from models.whitening import Whitening
from tests.signals import synth_song
from training import whitening as whitening_module
from training.loss import top1_retrieval
from training.whitening import SCHEMA, fit_whitening


def anisotropic(n=4000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.array([10.0, 5.0, 2.0, 1.0, 1.0, 0.5, 0.1, 0.01])[:d]
    return rng.standard_normal((n, d)) * scales + 3.0


def test_whitening_equalises_the_spread_and_gives_unit_vectors():
    data = anisotropic()
    white = Whitening.fit(data, shrinkage=1e-9)
    with torch.no_grad():
        mapped = ((torch.from_numpy(data).float() - white.mean) @ white.projection).double().numpy()
        out = white(torch.from_numpy(data).float())
    assert np.allclose(np.cov(mapped, rowvar=False), np.eye(8), atol=0.05)  # whitened before normalising
    assert torch.allclose(out.norm(dim=1), torch.ones(len(data)), atol=1e-5)
    # Shrinkage keeps weak directions from being blown up: variance lambda / (lambda + s * mean lambda).
    shrunk = Whitening.fit(data, shrinkage=1.0)
    variances = np.linalg.eigvalsh(np.cov(((data - data.mean(0)) @ shrunk.projection.double().numpy()), rowvar=False))
    assert variances.max() < 1.0 and variances.min() < 0.01


def test_whitening_refuses_a_bad_fit():
    with pytest.raises(ValueError, match="shrinkage must be positive"):
        Whitening.fit(anisotropic(), 0.0)
    with pytest.raises(ValueError, match="more embeddings than dimensions"):
        Whitening.fit(anisotropic(n=5), 1.0)


def test_a_whitened_checkpoint_has_its_own_model_id_and_the_encoder_applies_it(tmp_path):
    model = get_model("fingerprinter", width=0.125)
    save_checkpoint(tmp_path / "raw.pt", model, "fingerprinter", 0.125)
    raw_encoder, payload = load_encoder(tmp_path / "raw.pt")
    assert raw_encoder.whitening is None
    white = Whitening.fit(np.random.default_rng(1).standard_normal((1000, 128)), 1.0)
    write_payload(tmp_path / "white.pt", {**payload, "whitening": white.to_payload()})
    encoder, white_payload = load_encoder(tmp_path / "white.pt")
    assert white_payload["model_id"] != payload["model_id"]  # an index of raw vectors must refuse it
    wave = torch.randn(3, 8000)
    with torch.no_grad():
        assert torch.allclose(encoder(wave), white(raw_encoder(wave)), atol=1e-5)
    # Changing the whitening after saving is caught like changed weights.
    tampered = torch.load(tmp_path / "white.pt", weights_only=True)
    tampered["whitening"]["mean"] = tampered["whitening"]["mean"] + 0.1
    torch.save(tampered, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match=r"tampered\.pt: the weights do not match"):
        load_checkpoint(tmp_path / "tampered.pt")
    broken = dict(tampered, whitening={"mean": tampered["whitening"]["mean"]})
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"broken\.pt: checkpoint 'whitening' must hold"):
        load_checkpoint(tmp_path / "broken.pt")
    good = torch.load(tmp_path / "white.pt", weights_only=True)["whitening"]
    for name, whitening, message in [
        ("short", {**good, "mean": good["mean"][:64]}, r"does not fit 128-d vectors \(mean \(64,\)"),
        ("nan", {**good, "projection": good["projection"] * float("nan")}, "holds NaN or Inf"),
        ("list", {**good, "mean": good["mean"].tolist()}, "'mean' and 'projection' must be tensors"),
    ]:
        torch.save({**payload, "whitening": whitening}, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError, match=rf"{name}\.pt: checkpoint 'whitening' {message}"):
            load_checkpoint(tmp_path / f"{name}.pt")


def test_constant_embeddings_cannot_be_whitened():
    with pytest.raises(ValueError, match="every eigenvalue is 0"):
        Whitening.fit(np.ones((300, 8)), 1.0)


def test_top1_retrieval_in_chunks_counts_as_one_pass():
    generator = torch.Generator().manual_seed(0)
    anchors = torch.nn.functional.normalize(torch.randn(50, 16, generator=generator), dim=1)
    positives = torch.nn.functional.normalize(anchors + 0.8 * torch.randn(50, 16, generator=generator), dim=1)
    whole = top1_retrieval(anchors, positives)
    assert 0.0 < whole < 1.0 and top1_retrieval(anchors, positives, chunk=7) == whole


@pytest.fixture
def whitening_config(tmp_path):
    """Six 40 s training songs (474 windows: more than 128), two validation songs, noise and IRs."""
    rng = np.random.default_rng(0)
    for index in range(8):
        write_wav(tmp_path / "songs" / f"song{index}.wav", synth_song(40.0 if index < 6 else 5.0, seed=index))
    for index in range(2):
        write_wav(tmp_path / "noise" / f"n{index}.wav", (0.1 * rng.standard_normal(12000)).astype("f4"))
        decay = np.exp(-np.arange(300) / 60.0) * rng.standard_normal(300)
        write_wav(tmp_path / "ir" / f"ir{index}.wav", (0.5 * decay).astype("f4"))
    (tmp_path / "train.txt").write_text("\n".join(f"song{index}.wav" for index in range(6)))
    (tmp_path / "val.txt").write_text("song6.wav\nsong7.wav")
    save_checkpoint(tmp_path / "tiny.pt", get_model("fingerprinter", width=0.125), "fingerprinter", 0.125)
    (tmp_path / "out").mkdir()
    config_path = tmp_path / "whitening.json"
    config_path.write_text(
        json.dumps(
            {
                "weights": str(tmp_path / "tiny.pt"),
                "output": str(tmp_path / "out" / "white.pt"),
                "data_path": str(tmp_path / "songs"),
                "train_pickle": str(tmp_path / "train.txt"),
                "val_pickle": str(tmp_path / "val.txt"),
                "background_noise_val": str(tmp_path / "noise"),
                "impulse_responses_val": str(tmp_path / "ir"),
                "shrinkages": [0.3, 1.0],
                "cache_dir": str(tmp_path / "cache"),
                "val_windows_per_song": 3,
                "device": "cpu",
                "progress": False,
            }
        )
    )
    return config_path


def test_fit_whitening_writes_the_chosen_whitening_and_a_report(whitening_config, tmp_path, monkeypatch, capsys):
    # The tiny untrained network retrieves nothing, so the validation figure is scripted here (none,
    # shrinkage 0.3, shrinkage 1): the choice, the written checkpoint and the refit are what is tested.
    scores = iter([0.5, 0.7, 0.6, 0.5, 0.7, 0.6])
    monkeypatch.setattr(whitening_module, "top1_retrieval", lambda anchors, positives: next(scores))
    result = fit_whitening(load_config(whitening_config, SCHEMA))
    assert result["chosen"] == 0.3 and [row["shrinkage"] for row in result["rows"]] == [None, 0.3, 1.0]
    written = tmp_path / "out" / "white.pt"
    payload = load_checkpoint(written)
    assert payload["whitening"]["shrinkage"] == 0.3
    assert payload["whitening"]["fit"]["validation_top1"] == {"none": 0.5, "0.3": 0.7, "1": 0.6}
    assert payload["model_id"] != load_checkpoint(tmp_path / "tiny.pt")["model_id"]
    assert load_encoder(written)[0].whitening is not None
    report = (tmp_path / "out" / "white_whitening.md").read_text()
    assert "| 0.3 (chosen) | 0.7000 |" in report and "| none (the network's own vectors) | 0.5000 |" in report
    # Refitting the written checkpoint starts from its network's own vectors: the same whitening again.
    again = fit_whitening(load_config(whitening_config, SCHEMA, [f'weights="{written}"']))
    assert "has a whitening (shrinkage 0.3); refitting it" in capsys.readouterr().out
    assert again == result and load_checkpoint(written)["model_id"] == payload["model_id"]


def test_fit_whitening_keeps_the_network_alone_when_no_shrinkage_beats_it(whitening_config, tmp_path, monkeypatch):
    scores = iter([0.5, 0.4, 0.3])
    monkeypatch.setattr(whitening_module, "top1_retrieval", lambda anchors, positives: next(scores))
    assert fit_whitening(load_config(whitening_config, SCHEMA))["chosen"] is None
    assert "whitening" not in load_checkpoint(tmp_path / "out" / "white.pt")


def test_fit_whitening_refuses_too_few_training_windows(whitening_config, tmp_path):
    (tmp_path / "short.txt").write_text("song6.wav")
    config = load_config(whitening_config, SCHEMA, [f'train_pickle="{tmp_path / "short.txt"}"'])
    with pytest.raises(ConfigError, match=r"key 'train_pickle' gives 9 windows; a whitening of 128-d vectors"):
        fit_whitening(config)
