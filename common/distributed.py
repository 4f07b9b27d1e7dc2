"""Process groups for single-process and torchrun runs (training and fingerprint extraction).

Under ``torchrun`` the environment carries RANK, LOCAL_RANK and WORLD_SIZE; the backend is
NCCL on CUDA and gloo on CPU, so the same code path is tested on a CPU machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from common.devices import resolve_device


@dataclass(frozen=True)
class Distributed:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(
    preference: str, local_rank: int = 0, where: str | os.PathLike | None = None, world_size: int = 1
) -> torch.device:
    """The resolved ``device`` key (``common.devices``; ``where`` names the config in errors).

    On CUDA: a single process takes the GPU asked for ("cuda:1"), or the first; under torchrun
    each process takes its LOCAL_RANK's GPU.
    """
    resolved = resolve_device(preference, where)
    if resolved == "cpu":
        return torch.device("cpu")
    if world_size == 1 and ":" in resolved:
        return torch.device(resolved)
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(preference: str = "auto", where: str | os.PathLike | None = None) -> Distributed:
    """Join the process group when launched by torchrun; otherwise a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank, where, world_size)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, local_rank, world_size, device)


def barrier(context: Distributed) -> None:
    if context.enabled:
        dist.barrier()


def cleanup(context: Distributed) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
