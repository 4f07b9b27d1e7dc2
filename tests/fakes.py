"""Fakes shared by several test modules: a stand-in PyAudio module, a polling wait, a tiny checkpoint,
the one-line error a script printed."""

import threading
import time
import types

import numpy as np
import torch

from models import get_model
from models.checkpoint import save_checkpoint


def error_line(capsys) -> str:
    """The single line a script wrote to stderr (fails when it wrote none or several)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def save_tiny_checkpoint(path, seed: int = 0, model_str: str = "fingerprinter", width: float = 0.125):
    """An untrained ``model_str`` at ``width`` (seeded weights) saved as a checkpoint at ``path``; returns ``path``."""
    torch.manual_seed(seed)
    save_checkpoint(path, get_model(model_str, width=width), model_str, width)
    return path


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
