"""The landmark fingerprinter: recognition under noise and reverb, rejection, add/remove, safe saves, errors."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from landmarks import LandmarkConfig, LandmarkTable
from landmarks.hashes import hash_count, pack, pair_peaks, unpack
from tests.signals import synth_song

SR = 8000
SONG_SECONDS = 30.0


def song_in_key(seed: int, semitones: float, seconds: float = SONG_SECONDS) -> np.ndarray:
    """A synthetic song transposed (and slowed) by ``semitones``: rendered faster, played at 8 kHz.

    synth_song draws every song from one scale and timbre, which makes landmark pairs collide
    far more than between real pieces; distinct keys give distinct songs.
    """
    factor = 2 ** (semitones / 12)
    return synth_song(seconds * factor, seed, int(SR * factor))[: int(seconds * SR)]


@pytest.fixture(scope="module")
def songs() -> dict[str, np.ndarray]:
    return {f"song{seed}": song_in_key(seed, 2.5 * seed) for seed in range(5)}


@pytest.fixture(scope="module")
def dense_table(songs) -> LandmarkTable:
    table = LandmarkTable(LandmarkConfig.preset("dense"))
    for name, samples in songs.items():
        table.add(name, samples)
    return table


def room_and_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Convolve with an exponentially decaying noise response (RT60 0.4 s), add white noise at ``snr_db``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.4 * SR)) / SR
    response = 0.1 * rng.standard_normal(len(t)) * np.exp(-6.9 * t / 0.4)
    response[0] = 1.0
    wet = np.convolve(clean, response)[: len(clean)]
    noise = rng.standard_normal(len(wet))
    noise *= np.sqrt(np.mean(wet**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wet + noise).astype(np.float32)


def test_a_noisy_reverberant_excerpt_is_recognised_at_the_right_offset(dense_table, songs):
    start_seconds = 12.345  # not a whole number of frames
    start = int(start_seconds * SR)
    query = room_and_noise(songs["song2"][start : start + 5 * SR], snr_db=5.0, seed=1)
    match, milliseconds = dense_table.match_timed(query)
    assert match.song == "song2"
    assert abs(match.offset_seconds - start_seconds) < 0.1
    assert dense_table.config.accepts(match.score, match.runner_up_score)
    assert milliseconds > 0


def test_the_default_preset_recognises_a_clean_excerpt(songs):
    table = LandmarkTable()
    for name, samples in songs.items():
        table.add(name, samples)
    match = table.match(songs["song3"][8 * SR : 18 * SR] * 0.1)  # 20 dB quieter: gain does not matter
    assert match.song == "song3"
    assert abs(match.offset_seconds - 8.0) < 0.1


def test_an_unknown_song_is_rejected(dense_table):
    match = dense_table.match(room_and_noise(song_in_key(77, 1.25, seconds=5.0), snr_db=15.0, seed=2))
    assert match.song is None and not match.matched
    assert match.candidate is not None  # the best guess is still reported for threshold studies


def test_silence_and_too_short_queries_are_no_match(dense_table):
    assert dense_table.match(np.zeros(5 * SR, dtype=np.float32)).song is None
    assert dense_table.match(np.zeros(100, dtype=np.float32)).query_hashes == 0


def test_a_removed_song_no_longer_matches_and_the_others_still_do(songs):
    table = LandmarkTable(LandmarkConfig.preset("dense"))
    for name, samples in songs.items():
        table.add(name, samples)
    entries = table.entries
    table.remove("song1")
    assert "song1" not in table.names and len(table) == 4 and table.entries < entries
    assert table.match(songs["song1"][5 * SR : 10 * SR]).song is None
    for name in ("song0", "song2", "song4"):  # song numbers above the removed one shifted down
        assert table.match(songs[name][5 * SR : 10 * SR]).song == name
    table.add("song1", songs["song1"])
    assert table.match(songs["song1"][5 * SR : 10 * SR]).song == "song1"


def test_a_duplicate_song_name_is_refused(dense_table, songs):
    with pytest.raises(UserError, match="song0.*already"):
        dense_table.add("song0", songs["song0"])


def test_save_and_load_give_the_same_answers(dense_table, songs, tmp_path):
    path = dense_table.save(tmp_path / "table.npz")
    loaded = LandmarkTable.load(path)
    assert loaded.names == dense_table.names and loaded.config == dense_table.config
    assert loaded.entries == dense_table.entries
    query = songs["song4"][3 * SR : 8 * SR]
    assert loaded.match(query) == dense_table.match(query)


def test_a_crash_during_save_leaves_the_old_table_intact(songs, tmp_path, monkeypatch):
    path = tmp_path / "table.npz"
    old = LandmarkTable()
    old.add("song0", songs["song0"])
    old.save(path)
    before = path.read_bytes()

    def crash_midway(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    new = LandmarkTable()
    new.add("song1", songs["song1"])
    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert LandmarkTable.load(path).names == ["song0"]
    assert [p.name for p in tmp_path.iterdir()] == ["table.npz"]  # no temporary file left behind


def test_a_foreign_or_damaged_file_is_a_one_line_error(tmp_path):
    foreign = tmp_path / "weights.npz"
    np.savez(foreign, weights=np.zeros(3))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    for path in (foreign, broken, tmp_path / "missing.npz"):
        with pytest.raises(UserError) as error:
            LandmarkTable.load(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "changes, parameter",
    [
        ({"density": 0}, "density"),
        ({"fan_out": 0}, "fan_out"),
        ({"fan_out": 2.5}, "fan_out"),
        ({"min_dt_frames": 10, "max_dt_frames": 5}, "max_dt_frames"),
        ({"max_df_bins": 1000}, "max_df_bins"),
        ({"hop_samples": 1024}, "hop_samples"),
        ({"fft_samples": 511}, "fft_samples"),
        ({"min_count": -1}, "min_count"),
        ({"query_shifts": 3}, "query_shifts"),
        ({"fanout": 8}, "fanout"),
    ],
)
def test_a_bad_parameter_is_a_one_line_error_naming_it(changes, parameter):
    with pytest.raises(UserError) as error:
        LandmarkConfig().replace(**changes)
    assert parameter in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_preset_and_a_fixed_parameter_on_a_built_table_are_refused(dense_table):
    with pytest.raises(UserError, match="preset 'sparse'"):
        LandmarkConfig.preset("sparse")
    with pytest.raises(UserError, match="density"):
        dense_table.with_query(density=10.0)
    assert dense_table.with_query(min_count=50).config.min_count == 50


def test_hashes_pack_and_unpack_without_collisions():
    config = LandmarkConfig()
    f1, df, dt = np.meshgrid(np.arange(config.bins), np.arange(-31, 32), np.arange(64), indexing="ij")
    hashes = pack(f1.ravel(), df.ravel(), dt.ravel(), config)
    assert (np.diff(np.sort(hashes)) > 0).all()
    assert hashes.min() >= 0 and hashes.max() < hash_count(config)
    assert [list(a) for a in unpack(hashes[:5], config)] == [list(f1.ravel()[:5]), [-31] * 5, list(range(5))]


def test_each_anchor_pairs_with_at_most_fan_out_targets_inside_the_zone():
    config = LandmarkConfig(fan_out=2, min_dt_frames=1, max_dt_frames=3, max_df_bins=5)
    frames = np.array([0, 1, 1, 2, 3, 9])
    bins = np.array([10, 12, 30, 14, 11, 10])
    hashes, anchors = pair_peaks(frames, bins, config)
    pairs = sorted(zip(anchors.tolist(), *[a.tolist() for a in unpack(hashes, config)]))
    # Anchor (0, 10): targets (1, 12) then (2, 14); (1, 30) is out of the band, fan_out stops at 2.
    assert pairs[:2] == [(0, 10, 2, 1), (0, 10, 4, 2)]
    assert all(1 <= dt <= 3 and abs(df) <= 5 for _, _, df, dt in pairs)
    assert 9 not in anchors.tolist()  # the last peak has no target
