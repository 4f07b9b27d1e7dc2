"""The one way audio becomes embeddings: front end + model, used by extraction, training, evaluation and live.

``WaveformEncoder`` wraps a model with its ``LogMel`` front end; ``load_encoder`` builds one from
a checkpoint; ``encode_batches`` runs any (B, samples) -> (B, d) encoder batch by batch;
``embed_samples`` frames a signal into windows at a hop and embeds them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from common.audio import frame_windows
from models import FrontEndConfig, LogMel, get_model
from models.checkpoint import CheckpointError, load_checkpoint
from models.whitening import Whitening


class WaveformEncoder(nn.Module):
    """Front end + model (+ the checkpoint's whitening, if any): (B, window_samples) float32
    waveforms -> (B, embedding_dim) unit vectors."""

    def __init__(self, model: nn.Module, frontend: FrontEndConfig, whitening: Whitening | None = None):
        super().__init__()
        self.frontend_config = frontend
        self.log_mel = LogMel(frontend)
        self.model = model
        self.whitening = whitening

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        embeddings = self.model(self.log_mel(waveforms))
        return embeddings if self.whitening is None else self.whitening(embeddings)


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[WaveformEncoder, dict]:
    """Load a checkpoint as an eval-mode WaveformEncoder on ``device`` (with its whitening when it
    has one); returns (encoder, payload)."""
    payload = load_checkpoint(path)
    try:
        frontend = FrontEndConfig.from_dict(payload["frontend"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: checkpoint 'frontend' is not a front-end config ({error})") from None
    try:
        model = get_model(payload["model_str"], payload["width"], frontend, payload["embedding_dim"])
        model.load_state_dict(payload["model_state"])
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: checkpoint weights do not fit its model ({str(error).splitlines()[0]})"
        ) from None
    # load_checkpoint has checked the whitening's tensors against embedding_dim.
    whitening = None if payload.get("whitening") is None else Whitening.from_payload(payload["whitening"])
    encoder = WaveformEncoder(model, frontend, whitening).to(device).eval()
    return encoder, payload


@torch.no_grad()
def encode_batches(
    encoder: Callable[[torch.Tensor], torch.Tensor],
    waveforms: np.ndarray | torch.Tensor,
    batch_size: int,
    device: str | torch.device,
    non_blocking: bool = False,
) -> torch.Tensor:
    """(M, samples) float32 waveforms -> (M, d) float32 embeddings on ``device``, ``batch_size`` at a time.

    ``encoder`` maps a (B, samples) tensor to (B, d) (a ``WaveformEncoder``, or a training model
    behind its front end); it is called as is, so the caller chooses eval mode. NumPy input may
    be a read-only view: each batch is copied before torch wraps it.
    """
    parts = []
    for start in range(0, len(waveforms), batch_size):
        batch = waveforms[start : start + batch_size]
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(np.array(batch, dtype=np.float32))
        parts.append(encoder(batch.to(device, non_blocking=non_blocking)).float())
    return torch.cat(parts)


def embed_samples(
    encoder: WaveformEncoder, samples: np.ndarray, hop_samples: int | None = None, batch_size: int = 256
) -> np.ndarray:
    """(n,) float32 audio at the encoder's sample rate -> (J, d) float32 unit embeddings.

    Row j embeds the window starting at sample j * hop_samples (J = floor((n - window) / hop) + 1);
    ``hop_samples`` defaults to half a window (the front end's 0.5 s). Raises AudioError when the
    audio is shorter than one window.
    """
    window_samples = encoder.frontend_config.window_samples
    hop_samples = encoder.frontend_config.default_hop_samples if hop_samples is None else hop_samples
    windows = frame_windows(np.asarray(samples, dtype=np.float32), window_samples, hop_samples)
    device = next(encoder.parameters()).device
    return encode_batches(encoder, windows, batch_size, device).cpu().numpy()
