import numpy as np
import torch

from models.frontend import FrontEndConfig, LogMel, librosa_log_mel
from tests.signals import synth_song


def test_log_mel_matches_librosa_within_a_thousandth_of_a_db():
    audio = synth_song(6.0, seed=3)
    windows = np.stack([audio[i * 4000 : i * 4000 + 8000] for i in range(10)])
    ours = LogMel()(torch.from_numpy(windows)).numpy()
    assert ours.shape == (10, 1, 256, 32) and ours.dtype == np.float32
    for window, result in zip(windows, ours):
        reference = librosa_log_mel(window)
        assert np.abs(result[0] - reference).max() < 1e-3


def test_log_mel_is_scaled_per_example_to_max_zero_floor_minus_80():
    quiet = 1e-3 * synth_song(1.0, seed=1)
    loud = synth_song(1.0, seed=2)
    out = LogMel()(torch.from_numpy(np.stack([quiet, loud])))
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.zeros(2))
    assert out.min() >= -80.0


def test_log_mel_with_nafp_fmin_matches_librosa():
    config = FrontEndConfig(fmin=300.0)
    window = synth_song(1.0, seed=5)
    ours = LogMel(config)(torch.from_numpy(window[None]))[0, 0].numpy()
    assert np.abs(ours - librosa_log_mel(window, config)).max() < 1e-3


def test_frames_per_second_is_32():
    assert FrontEndConfig().frames == 32
