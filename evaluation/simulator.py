"""Recording simulator: a playlist "played in a room and recorded with a phone", without a phone (docs/evaluation.md).

This is a simulation, not a substitute for a phone recording. It reproduces the main effects a
real recording adds (a small loudspeaker's missing bass, room reverberation, background noise at
a chosen SNR, a phone microphone's band limits, automatic level) so that the real-world protocol
runs anywhere, including the tests and the demo. It does not reproduce a phone's noise
suppression, codecs, non-linear loudspeaker distortion, clock drift or a moving listener.

Signal chain, at ``sr`` Hz (8000 by default), all linear so the SNR is exact:

    songs back to back (after ``lead_in_seconds`` of silence)
      -> loudspeaker colouration: a measured cabinet/speaker IR, or a 2nd-order Butterworth band-pass
      -> room impulse response: a measured IR file, or a shoebox room (``data_prep.impulses``)
      -> + background noise (added at the microphone, so it is not reverberated)
      -> phone microphone band limits: 4th-order Butterworth band-pass (causal)
      -> level control: one gain so the music region sits at ``level_dbfs`` RMS, lowered if
         needed so the peak stays below 0.99 (no clipping, so the SNR is unchanged)

SNR definition: music power over noise power, both measured after the microphone band-pass on
the music region (from the start of song 1 to the end of the last song; the lead-in is left
out). Each level (low / mid / high) uses the same music and the same noise bed, only scaled, so
the three recordings differ by noise level alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal

# Peak ceiling after level control: leave headroom below full scale so 16-bit WAV never clips.
PEAK_CEILING = 0.99


@dataclass
class SimulatedRecording:
    """One simulated recording: (n,) float32 ``samples`` = ``music`` + ``noise`` (both after the gain)."""

    name: str
    samples: np.ndarray
    music: np.ndarray
    noise: np.ndarray
    target_snr_db: float | None
    measured_snr_db: float | None
    gain: float


@dataclass
class Playlist:
    """The played signal before the room: (n,) float32 at ``sr``; song k starts at ``starts[k]`` samples."""

    samples: np.ndarray
    starts: list[int]
    lengths: list[int]
    sr: int

    @property
    def music_region(self) -> slice:
        return slice(self.starts[0], self.starts[-1] + self.lengths[-1])


def concatenate_songs(songs: list[np.ndarray], sr: int, lead_in_seconds: float = 0.0) -> Playlist:
    """Songs ((n_k,) float32 each) back to back after ``lead_in_seconds`` of silence."""
    lead_in = int(round(lead_in_seconds * sr))
    starts, position = [], lead_in
    for song in songs:
        starts.append(position)
        position += len(song)
    samples = np.zeros(position, dtype=np.float32)
    for start, song in zip(starts, songs):
        samples[start : start + len(song)] = song
    return Playlist(samples, starts, [len(song) for song in songs], sr)


def noise_bed(clips: list[np.ndarray], n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_samples,) float32 noise from random clips at random starts, each piece scaled to unit RMS.

    Equal RMS per piece keeps the noise level steady across the recording, so the SNR holds for
    every song and not only on average.
    """
    usable = [clip for clip in clips if len(clip) and np.sqrt(np.mean(np.square(clip, dtype=np.float64))) > 1e-4]
    if not usable:
        raise ValueError("no background noise clip with any energy")
    out = np.empty(n_samples, dtype=np.float32)
    filled = 0
    while filled < n_samples:
        clip = usable[int(rng.integers(len(usable)))]
        start = int(rng.integers(len(clip)))
        piece = clip[start : start + n_samples - filled].astype(np.float64)
        rms = np.sqrt(np.mean(np.square(piece)))
        if rms < 1e-4:  # a silent stretch inside the clip: draw again
            continue
        out[filled : filled + len(piece)] = piece / rms
        filled += len(piece)
    return out


