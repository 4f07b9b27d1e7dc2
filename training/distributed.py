"""Process-group set-up for single-process and torchrun (DDP) training.

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


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """The resolved ``device`` key (``common.devices``); on CUDA, this process's GPU."""
    if resolve_device(preference) == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(preference: str = "auto") -> Distributed:
    """Join the process group when launched by torchrun; otherwise a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
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


def gather_with_grad(local: torch.Tensor, context: Distributed) -> torch.Tensor:
    """Concatenate every rank's (n, d) rows in rank order; gradients flow to this rank's rows only.

    Every rank then computes the same full-batch loss; DDP averages the per-rank gradients, so
    the loss is multiplied by the world size (see ``loop``) to recover the full-batch gradient.
    """
    if not context.enabled:
        return local
    parts = [torch.empty_like(local) for _ in range(context.world_size)]
    dist.all_gather(parts, local.detach().contiguous())
    parts[context.rank] = local
    return torch.cat(parts)


def average(value: float, context: Distributed) -> float:
    """Mean of a Python number over ranks."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if context.device.type == "cuda":
        tensor = tensor.to(context.device)
    dist.all_reduce(tensor)
    return tensor.item() / context.world_size


def any_rank(flag: bool, context: Distributed) -> bool:
    """True on every rank when ``flag`` is True on at least one."""
    if not context.enabled:
        return flag
    tensor = torch.tensor([float(flag)], device=context.device if context.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
