"""Room impulse responses: simulated shoebox rooms (pyroomacoustics) and clean-up of measured ones.

The one room simulator of the project: data preparation draws rooms for the training IRs
(``draw_room``) and the recording simulator places a loudspeaker and a phone in a given room
(``place_in_room``); both simulate with ``simulate_rir``.

RT60 means the reverberation time measured on the simulated IR (Schroeder decay, T30), what
a user means by it. pyroomacoustics' ``inverse_sabine`` gives absorption for a target RT60,
but the RT60 measured on its output comes out about 1.28x the target (see docs/data.md), so
``simulate_rir`` divides the RT60 by ``RT60_CORRECTION`` before asking for the absorption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from common.audio import SAMPLE_RATE

RT60_CORRECTION = 1.28
# The image-source count grows with max_order cubed; small very reverberant rooms would take
# seconds each. Capping the order truncates only their latest, weakest reflections.
MAX_IMAGE_ORDER = 80
# Kept before the direct sound so its onset is not cut (1 ms at 8 kHz).
ONSET_MARGIN_S = 0.001
# The tail is cut where the IR stays below this fraction of its peak (-80 dB, a few 16-bit steps):
# -60 dB would clip the reverberant tail of close sources, whose direct sound dominates the peak.
TAIL_FLOOR = 1e-4
OUTPUT_PEAK = 0.99


@dataclass(frozen=True)
class RoomRanges:
    """Uniform ranges the simulated rooms are drawn from (metres, seconds)."""

    length_m: tuple[float, float] = (3.0, 12.0)
    width_m: tuple[float, float] = (3.0, 10.0)
    height_m: tuple[float, float] = (2.4, 4.0)
    rt60_s: tuple[float, float] = (0.2, 0.9)
    distance_m: tuple[float, float] = (0.5, 4.0)
    wall_margin_m: float = 0.5

    @classmethod
    def from_dict(cls, values: dict) -> RoomRanges:
        known = {name: value for name, value in values.items() if name in cls.__dataclass_fields__}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown room range(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        converted = {name: (float(v) if name == "wall_margin_m" else tuple(map(float, v))) for name, v in known.items()}
        ranges = cls(**converted)
        for name in ("length_m", "width_m", "height_m", "rt60_s", "distance_m"):
            low, high = getattr(ranges, name)
            if not 0 < low <= high:
                raise ValueError(f"room range {name} must be 0 < low <= high, got {[low, high]}")
        return ranges


@dataclass(frozen=True)
class Room:
    """One drawn room: size (m), RT60 (s), source and microphone positions (m)."""

    size_m: tuple[float, float, float]
    rt60_s: float
    source_m: tuple[float, float, float]
    microphone_m: tuple[float, float, float]

    @property
    def distance_m(self) -> float:
        return float(np.linalg.norm(np.subtract(self.source_m, self.microphone_m)))


def shortest_rt60(size_m: tuple[float, float, float], max_absorption: float = 0.95) -> float:
    """Shortest RT60 (s, as measured on the simulated IR) a shoebox of ``size_m`` allows.

    Sabine: RT60 = 24 ln(10) V / (c S a); the walls' energy absorption a cannot exceed 1
    (``inverse_sabine`` refuses), so big rooms have a floor on RT60. ``max_absorption`` keeps a margin.
    """
    length, width, height = size_m
    volume = length * width * height
    surface = 2 * (length * width + length * height + width * height)
    speed_of_sound = pra.constants.get("c")
    return 24 * np.log(10) * volume / (speed_of_sound * surface * max_absorption) * RT60_CORRECTION


def draw_room(rng: np.random.Generator, ranges: RoomRanges = RoomRanges()) -> Room:
    """Draw a room, a microphone and a source at a distance from ``ranges.distance_m`` (shrunk to fit the room).

    An RT60 below what the room allows (``shortest_rt60``) is drawn again between that floor and the
    range's top (or set to the floor when it lies above the range).
    """
    size = np.array([rng.uniform(*ranges.length_m), rng.uniform(*ranges.width_m), rng.uniform(*ranges.height_m)])
    margin = min(ranges.wall_margin_m, float(size.min()) / 4)
    low, high = margin * np.ones(3), size - margin
    rt60 = float(rng.uniform(*ranges.rt60_s))
    shortest = shortest_rt60(tuple(size))
    if rt60 < shortest:  # a large room cannot be that dry: draw again from what it allows
        rt60 = float(rng.uniform(shortest, max(shortest, ranges.rt60_s[1])))
    distance = float(rng.uniform(*ranges.distance_m))
    for _ in range(100):
        microphone = rng.uniform(low, high)
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        source = microphone + distance * direction
        if np.all(source >= low) and np.all(source <= high):
            return Room(tuple(size), rt60, tuple(source), tuple(microphone))
        distance = max(ranges.distance_m[0] / 2, distance * 0.9)  # too far for this room: come closer
    raise RuntimeError(f"cannot place a source in a room of {size} m")  # unreachable for sane ranges


def place_in_room(
    size_m: tuple[float, float, float],
    rt60_s: float,
    distance_m: float,
    rng: np.random.Generator,
    wall_margin_m: float = 0.5,
) -> Room:
    """A room of fixed size with a source at random and a microphone ``distance_m`` from it.

    Both stay at least ``wall_margin_m`` from every wall. Raises ValueError when the room is too
    small for the distance.
    """
    size = np.asarray(size_m, dtype=np.float64)
    inner = size - 2 * wall_margin_m
    if np.any(inner <= 0) or distance_m >= np.min(inner) * np.sqrt(3):
        raise ValueError(f"room {list(size_m)} m is too small for a {distance_m} m source-microphone distance")
    for _ in range(1000):
        source = rng.uniform(wall_margin_m, size - wall_margin_m)
        direction = rng.normal(size=3)
        microphone = source + distance_m * direction / np.linalg.norm(direction)
        if np.all(microphone > wall_margin_m) and np.all(microphone < size - wall_margin_m):
            return Room(tuple(size_m), rt60_s, tuple(source), tuple(microphone))
    raise ValueError(f"cannot place a source and microphone {distance_m} m apart in a {list(size_m)} m room")


def clean_ir(ir: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Trim silence before the direct sound (keeping 1 ms) and the tail below -80 dB; peak to 0.99.

    (n,) float -> (m,) float32. The onset is the first sample reaching 10% of the peak.
    """
    ir = np.asarray(ir, dtype=np.float64)
    magnitude = np.abs(ir)
    peak = float(magnitude.max()) if ir.size else 0.0
    if peak == 0:
        raise ValueError("impulse response is all zeros")
    onset = int(np.argmax(magnitude >= 0.1 * peak))
    start = max(0, onset - int(ONSET_MARGIN_S * sample_rate))
    end = int(np.nonzero(magnitude >= TAIL_FLOOR * peak)[0][-1]) + 1
    trimmed = ir[start:end]
    return (OUTPUT_PEAK * trimmed / peak).astype(np.float32)


