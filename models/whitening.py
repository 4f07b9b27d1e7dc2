"""Whitening of embeddings (docs/training.md, "Whitening"): a fixed linear map fitted after training.

A contrastively trained fingerprinter spreads its unit vectors unevenly: a few directions carry
most of the variance of music, and two unrelated windows agree in them more than chance. PCA
whitening (Jégou and Chum, "Negative evidences and co-occurrences in image retrieval: the
benefit of PCA and whitening", ECCV 2012) subtracts the mean of the training music's embeddings
and rescales every principal direction by 1 / sqrt(eigenvalue + shrinkage x mean eigenvalue),
then L2-normalises again. The shrinkage keeps the weakest directions, mostly noise, from being
blown up; it is chosen on validation pairs (``training.whitening``).

The map is y = normalize((x - mean) @ projection), with projection = U diag(1 / sqrt(lambda +
s * mean(lambda))) U^T (the symmetric, "ZCA" form: it stays close to the original axes).
Inner products of whitened vectors are what the index and the matcher compare.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Whitening(nn.Module):
    """(B, d) embeddings -> (B, d) whitened unit vectors. Buffers: ``mean`` (d,), ``projection`` (d, d)."""

    def __init__(self, mean: torch.Tensor, projection: torch.Tensor, shrinkage: float):
        super().__init__()
        if mean.ndim != 1 or projection.shape != (len(mean), len(mean)):
            raise ValueError(
                f"whitening needs a (d,) mean and a (d, d) projection, got {mean.shape}, {projection.shape}"
            )
        self.register_buffer("mean", mean.float())
        self.register_buffer("projection", projection.float())
        self.shrinkage = float(shrinkage)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize((embeddings - self.mean.to(embeddings.dtype)) @ self.projection.to(embeddings.dtype), dim=1)

    @classmethod
    def fit(cls, embeddings: np.ndarray, shrinkage: float) -> Whitening:
        """Fit on (n, d) embeddings of clean music; ``shrinkage`` > 0 in units of the mean eigenvalue."""
        if shrinkage <= 0:
            raise ValueError(f"whitening shrinkage must be positive, got {shrinkage}")
        sample = np.asarray(embeddings, dtype=np.float64)
        if sample.ndim != 2 or len(sample) <= sample.shape[1]:
            raise ValueError(f"whitening needs more embeddings than dimensions, got shape {sample.shape}")
        mean = sample.mean(axis=0)
        # numpy's symmetric eigensolver: a 128 x 128 covariance needs nothing more.
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(sample - mean, rowvar=False))
        eigenvalues = np.clip(eigenvalues, 0.0, None)
        scale = 1.0 / np.sqrt(eigenvalues + shrinkage * eigenvalues.mean())
        projection = (eigenvectors * scale) @ eigenvectors.T
        return cls(torch.from_numpy(mean), torch.from_numpy(projection), shrinkage)

    def to_payload(self) -> dict:
        """What a checkpoint stores under ``whitening``."""
        return {
            "mean": self.mean.detach().cpu(),
            "projection": self.projection.detach().cpu(),
            "shrinkage": self.shrinkage,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> Whitening:
        return cls(payload["mean"], payload["projection"], payload["shrinkage"])


__all__ = ["Whitening"]
