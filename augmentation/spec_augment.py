"""SpecAugment on a log-mel batch (docs/training.md): one time-frequency rectangle set to the dB floor."""

from __future__ import annotations

import torch

from models.frontend_config import FrontEndConfig


class SpecAugment:
    """With prob ``p`` per example, set one rectangle of up to ``max_mel_bins`` x ``max_frames`` to ``floor_db``.

    The floor is the front end's -80 dB (silence), not 0 dB, which on a max-normalised
    log-mel would be the loudest possible value.
    """

    def __init__(
        self, p: float = 0.33, max_mel_bins: int = 127, max_frames: int = 2, floor_db: float = FrontEndConfig().floor_db
    ):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if max_mel_bins < 0 or max_frames < 0:
            raise ValueError("max_mel_bins and max_frames must be non-negative")
        self.p = p
        self.max_mel_bins = max_mel_bins
        self.max_frames = max_frames
        self.floor_db = floor_db

    def randomize(self, generator: torch.Generator, batch: int, mel_bins: int, frames: int) -> torch.Tensor:
        """(B, 4) int64 rows (mel_start, mel_height, frame_start, frame_width); height 0 = untouched."""
        applied = torch.rand(batch, generator=generator) < self.p
        height = torch.randint(0, min(self.max_mel_bins, mel_bins) + 1, (batch,), generator=generator)
        width = torch.randint(0, min(self.max_frames, frames) + 1, (batch,), generator=generator)
        mel_start = (torch.rand(batch, generator=generator) * (mel_bins - height + 1)).long()
        frame_start = (torch.rand(batch, generator=generator) * (frames - width + 1)).long()
        height = torch.where(applied, height, torch.zeros_like(height))
        return torch.stack([mel_start, height, frame_start, width], dim=1)

    def apply(self, log_mel: torch.Tensor, rectangles: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, frames) dB -> same shape with each row's rectangle set to ``floor_db``."""
        _, _, mel_bins, frames = log_mel.shape
        rectangles = rectangles.to(log_mel.device)
        mel = torch.arange(mel_bins, device=log_mel.device)[None, :]
        frame = torch.arange(frames, device=log_mel.device)[None, :]
        in_mel = (mel >= rectangles[:, :1]) & (mel < rectangles[:, :1] + rectangles[:, 1:2])  # (B, n_mels)
        in_frame = (frame >= rectangles[:, 2:3]) & (frame < rectangles[:, 2:3] + rectangles[:, 3:4])  # (B, frames)
        mask = (in_mel[:, :, None] & in_frame[:, None, :]).unsqueeze(1)
        return log_mel.masked_fill(mask, self.floor_db)

    def __call__(self, log_mel: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _, _, mel_bins, frames = log_mel.shape
        return self.apply(log_mel, self.randomize(generator, log_mel.shape[0], mel_bins, frames))
