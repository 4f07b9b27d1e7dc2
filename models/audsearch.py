"""Attention CNN after Singh et al. (ISMIR 2022): 3x3 stem, six residual blocks with
spectro-temporal attention, and a divide-and-encode head without LayerNorm."""

from __future__ import annotations

import torch
from torch import nn

from models.frontend_config import EMBEDDING_DIM, FrontEndConfig
from models.heads import GroupedProjection

_FRONT_END = FrontEndConfig()

# (out channels, stride) of the six residual blocks; the stem has 32 channels.
PUBLISHED_STEM = 32
PUBLISHED_BLOCKS = ((32, 1), (64, 2), (128, 2), (256, 2), (512, 2), (1024, 2))


class SpectroTemporalAttention(nn.Module):
    """Attention(C, F, T): x * 100 * s t^T with s = softmax_F tanh(x W_spec), t = softmax_T tanh(x^T W_temp).

    (B, C, F, T) -> (B, C, F, T). One weight per frequency bin and one per frame, per channel.
    """

    def __init__(self, channels: int, freq: int, time: int):
        super().__init__()
        self.w_spec = nn.Parameter(torch.randn(channels, time, 1))
        self.w_temp = nn.Parameter(torch.randn(channels, freq, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectral = torch.softmax(torch.tanh(torch.matmul(x, self.w_spec)), dim=2)  # (B, C, F, 1)
        temporal = torch.softmax(torch.tanh(torch.matmul(x.transpose(2, 3), self.w_temp)), dim=2)  # (B, C, T, 1)
        mask = 100.0 * torch.matmul(spectral, temporal.transpose(2, 3))  # (B, C, F, T)
        return x * mask


class AttentionResidualBlock(nn.Module):
    """conv3x3/s -> BN -> ReLU -> Attention -> conv3x3 -> BN, plus shortcut, ReLU, Attention."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, freq: int, time: int):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            SpectroTemporalAttention(out_channels, freq, time),
        )
        self.conv2 = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels))
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        self.attention = SpectroTemporalAttention(out_channels, freq, time)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.attention(torch.relu(out + self.shortcut(x)))


class AudSearch(nn.Module):
    """(B, 1, 256, 32) log-mel -> (B, 128) L2-normalised embeddings."""

    def __init__(
        self,
        width: float = 1.0,
        n_mels: int = _FRONT_END.n_mels,
        frames: int = _FRONT_END.frames,
        embedding_dim: int = EMBEDDING_DIM,
    ):
        super().__init__()
        stem_channels = max(1, round(PUBLISHED_STEM * width))
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem_channels, 3, padding=1), nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True)
        )
        blocks, in_channels, freq, time = [], stem_channels, n_mels, frames
        for published_channels, stride in PUBLISHED_BLOCKS:
            out_channels = max(1, round(published_channels * width))
            if stride == 2:
                freq, time = (freq - 1) // 2 + 1, (time - 1) // 2 + 1
            blocks.append(AttentionResidualBlock(in_channels, out_channels, stride, freq, time))
            in_channels = out_channels
        self.encoder = nn.Sequential(*blocks)
        self.head = GroupedProjection(in_channels * freq * time, embedding_dim, hidden=32, layer_norm=False)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        features = self.encoder(self.stem(log_mel)).flatten(1)
        return nn.functional.normalize(self.head(features), dim=1)
