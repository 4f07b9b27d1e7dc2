"""Babble noise: several talkers speaking at once, mixed from one split's speech clips only.

Each talker is one speech source (a package, speaker or language) whose clips are strung
together with short pauses from a random point; talkers are levelled to equal RMS with a small
random gain, summed and peak-normalised.
"""

from __future__ import annotations

import numpy as np

from common.audio import SAMPLE_RATE


def talker_stream(
    clips: list[np.ndarray],
    n_samples: int,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
    pause_s=(0.05, 0.4),
) -> np.ndarray:
    """(n_samples,) float32: random clips of one talker back to back with pauses of U(pause_s) seconds.

    Starts at a random point inside the first clip, so talkers do not all begin with an onset.
    """
    out = np.zeros(n_samples, dtype=np.float32)
    position = 0
    first = True
    while position < n_samples:
        clip = clips[int(rng.integers(len(clips)))]
        if first:
            clip = clip[int(rng.integers(len(clip))) :]
            first = False
        take = min(len(clip), n_samples - position)
        out[position : position + take] = clip[:take]
        position += take + int(rng.uniform(*pause_s) * sample_rate)
    rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    return out / rms if rms > 0 else out


def mix_babble(
    talker_pools: list[list[np.ndarray]],
    seconds: float,
    rng: np.random.Generator,
    talkers: tuple[int, int] = (5, 12),
    sample_rate: int = SAMPLE_RATE,
    gain_db: float = 3.0,
    peak: float = 0.9,
) -> tuple[np.ndarray, list[int]]:
    """Mix ``U{talkers}`` talkers into (seconds * sample_rate,) float32 babble with peak ``peak``.

    ``talker_pools[k]`` holds the (n,) float32 clips of speech source k; each talker draws one
    source (several talkers may share a source when there are fewer sources than talkers) and
    gets a gain of U(-gain_db, gain_db) dB. Returns the mix and the source index of each talker.
    """
    pools = [pool for pool in talker_pools if pool]
    if not pools:
        raise ValueError("babble needs at least one speech clip")
    low, high = talkers
    if not 1 <= low <= high:
        raise ValueError(f"talkers must be 1 <= low <= high, got {talkers}")
    n_samples = int(round(seconds * sample_rate))
    count = int(rng.integers(low, high + 1))
    sources = [int(rng.integers(len(pools))) for _ in range(count)]
    mix = np.zeros(n_samples, dtype=np.float64)
    for source in sources:
        gain = 10 ** (rng.uniform(-gain_db, gain_db) / 20)
        mix += gain * talker_stream(pools[source], n_samples, rng, sample_rate)
    top = float(np.max(np.abs(mix)))
    if top > 0:
        mix *= peak / top
    return mix.astype(np.float32), sources
