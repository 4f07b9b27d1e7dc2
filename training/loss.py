"""NT-Xent (SimCLR) contrastive loss and the retrieval figure used for validation."""

from __future__ import annotations

import torch
from torch.nn import functional


def nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric NT-Xent over the 2N views of N pairs; returns the mean loss (scalar).

    anchors, positives: (N, d) embeddings (normalised here, so cosine similarity). View k's
    positive is its partner; its negatives are the other 2N - 2 views; both directions count.
    """
    # Half-precision embeddings (mixed precision) are promoted: exp(1 / 0.05) needs float32 at least.
    views = torch.cat([anchors, positives]).to(torch.promote_types(anchors.dtype, torch.float32))
    views = functional.normalize(views, dim=1)  # (2N, d)
    count = anchors.shape[0]
    logits = views @ views.T / temperature  # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * count, dtype=torch.bool, device=logits.device), float("-inf"))
    partner = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(logits.device)
    return functional.cross_entropy(logits, partner)


@torch.no_grad()
def top1_retrieval(anchors: torch.Tensor, positives: torch.Tensor, chunk: int = 4096) -> float:
    """Fraction of positives whose nearest anchor (inner product) is their own; chance is 1 / N.

    Positives are compared ``chunk`` at a time, so memory grows with N x chunk, not N x N."""
    hits = 0
    for start in range(0, len(positives), chunk):
        nearest = (positives[start : start + chunk] @ anchors.T).argmax(dim=1)
        own = torch.arange(start, start + len(nearest), device=anchors.device)
        hits += int((nearest == own).sum().item())
    return hits / len(positives)
