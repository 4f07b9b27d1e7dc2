"""training.cache: the decoded-audio cache, its reuse, and silent or broken songs."""

import os

import numpy as np
import pytest

from common.audio import AudioError, write_wav
from tests.signals import synth_song, write_songs
from training.cache import build_cache

SR = 8000


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
