"""Audio augmentation transforms for contrastive training (docs/training.md).

One small class per transform; the constructor holds the parameters, ``randomize(rng, ...)``
draws from a generator passed in, ``apply(samples, params)`` does the signal processing, so a
draw can be replayed exactly.
"""

from augmentation.chain import AugmentationChain, ChainParams
from augmentation.clips import load_clip_set
from augmentation.cutoff import CutOffFilter, CutOffParams
from augmentation.impulse import ImpulseResponse
from augmentation.noise import SNR_BUCKETS, BackgroundNoise, NoiseParams, mix_at_snr
from augmentation.spec_augment import SpecAugment
from augmentation.time_shift import TimeShift

__all__ = [
    "SNR_BUCKETS",
    "AugmentationChain",
    "BackgroundNoise",
    "ChainParams",
    "CutOffFilter",
    "CutOffParams",
    "ImpulseResponse",
    "NoiseParams",
    "SpecAugment",
    "TimeShift",
    "load_clip_set",
    "mix_at_snr",
]
