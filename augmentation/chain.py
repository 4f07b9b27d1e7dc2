"""The positive-view augmentation chain (docs/training.md): noise -> impulse response -> cut-off filters."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from augmentation.clips import load_clip_set
from augmentation.cutoff import CutOffFilter, CutOffParams
from augmentation.impulse import ImpulseResponse
from augmentation.noise import BackgroundNoise, NoiseParams
from common.audio import SAMPLE_RATE


@dataclass(frozen=True)
class ChainParams:
    """Every random draw of one pass through the chain, so a pass can be replayed exactly."""

    noise: NoiseParams | None
    impulse: int | None
    cutoff: CutOffParams | None


class AugmentationChain:
    """(n,) float32 clean window -> (n,) float32 degraded window. Any stage may be None (skipped)."""

    def __init__(
        self,
        noise: BackgroundNoise | None,
        impulse: ImpulseResponse | None,
        cutoff: CutOffFilter | None,
    ):
        self.noise = noise
        self.impulse = impulse
        self.cutoff = cutoff

    @classmethod
    def from_folders(
        cls,
        noise_folder: str | os.PathLike,
        impulse_folder: str | os.PathLike,
        freq_cut: bool,
        sr: int = SAMPLE_RATE,
    ) -> tuple[AugmentationChain, list[str]]:
        """The chain with its published probabilities; returns (chain, skipped-file lines)."""
        noises, skipped_noise = load_clip_set(noise_folder, sr)
        responses, skipped_ir = load_clip_set(impulse_folder, sr)
        chain = cls(
            BackgroundNoise(noises, p=0.8),
            ImpulseResponse(responses, p=1.0, peak=0.5),
            CutOffFilter(sr, p=0.4) if freq_cut else None,
        )
        return chain, skipped_noise + skipped_ir

    def randomize(self, rng: np.random.Generator, n_samples: int) -> ChainParams:
        return ChainParams(
            noise=self.noise.randomize(rng, n_samples) if self.noise else None,
            impulse=self.impulse.randomize(rng) if self.impulse else None,
            cutoff=self.cutoff.randomize(rng) if self.cutoff else None,
        )

    def apply(self, samples: np.ndarray, params: ChainParams) -> np.ndarray:
        if self.noise:
            samples = self.noise.apply(samples, params.noise)
        if self.impulse:
            samples = self.impulse.apply(samples, params.impulse)
        if self.cutoff:
            samples = self.cutoff.apply(samples, params.cutoff)
        return samples

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(samples, self.randomize(rng, len(samples)))
