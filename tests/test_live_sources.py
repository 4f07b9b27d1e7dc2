"""live.sources: a file played as fast as possible or at real time."""

import time

import numpy as np

from live.ring_buffer import RingBuffer
from live.sources import FileSource


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
