"""Fingerprint models and the log-mel front end.

``get_model("fingerprinter" | "audsearch", width=1.0)`` builds a model that maps
(B, 1, 256, 32) log-mel to (B, 128) unit-norm embeddings.
"""

from __future__ import annotations

from torch import nn

from models.audsearch import AudSearch
from models.fingerprinter import Fingerprinter
from models.frontend import FrontEndConfig, LogMel

MODELS = {"fingerprinter": Fingerprinter, "audsearch": AudSearch}

__all__ = ["MODELS", "AudSearch", "Fingerprinter", "FrontEndConfig", "LogMel", "get_model"]


def get_model(
    model_str: str, width: float = 1.0, frontend: FrontEndConfig = FrontEndConfig(), embedding_dim: int = 128
) -> nn.Module:
    """Build ``model_str`` at ``width`` times the published channel counts."""
    if model_str not in MODELS:
        raise ValueError(f"unknown model_str {model_str!r}; choose one of {', '.join(MODELS)}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return MODELS[model_str](width=width, n_mels=frontend.n_mels, frames=frontend.frames, embedding_dim=embedding_dim)
