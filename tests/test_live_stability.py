"""live.stability: when a match is stable enough to report."""

from live.stability import StabilityTracker


def test_stability_needs_the_same_song_with_the_offset_advancing_with_the_clock():
    tracker = StabilityTracker(stable_count=3, tolerance_seconds=0.75)
    assert tracker.update("a", 10.0, 5.0) == 1
    assert tracker.update("a", 11.0, 6.0) == 2
    assert tracker.update("a", 12.5, 7.0) == 3 and tracker.stable  # 0.5 s slip is within tolerance
    assert tracker.update("a", 12.5, 8.0) == 1  # offset stood still while the clock moved: a new run
    assert tracker.update("b", 13.5, 9.0) == 1 and not tracker.stable
    assert tracker.update(None, 0.0, 10.0) == 0
    assert tracker.update("b", 15.0, 11.0) == 1  # a no-match breaks the run
