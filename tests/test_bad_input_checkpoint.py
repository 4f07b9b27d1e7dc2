"""Checkpoints that lack a field or whose weights were changed after saving are refused by name."""

import pytest
import torch

from models import get_model
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.encoder import load_encoder


@pytest.fixture
def payload(tmp_path):
    """(path of a tiny checkpoint, its contents as torch.load gives them)."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, get_model("fingerprinter", width=0.125), "fingerprinter", 0.125)
    return path, torch.load(path, weights_only=True)


def test_a_checkpoint_without_frontend_is_refused_naming_the_file_and_the_field(tmp_path, payload):
    _, contents = payload
    del contents["frontend"]
    torch.save(contents, tmp_path / "no_frontend.pt")
    with pytest.raises(CheckpointError, match=r"^\S*no_frontend\.pt: checkpoint lacks 'frontend'$"):
        load_encoder(tmp_path / "no_frontend.pt")


def test_a_checkpoint_whose_frontend_is_not_a_front_end_config_is_refused_naming_the_file(tmp_path, payload):
    _, contents = payload
    contents["frontend"] = {**contents["frontend"], "colour": "red"}
    torch.save(contents, tmp_path / "odd_frontend.pt")
    with pytest.raises(CheckpointError, match=r"odd_frontend\.pt: checkpoint 'frontend' is not a front-end config"):
        load_encoder(tmp_path / "odd_frontend.pt")


def test_weights_changed_after_saving_with_the_model_id_kept_are_refused_on_load(tmp_path, payload):
    _, contents = payload
    contents["model_state"] = {
        name: tensor * 1.5 if tensor.is_floating_point() else tensor for name, tensor in contents["model_state"].items()
    }
    torch.save(contents, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match=r"tampered\.pt: the weights do not match the checkpoint's model_id"):
        load_checkpoint(tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="tampered.pt"):
        load_encoder(tmp_path / "tampered.pt")


def test_an_untouched_checkpoint_still_loads(payload):
    path, contents = payload
    _, loaded = load_encoder(path)
    assert loaded["model_id"] == contents["model_id"]