def band_pass(samples: np.ndarray, band_hz: tuple[float, float], sr: int, order: int) -> np.ndarray:
    """Causal Butterworth band-pass (scipy ``sosfilt``), (n,) -> (n,) float64."""
    low, high = band_hz
    high = min(high, 0.999 * sr / 2)
    sos = scipy.signal.butter(order, (low, high), btype="bandpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, samples)


def power(samples: np.ndarray) -> float:
    return float(np.mean(np.square(samples, dtype=np.float64)))


def snr_db(music: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of the power ratio of two (n,) signals."""
    return 10.0 * np.log10(power(music) / power(noise))


@dataclass
class RecordingSimulator:
    """The signal chain of the module docstring with fixed parameters; randomness only in ``noise_bed``/IR choice.

    Every stage can be turned off (None), which makes a clean recording equal to the playlist:
    the "better by construction" case of the end-to-end test.

    Args:
        sr: sample rate in Hz.
        speaker_impulse: (n,) measured loudspeaker IR, or None to use ``speaker_band_hz``.
        speaker_band_hz: (low, high) Hz of the loudspeaker band-pass, or None for a flat speaker.
        room_impulse: (n,) room IR (measured, or simulated by ``data_prep.impulses.simulate_rir``), or None.
        phone_band_hz: (low, high) Hz of the microphone band-pass, or None for a flat microphone.
        level_dbfs: RMS of the music region after level control, dBFS, or None for no gain change.
    """

    sr: int = 8000
    speaker_impulse: np.ndarray | None = None
    speaker_band_hz: tuple[float, float] | None = (150.0, 3800.0)
    room_impulse: np.ndarray | None = None
    phone_band_hz: tuple[float, float] | None = (200.0, 3400.0)
    level_dbfs: float | None = -20.0
    _speaker_order: int = field(default=2, repr=False)
    _phone_order: int = field(default=4, repr=False)

    def room_delay_samples(self) -> int:
        """Where the direct sound arrives: the peak of the room IR (0 without a room)."""
        return int(np.argmax(np.abs(self.room_impulse))) if self.room_impulse is not None else 0

    def play_in_room(self, playlist: Playlist) -> np.ndarray:
        """The music as it reaches the microphone, after the microphone band-pass: (n,) float64."""
        signal = playlist.samples.astype(np.float64)
        n = len(signal)
        if self.speaker_impulse is not None:
            signal = scipy.signal.fftconvolve(signal, self.speaker_impulse.astype(np.float64))[:n]
        elif self.speaker_band_hz is not None:
            signal = band_pass(signal, self.speaker_band_hz, self.sr, self._speaker_order)
        if self.room_impulse is not None:
            signal = scipy.signal.fftconvolve(signal, self.room_impulse.astype(np.float64))[:n]
        return self._microphone(signal)

    def _microphone(self, signal: np.ndarray) -> np.ndarray:
        if self.phone_band_hz is None:
            return signal
        return band_pass(signal, self.phone_band_hz, self.sr, self._phone_order)

    def record(
        self,
        playlist: Playlist,
        snr_levels: dict[str, float | None],
        noise: np.ndarray | None,
    ) -> list[SimulatedRecording]:
        """One recording per level name -> target SNR in dB (None = no noise).

        ``noise`` is a (n,) unit-RMS noise bed as long as the playlist (``noise_bed``), needed when
        any level has an SNR.
        """
        music = self.play_in_room(playlist)
        region = playlist.music_region
        music_power = power(music[region])
        if music_power <= 0:
            raise ValueError("the playlist is silent after the loudspeaker, room and microphone stages")
        heard_noise = None
        if any(level is not None for level in snr_levels.values()):
            if noise is None or len(noise) < len(music):
                raise ValueError("a noise bed as long as the playlist is needed for a level with an SNR")
            heard_noise = self._microphone(noise[: len(music)].astype(np.float64))
        recordings = []
        for name, target in snr_levels.items():
            if target is None:
                scaled_noise = np.zeros_like(music)
            else:
                # Scale so that P_music / P_noise over the music region is exactly the target.
                scale = np.sqrt(music_power / (power(heard_noise[region]) * 10.0 ** (target / 10.0)))
                scaled_noise = heard_noise * scale
            mixture = music + scaled_noise
            gain = self._level_gain(mixture[region], mixture)
            recorded_music = (music * gain).astype(np.float32)
            recorded_noise = (scaled_noise * gain).astype(np.float32)
            measured = snr_db(recorded_music[region], recorded_noise[region]) if target is not None else None
            recordings.append(
                SimulatedRecording(
                    name=name,
                    samples=(mixture * gain).astype(np.float32),
                    music=recorded_music,
                    noise=recorded_noise,
                    target_snr_db=target,
                    measured_snr_db=measured,
                    gain=float(gain),
                )
            )
        return recordings

    def _level_gain(self, region: np.ndarray, whole: np.ndarray) -> float:
        """One gain: the music region to ``level_dbfs`` RMS, but the peak never above ``PEAK_CEILING``."""
        peak = float(np.abs(whole).max())
        if self.level_dbfs is None:
            return 1.0 if peak <= PEAK_CEILING else PEAK_CEILING / peak
        gain = 10.0 ** (self.level_dbfs / 20.0) / np.sqrt(power(region))
        return float(min(gain, PEAK_CEILING / peak))
