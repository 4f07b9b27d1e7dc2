"""Checkpoint files (docs/training.md): one torch file holding weights and everything needed to use them.

Contents: ``format``, ``format_version``, ``model_str``, ``width``, ``embedding_dim``,
``frontend`` (FrontEndConfig as a dict), ``model_state``, ``model_id`` (a hash of the weights
that indexes and fingerprint folders record), plus optional ``whitening`` (``models.whitening``:
``mean``, ``projection``, ``shrinkage``; part of the model_id, since it changes every vector) and
``config``, ``epoch``, ``best``, ``optimizer_state``, ``scheduler_state``, ``rng_state`` and
``extra`` for training and resume.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_path
from common.errors import UserError
from models import FrontEndConfig

FORMAT = "deep-audio-fingerprint-checkpoint"
FORMAT_VERSION = 1
# What every checkpoint holds; the training fields (config, epoch, optimizer state...) are optional.
REQUIRED_KEYS = ("model_str", "width", "embedding_dim", "frontend", "model_state", "model_id")


class CheckpointError(UserError):
    """A file that is not a usable checkpoint; the message names the file."""


def weights_id(state_dict: dict[str, torch.Tensor]) -> str:
    """A short content hash of the weights: the identity an index records for its model."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()[:16]


def payload_id(payload: dict) -> str:
    """The model_id of a checkpoint payload: its weights, and its whitening when it has one."""
    tensors = dict(payload["model_state"])
    whitening = payload.get("whitening")
    if whitening is not None:
        tensors.update({f"whitening.{name}": whitening[name] for name in ("mean", "projection")})
    return weights_id(tensors)


def write_payload(path: str | os.PathLike, payload: dict) -> None:
    """Write a payload atomically (temporary file + rename) with its model_id recomputed."""
    payload = {**payload, "model_id": payload_id(payload)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    model_str: str,
    width: float = 1.0,
    frontend: FrontEndConfig = FrontEndConfig(),
    embedding_dim: int = 128,
    **fields: Any,
) -> None:
    """Write a checkpoint atomically (temporary file + rename). ``fields`` are stored as given."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_str": model_str,
        "width": float(width),
        "embedding_dim": int(embedding_dim),
        "frontend": frontend.to_dict(),
        "model_state": state,
        **fields,
    }
    write_payload(path, payload)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint onto the CPU whatever device saved it; reject anything else clearly."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign files; all mean 'not a checkpoint'
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: not a checkpoint file (torch cannot read it: {type(error).__name__} {first_line[:80]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this toolkit (no '{FORMAT}' marker)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload['format_version']} is newer than this code ({FORMAT_VERSION})"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(map(repr, missing))}")
    if not isinstance(payload["model_state"], dict) or not isinstance(payload["frontend"], dict):
        raise CheckpointError(f"{path}: checkpoint 'model_state' and 'frontend' must be dicts")
    problem = whitening_problem(payload.get("whitening"), payload["embedding_dim"])
    if problem:
        raise CheckpointError(f"{path}: checkpoint 'whitening' {problem}")
    # Indexes and fingerprint folders trust model_id to name these weights: weights changed
    # after saving (with the id kept) would be matched against vectors of other weights.
    if payload_id(payload) != payload["model_id"]:
        raise CheckpointError(
            f"{path}: the weights do not match the checkpoint's model_id {payload['model_id']} "
            "(changed after saving?); save it again with models.checkpoint.save_checkpoint"
        )
    return payload


def whitening_problem(whitening, dimensions) -> str | None:
    """What is wrong with a checkpoint's ``whitening`` entry for ``dimensions``-d vectors, or None."""
    if whitening is None:
        return None
    if not (isinstance(whitening, dict) and {"mean", "projection", "shrinkage"} <= set(whitening)):
        return "must hold 'mean', 'projection' and 'shrinkage'"
    mean, projection = whitening["mean"], whitening["projection"]
    if not (isinstance(mean, torch.Tensor) and isinstance(projection, torch.Tensor)):
        return "'mean' and 'projection' must be tensors"
    if tuple(mean.shape) != (dimensions,) or tuple(projection.shape) != (dimensions, dimensions):
        return f"does not fit {dimensions}-d vectors (mean {tuple(mean.shape)}, projection {tuple(projection.shape)})"
    if not (torch.isfinite(mean).all() and torch.isfinite(projection).all()):
        return "holds NaN or Inf"
    return None


# The fields that make two models the same: what an index, a fingerprint folder or a calibration
# records about the model that made its vectors.
IDENTITY_FIELDS = ("model_str", "width", "embedding_dim", "model_id", "frontend")


def model_identity(payload: dict) -> dict:
    """What an index or fingerprint folder records about the model that made its vectors."""
    return {name: payload[name] for name in IDENTITY_FIELDS}


def identity_differences(first: dict, second: dict) -> list[str]:
    """The identity fields in which two model identities differ (empty: the same model)."""
    return [name for name in IDENTITY_FIELDS if first.get(name) != second.get(name)]
