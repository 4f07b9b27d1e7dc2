import numpy as np
import torch

from models import FrontEndConfig, get_model
from models.encoder import WaveformEncoder, embed_samples
from tests.signals import synth_song


def test_embed_samples_gives_one_unit_row_per_half_second_window():
    torch.manual_seed(0)
    encoder = WaveformEncoder(get_model("fingerprinter", width=0.125), FrontEndConfig()).eval()
    audio = synth_song(5.0, seed=1)
    embeddings = embed_samples(encoder, audio, batch_size=4)
    assert embeddings.shape == (9, 128) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # Row 3 is the window starting at 1.5 s, batched or not.
    with torch.no_grad():
        single = encoder(torch.from_numpy(audio[12000:20000][None])).numpy()[0]
    assert np.allclose(embeddings[3], single, atol=1e-5)
