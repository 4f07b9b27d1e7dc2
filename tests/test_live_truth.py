"""Live announcements: combined evidence before a stable match; wrong ones counted against a truth file."""

import types

import numpy as np
import pytest

from common.errors import UserError
from live.session import LiveSession
from live.sources import FileSource
from live.stability import StableMatch
from live.truth import TruthInterval, check_against, read_truth
from tests.fakes import fake_pyaudio


class EvidenceRecognizer:
    """Each 1-s window's best candidate is read off its first sample (song number + song time / 1000).

    Windows are never accepted on their own (as a strict rule rejects short queries); audio longer
    than a window (the combined evidence) is accepted unless it holds a sample of song 9, which
    stands for audio whose evidence does not pass the rule.
    """

    def __init__(self, window_samples):
        self.window_samples = window_samples
        self.calls = []

    def identify(self, samples):
        self.calls.append(len(samples))
        number = int(samples[0])
        offset = round(float(samples[0] - number) * 1000, 2)
        candidate = (f"song{number}", offset, 0.5)
        accepted = len(samples) > self.window_samples and not np.any(samples.astype(int) == 9)
        song = candidate[0] if accepted else None
        return types.SimpleNamespace(song=song, offset_seconds=offset, score=0.5, ranked=[candidate]), 1.0, 0.0


def stream(parts, sample_rate=100):
    pieces = [
        number + (start + np.arange(int(seconds * sample_rate)) / sample_rate) / 1000
        for number, start, seconds in parts
    ]
    return np.concatenate(pieces).astype(np.float32)


def test_agreeing_windows_become_a_stable_match_only_when_their_combined_audio_passes_the_rule():
    audio = stream([(1, 0, 8), (9, 0, 8), (2, 0, 8)])
    recognizer = EvidenceRecognizer(window_samples=300)
    results = []
    session = LiveSession(recognizer, 100, duration_seconds=3, step_seconds=1, stable_count=3, on_result=results.append)
    summary = session.run(FileSource(audio, 100, speed=0))
    # song9's windows agree among themselves, but their evidence never passes: never announced.
    assert summary.song_names == ["song1", "song2"]
    assert [match.clock_seconds for match in summary.songs] == [5, 21]
    # The evidence is the three windows' audio: 3 s + 2 steps of 1 s, from the first window's start.
    assert 500 in recognizer.calls and all(call in (300, 500) for call in recognizer.calls)
    assert all(result.song is None for result in results)  # no window was accepted on its own
    assert "no match" in results[2].line(3) and "[stable 3]" in results[2].line(3)


def test_a_truth_file_splits_announcements_into_right_and_wrong_and_lists_missed_songs(tmp_path):
    truth_csv = tmp_path / "truth.csv"
    truth_csv.write_text("song,start,end\nsongA.wav,3.0,60.0\nsongB.wav,60.0,100.0\nsongC.wav,100.0,200.0\n")
    truth = read_truth(truth_csv)
    assert truth[0] == TruthInterval("songA", 3.0, 60.0)
    announcements = [
        StableMatch("songA", 10.0, 5.0),
        StableMatch("songA", 63.0, 62.0),  # the evidence [56, 63] s still holds songA's end: right
        StableMatch("songX", 80.0, 1.0),  # a song that is not playing
        StableMatch("songB", 2.0, 0.0),  # during the lead-in, before any song
    ]
    check = check_against(announcements, truth, evidence_seconds=7.0, audio_seconds=150.0, source="truth.csv")
    assert [match.clock_seconds for match in check.right] == [10.0, 63.0]
    assert [(match.song, playing) for match, playing in check.wrong] == [("songX", ["songB"]), ("songB", [])]
    assert check.played == ["songA", "songB", "songC"] and check.songs_announced == ["songA"]
    text = "\n".join(check.lines())
    assert "2 announcements right, 2 wrong" in text and "1 of the 3 songs played" in text
    assert "never announced: songB, songC" in text
    # A song heard for less than the evidence needs is not counted as played.
    assert check_against([], truth, 7.0, 105.0).played == ["songA", "songB"]


def test_a_truth_file_without_times_is_a_one_line_error(tmp_path):
    playlist = tmp_path / "playlist.csv"
    playlist.write_text("song\nsongA.wav\n")
    with pytest.raises(UserError, match="needs 'start' and 'end'"):
        read_truth(playlist)


def test_the_live_header_names_the_device_and_the_rate_actually_opened(tmp_path, tiny_checkpoint):
    from common.audio import write_wav
    from database import Database
    from live.session import run_live
    from models.checkpoint import model_identity
    from models.encoder import embed_samples, load_encoder
    from tests.signals import synth_song

    encoder, payload = load_encoder(tiny_checkpoint)
    song = synth_song(10.0, 1)
    Database.build([("song1", embed_samples(encoder, song), 10.0, "")], identity=model_identity(payload)).save(
        tmp_path / "db.index"
    )
    config = {
        "weights": str(tiny_checkpoint),
        "database": str(tmp_path / "db.json"),
        "duration": 5.0,
        "step": 1.0,
        "neighbors": 4,
        "nprobe": None,
        "threshold": None,
        "method": "sequence",
        "stable_count": 3,
        "offset_tolerance": 0.75,
        "device": "cpu",
    }
    # The fake device cannot record at 8 kHz: the stream opens at 16 kHz and is resampled.
    module = fake_pyaudio({16000: np.repeat(song, 2)}, default_rate=16000)
    lines = []
    run_live(config, pyaudio_module=module, out=lines.append, max_seconds=6.0)
    header = "\n".join(lines[:4])
    assert "input device 1 (USB microphone) at 16000 Hz (resampled to 8000 Hz)" in header
    assert "has no calibration" in header
    truth = tmp_path / "truth.csv"
    truth.write_text("song,start,end\nsong1.wav,0.0,10.0\n")
    write_wav(tmp_path / "song.wav", song)
    lines = []
    run_live(config, input_path=tmp_path / "song.wav", speed=0, out=lines.append, truth_path=truth)
    assert "checked against" in lines[-1] and "0 wrong" in lines[-1]


def test_the_evidence_reuses_the_agreeing_windows_rows_exactly(tiny_checkpoint, tmp_path):
    from database import Database
    from matching.matcher import Matcher
    from matching.recognizer import Recognizer
    from models.checkpoint import model_identity
    from models.encoder import embed_samples, load_encoder
    from tests.signals import synth_song

    encoder, payload = load_encoder(tiny_checkpoint)
    song = synth_song(12.0, 3)
    database = Database.build([("song3", embed_samples(encoder, song), 12.0, "")], identity=model_identity(payload))
    recognizer = Recognizer(encoder, database, Matcher(database))
    session = LiveSession(recognizer, 8000, duration_seconds=5, step_seconds=1, stable_count=3)
    session.run(FileSource(song, 8000, speed=0), max_seconds=9.0)
    end = 9 * 8000
    rows = session._evidence_rows(end)
    direct, _ = recognizer.embed(session.ring.read(end, session.evidence_samples))
    assert rows.shape == direct.shape == (13, database.d)
    np.testing.assert_allclose(rows, direct, atol=1e-5)
