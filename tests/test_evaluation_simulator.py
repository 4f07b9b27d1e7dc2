import json

import numpy as np
import pytest
import soundfile as sf

from common.audio import load_audio
from common.config import validate
from common.playlist import read_playlist
from evaluation.simulator import SCHEMA, RecordingSimulator, concatenate_songs, run_simulation, snr_db
from tests.signals import synth_song

SR = 8000


@pytest.fixture
def playlist_folder(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    for number, seconds in enumerate((6.0, 4.5, 5.0)):
        sf.write(str(songs / f"song_{number}.wav"), synth_song(seconds, number), SR)
    noises = tmp_path / "noise"
    noises.mkdir()
    rng = np.random.default_rng(7)
    for number in range(2):
        # Noise clips at very different levels: the bed scales each piece to the same RMS.
        clip = rng.standard_normal(3 * SR) * (0.02 if number else 0.3)
        sf.write(str(noises / f"noise_{number}.wav"), np.cumsum(clip) * 0.01 + clip, SR)
    return tmp_path


def simulation_config(folder, **changes):
    values = {
        "true_songs": str(folder / "songs"),
        "song_count": 3,
        "output_dir": str(folder / "recordings"),
        "background_noises": str(folder / "noise"),
        "room_rt60": 0.3,
        "room_size": [5.0, 4.0, 3.0],
        "lead_in_seconds": 1.5,
        **changes,
    }
    return validate(values, SCHEMA)


def test_measured_snr_of_each_written_recording_is_within_half_a_db_of_its_target(playlist_folder):
    summary = run_simulation(simulation_config(playlist_folder))
    out = playlist_folder / "recordings"
    # The clean music at each level is what the "no noise" level of the same chain gives after its gain.
    clean_summary = run_simulation(
        simulation_config(playlist_folder, output_dir=str(playlist_folder / "clean"), snr_levels={"clean": None})
    )
    clean = load_audio(playlist_folder / "clean" / "clean.wav", SR) / 10 ** (
        clean_summary["recordings"]["clean"]["gain_db"] / 20
    )
    start = int(round(1.5 * SR))
    for name, target in {"low_t": 15.0, "mid_t": 5.0, "high_t": 0.0}.items():
        recording = load_audio(out / f"{name}.wav", SR)
        music = clean * 10 ** (summary["recordings"][name]["gain_db"] / 20)
        measured = snr_db(music[start:], recording[start:] - music[start:])
        assert abs(measured - target) < 0.5, (name, measured)
        assert abs(summary["recordings"][name]["measured_snr_db"] - target) < 0.01
        assert np.abs(recording).max() < 1.0
    songs = [entry.song for entry in read_playlist(out / "playlist.csv")]
    truth = read_playlist(out / "truth.csv")
    assert sorted(songs) == ["song_0.wav", "song_1.wav", "song_2.wav"]
    assert [entry.song for entry in truth] == songs
    assert truth[0].start == pytest.approx(1.5, abs=0.05)
    assert json.loads((out / "simulation.json").read_text())["songs"] == songs


def test_same_seed_gives_the_same_recording_and_another_seed_a_different_one(playlist_folder):
    run_simulation(simulation_config(playlist_folder, snr_levels={"mid_t": 5.0}))
    first = (playlist_folder / "recordings" / "mid_t.wav").read_bytes()
    run_simulation(simulation_config(playlist_folder, snr_levels={"mid_t": 5.0}))
    assert (playlist_folder / "recordings" / "mid_t.wav").read_bytes() == first
    run_simulation(simulation_config(playlist_folder, snr_levels={"mid_t": 5.0}, seed=1))
    assert (playlist_folder / "recordings" / "mid_t.wav").read_bytes() != first


def test_with_every_stage_off_the_recording_is_the_playlist_itself():
    songs = [synth_song(3.0, 1), synth_song(2.0, 2)]
    playlist = concatenate_songs(songs, SR, lead_in_seconds=0.5)
    simulator = RecordingSimulator(sr=SR, speaker_band_hz=None, room_impulse=None, phone_band_hz=None, level_dbfs=None)
    (recording,) = simulator.record(playlist, {"clean": None}, noise=None)
    assert np.array_equal(recording.samples, playlist.samples)
    assert playlist.starts == [4000, 4000 + 24000]


def test_level_control_sets_the_music_rms_without_clipping():
    playlist = concatenate_songs([synth_song(4.0, 3)], SR)
    simulator = RecordingSimulator(sr=SR, level_dbfs=-20.0)
    (recording,) = simulator.record(playlist, {"clean": None}, noise=None)
    rms_db = 10 * np.log10(np.mean(np.square(recording.samples, dtype=np.float64)))
    assert rms_db == pytest.approx(-20.0, abs=0.01) or np.abs(recording.samples).max() == pytest.approx(0.99)
    loud = RecordingSimulator(sr=SR, level_dbfs=0.0)
    (recording,) = loud.record(playlist, {"clean": None}, noise=None)
    assert np.abs(recording.samples).max() == pytest.approx(0.99, abs=1e-4)
