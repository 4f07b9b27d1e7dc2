"""Microphone input through PyAudio (imported only here, so recordings work without it), and device listing."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from common.audio import SAMPLE_RATE
from common.errors import UserError
from live.ring_buffer import RingBuffer
from live.sources import CHUNK_SECONDS

PYAUDIO_INSTALL_HINT = (
    "install PortAudio (Debian/Ubuntu: sudo apt-get install portaudio19-dev) then `pip install PyAudio` "
    "(or rerun `bash scripts/setup.sh`, which does both where it can); "
    "a recording still works without it: --input FILE"
)


class MicrophoneUnavailable(UserError):
    """PyAudio/PortAudio missing, or no usable input device; the message says how to fix it."""


def import_pyaudio():
    """The ``pyaudio`` module, or MicrophoneUnavailable saying how to install PortAudio and PyAudio."""
    try:
        import pyaudio
    except ImportError as error:
        raise MicrophoneUnavailable(f"microphone input needs PyAudio ({error}): {PYAUDIO_INSTALL_HINT}") from None
    return pyaudio


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what PortAudio's C back ends (ALSA, JACK) print to file descriptor 2 while probing devices."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (unusual embedding); nothing to silence
        yield
        return
    sys.stderr.flush()
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class InputDevice:
    index: int
    name: str
    channels: int
    default_sample_rate: float
    is_default: bool


def list_input_devices(pyaudio_module=None) -> list[InputDevice]:
    """The audio devices that can record (at least one input channel), in PortAudio's order."""
    pyaudio = pyaudio_module or import_pyaudio()
    with _quiet_native_stderr():
        audio = pyaudio.PyAudio()
    try:
        try:
            default_index = audio.get_default_input_device_info()["index"]
        except OSError:
            default_index = None
        devices = []
        for index in range(audio.get_device_count()):
            info = audio.get_device_info_by_index(index)
            if info["maxInputChannels"] > 0:
                devices.append(
                    InputDevice(
                        index,
                        info["name"],
                        int(info["maxInputChannels"]),
                        float(info["defaultSampleRate"]),
                        index == default_index,
                    )
                )
        return devices
    finally:
        audio.terminate()


def format_devices(devices: list[InputDevice]) -> str:
    if not devices:
        return "no input devices found (is a microphone connected, and can this user open it?)"
    lines = ["index  channels  default rate  name"]
    for device in devices:
        marker = "  (default)" if device.is_default else ""
        lines.append(
            f"{device.index:5}  {device.channels:8}  {device.default_sample_rate:9.0f} Hz  {device.name}{marker}"
        )
    return "\n".join(lines)


class MicrophoneSource:
    """A PyAudio input stream (mono float32) whose callback writes each block into the ring buffer.

    The stream is opened at ``sample_rate`` when the device supports it; otherwise at the
    device's default rate, with each block resampled on the fly by a streaming soxr resampler.
    PortAudio's input-overflow flag (audio the device lost because a callback came late) is
    counted in ``input_overflows``. ``pyaudio_module`` replaces the real module (tests).
    """

    def __init__(self, device_index: int | None = None, sample_rate: int = SAMPLE_RATE, pyaudio_module=None):
        self.device_index = device_index
        self.sample_rate = sample_rate
        self.pyaudio = pyaudio_module or import_pyaudio()
        self.input_overflows = 0
        self.capture_rate: int | None = None  # the rate the stream was opened at
        self.opened_device: str | None = None  # "N (name)" of the device opened
        self._audio = None
        self._stream = None
        self._ring: RingBuffer | None = None
        self._resampler = None

    def _device_info(self) -> dict:
        try:
            if self.device_index is None:
                return self._audio.get_default_input_device_info()
            info = self._audio.get_device_info_by_index(self.device_index)
        except (OSError, ValueError) as error:
            which = "no default input device" if self.device_index is None else f"input device {self.device_index}"
            raise MicrophoneUnavailable(f"microphone: {which} ({error}); see --list-devices") from None
        if info["maxInputChannels"] < 1:
            raise MicrophoneUnavailable(
                f"microphone: device {self.device_index} ({info['name']}) has no input channels; see --list-devices"
            )
        return info

    def _choose_capture_rate(self, info: dict) -> int:
        try:
            supported = self._audio.is_format_supported(
                self.sample_rate,
                input_device=info["index"],
                input_channels=1,
                input_format=self.pyaudio.paFloat32,
            )
        except ValueError:
            supported = False
        return self.sample_rate if supported else int(round(info["defaultSampleRate"]))

    def _callback(self, in_data, frame_count, time_info, status_flags):
        # Runs on PortAudio's thread: only copy the block and count overflows.
        if status_flags & self.pyaudio.paInputOverflow:
            self.input_overflows += 1
        samples = np.frombuffer(in_data, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._ring.write(samples)
        return None, self.pyaudio.paContinue

    def start(self, ring: RingBuffer) -> None:
        self._ring = ring
        with _quiet_native_stderr():
            self._audio = self.pyaudio.PyAudio()
        try:
            info = self._device_info()
            self.opened_device = f"{info['index']} ({info['name']})"
            self.capture_rate = self._choose_capture_rate(info)
            if self.capture_rate != self.sample_rate:
                import soxr

                self._resampler = soxr.ResampleStream(self.capture_rate, self.sample_rate, 1, dtype="float32")
            self._stream = self._audio.open(
                format=self.pyaudio.paFloat32,
                channels=1,
                rate=self.capture_rate,
                input=True,
                input_device_index=info["index"],
                frames_per_buffer=max(1, int(round(CHUNK_SECONDS * self.capture_rate))),
                stream_callback=self._callback,
                start=False,
            )
            self._stream.start_stream()
        except OSError as error:
            self.stop()
            device = "default" if self.device_index is None else self.device_index
            raise MicrophoneUnavailable(
                f"microphone: cannot open input device {device} at {self.capture_rate} Hz ({error}); see --list-devices"
            ) from None
        except BaseException:
            self.stop()
            raise

    def advance(self, position: int, timeout: float = 0.1) -> bool:
        """Wait for samples up to ``position``; False once the stream has stopped short of it."""
        if self._ring.wait_for(position, timeout):
            return True
        return self._stream is not None and self._stream.is_active()

    def stop(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.stop_stream()
            self._stream.close()
            self._stream = None
        if self._audio is not None:
            self._audio.terminate()
            self._audio = None
