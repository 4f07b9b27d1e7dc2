"""live.ring_buffer: samples by absolute position, overruns, waiting for a writer."""

import threading

import numpy as np
import pytest

from live.ring_buffer import RingBuffer


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
