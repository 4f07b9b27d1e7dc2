"""A recording played into the ring buffer as if it were the microphone."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from common.audio import SAMPLE_RATE, load_audio
from common.errors import UserError
from live.ring_buffer import RingBuffer

# Audio arrives in blocks of this length (microphone callback, file chunks): short enough that a
# window is available promptly after its last sample, long enough to keep callback overhead low.
CHUNK_SECONDS = 0.1


class FileSource:
    """A recording played into a ring buffer as if it were the microphone.

    ``speed`` 1 plays at real time, 10 ten times faster (from a background thread, on the wall
    clock); 0 (or ``inf``) is as fast as possible and synchronous: audio is pushed only when the
    session asks for it, so every window is recognised and the run is deterministic.
    """

    def __init__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, speed: float = 1.0):
        if not speed >= 0:
            raise UserError(f"--speed must be 0 (as fast as possible) or positive, got {speed}")
        self.samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.sample_rate = sample_rate
        self.speed = float(speed)
        self.synchronous = speed == 0 or np.isinf(speed)
        self.chunk = max(1, int(round(CHUNK_SECONDS * sample_rate)))
        self.input_overflows = 0  # a file never loses input; kept so every source reports the same
        self._ring: RingBuffer | None = None
        self._pushed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, speed: float = 1.0, min_samples: int = 1
    ) -> FileSource:
        """Decode ``path`` (any format libsndfile reads) to mono at ``sample_rate``, at least ``min_samples`` long."""
        return cls(load_audio(path, sr=sample_rate, min_samples=min_samples), sample_rate, speed)

    @property
    def finished(self) -> bool:
        return self._pushed >= len(self.samples)

    def _push_chunk(self) -> None:
        chunk = self.samples[self._pushed : self._pushed + self.chunk]
        self._ring.write(chunk)
        self._pushed += len(chunk)

    def _play(self) -> None:
        started = time.monotonic()
        while not self.finished and not self._stop.is_set():
            # Schedule each chunk from the start time, so the wall clock never drifts.
            due = started + (self._pushed + self.chunk) / self.sample_rate / self.speed
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._push_chunk()

    def start(self, ring: RingBuffer) -> None:
        self._ring = ring
        if not self.synchronous:
            self._thread = threading.Thread(target=self._play, name="file-source", daemon=True)
            self._thread.start()

    def advance(self, position: int, timeout: float = 0.1) -> bool:
        """Make samples up to ``position`` available; False once the recording has ended short of it."""
        if self.synchronous:
            while self._ring.written < position and not self.finished:
                self._push_chunk()
        else:
            self._ring.wait_for(position, timeout)
        return self._ring.written >= position or not self.finished

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
