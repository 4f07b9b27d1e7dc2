"""Contrastive pairs (docs/training.md): a clean anchor window and its augmented, time-jittered positive."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from augmentation import AugmentationChain, TimeShift
from common.audio import WINDOW_SAMPLES
from training.cache import AudioCache


def item_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one item in one epoch.

    Seeding per (seed, epoch, item) rather than per worker: no two workers or epochs share a
    stream (the reference copied one generator into every worker), and the draws do not depend
    on ``num_workers``, on how items are dealt to workers, or on the process count under DDP,
    so a run is reproducible from ``seed`` alone and a resumed run replays the same epochs.
    """
    return np.random.default_rng([seed, epoch, index])


def song_window_starts(seed: int, epoch: int, song: int, valid: np.ndarray, count: int) -> np.ndarray:
    """``count`` of the valid 1 s window starts ``valid`` (seconds) of song ``song`` in one epoch:
    distinct while the song has that many, then repeating the same permutation."""
    order = np.random.default_rng([seed, epoch, song, 1]).permutation(len(valid))
    return valid[np.resize(order, count)]


class PairDataset(Dataset):
    """Item i of an epoch = window i // n_songs of song i % n_songs: (anchor, positive), each
    (window_samples,) float32 at the cache rate.

    ``windows_per_song`` random valid 1 s windows per song per epoch (the reference used one;
    ``set_epoch`` selects the epoch), distinct within the epoch so two items of one song are
    true negatives of each other. The anchor is the clean window, the positive the same window
    shifted by ``time_shift`` and passed through ``augment``.
    """

    def __init__(
        self,
        cache: AudioCache,
        augment: AugmentationChain,
        time_shift: TimeShift,
        seed: int = 0,
        window_samples: int = WINDOW_SAMPLES,
        windows_per_song: int = 1,
    ):
        if windows_per_song < 1:
            raise ValueError(f"windows_per_song must be at least 1, got {windows_per_song}")
        self.cache = cache
        self.augment = augment
        self.time_shift = time_shift
        self.seed = seed
        self.window_samples = window_samples
        self.windows_per_song = windows_per_song
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cache) * self.windows_per_song

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``key`` is an item index, or (epoch, index) from ``EpochSampler`` (persistent workers
        hold their own copy of the dataset, so the epoch travels with the index)."""
        epoch, item = key if isinstance(key, tuple) else (self.epoch, key)
        rng = item_generator(self.seed, epoch, item)
        song, repeat = item % len(self.cache), item // len(self.cache)
        valid = self.cache.valid_starts[song]
        if self.windows_per_song == 1:
            start_second = int(rng.choice(valid))  # the reference's draw, unchanged
        else:
            start_second = int(song_window_starts(self.seed, epoch, song, valid, self.windows_per_song)[repeat])
        return self.pair(song, start_second * self.cache.sr, rng)

    def pair(self, index: int, start: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(anchor, positive) for the window of song ``index`` starting at sample ``start``."""
        anchor = self.cache.window(index, start, self.window_samples)
        shift = self.time_shift.randomize(rng, start, self.window_samples, self.cache.song_samples(index))
        positive = self.cache.window(index, start + shift, self.window_samples) if shift else anchor
        positive = self.augment(positive, rng)
        return torch.from_numpy(anchor), torch.from_numpy(np.ascontiguousarray(positive, dtype=np.float32))


# An epoch number no training run reaches: the validation pairs' own random streams.
VALIDATION_EPOCH = 2**32 - 1


def fixed_pairs(
    dataset: PairDataset, max_songs: int | None = None, windows_per_song: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation pairs drawn once from a reserved random stream, so they never change.

    Song i (of the first ``max_songs``) gives up to ``windows_per_song`` pairs at distinct valid
    1 s windows; several windows of one song make retrieval harder than songs alone (neighbouring
    seconds of the same song are the hard negatives of fingerprinting).
    Returns (anchors, positives), each (n, window_samples) float32.
    """
    count = len(dataset) if max_songs is None else min(max_songs, len(dataset))
    pairs = []
    for index in range(count):
        rng = item_generator(dataset.seed, VALIDATION_EPOCH, index)
        valid = dataset.cache.valid_starts[index]
        seconds = rng.choice(valid, size=min(windows_per_song, len(valid)), replace=False)
        pairs.extend(dataset.pair(index, int(second) * dataset.cache.sr, rng) for second in np.sort(seconds))
    return torch.stack([a for a, _ in pairs]), torch.stack([p for _, p in pairs])


class EpochSampler(Sampler):
    """Wraps a sampler of indices (e.g. DistributedSampler) to yield (epoch, index) keys."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        return ((self.epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)
