import numpy as np
import pytest
import soundfile as sf

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
