"""Recording simulator: a playlist "played in a room and recorded with a phone", without a phone (docs/evaluation.md).

``run_simulation(config)`` (the config of ``evaluation/simulate_recording.py``, ``SCHEMA``) wires the
songs, the room and the noise into ``RecordingSimulator``, the signal chain below.

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

What ``run_simulation`` writes into ``output_dir`` (what ``evaluation/evaluate_recording.py`` reads):

- ``<level>.wav`` for each entry of ``snr_levels`` (16-bit mono WAV at ``sr``);
- ``playlist.csv``: the song order only (column ``song``, names relative to ``true_songs``), as a
  person who recorded a real session would write it, so the protocol finds song 1 by
  cross-correlation;
- ``truth.csv``: the same songs with the exact ``start``/``end`` (s) the simulator placed them at
  (shifted by the room's direct-path delay), to check the alignment or to skip it;
- ``simulation.json``: every parameter, the IR used, the song starts, the gain and the measured
  SNR of each level; ``room_impulse.wav``: the room IR used, if any.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal

from common.atomic import atomic_write_text
from common.audio import SAMPLE_RATE, AudioError, find_audio_files, load_audio, write_wav
from common.config import ConfigError, Key, Schema
from common.playlist import PlaylistEntry, playlist_files, read_playlist, write_playlist
from data_prep.impulses import place_in_room, simulate_rir

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

    sr: int = SAMPLE_RATE
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


# The config-driven runner: evaluation/simulate_recording.py.

DEFAULT_LEVELS = {"low_t": 15.0, "mid_t": 5.0, "high_t": 0.0}

SCHEMA = Schema(
    "evaluation/simulate_recording.py",
    [
        Key("true_songs", "path", must_exist=True, help="folder of the reference songs"),
        Key(
            "playlist",
            "path",
            None,
            must_exist=True,
            help="playlist CSV to play (column 'song'); null: 'song_count' songs of true_songs drawn with 'seed'",
        ),
        Key("song_count", "int", 15, help="songs drawn when no playlist is given (the paper used 15)"),
        Key("output_dir", "path", "runs/recordings", help="folder for the recordings and CSVs (created)"),
        Key(
            "snr_levels",
            "dict",
            DEFAULT_LEVELS,
            help="recording name -> SNR in dB of the music over the noise (null: no noise)",
        ),
        Key("background_noises", "path", None, must_exist=True, help="folder of background noise (test split)"),
        Key(
            "room_impulse",
            "path",
            None,
            must_exist=True,
            help="measured room IR file, or folder (one drawn with 'seed'); null: simulate a room",
        ),
        Key(
            "room_rt60",
            "float",
            0.512,
            nullable=True,
            help="simulated room: RT60 in s as measured on its IR (null with room_impulse null: no room)",
        ),
        Key("room_size", "list", [6.0, 4.5, 3.0], help="simulated room: length, width, height in m"),
        Key("source_mic_distance", "float", 2.0, help="simulated room: loudspeaker to phone distance in m"),
        Key("speaker_impulse", "path", None, must_exist=True, help="loudspeaker/cabinet IR file (overrides the band)"),
        Key(
            "speaker_band_hz",
            "list",
            [150.0, 3800.0],
            nullable=True,
            help="loudspeaker band-pass (Hz), 2nd-order Butterworth; null: flat",
        ),
        Key(
            "phone_band_hz",
            "list",
            [200.0, 3400.0],
            nullable=True,
            help="phone microphone band-pass (Hz), 4th-order Butterworth; null: flat",
        ),
        Key(
            "level_dbfs",
            "float",
            -20.0,
            nullable=True,
            help="RMS of the music region after level control (dBFS); null: no gain change",
        ),
        Key("lead_in_seconds", "float", 2.0, help="noise-only seconds before song 1 (the protocol must find it)"),
        Key("seed", "int", 0, help="seed of the song draw, IR choice, room geometry and noise"),
        Key("sr", "int", SAMPLE_RATE, help="sample rate of the recordings (Hz)"),
    ],
)


def _band(value, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(x, (int, float)) for x in value)
        or not 0 < value[0] < value[1]
    ):
        raise ConfigError(f"key '{key}' must be [low_hz, high_hz] with 0 < low < high, got {value!r}")
    return float(value[0]), float(value[1])


def _levels(value: dict) -> dict[str, float | None]:
    if not value:
        raise ConfigError("key 'snr_levels' must name at least one recording")
    levels = {}
    for name, snr in value.items():
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"key 'snr_levels': {name!r} is not usable as a file name")
        if snr is not None and (isinstance(snr, bool) or not isinstance(snr, (int, float))):
            raise ConfigError(f"key 'snr_levels': level {name!r} must be a number (dB) or null, got {snr!r}")
        levels[name] = None if snr is None else float(snr)
    return levels


def choose_songs(config: dict, rng: np.random.Generator) -> list[Path]:
    """The playlist's song files, in playing order."""
    folder = Path(config["true_songs"])
    if config["playlist"]:
        return playlist_files(read_playlist(config["playlist"]), folder, config["playlist"])
    available = find_audio_files(folder)
    if len(available) < config["song_count"]:
        raise ConfigError(f"key 'song_count': {config['song_count']} songs asked, {folder} holds {len(available)}")
    chosen = rng.choice(len(available), size=config["song_count"], replace=False)
    return [available[int(number)] for number in chosen]


