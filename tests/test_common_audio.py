import numpy as np
import pytest
import soundfile as sf

from common.audio import AudioError, find_audio_files, frame_windows, load_audio, load_song, window_count


def test_load_audio_resamples_any_libsndfile_format_to_mono_float32(song_file):
    for name, sr in (("a.wav", 44100), ("b.flac", 16000), ("c.ogg", 22050)):
        path = song_file(name, seconds=3.0, sr=sr, channels=2)
        samples = load_audio(path, sr=8000)
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert abs(len(samples) - 24000) <= 1


def test_load_audio_reads_mp3(tmp_path):
    t = np.arange(16000) / 16000
    path = tmp_path / "tone.mp3"
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), 16000, format="MP3")
    samples = load_audio(path, sr=8000)
    assert 7000 < len(samples) < 9500
    assert np.abs(samples).max() > 0.1


def test_resampled_tone_keeps_its_frequency(tmp_path):
    sr = 44100
    t = np.arange(sr * 2) / sr
    path = tmp_path / "tone.wav"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 1000 * t), sr)
    samples = load_audio(path, 8000)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 8000 / len(samples) - 1000) < 2


def test_unreadable_file_error_names_the_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match=r"broken\.wav: cannot decode audio"):
        load_audio(path)


def test_empty_file_error_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match=r"empty\.wav: file holds no audio"):
        load_audio(path)


def test_nan_samples_are_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    samples = np.zeros(9000, dtype=np.float32)
    samples[10] = np.nan
    sf.write(str(path), samples, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio contains NaN or Inf"):
        load_audio(path)


def test_song_shorter_than_one_window_is_rejected(song_file):
    path = song_file("short.wav", seconds=0.5)
    with pytest.raises(AudioError, match=r"short\.wav: too short \(0\.50 s"):
        load_song(path)


def test_silent_song_is_rejected(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(24000, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match=r"silence\.wav: silent"):
        load_song(path)


def test_windows_follow_the_database_grid():
    samples = np.arange(8000 * 5 + 123, dtype=np.float32)
    windows = frame_windows(samples)
    assert windows.shape == (window_count(len(samples)), 8000) == (9, 8000)
    assert windows[3, 0] == 3 * 4000 and windows[-1, -1] == 8 * 4000 + 7999
    # An L-second query gives 2L - 1 windows.
    assert window_count(8000 * 5) == 9


def test_find_audio_files_is_recursive_and_sorted(song_file, tmp_path):
    song_file("b/x.wav", seconds=1)
    song_file("a/y.flac", seconds=1)
    (tmp_path / "notes.txt").write_text("not audio")
    names = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert names == ["a/y.flac", "b/x.wav"]
