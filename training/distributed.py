"""Collective operations of DDP training (the process group itself: ``common.distributed``)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from common.distributed import Distributed


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
