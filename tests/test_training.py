"""Training parts: song lists, the decoded-audio cache, the pair dataset, NT-Xent and retrieval."""

import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from augmentation import AugmentationChain, BackgroundNoise, ImpulseResponse, TimeShift
from common.audio import AudioError, write_wav
from common.config import ConfigError
from tests.signals import synth_song
from training.cache import build_cache
from training.dataset import EpochSampler, PairDataset, fixed_pairs
from training.loss import nt_xent, top1_retrieval
from training.songs import find_songs, read_song_list

SR = 8000


def write_songs(folder, count, seconds=4.0):
    paths = []
    for index in range(count):
        path = folder / f"song{index}.wav"
        write_wav(path, synth_song(seconds, seed=index))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("suffix", [".pkl", ".txt", ".json"])
def test_song_lists_are_read_from_pickle_text_or_json_and_resolved_against_data_path(tmp_path, suffix):
    entries = ["a.wav", "sub/b.wav", "/abs/c.wav"]
    path = tmp_path / f"list{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps(entries))
    elif suffix == ".json":
        path.write_text(json.dumps(entries))
    else:
        path.write_text("# songs\n" + "\n".join(entries) + "\n\n")
    assert read_song_list(path, "/data") == ["/data/a.wav", "/data/sub/b.wav", "/abs/c.wav"]


def test_a_song_list_that_is_not_a_list_of_paths_is_a_config_error(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ConfigError, match="bad.pkl"):
        read_song_list(path, tmp_path)
    with pytest.raises(ConfigError, match="no audio files"):
        find_songs(tmp_path)


def test_the_cache_holds_every_song_as_int16_slices_equal_to_the_decoded_audio(tmp_path):
    paths = write_songs(tmp_path / "songs", 3)
    cache = build_cache(paths, tmp_path / "cache", progress=False, workers=2)
    assert len(cache) == 3 and cache.samples.dtype == np.int16
    assert isinstance(cache.samples, np.memmap)
    for index in range(3):
        expected = synth_song(4.0, seed=index)
        assert cache.song_samples(index) == len(expected)
        window = cache.window(index, 8000, 8000)
        assert window.dtype == np.float32 and np.abs(window - expected[8000:16000]).max() < 2e-4
        assert cache.valid_starts[index].tolist() == [0, 1, 2, 3]


def test_the_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path):
    paths = write_songs(tmp_path / "songs", 2)
    build_cache(paths, tmp_path / "cache", progress=False, workers=0)
    data_file = next((tmp_path / "cache").glob("*.int16"))
    built = data_file.stat().st_mtime_ns
    reused = build_cache(paths, tmp_path / "cache", progress=False, workers=0)
    assert data_file.stat().st_mtime_ns == built and len(reused) == 2
    write_wav(paths[1], synth_song(6.0, seed=9))
    stat = os.stat(paths[1])
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rebuilt = build_cache(paths, tmp_path / "cache", progress=False, workers=0)
    assert rebuilt.song_samples(1) == 6 * SR
    assert len(build_cache(paths[:1], tmp_path / "cache", progress=False, workers=0)) == 1  # another list, own cache


def test_silent_stretches_give_no_valid_window_and_silent_or_broken_songs_are_skipped(tmp_path):
    song = synth_song(5.0, seed=1)
    song[2 * SR : 3 * SR] = 0.0  # second 2 is silent
    write_wav(tmp_path / "gap.wav", song)
    write_wav(tmp_path / "silent.wav", np.zeros(3 * SR, dtype=np.float32))
    write_wav(tmp_path / "short.wav", synth_song(0.5, seed=2))
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    names = ["gap.wav", "silent.wav", "short.wav", "broken.wav"]
    cache = build_cache([str(tmp_path / n) for n in names], tmp_path / "cache", progress=False, workers=0)
    assert len(cache) == 1 and cache.valid_starts[0].tolist() == [0, 1, 3, 4]
    assert len(cache.skipped) == 3
    assert all(any(name in line for line in cache.skipped) for name in names[1:])
    with pytest.raises(AudioError, match="none of the 1 songs"):
        build_cache([str(tmp_path / "silent.wav")], tmp_path / "cache2", progress=False, workers=0)


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


def hand_nt_xent(anchors, positives, temperature):
    """SimCLR's loss written out with loops and math.exp, for comparison."""
    views = [v / np.linalg.norm(v) for v in list(anchors) + list(positives)]
    count = len(anchors)
    total = 0.0
    for i in range(2 * count):
        partner = (i + count) % (2 * count)
        denominator = sum(math.exp(float(views[i] @ views[k]) / temperature) for k in range(2 * count) if k != i)
        total += -math.log(math.exp(float(views[i] @ views[partner]) / temperature) / denominator)
    return total / (2 * count)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_nt_xent_equals_a_hand_computation_on_a_small_batch(temperature):
    generator = torch.Generator().manual_seed(0)
    anchors = torch.randn(5, 8, generator=generator, dtype=torch.float64)
    positives = anchors + 0.7 * torch.randn(5, 8, generator=generator, dtype=torch.float64)
    expected = hand_nt_xent(anchors.numpy(), positives.numpy(), temperature)
    assert nt_xent(anchors, positives, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_is_lower_for_matching_pairs_and_symmetric_in_its_arguments():
    generator = torch.Generator().manual_seed(1)
    anchors = torch.nn.functional.normalize(torch.randn(6, 16, generator=generator), dim=1)
    shuffled = anchors[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert nt_xent(anchors, anchors + 0.01).item() < nt_xent(anchors, shuffled).item()
    assert nt_xent(anchors, shuffled).item() == pytest.approx(nt_xent(shuffled, anchors).item(), rel=1e-6)


def test_top1_retrieval_counts_positives_whose_nearest_anchor_is_their_own():
    anchors = torch.eye(4)
    positives = torch.eye(4)[torch.tensor([0, 1, 3, 2])]
    assert top1_retrieval(anchors, positives) == 0.5
