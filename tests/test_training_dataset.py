"""training.dataset: contrastive pairs, their seeding per epoch and worker, validation pairs."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from augmentation import AugmentationChain, BackgroundNoise, ImpulseResponse, TimeShift
from tests.signals import synth_song, write_songs
from training.cache import build_cache
from training.dataset import EpochSampler, PairDataset, fixed_pairs

SR = 8000


@pytest.fixture
def pair_dataset(tmp_path):
    def make(paths=None, seed=0, windows_per_song=1):
        paths = paths or write_songs(tmp_path / "songs", 4)
        cache = build_cache(paths, tmp_path / "cache", progress=False, workers=0)
        rng = np.random.default_rng(0)
        chain = AugmentationChain(
            BackgroundNoise([(0.1 * rng.standard_normal(12000)).astype(np.float32)]),
            ImpulseResponse([np.exp(-np.arange(400) / 80.0).astype(np.float32)]),
            None,
        )
        return PairDataset(cache, chain, TimeShift(SR), seed=seed, windows_per_song=windows_per_song)

    return make


def test_a_pair_is_a_clean_window_of_the_song_and_a_different_positive(pair_dataset):
    dataset = pair_dataset()
    anchor, positive = dataset[2]
    assert anchor.shape == positive.shape == (8000,) and anchor.dtype == positive.dtype == torch.float32
    song = synth_song(4.0, seed=2)
    starts = [second * SR for second in range(4)]
    assert min(np.abs(anchor.numpy() - song[s : s + SR]).max() for s in starts) < 2e-4
    assert not torch.allclose(anchor, positive)
    assert abs(positive.abs().max().item() - 0.5) < 1e-5  # the impulse response stage ran last


def test_the_same_seed_and_epoch_reproduce_the_pairs_and_a_new_epoch_draws_anew(pair_dataset):
    dataset = pair_dataset()
    first = [dataset[(0, i)] for i in range(4)]
    again = [dataset[(0, i)] for i in range(4)]
    later = [dataset[(1, i)] for i in range(4)]
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, later))


def test_two_workers_draw_differently_and_the_result_does_not_depend_on_the_worker_count(pair_dataset, tmp_path):
    song = write_songs(tmp_path / "one", 1)[0]
    dataset = pair_dataset([song], windows_per_song=2)  # two items of one song
    sampler = EpochSampler(range(2))
    sampler.set_epoch(3)
    with_workers = list(DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=2))
    in_process = list(DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=0))
    (_, first_positive), (_, second_positive) = with_workers
    assert not torch.equal(first_positive, second_positive)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(with_workers, in_process))


def test_windows_per_song_gives_distinct_windows_of_each_song_per_epoch_and_a_listed_twice_song_is_cached_once(
    pair_dataset, tmp_path
):
    paths = write_songs(tmp_path / "songs", 4)
    dataset = pair_dataset(paths + paths[:1], windows_per_song=3)
    assert len(dataset.cache) == 4 and len(dataset) == 12
    song_rows = {song: [dataset[(0, song + 4 * r)][0] for r in range(3)] for song in range(4)}
    for rows in song_rows.values():  # each 4 s song has 4 valid windows: three distinct ones are drawn
        assert not any(torch.equal(rows[a], rows[b]) for a in range(3) for b in range(a + 1, 3))
    later = [dataset[(1, 4 * r)][0] for r in range(3)]
    assert not all(torch.equal(a, b) for a, b in zip(song_rows[0], later))


def test_validation_pairs_are_fixed_and_take_distinct_windows_per_song(pair_dataset):
    dataset = pair_dataset()
    anchors, positives = fixed_pairs(dataset, windows_per_song=3)
    again_anchors, again_positives = fixed_pairs(dataset, windows_per_song=3)
    assert anchors.shape == (12, 8000) and torch.equal(positives, again_positives)
    dataset.set_epoch(5)
    assert torch.equal(fixed_pairs(dataset, windows_per_song=3)[1], positives)  # the training epoch is irrelevant
    for song in range(4):
        rows = anchors[3 * song : 3 * song + 3]
        assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])
    assert fixed_pairs(dataset, max_songs=2)[0].shape == (2, 8000)
