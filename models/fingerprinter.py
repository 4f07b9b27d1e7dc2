"""Neural Fingerprinter (NAFP, Chang et al. 2021): separable-conv encoder + divide-and-encode head."""

from __future__ import annotations

import torch
from torch import nn

from models.frontend_config import EMBEDDING_DIM, FrontEndConfig
from models.heads import GroupedProjection

_FRONT_END = FrontEndConfig()

PUBLISHED_CHANNELS = (128, 128, 256, 256, 512, 512, 1024, 1024)


def _halve(size: int) -> int:
    """Spatial size after a stride-2 conv with kernel 3 and padding 1: floor((in - 1) / 2) + 1."""
    return (size - 1) // 2 + 1


class SeparableBlock(nn.Module):
    """Conv (1,3)/(1,2) -> ReLU -> LayerNorm(C,H,W) -> Conv (3,1)/(2,1) -> ReLU -> LayerNorm(C,H,W)."""

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int):
        super().__init__()
        mid_width = _halve(width)
        out_height = _halve(height)
        self.conv_time = nn.Conv2d(in_channels, out_channels, (1, 3), stride=(1, 2), padding=(0, 1))
        self.norm_time = nn.LayerNorm((out_channels, height, mid_width))
        self.conv_freq = nn.Conv2d(out_channels, out_channels, (3, 1), stride=(2, 1), padding=(1, 0))
        self.norm_freq = nn.LayerNorm((out_channels, out_height, mid_width))
        self.out_shape = (out_channels, out_height, mid_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_time(torch.relu(self.conv_time(x)))
        return self.norm_freq(torch.relu(self.conv_freq(x)))


class Fingerprinter(nn.Module):
    """(B, 1, 256, 32) log-mel -> (B, 128) L2-normalised embeddings."""

    def __init__(
        self,
        width: float = 1.0,
        n_mels: int = _FRONT_END.n_mels,
        frames: int = _FRONT_END.frames,
        embedding_dim: int = EMBEDDING_DIM,
    ):
        super().__init__()
        channels = [max(1, round(c * width)) for c in PUBLISHED_CHANNELS]
        blocks, in_channels, height, time = [], 1, n_mels, frames
        for out_channels in channels:
            block = SeparableBlock(in_channels, out_channels, height, time)
            blocks.append(block)
            in_channels, height, time = block.out_shape
        self.encoder = nn.Sequential(*blocks)
        features = in_channels * height * time
        self.head = GroupedProjection(features, embedding_dim, hidden=32, layer_norm=True)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        features = self.encoder(log_mel).flatten(1)
        return nn.functional.normalize(self.head(features), dim=1)
