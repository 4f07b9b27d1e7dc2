"""live.session: the recognition loop with a scripted recogniser and a fake microphone."""

import time
import types

import numpy as np

from live.microphone import MicrophoneSource
from live.session import LiveSession
from live.sources import FileSource
from tests.fakes import fake_pyaudio


class ScriptedRecognizer:
    """Reads the answer off the window: a sample holds song number + song time / 1000; 0 is unknown audio."""

    def identify(self, samples):
        if (samples == 0).any():
            match = types.SimpleNamespace(song=None, offset_seconds=0.0, score=0.1, ranked=[("song9", 0.0, 0.1)])
        else:
            number = int(samples[0])
            offset = round(float(samples[0] - number) * 1000, 2)
            match = types.SimpleNamespace(song=f"song{number}", offset_seconds=offset, score=1.0, ranked=[])
        return match, 1.0, 0.0  # inference ms, search ms


def scripted_stream(parts, sample_rate=100):
    """``parts``: (song number or 0 for unknown audio, start in the song s, seconds) played back to back."""
    pieces = []
    for number, song_start, seconds in parts:
        song_time = song_start + np.arange(int(seconds * sample_rate)) / sample_rate
        pieces.append(number + song_time / 1000 if number else np.zeros(len(song_time)))
    return np.concatenate(pieces).astype(np.float32)


def test_session_reports_songs_in_order_once_each_when_a_song_resumes_after_a_blip_or_at_a_repeat():
    # song2 resumes after a 1 s blip where the clock says, then jumps to a repeated section (song time 40 s).
    stream = scripted_stream([(1, 0, 12), (0, 0, 8), (2, 0, 6), (0, 0, 1), (2, 7, 6), (2, 40, 5), (1, 50, 5)])
    results = []
    session = LiveSession(ScriptedRecognizer(), 100, duration_seconds=3, step_seconds=1, stable_count=2,
                          on_result=results.append)  # fmt: skip
    summary = session.run(FileSource(stream, 100, speed=0))
    assert summary.song_names == ["song1", "song2", "song1"]
    assert [(m.clock_seconds, m.offset_seconds) for m in summary.songs] == [(4, 1), (24, 1), (42, 51)]
    assert summary.windows == len(results) == 43 - 3 + 1
    assert [r.clock_seconds for r in results if r.song is None] == [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29]
    assert summary.no_match == 13
    assert [r.run_length for r in results if r.clock_seconds in (3, 4, 5, 23, 30, 31, 36, 37)] == [
        1,
        2,
        3,
        1,
        1,
        2,
        1,
        2,
    ]
    announced = [r.clock_seconds for r in results if r.new_stable_song]
    assert announced == [4, 24, 42] and "== stable match: song2" in results[24 - 3].line(2)
    assert summary.skipped_windows == 0 and summary.dropped_samples == 0 and not summary.interrupted
    assert summary.audio_seconds == 43


def test_session_with_a_fake_microphone_counts_overflows_and_stops_cleanly_on_ctrl_c():
    stream = scripted_stream([(1, 0, 30)])
    module = fake_pyaudio({100: stream}, overflow_blocks=(2,), block_delay=0.002)
    lines = []

    def interrupt_after_six(result):
        lines.append(result)
        if len(lines) == 6:
            raise KeyboardInterrupt

    session = LiveSession(ScriptedRecognizer(), 100, duration_seconds=3, step_seconds=1, stable_count=3,
                          on_result=interrupt_after_six)  # fmt: skip
    summary = session.run(MicrophoneSource(sample_rate=100, pyaudio_module=module))
    assert summary.interrupted and summary.windows == 6
    assert summary.song_names == ["song1"] and summary.input_overflows == 1
    assert module.streams[0].closed and module.terminated == 1
    assert "stopped by Ctrl-C" in summary.text() and "input overflows 1" in summary.text()


def test_session_that_falls_behind_skips_to_the_newest_window_and_counts_the_skips():
    class SlowRecognizer(ScriptedRecognizer):
        def identify(self, samples):
            time.sleep(0.1)  # 10x slower than the 100x real-time microphone below needs
            return super().identify(samples)

    stream = scripted_stream([(1, 0, 40)])
    module = fake_pyaudio({100: stream}, block_delay=0.001)  # 0.1 s blocks every ~1 ms: 100x real time
    session = LiveSession(SlowRecognizer(), 100, duration_seconds=3, step_seconds=1, stable_count=2)
    summary = session.run(MicrophoneSource(sample_rate=100, pyaudio_module=module))
    assert summary.skipped_windows > 0
    assert summary.windows + summary.skipped_windows == 40 - 3 + 1


def test_audio_arriving_faster_than_the_buffer_holds_is_counted_as_dropped_not_a_crash(monkeypatch):
    import live.session as live

    monkeypatch.setattr(live, "RING_SLACK_SECONDS", 0.0)  # the buffer holds one window plus one step

    class SlowRecognizer(ScriptedRecognizer):
        def identify(self, samples):
            time.sleep(0.01)
            return super().identify(samples)

    session = LiveSession(SlowRecognizer(), 100, duration_seconds=3, step_seconds=1, stable_count=2)
    summary = session.run(FileSource(scripted_stream([(1, 0, 40)]), 100, speed=1e6))
    assert session.ring.capacity == 400
    assert summary.dropped_samples > 0 and summary.skipped_windows > 0
    assert summary.windows + summary.skipped_windows == 40 - 3 + 1
