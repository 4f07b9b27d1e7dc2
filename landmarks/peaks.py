"""Stage 1: spectral peaks ("constellation points") of 8 kHz mono audio.

A peak is a local maximum along frequency of the log spectrogram that rises
above a masking threshold. Every accepted peak raises the threshold around its frequency by a
Gaussian skirt; the threshold decays from frame to frame, so quiet passages still get peaks and
the decay rate sets the density (audfprint, after Wang 2003). A backward pass then drops peaks
that a louder peak shortly after would have masked.
"""

from __future__ import annotations

import numpy as np

from landmarks.config import LandmarkConfig, masking_decay

# Magnitudes are floored 120 dB below the loudest bin before the log, so digital silence is finite.
DYNAMIC_RANGE = 1e-6


def log_spectrogram(samples: np.ndarray, config: LandmarkConfig) -> np.ndarray:
    """(n,) float samples at ``config.sample_rate`` -> (bins, frames) float32 natural-log magnitude.

    Frame j is the Hann-windowed FFT of samples [j * hop, j * hop + fft). Floored 120 dB below
    the loudest bin, mean removed (for readability; peak picking ignores constant shifts).
    Fewer samples than one FFT give 0 frames. (audfprint also high-passes each bin along time
    to emphasise onsets; on 8 kHz music that lost most peaks of a shifted excerpt, see docs.)
    """
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < config.fft_samples:
        return np.zeros((config.bins, 0), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, config.fft_samples)[:: config.hop_samples]
    window = np.hanning(config.fft_samples + 2)[1:-1].astype(np.float32)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T.astype(np.float32)
    loudest = float(magnitude.max())
    if loudest <= 0:
        return np.zeros_like(magnitude)
    log_magnitude = np.log(np.maximum(magnitude, loudest * DYNAMIC_RANGE))
    log_magnitude -= log_magnitude.mean()
    return log_magnitude.astype(np.float32)


def find_peaks(log_spec: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(bins, frames) log spectrogram -> (frames (P,), bins (P,)) int32 peaks, sorted by frame then bin.

    Works in the log domain: a peak of value v sets the threshold to v - 0.5 (df / spread_bins)^2
    at df bins away (a Gaussian skirt in linear magnitude), and the threshold falls by a fixed
    number of nats per frame. Adding a constant to the spectrogram (a gain) changes nothing.
    """
    n_bins, n_frames = log_spec.shape
    if n_frames == 0:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty
    decay = masking_decay(config.density, config.hop_samples, config.sample_rate)
    skirt = (-0.5 * (np.arange(-n_bins, n_bins + 1) / config.spread_bins) ** 2).astype(np.float32)
    columns = np.ascontiguousarray(log_spec.T)  # (frames, bins): one row per frame is cheap to slice

    def raise_threshold(threshold: np.ndarray, peak_bin: int, value: float) -> None:
        np.maximum(threshold, value + skirt[n_bins - peak_bin : 2 * n_bins - peak_bin], out=threshold)

    # Forward pass: accept the loudest candidates above the threshold, each raising it around itself.
    threshold = _initial_threshold(columns[: min(10, n_frames)].max(axis=0), skirt)
    accepted = np.zeros((n_frames, n_bins), dtype=bool)
    previous = 0
    for frame, bins in _local_maxima(columns):
        threshold -= decay * (frame - previous)
        previous = frame
        values = columns[frame, bins]
        loud = values > threshold[bins]
        if not loud.any():
            continue
        bins, values = bins[loud], values[loud]
        taken = 0
        for index in np.argsort(-values, kind="stable"):
            if taken >= config.max_peaks_per_frame:
                break
            if values[index] > threshold[bins[index]]:
                accepted[frame, bins[index]] = True
                raise_threshold(threshold, bins[index], values[index])
                taken += 1

    # Backward pass: a peak closely followed by a louder one at a nearby frequency is dropped.
    threshold = _initial_threshold(columns[-1], skirt)
    previous = n_frames - 1
    for frame in np.flatnonzero(accepted.any(axis=1))[::-1]:
        threshold -= decay * (previous - frame)
        previous = frame
        bins = np.flatnonzero(accepted[frame])
        values = columns[frame, bins]
        for index in np.argsort(-values, kind="stable"):
            if values[index] >= threshold[bins[index]]:
                raise_threshold(threshold, bins[index], values[index])
            else:
                accepted[frame, bins[index]] = False

    frames, bins = np.nonzero(accepted)
    return frames.astype(np.int32), bins.astype(np.int32)


def _local_maxima(columns: np.ndarray):
    """Yield (frame, bins) for every frame with interior bins greater than the bin below, >= the one above."""
    inner = columns[:, 1:-1]
    is_max = (inner > columns[:, :-2]) & (inner >= columns[:, 2:])
    frames, bins = np.nonzero(is_max)
    bins = bins + 1
    bounds = np.flatnonzero(np.diff(frames)) + 1
    for frame_bins, start in zip(np.split(bins, bounds), np.concatenate([[0], bounds])):
        if len(frame_bins):
            yield int(frames[start]), frame_bins


def _initial_threshold(column: np.ndarray, skirt: np.ndarray) -> np.ndarray:
    """(bins,) threshold before the first frame: the upper envelope of the skirts of the column's local maxima."""
    n_bins = len(column)
    threshold = np.full(n_bins, -np.inf, dtype=np.float32)
    is_max = np.zeros(n_bins, dtype=bool)
    is_max[1:-1] = (column[1:-1] > column[:-2]) & (column[1:-1] >= column[2:])
    for peak_bin in np.flatnonzero(is_max):
        np.maximum(threshold, column[peak_bin] + skirt[n_bins - peak_bin : 2 * n_bins - peak_bin], out=threshold)
    return threshold
