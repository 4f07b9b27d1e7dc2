"""Embedding raw audio with a loaded encoder: the step shared by extraction, evaluation and live query."""

from __future__ import annotations

import numpy as np
import torch

from common.audio import HOP_SAMPLES, frame_windows
from models.checkpoint import WaveformEncoder


@torch.no_grad()
def embed_samples(
    encoder: WaveformEncoder, samples: np.ndarray, hop_samples: int = HOP_SAMPLES, batch_size: int = 256
) -> np.ndarray:
    """(n,) float32 audio at the encoder's sample rate -> (J, d) float32 unit embeddings.

    Row j embeds the window starting at sample j * hop_samples (J = floor((n - window) / hop) + 1).
    Raises AudioError when the audio is shorter than one window.
    """
    window_samples = encoder.frontend_config.window_samples
    windows = frame_windows(np.asarray(samples, dtype=np.float32), window_samples, hop_samples)
    device = next(encoder.parameters()).device
    parts = []
    for start in range(0, len(windows), batch_size):
        # np.array copies: the windows are a read-only view, which torch will not wrap.
        batch = torch.from_numpy(np.array(windows[start : start + batch_size])).to(device)
        parts.append(encoder(batch).float().cpu().numpy())
    return np.concatenate(parts).astype(np.float32, copy=False)
