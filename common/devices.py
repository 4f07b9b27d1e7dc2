"""Where a model runs: the one resolution of the ``device`` keys ("auto", "cpu", "cuda", "cuda:N")."""

from __future__ import annotations

from common.config import ConfigError


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda...' without a GPU is a ConfigError.

    torch is imported here, not at the top, so scripts that never need a device start quickly.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"key 'device': {device!r} asked for but no CUDA device is available (use 'cpu' or 'auto')")
    return device
