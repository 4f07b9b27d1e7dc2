"""Small, deterministic music-like test signals, so tests never download audio.

A "song" is a melody and a bass line of harmonic notes with attack/decay envelopes plus
noise-burst percussion: broadband, non-stationary and different for every seed, which is
what fingerprinting needs to be tested on.
"""

from __future__ import annotations

import numpy as np


def synth_song(seconds: float, seed: int, sr: int = 8000) -> np.ndarray:
    """(seconds * sr,) float32 in [-1, 1], peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float64)
    tempo = rng.uniform(0.18, 0.35)  # seconds per note
    t_note = np.arange(int(tempo * sr)) / sr
    envelope = np.minimum(1.0, t_note / 0.01) * np.exp(-t_note / (tempo * 0.6))
    scale = 220.0 * 2 ** (rng.choice([0, 2, 3, 5, 7, 8, 10, 12, 14, 15], size=int(seconds / tempo) + 2) / 12)
    for voice, octave in ((0, 1.0), (1, 0.25)):
        start = 0
        for index, freq in enumerate(scale):
            if start >= n:
                break
            freq = freq * octave * (1 if voice == 0 else 2 ** (rng.integers(0, 3) / 12))
            note = sum(np.sin(2 * np.pi * freq * h * t_note + rng.uniform(0, 6.28)) / h for h in range(1, 6))
            seg = (note * envelope)[: n - start]
            out[start : start + len(seg)] += seg * (0.6 if voice == 0 else 0.4)
            start += len(t_note) * (1 if voice == 0 or index % 2 else 2)
    beat = int(tempo * 2 * sr)
    burst = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr))
    for start in range(int(rng.integers(0, beat)), n - len(burst), beat):
        out[start : start + len(burst)] += 0.5 * burst
    out += 0.01 * rng.standard_normal(n)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def write_songs(folder, count: int, seconds: float = 4.0) -> list[str]:
    """``count`` synthetic songs song0.wav.. written into ``folder``; their paths as strings."""
    from common.audio import write_wav

    paths = []
    for index in range(count):
        path = folder / f"song{index}.wav"
        write_wav(path, synth_song(seconds, seed=index))
        paths.append(str(path))
    return paths
