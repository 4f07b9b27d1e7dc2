"""Live recognition plumbing: ring buffer, audio sources (a fake PyAudio for the microphone), stability."""

import sys
import threading
import time
import types

import numpy as np
import pytest

from evaluation.live_query import main as live_query_main
from live.microphone import MicrophoneSource, MicrophoneUnavailable, import_pyaudio, list_input_devices
from live.ring_buffer import RingBuffer
from live.session import LiveSession
from live.sources import FileSource
from live.stability import StabilityTracker

# ---------------------------------------------------------------- a fake PyAudio module


class FakeStream:
    """Calls the callback from its own thread with float32 blocks, as PortAudio does."""

    def __init__(self, module, callback, rate, frames_per_buffer):
        self.module, self.callback, self.rate = module, callback, rate
        self.frames_per_buffer = frames_per_buffer
        self._stop = threading.Event()
        self._thread = None
        self.active = False
        self.closed = False

    def _deliver(self):
        audio = self.module.audio_at[self.rate]
        for number, start in enumerate(range(0, len(audio), self.frames_per_buffer)):
            if self._stop.is_set():
                break
            block = np.ascontiguousarray(audio[start : start + self.frames_per_buffer], dtype=np.float32)
            flags = self.module.paInputOverflow if number in self.module.overflow_blocks else 0
            _, action = self.callback(block.tobytes(), len(block), {"input_buffer_adc_time": 0.0}, flags)
            assert action == self.module.paContinue
            if self.module.block_delay:
                time.sleep(self.module.block_delay)
        self.active = False

    def start_stream(self):
        self.active = True
        self._thread = threading.Thread(target=self._deliver, daemon=True)
        self._thread.start()

    def is_active(self):
        return self.active

    def stop_stream(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.active = False

    def close(self):
        self.closed = True


def fake_pyaudio(audio_at, overflow_blocks=(), block_delay=0.0, default_rate=8000):
    """A stand-in for the ``pyaudio`` module; ``audio_at[rate]`` is what the device delivers at that rate."""
    module = types.SimpleNamespace(
        paFloat32=1, paContinue=0, paComplete=1, paInputOverflow=2,
        audio_at=audio_at, overflow_blocks=set(overflow_blocks), block_delay=block_delay,
        opened=[], streams=[], terminated=0,
    )  # fmt: skip
    devices = [
        {"index": 0, "name": "HDMI output", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
        {"index": 1, "name": "USB microphone", "maxInputChannels": 1, "defaultSampleRate": float(default_rate)},
    ]

    class PyAudio:
        def get_device_count(self):
            return len(devices)

        def get_device_info_by_index(self, index):
            if not 0 <= index < len(devices):
                raise OSError("Invalid device index")
            return devices[index]

        def get_default_input_device_info(self):
            return devices[1]

        def is_format_supported(self, rate, input_device=None, input_channels=None, input_format=None):
            if rate not in audio_at:
                raise ValueError("Invalid sample rate")
            return True

        def open(self, **kwargs):
            module.opened.append(kwargs)
            stream = FakeStream(module, kwargs["stream_callback"], kwargs["rate"], kwargs["frames_per_buffer"])
            module.streams.append(stream)
            return stream

        def terminate(self):
            module.terminated += 1

    module.PyAudio = PyAudio
    return module


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


# ---------------------------------------------------------------- ring buffer


def test_ring_buffer_returns_samples_by_absolute_position_across_the_wrap():
    ring = RingBuffer(10)
    stream = np.arange(27, dtype=np.float32)
    for start in range(0, 27, 4):
        ring.write(stream[start : start + 4])
    assert ring.written == 27
    assert np.array_equal(ring.read(27, 10), stream[17:27])
    assert np.array_equal(ring.read(22, 5), stream[17:22])
    with pytest.raises(ValueError, match=r"not in the buffer"):
        ring.read(27, 11)  # sample 16 was overwritten
    with pytest.raises(ValueError, match=r"not in the buffer"):
        ring.read(28, 1)  # sample 27 has not arrived


def test_ring_buffer_counts_only_samples_overwritten_before_anyone_read_them():
    ring = RingBuffer(10)
    ring.write(np.zeros(10))
    ring.read(10, 5)  # the reader has seen up to position 10
    assert ring.write(np.ones(6)) == 0 and ring.dropped == 0  # positions 0-5 were already read past
    # 20 more at once leave [26, 36) held: unread 10-15 and the first 10 new samples are lost; 6-9 were read past.
    assert ring.write(np.arange(20, dtype=np.float32)) == 16
    assert ring.dropped == 16
    assert np.array_equal(ring.read(36, 10), np.arange(10, 20, dtype=np.float32))


def test_ring_buffer_wait_for_wakes_when_a_writer_thread_delivers():
    ring = RingBuffer(100)
    threading.Timer(0.05, ring.write, args=(np.ones(30),)).start()
    assert ring.wait_for(30, timeout=5.0)
    assert not ring.wait_for(31, timeout=0.01)


# ---------------------------------------------------------------- sources


def test_file_source_as_fast_as_possible_pushes_only_what_is_asked_for():
    audio = np.arange(8000 * 3, dtype=np.float32)
    source, ring = FileSource(audio, 8000, speed=0), RingBuffer(8000 * 4)
    source.start(ring)
    assert source.advance(12000)
    assert 12000 <= ring.written < 12000 + source.chunk
    assert source.advance(24000) and source.finished
    assert not source.advance(24001)  # the recording has ended
    assert np.array_equal(ring.read(24000, 24000), audio)


def test_file_source_at_real_time_times_speed_follows_the_wall_clock():
    audio = np.zeros(8000 * 2, dtype=np.float32)  # 2 s of audio at 20x: about 0.1 s
    source, ring = FileSource(audio, 8000, speed=20), RingBuffer(8000 * 4)
    started = time.monotonic()
    source.start(ring)
    while source.advance(len(audio) + 1, timeout=0.05):
        pass
    elapsed = time.monotonic() - started
    source.stop()
    assert ring.written == len(audio)
    assert 0.09 <= elapsed < 2.0


def test_microphone_source_writes_callback_blocks_into_the_ring_and_counts_input_overflows():
    audio = np.random.default_rng(0).standard_normal(8000 * 2).astype(np.float32)
    module = fake_pyaudio({8000: audio}, overflow_blocks=(3, 7))
    ring = RingBuffer(8000 * 3)
    source = MicrophoneSource(device_index=None, sample_rate=8000, pyaudio_module=module)
    source.start(ring)
    assert wait_until(lambda: not module.streams[0].is_active())
    source.stop()
    opened = module.opened[0]
    assert opened["format"] == module.paFloat32 and opened["channels"] == 1 and opened["rate"] == 8000
    assert opened["input"] is True and opened["input_device_index"] == 1 and callable(opened["stream_callback"])
    assert np.array_equal(ring.read(len(audio), len(audio)), audio)
    assert source.input_overflows == 2
    assert module.streams[0].closed and module.terminated == 1


def test_microphone_without_8_khz_support_records_at_the_device_rate_and_resamples():
    seconds = 2.0
    times = np.arange(int(16000 * seconds)) / 16000
    module = fake_pyaudio({16000: (0.5 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)}, default_rate=16000)
    ring = RingBuffer(8000 * 3)
    source = MicrophoneSource(sample_rate=8000, pyaudio_module=module)
    source.start(ring)
    assert wait_until(lambda: not module.streams[0].is_active())
    source.stop()
    assert module.opened[0]["rate"] == 16000 and source.capture_rate == 16000
    # The streaming resampler holds back its filter delay (about 30 ms); the rest is a clean 440 Hz tone at 8 kHz.
    assert 8000 * seconds - 400 <= ring.written <= 8000 * seconds
    received = ring.read(ring.written - 1000, 4000)
    spectrum = np.abs(np.fft.rfft(received * np.hanning(len(received))))
    assert abs(np.argmax(spectrum) * 8000 / len(received) - 440) < 4


def test_microphone_device_errors_name_the_device_and_point_to_list_devices():
    module = fake_pyaudio({8000: np.zeros(800, dtype=np.float32)})
    with pytest.raises(MicrophoneUnavailable, match=r"input device 5 .*--list-devices"):
        MicrophoneSource(device_index=5, pyaudio_module=module).start(RingBuffer(8000))
    with pytest.raises(MicrophoneUnavailable, match=r"HDMI output.*no input channels"):
        MicrophoneSource(device_index=0, pyaudio_module=module).start(RingBuffer(8000))
    assert module.terminated == 2  # PortAudio released both times


def test_list_input_devices_keeps_only_devices_that_record():
    devices = list_input_devices(fake_pyaudio({8000: np.zeros(1, dtype=np.float32)}))
    assert [(d.index, d.name, d.is_default) for d in devices] == [(1, "USB microphone", True)]


def test_missing_pyaudio_says_how_to_install_portaudio_and_pyaudio(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes `import pyaudio` fail
    with pytest.raises(MicrophoneUnavailable, match=r"portaudio19-dev.*pip install PyAudio.*scripts/setup\.sh"):
        import_pyaudio()
    assert live_query_main(["--list-devices"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "sudo apt-get install portaudio19-dev" in error and "--input" in error


# ---------------------------------------------------------------- stability and the session loop


def test_stability_needs_the_same_song_with_the_offset_advancing_with_the_clock():
    tracker = StabilityTracker(stable_count=3, tolerance_seconds=0.75)
    assert tracker.update("a", 10.0, 5.0) == 1
    assert tracker.update("a", 11.0, 6.0) == 2
    assert tracker.update("a", 12.5, 7.0) == 3 and tracker.stable  # 0.5 s slip is within tolerance
    assert tracker.update("a", 12.5, 8.0) == 1  # offset stood still while the clock moved: a new run
    assert tracker.update("b", 13.5, 9.0) == 1 and not tracker.stable
    assert tracker.update(None, 0.0, 10.0) == 0
    assert tracker.update("b", 15.0, 11.0) == 1  # a no-match breaks the run


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