def simulate_rir(room: Room, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) float64 impulse response of ``room`` at ``sample_rate``, as pyroomacoustics computes it.

    Image-source method; ``room.rt60_s`` is the RT60 the result measures (module docstring). The
    IR starts at time zero, so it keeps the direct-path delay; ``clean_ir`` trims it.
    Raises ValueError when the room is too large for so short an RT60 (``shortest_rt60``).
    """
    try:
        absorption, max_order = pra.inverse_sabine(room.rt60_s / RT60_CORRECTION, list(room.size_m))
    except ValueError:
        raise ValueError(
            f"a {list(room.size_m)} m room cannot have an RT60 of {room.rt60_s} s "
            f"(at least {shortest_rt60(room.size_m, max_absorption=1.0):.2f} s)"
        ) from None
    shoebox = pra.ShoeBox(
        list(room.size_m),
        fs=sample_rate,
        materials=pra.Material(absorption),
        max_order=min(max_order, MAX_IMAGE_ORDER),
    )
    shoebox.add_source(list(room.source_m))
    shoebox.add_microphone(list(room.microphone_m))
    shoebox.compute_rir()
    return np.asarray(shoebox.rir[0][0], dtype=np.float64)


def measure_rt60(ir: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """RT60 in seconds from the Schroeder decay (T30 extrapolated), via pyroomacoustics."""
    return float(pra.experimental.measure_rt60(np.asarray(ir, dtype=np.float64), sample_rate, decay_db=30))
