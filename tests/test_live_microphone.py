"""live.microphone through a fake PyAudio: blocks, overflows, resampling, device errors."""

import sys

import numpy as np
import pytest

from evaluation.live_query import main as live_query_main
from live.microphone import MicrophoneSource, MicrophoneUnavailable, import_pyaudio, list_input_devices
from live.ring_buffer import RingBuffer
from tests.fakes import fake_pyaudio, wait_until


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
