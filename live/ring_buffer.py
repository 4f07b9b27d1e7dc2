"""The ring buffer between an audio source's thread and the recogniser: the most recent samples."""

from __future__ import annotations

import threading

import numpy as np


class WindowOverwritten(Exception):
    """The samples of a window left the ring buffer before the recogniser read them."""


class RingBuffer:
    """The last ``capacity`` float32 samples of an endless stream, safe for one writer and one reader thread.

    Samples are addressed by absolute position (sample 0 = the first ever written). Writing past
    the capacity overwrites the oldest samples; those that were overwritten before any read
    reached them are counted in ``dropped`` (the reader fell more than the capacity behind).
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0
        self._read_mark = 0  # end position of the newest read
        self.dropped = 0
        self._changed = threading.Condition()

    @property
    def written(self) -> int:
        """Total samples written so far: the absolute position of the end of the stream."""
        with self._changed:
            return self._written

    def write(self, samples: np.ndarray) -> int:
        """Append (n,) samples; returns how many unread samples this write overwrote."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        count = len(samples)
        if count == 0:
            return 0
        with self._changed:
            # Positions leaving the buffer: [oldest held, new oldest held); unread ones are >= read mark.
            leaving_start = max(0, self._written - self.capacity)
            leaving_end = max(0, self._written + count - self.capacity)
            lost = max(0, leaving_end - max(leaving_start, self._read_mark))
            self.dropped += lost
            kept = samples[-self.capacity :]
            start = (self._written + count - len(kept)) % self.capacity
            first = min(len(kept), self.capacity - start)
            self._data[start : start + first] = kept[:first]
            self._data[: len(kept) - first] = kept[first:]
            self._written += count
            self._changed.notify_all()
        return lost

    def read(self, end: int, count: int) -> np.ndarray:
        """A copy of samples [end - count, end) as (count,) float32; ValueError if not all are held."""
        with self._changed:
            if end > self._written or end - count < max(0, self._written - self.capacity) or count < 0:
                raise ValueError(
                    f"samples [{end - count}, {end}) are not in the buffer "
                    f"(holds [{max(0, self._written - self.capacity)}, {self._written}))"
                )
            indices = np.arange(end - count, end) % self.capacity
            self._read_mark = max(self._read_mark, end)
            return self._data[indices]

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until ``position`` samples have been written or ``timeout`` seconds pass; True if reached."""
        with self._changed:
            return self._changed.wait_for(lambda: self._written >= position, timeout)
