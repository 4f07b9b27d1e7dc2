"""Each augmentation transform, checked by measuring what it does to a signal."""

import numpy as np
import pytest
import torch

from augmentation import (
    AugmentationChain,
    BackgroundNoise,
    CutOffFilter,
    CutOffParams,
    ImpulseResponse,
    NoiseParams,
    SpecAugment,
    TimeShift,
    load_clip_set,
)
from augmentation.noise import rms
from common.audio import write_wav
from tests.signals import synth_song

SR = 8000


def db(ratio: float) -> float:
    return 20 * np.log10(ratio)


def noise_clips(count=3, seconds=1.5, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.2 * rng.standard_normal(int(seconds * SR))).astype(np.float32) for _ in range(count)]


def decaying_responses(count=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(800) / SR
    return [(rng.standard_normal(800) * np.exp(-t / 0.02)).astype(np.float32) for _ in range(count)]


@pytest.mark.parametrize("snr_db", [0.0, 4.2, 9.9, 14.7])
def test_background_noise_is_mixed_at_the_target_snr_within_a_tenth_of_a_db(snr_db):
    clean = synth_song(1.0, seed=1)
    transform = BackgroundNoise(noise_clips())
    mixed = transform.apply(clean, NoiseParams(noise_index=1, start=1234, snr_db=snr_db))
    achieved = db(rms(clean) / rms(mixed - clean))
    assert abs(achieved - snr_db) < 0.1


def test_background_noise_draws_follow_the_reference_snr_buckets_and_probability():
    transform = BackgroundNoise(noise_clips(), p=0.8)
    rng = np.random.default_rng(0)
    draws = [transform.randomize(rng, 8000) for _ in range(4000)]
    applied = [d for d in draws if d is not None]
    assert abs(len(applied) / len(draws) - 0.8) < 0.03
    snrs = np.array([d.snr_db for d in applied])
    assert snrs.min() >= 0 and snrs.max() <= 15
    shares = [np.mean((snrs >= low) & (snrs < low + 5)) for low in (0, 5, 10)]
    assert np.allclose(shares, [0.5, 0.3, 0.2], atol=0.03)
    assert all(0 <= d.start <= len(transform.noises[d.noise_index]) - 8000 for d in applied)


def test_a_noise_clip_shorter_than_the_window_is_repeated_to_cover_it():
    short = [np.ones(3000, dtype=np.float32)]
    transform = BackgroundNoise(short, p=1.0)
    clean = synth_song(1.0, seed=2)
    mixed = transform.apply(clean, NoiseParams(0, 500, 10.0))
    added = mixed - clean
    assert np.allclose(added, added[0], atol=1e-6)  # a constant clip stays constant over all 8000 samples
    assert abs(db(rms(clean) / rms(added)) - 10.0) < 0.1


@pytest.mark.parametrize("index", [0, 1, 2])
def test_impulse_response_output_has_peak_half_and_the_input_length(index):
    clean = synth_song(1.0, seed=3)
    transform = ImpulseResponse(decaying_responses())
    wet = transform.apply(clean, index)
    assert wet.shape == clean.shape and wet.dtype == np.float32
    assert abs(np.abs(wet).max() - 0.5) < 1e-6


def test_a_unit_impulse_response_only_rescales_the_signal_to_peak_half():
    clean = synth_song(1.0, seed=4)
    delta = np.zeros(100, dtype=np.float32)
    delta[0] = 1.0
    wet = ImpulseResponse([delta]).apply(clean, 0)
    assert np.allclose(wet, clean * (0.5 / np.abs(clean).max()), atol=1e-5)


def tone(freq_hz: float, seconds: float = 2.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


@pytest.mark.parametrize("order", [2, 3, 4, 5, 6])
def test_a_tone_an_octave_beyond_each_cutoff_is_attenuated_by_the_rolloff(order):
    """Butterworth of order n rolls off 6n dB/octave; require at least 6n - 3 dB one octave out."""
    transform = CutOffFilter(SR, p=1.0)
    passthrough_hz = 1400.0  # between the high-pass (700 Hz) and low-pass (1800 Hz) cut-offs
    params = CutOffParams(lowpass_hz=1800.0, lowpass_order=order, highpass_hz=700.0, highpass_order=order)
    for freq_hz in (3600.0, 350.0):  # an octave above the low-pass, an octave below the high-pass
        signal = tone(freq_hz)
        out = transform.apply(signal, params)
        steady = slice(SR, None)  # skip the causal filters' start-up transient
        attenuation = -db(rms(out[steady]) / rms(signal[steady]))
        assert attenuation >= 6 * order - 3, (freq_hz, attenuation)
    kept = transform.apply(tone(passthrough_hz), params)
    assert -db(rms(kept[SR:]) / rms(tone(passthrough_hz)[SR:])) < 3.0


def test_cutoff_draws_stay_in_the_published_ranges():
    transform = CutOffFilter(SR, p=0.4)
    rng = np.random.default_rng(0)
    draws = [transform.randomize(rng) for _ in range(3000)]
    applied = [d for d in draws if d is not None]
    assert abs(len(applied) / len(draws) - 0.4) < 0.03
    assert all(2000 <= d.lowpass_hz <= 3000 and 500 <= d.highpass_hz <= 1000 for d in applied)
    assert {d.lowpass_order for d in applied} == {2, 3, 4, 5, 6} == {d.highpass_order for d in applied}
    # uniform on the mel scale puts more than half of the low-pass cut-offs below the Hz midpoint
    assert np.mean([d.lowpass_hz < 2500 for d in applied]) > 0.5


def test_time_shift_moves_by_a_tenth_to_a_quarter_second_and_never_leaves_the_song():
    transform = TimeShift(SR, p=0.3)
    rng = np.random.default_rng(0)
    song_samples = 10 * SR
    for start, only_sign in ((0, 1), (9 * SR, -1), (4 * SR, 0)):
        shifts = np.array([transform.randomize(rng, start, SR, song_samples) for _ in range(2000)])
        moved = shifts[shifts != 0]
        assert abs(len(moved) / len(shifts) - 0.3) < 0.04
        assert np.all((np.abs(moved) >= 800) & (np.abs(moved) <= 2000))
        assert np.all(start + moved >= 0) and np.all(start + moved + SR <= song_samples)
        if only_sign:
            assert np.all(np.sign(moved) == only_sign)
        else:
            assert 0.4 < np.mean(moved > 0) < 0.6


def test_spec_augment_sets_one_rectangle_to_the_minus_80_db_floor():
    log_mel = torch.full((6, 1, 256, 32), -10.0)
    transform = SpecAugment(p=1.0)
    rectangles = transform.randomize(torch.Generator().manual_seed(3), 6, 256, 32)
    out = transform.apply(log_mel, rectangles)
    for row, (mel_start, height, frame_start, width) in enumerate(rectangles.tolist()):
        floor = out[row, 0] == -80.0
        assert floor.sum().item() == height * width and height <= 127 and width <= 2
        assert floor[mel_start : mel_start + height, frame_start : frame_start + width].all()
        assert (out[row, 0][~floor] == -10.0).all()


def test_spec_augment_leaves_about_two_thirds_of_the_examples_alone():
    transform = SpecAugment(p=0.33)
    rectangles = transform.randomize(torch.Generator().manual_seed(0), 3000, 256, 32)
    assert abs((rectangles[:, 1] > 0).float().mean().item() - 0.33 * 127 / 128) < 0.03


def make_chain(freq_cut=True):
    return AugmentationChain(
        BackgroundNoise(noise_clips()), ImpulseResponse(decaying_responses()), CutOffFilter(SR) if freq_cut else None
    )


def test_the_same_seed_gives_the_same_augmented_output_and_another_seed_does_not():
    clean = synth_song(1.0, seed=5)
    chain = make_chain()
    first = chain(clean, np.random.default_rng(7))
    again = chain(clean, np.random.default_rng(7))
    other = chain(clean, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_a_chain_pass_replays_exactly_from_its_drawn_parameters():
    clean = synth_song(1.0, seed=6)
    chain = make_chain()
    params = chain.randomize(np.random.default_rng(11), len(clean))
    assert np.array_equal(chain.apply(clean, params), chain.apply(clean, params))
    assert np.array_equal(chain.apply(clean, params), chain(clean, np.random.default_rng(11)))


def test_without_freq_cut_the_chain_has_no_cutoff_stage():
    assert make_chain(freq_cut=False).cutoff is None
    assert make_chain(freq_cut=False).randomize(np.random.default_rng(0), 8000).cutoff is None


def test_clip_sets_are_decoded_once_and_unusable_files_are_listed(tmp_path):
    write_wav(tmp_path / "a.wav", noise_clips(1)[0])
    write_wav(tmp_path / "zero.wav", np.zeros(4000, dtype=np.float32))
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    clips, skipped = load_clip_set(tmp_path)
    assert len(clips) == 1 and clips[0].dtype == np.float32
    assert len(skipped) == 2 and any("zero.wav" in s for s in skipped) and any("broken.wav" in s for s in skipped)


def test_transforms_reject_bad_parameters():
    with pytest.raises(ValueError, match="p must be"):
        BackgroundNoise(noise_clips(), p=1.5)
    with pytest.raises(ValueError, match="sum to 1"):
        BackgroundNoise(noise_clips(), snr_buckets=((0.5, (0, 5)),))
    with pytest.raises(ValueError, match="lowpass_hz"):
        CutOffFilter(SR, lowpass_hz=(3000, 5000))
    with pytest.raises(ValueError, match="at least one"):
        ImpulseResponse([])
