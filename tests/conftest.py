import numpy as np
import pytest
import soundfile as sf

from tests.fakes import save_tiny_checkpoint
from tests.signals import synth_song


@pytest.fixture
def song_file(tmp_path):
    """Factory: write a synthetic song as a file and return its path."""

    def make(name: str = "song.wav", seconds: float = 10.0, seed: int = 0, sr: int = 8000, channels: int = 1):
        samples = synth_song(seconds, seed, sr)
        if channels > 1:
            samples = np.stack([samples] * channels, axis=1)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), samples, sr)
        return path

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Path of an untrained fingerprinter (width 0.125, torch seed 0) saved once for the session.

    Shared by every test that needs some model: read it, never write to it (a test that needs
    other weights saves its own with ``tests.fakes.save_tiny_checkpoint``).
    """
    return save_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny.pt")
