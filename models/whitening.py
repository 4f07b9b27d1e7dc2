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
        # In float32 whatever the caller's precision: centring is a difference of near-equal values.
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            whitened = (embeddings.float() - self.mean) @ self.projection
        return F.normalize(whitened, dim=1)

    @staticmethod
    def principal_axes(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, eigenvalues, eigenvectors) of (n, d) embeddings, in float64: what every shrinkage shares."""
        sample = np.asarray(embeddings, dtype=np.float64)
        if sample.ndim != 2 or len(sample) <= sample.shape[1]:
            raise ValueError(f"whitening needs more embeddings than dimensions, got shape {sample.shape}")
        mean = sample.mean(axis=0)
        # numpy's symmetric eigensolver: a 128 x 128 covariance needs nothing more.
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(sample - mean, rowvar=False))
        return mean, np.clip(eigenvalues, 0.0, None), eigenvectors

    @classmethod
    def from_axes(cls, axes: tuple[np.ndarray, np.ndarray, np.ndarray], shrinkage: float) -> Whitening:
        """The whitening with ``shrinkage`` (> 0, in units of the mean eigenvalue) of ``principal_axes``."""
        if shrinkage <= 0:
            raise ValueError(f"whitening shrinkage must be positive, got {shrinkage}")
        mean, eigenvalues, eigenvectors = axes
        if not eigenvalues.mean() > 0:
            raise ValueError("whitening needs embeddings that vary (every eigenvalue is 0)")
        scale = 1.0 / np.sqrt(eigenvalues + shrinkage * eigenvalues.mean())
        projection = (eigenvectors * scale) @ eigenvectors.T
        if not (np.isfinite(mean).all() and np.isfinite(projection).all()):
            raise ValueError("whitening fit is not finite (NaN or Inf in the embeddings?)")
        return cls(torch.from_numpy(mean), torch.from_numpy(projection), shrinkage)

    @classmethod
    def fit(cls, embeddings: np.ndarray, shrinkage: float) -> Whitening:
        """Fit on (n, d) embeddings of clean music; ``shrinkage`` > 0 in units of the mean eigenvalue."""
        return cls.from_axes(cls.principal_axes(embeddings), shrinkage)

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
