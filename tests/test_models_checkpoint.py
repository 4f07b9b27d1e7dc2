import pytest
import torch

from models import FrontEndConfig, get_model
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.encoder import load_encoder


def test_checkpoint_round_trip_keeps_weights_and_metadata(tmp_path):
    model = get_model("fingerprinter", width=0.125)
    frontend = FrontEndConfig(fmin=300.0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, "fingerprinter", 0.125, frontend, config={"lr": 1e-3}, epoch=4)
    encoder, payload = load_encoder(path)
    assert payload["model_str"] == "fingerprinter" and payload["width"] == 0.125
    assert payload["frontend"]["fmin"] == 300.0 and payload["config"] == {"lr": 1e-3} and payload["epoch"] == 4
    assert not encoder.training
    wave = torch.randn(2, 8000)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(encoder(wave), model(encoder.log_mel(wave)), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_model_id_changes_with_the_weights(tmp_path):
    model = get_model("audsearch", width=0.125)
    save_checkpoint(tmp_path / "a.pt", model, "audsearch", 0.125)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(tmp_path / "b.pt", model, "audsearch", 0.125)
    assert load_checkpoint(tmp_path / "a.pt")["model_id"] != load_checkpoint(tmp_path / "b.pt")["model_id"]


def test_a_file_that_is_not_a_checkpoint_is_rejected_by_name(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.pt: not a checkpoint file"):
        load_checkpoint(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not a checkpoint of this toolkit"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match=r"missing\.pt: checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, get_model("fingerprinter", width=0.125), "fingerprinter", 0.125, epoch=1)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, get_model("fingerprinter", width=0.125), "fingerprinter", 0.125, epoch=2)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_atomic_outputs_get_ordinary_file_permissions(tmp_path):
    import os

    from common.atomic import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
