"""Log-mel front end (docs/training.md), computed in torch on the model's device.

Written with torch.stft and librosa's mel matrix rather than torchaudio, which pins an exact
torch version and has no CPU build on our machines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import numpy as np
import torch
from torch import nn

# Embedding size of the published models; a checkpoint records its own (``embedding_dim``).
EMBEDDING_DIM = 128


@dataclass(frozen=True)
class FrontEndConfig:
    """Every front-end fact in one place; it travels with checkpoints and indexes.

    The fields are what a checkpoint records; the properties derive the rest (window length in
    seconds, the 0.5 s default hop between fingerprint rows, the -80 dB floor of the log-mel).
    """

    sample_rate: int = 8000
    window_samples: int = 8000  # 1 s fingerprint unit
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 256
    fmin: float = 0.0
    fmax: float = 4000.0
    top_db: float = 80.0

    @property
    def window_seconds(self) -> float:
        """Length of one fingerprint window (1 s)."""
        return self.window_samples / self.sample_rate

    @property
    def default_hop_samples(self) -> int:
        """Samples between fingerprint rows unless a config says otherwise: half a window (4000 = 0.5 s)."""
        return self.window_samples // 2

    @property
    def default_hop_seconds(self) -> float:
        return self.default_hop_samples / self.sample_rate

    @property
    def floor_db(self) -> float:
        """The log-mel floor in dB relative to each window's maximum (-80)."""
        return -self.top_db

    @property
    def frames(self) -> int:
        """Frames per window with centred padding: 1 + window // hop (32 for 1 s at 8 kHz)."""
        return 1 + self.window_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FrontEndConfig:
        return cls(**data)


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