def _room_impulse(config: dict, sr: int, rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
    if config["room_impulse"]:
        path = Path(config["room_impulse"])
        if path.is_dir():
            candidates = find_audio_files(path)
            if not candidates:
                raise ConfigError(f"key 'room_impulse': no audio file in {path}")
            path = candidates[int(rng.integers(len(candidates)))]
        impulse = load_audio(path, sr)
        return impulse / np.abs(impulse).max(), str(path)
    if config["room_rt60"] is None:
        return None, "none"
    size = config["room_size"]
    if len(size) != 3 or not all(isinstance(x, (int, float)) and x > 0 for x in size):
        raise ConfigError(f"key 'room_size' must be [length, width, height] in m, got {size!r}")
    try:
        room = place_in_room(tuple(size), config["room_rt60"], config["source_mic_distance"], rng)
        impulse = simulate_rir(room, sr)
    except ValueError as error:
        raise ConfigError(f"keys 'room_size'/'room_rt60'/'source_mic_distance': {error}") from None
    impulse = (impulse / np.abs(impulse).max()).astype(np.float32)
    return impulse, f"pyroomacoustics shoebox {size} m, RT60 {config['room_rt60']} s"


def _speaker_impulse(config: dict, sr: int) -> np.ndarray | None:
    if not config["speaker_impulse"]:
        return None
    impulse = load_audio(config["speaker_impulse"], sr)
    return impulse / np.abs(impulse).max()


def _noise(config: dict, levels: dict[str, float | None], n_samples: int, rng: np.random.Generator):
    """The unit-RMS noise bed from ``background_noises`` (``noise_bed``), or None when no level has an SNR."""
    if all(snr is None for snr in levels.values()):
        return None
    if not config["background_noises"]:
        raise ConfigError("key 'background_noises' is needed when a level in 'snr_levels' has an SNR")
    clips = []
    for path in find_audio_files(config["background_noises"]):
        try:
            clips.append(load_audio(path, config["sr"]))
        except AudioError as error:
            print(f"skipped: {error}")
    if not clips:
        raise ConfigError(f"key 'background_noises': no usable audio in {config['background_noises']}")
    return noise_bed(clips, n_samples, rng)


def run_simulation(config: dict) -> dict:
    """Simulate the recordings described by ``config`` (see SCHEMA); returns the ``simulation.json`` content."""
    sr = config["sr"]
    levels = _levels(config["snr_levels"])
    songs_rng, room_rng, noise_rng = (np.random.default_rng([config["seed"], part]) for part in range(3))
    song_files = choose_songs(config, songs_rng)
    songs = [load_audio(path, sr) for path in song_files]
    print(f"playlist: {len(songs)} songs, {sum(map(len, songs)) / sr / 60:.1f} min")
    room_impulse, room_source = _room_impulse(config, sr, room_rng)
    speaker_impulse = _speaker_impulse(config, sr)
    simulator = RecordingSimulator(
        sr=sr,
        speaker_impulse=speaker_impulse,
        speaker_band_hz=_band(config["speaker_band_hz"], "speaker_band_hz"),
        room_impulse=room_impulse,
        phone_band_hz=_band(config["phone_band_hz"], "phone_band_hz"),
        level_dbfs=config["level_dbfs"],
    )
    playlist = concatenate_songs(songs, sr, config["lead_in_seconds"])
    recordings = simulator.record(playlist, levels, _noise(config, levels, len(playlist.samples), noise_rng))

    folder = Path(config["true_songs"])
    names = [path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path) for path in song_files]
    delay = simulator.room_delay_samples() + (
        int(np.argmax(np.abs(speaker_impulse))) if speaker_impulse is not None else 0
    )
    truth = [
        PlaylistEntry(name, (start + delay) / sr, (start + delay + length) / sr)
        for name, start, length in zip(names, playlist.starts, playlist.lengths)
    ]
    return _write_outputs(config, recordings, room_impulse, truth, room_source)


def _write_outputs(
    config: dict,
    recordings: list[SimulatedRecording],
    room_impulse: np.ndarray | None,
    truth: list[PlaylistEntry],
    room_source: str,
) -> dict:
    """The WAVs, ``playlist.csv``, ``truth.csv`` and ``simulation.json`` (module docstring); returns the summary."""
    sr, output_dir = config["sr"], Path(config["output_dir"])
    for recording in recordings:
        write_wav(output_dir / f"{recording.name}.wav", recording.samples, sr)
        snr = "no noise" if recording.target_snr_db is None else f"SNR {recording.measured_snr_db:.2f} dB"
        print(f"{output_dir / recording.name}.wav: {snr}, gain {20 * np.log10(recording.gain):.1f} dB")
    if room_impulse is not None:
        write_wav(output_dir / "room_impulse.wav", room_impulse * 0.99, sr)
    names = [entry.song for entry in truth]
    write_playlist(output_dir / "playlist.csv", [PlaylistEntry(name) for name in names])
    write_playlist(output_dir / "truth.csv", truth)
    summary = {
        "note": "simulated recordings (songs -> loudspeaker -> room IR -> + noise -> phone band -> level); "
        "not a substitute for a phone recording",
        "config": dict(config),
        "songs": names,
        "song_starts_seconds": [entry.start for entry in truth],
        "room_impulse": room_source,
        "recordings": {
            recording.name: {
                "target_snr_db": recording.target_snr_db,
                "measured_snr_db": recording.measured_snr_db,
                "gain_db": 20 * float(np.log10(recording.gain)),
                "seconds": len(recording.samples) / sr,
            }
            for recording in recordings
        },
    }
    atomic_write_text(output_dir / "simulation.json", json.dumps(summary, indent=2) + "\n")
    return summary
