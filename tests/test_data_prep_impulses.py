import numpy as np
import pytest

from data_prep.impulses import RT60_CORRECTION, Room, place_in_room, shortest_rt60, simulate_rir


def test_a_placed_source_and_microphone_are_the_asked_distance_apart_and_away_from_the_walls():
    for seed in range(5):
        room = place_in_room((6.0, 4.5, 3.0), 0.5, 2.0, np.random.default_rng(seed))
        assert room.distance_m == pytest.approx(2.0)
        for position in (room.source_m, room.microphone_m):
            assert all(0.5 < coordinate < size - 0.5 for coordinate, size in zip(position, room.size_m))


def test_a_room_too_small_for_the_distance_is_refused():
    with pytest.raises(ValueError, match="too small for a 5.0 m"):
        place_in_room((3.0, 3.0, 2.5), 0.5, 5.0, np.random.default_rng(0))


def test_a_room_too_large_for_its_rt60_is_refused_with_the_shortest_it_allows():
    room = Room((12.0, 10.0, 4.0), 0.1, (3.0, 3.0, 1.5), (5.0, 4.0, 1.5))
    with pytest.raises(ValueError, match=r"cannot have an RT60 of 0.1 s \(at least"):
        simulate_rir(room, 8000)
    assert shortest_rt60(room.size_m, max_absorption=1.0) > 0.1


def test_the_simulated_ir_starts_at_time_zero_so_it_keeps_the_direct_path_delay():
    room = place_in_room((6.0, 4.5, 3.0), 0.4 * RT60_CORRECTION, 2.0, np.random.default_rng(0))
    ir = simulate_rir(room, 8000)
    assert ir.dtype == np.float64
    assert int(np.argmax(np.abs(ir))) > 2.0 / 343.0 * 8000  # the sound took ~6 ms to arrive
