"""The front-end facts in one config object, without torch: ``FrontEndConfig`` and ``EMBEDDING_DIM``.

Kept apart from ``models.frontend`` (the torch ``LogMel``, which re-exports both) so that the
audio helpers, data preparation and ``--list-devices`` can read the sample rate and the window
without importing torch or librosa.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
