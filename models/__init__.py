"""Fingerprint models and the log-mel front end.

``get_model("fingerprinter" | "audsearch", width=1.0)`` builds a model that maps
(B, 1, 256, 32) log-mel to (B, 128) unit-norm embeddings. ``FrontEndConfig`` (the front-end
facts: sample rate, window, mel bands, floor) lives in the torch-free ``models.frontend_config``.

The torch parts load on first use (``models.get_model``, ``models.LogMel``, ...), so
``from models.frontend_config import FrontEndConfig`` and ``from models import FrontEndConfig``
do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from models.frontend_config import EMBEDDING_DIM, FrontEndConfig

if TYPE_CHECKING:
    from torch import nn

    from models.audsearch import AudSearch
    from models.fingerprinter import Fingerprinter
    from models.frontend import LogMel

__all__ = ["EMBEDDING_DIM", "MODELS", "AudSearch", "Fingerprinter", "FrontEndConfig", "LogMel", "get_model"]

# Name -> module defining it, imported when the name is first asked for (PEP 562).
_TORCH_NAMES = {"AudSearch": "models.audsearch", "Fingerprinter": "models.fingerprinter", "LogMel": "models.frontend"}


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    if name == "MODELS":
        return _models()
    raise AttributeError(f"module 'models' has no attribute {name!r}")


def _models() -> dict[str, type]:
    from models.audsearch import AudSearch
    from models.fingerprinter import Fingerprinter

    return {"fingerprinter": Fingerprinter, "audsearch": AudSearch}


def get_model(
    model_str: str, width: float = 1.0, frontend: FrontEndConfig = FrontEndConfig(), embedding_dim: int = EMBEDDING_DIM
) -> nn.Module:
    """Build ``model_str`` at ``width`` times the published channel counts."""
    models = _models()
    if model_str not in models:
        raise ValueError(f"unknown model_str {model_str!r}; choose one of {', '.join(models)}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return models[model_str](width=width, n_mels=frontend.n_mels, frames=frontend.frames, embedding_dim=embedding_dim)
