"""Noise and impulse-response sets, decoded once and held in memory."""

from __future__ import annotations

import os

import numpy as np

from common.audio import SAMPLE_RATE, AudioError, find_audio_files, load_audio


def load_clip_set(folder: str | os.PathLike, sr: int = SAMPLE_RATE) -> tuple[list[np.ndarray], list[str]]:
    """Decode every audio file under ``folder`` to mono float32 at ``sr`` Hz.

    Returns (clips, skipped): clips is a list of (n_i,) float32 arrays; skipped holds one
    line per file that could not be used (unreadable, NaN/Inf, or all zeros), naming the file.
    Raises AudioError when the folder holds no usable clip at all.
    """
    clips, skipped = [], []
    for path in find_audio_files(folder):
        try:
            samples = load_audio(path, sr)
        except AudioError as error:
            skipped.append(str(error))
            continue
        if not np.any(samples):
            skipped.append(f"{path}: all samples are zero")
            continue
        clips.append(samples)
    if not clips:
        raise AudioError(f"{folder}: no usable audio file in this folder ({len(skipped)} skipped)")
    return clips, skipped
