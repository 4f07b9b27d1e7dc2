"""Log-mel front end (docs/training.md), computed in torch on the model's device.

Written with torch.stft and librosa's mel matrix rather than torchaudio, which pins an exact
torch version and has no CPU build on our machines.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from models.frontend_config import EMBEDDING_DIM, FrontEndConfig

__all__ = ["EMBEDDING_DIM", "FrontEndConfig", "LogMel", "librosa_log_mel"]


class LogMel(nn.Module):
    """(B, samples) float32 waveforms -> (B, 1, n_mels, frames) log-mel in dB, max 0, floor -80.

    Periodic Hann window, centred zero padding, power spectrogram, Slaney mel filters with
    Slaney area normalisation, each example scaled by its own maximum (floor 1e-10).
    """

    def __init__(self, config: FrontEndConfig = FrontEndConfig()):
        super().__init__()
        self.config = config
        mel = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax,
            htk=False,
            norm="slaney",
        )
        self.register_buffer("mel_matrix", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        # Centred zero padding as librosa's pad_mode="constant"; done explicitly so stft's own
        # padding (reflect by default) cannot differ.
        padded = nn.functional.pad(waveforms, (cfg.n_fft // 2, cfg.n_fft // 2))
        spectrum = torch.stft(
            padded,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            window=self.window,
            center=False,
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()  # (B, n_fft/2+1, frames)
        mel = torch.matmul(self.mel_matrix, power)  # (B, n_mels, frames)
        amin = 1e-10
        db = 10.0 * torch.log10(mel.clamp_min(amin))
        peak = 10.0 * torch.log10(mel.amax(dim=(1, 2), keepdim=True).clamp_min(amin))
        db = (db - peak).clamp_min(-cfg.top_db)
        return db.unsqueeze(1)


def librosa_log_mel(samples: np.ndarray, config: FrontEndConfig = FrontEndConfig()) -> np.ndarray:
    """The librosa reference for one window: (n_mels, frames) dB, used to check ``LogMel``."""
    mel = librosa.feature.melspectrogram(
        y=samples,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=False,
        norm="slaney",
    )
    return librosa.power_to_db(mel, ref=np.max, amin=1e-10, top_db=config.top_db)
