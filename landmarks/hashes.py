"""Stage 2: pairs of peaks ("landmarks") hashed to integers, each with its anchor time.

Each anchor peak (t1, f1) is paired with the first ``fan_out`` peaks (t2, f2) in its target
zone: t2 - t1 in [min_dt_frames, max_dt_frames] and |f2 - f1| <= max_df_bins (Wang 2003).
The triple (f1, f2 - f1, t2 - t1) is packed into one integer without collisions; the anchor
time t1 is what the matcher aligns.
"""

from __future__ import annotations

import numpy as np

from landmarks.config import LandmarkConfig
from landmarks.peaks import find_peaks, log_spectrogram


def hash_count(config: LandmarkConfig) -> int:
    """Number of distinct hash values: every value lies in [0, hash_count)."""
    return config.bins * (2 * config.max_df_bins + 1) * (config.max_dt_frames + 1)


def pair_peaks(frames: np.ndarray, bins: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(P,) peak frames and bins, sorted by frame then bin -> (hashes (H,) uint32, anchor frames (H,) int32).

    Targets are taken in time order (then frequency), at most ``fan_out`` per anchor. The
    result is ordered by target rank, not by time.
    """
    frames = np.asarray(frames, dtype=np.int64)
    bins = np.asarray(bins, dtype=np.int64)
    # Targets of anchor i are among peaks first[i] .. last[i] - 1 (those within the time window).
    first = np.searchsorted(frames, frames + config.min_dt_frames, side="left")
    last = np.searchsorted(frames, frames + config.max_dt_frames, side="right")
    taken = np.zeros(len(frames), dtype=np.int64)
    anchors = np.arange(len(frames))
    hashes, anchor_frames = [], []
    # One pass per candidate rank: every anchor looks at its k-th peak in the window at once.
    for rank in range(int((last - first).max(initial=0))):
        live = (first + rank < last) & (taken < config.fan_out)
        if not live.any():
            break
        anchor = anchors[live]
        target = first[live] + rank
        df = bins[target] - bins[anchor]
        inside = np.abs(df) <= config.max_df_bins
        anchor, target, df = anchor[inside], target[inside], df[inside]
        taken[anchor] += 1
        dt = frames[target] - frames[anchor]
        hashes.append(pack(bins[anchor], df, dt, config))
        anchor_frames.append(frames[anchor])
    if not hashes:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
    return np.concatenate(hashes).astype(np.uint32), np.concatenate(anchor_frames).astype(np.int32)


def pack(f1: np.ndarray, df: np.ndarray, dt: np.ndarray, config: LandmarkConfig) -> np.ndarray:
    """Anchor bin, bin difference and frame difference -> int64 hash in [0, hash_count(config))."""
    return (f1 * (2 * config.max_df_bins + 1) + (df + config.max_df_bins)) * (config.max_dt_frames + 1) + dt


def unpack(hashes: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``pack``: (f1, df, dt) int64 arrays."""
    hashes = np.asarray(hashes, dtype=np.int64)
    rest, dt = np.divmod(hashes, config.max_dt_frames + 1)
    f1, df = np.divmod(rest, 2 * config.max_df_bins + 1)
    return f1, df - config.max_df_bins, dt


def landmark_hashes(samples: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n,) samples -> (hashes (H,) uint32, anchor frames (H,) int32): peaks then pairs."""
    return pair_peaks(*find_peaks(log_spectrogram(samples, config), config), config)
