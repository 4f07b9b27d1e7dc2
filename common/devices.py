"""Where a model runs: the one resolution of the ``device`` keys ("auto", "cpu", "cuda", "cuda:N")."""

from __future__ import annotations

import os
import re

from common.config import ConfigError

DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N"


def device_problem(device: str) -> str | None:
    """What is wrong with ``device`` as a device name, or None; a schema's ``check`` for ``device`` keys.

    Only the spelling is checked here; whether the CUDA device exists is ``resolve_device``'s job.
    """
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        return None
    return f"{device!r} is not a device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"


def resolve_device(device: str, where: str | os.PathLike | None = None) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda...' without that GPU is a ConfigError.

    ``where`` (the config file) starts the error message. torch is imported here, not at the
    top, so scripts that never need a device start quickly.
    """
    import torch

    place = f"{where}: " if where else ""
    problem = device_problem(device)
    if problem:
        raise ConfigError(f"{place}key 'device': {problem}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{place}key 'device': {device!r} asked for but no CUDA device is available (use 'cpu' or 'auto')"
            )
        number = int(device.partition(":")[2] or 0)
        if number >= torch.cuda.device_count():
            raise ConfigError(
                f"{place}key 'device': {device!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return device
