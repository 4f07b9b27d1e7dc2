"""Config-driven recording simulation: a playlist -> ``low_t.wav``, ``mid_t.wav``, ``high_t.wav`` + playlist CSV.

The folder it writes is what ``evaluation/evaluate_recording.py`` reads:

- ``<level>.wav`` for each entry of ``snr_levels`` (16-bit mono WAV at ``sr``);
- ``playlist.csv``: the song order only (column ``song``, names relative to ``true_songs``), as a
  person who recorded a real session would write it, so the protocol finds song 1 by
  cross-correlation;
- ``truth.csv``: the same songs with the exact ``start``/``end`` (s) the simulator placed them at
  (shifted by the room's direct-path delay), to check the alignment or to skip it;
- ``simulation.json``: every parameter, the IR used, the song starts, the gain and the measured
  SNR of each level; ``room_impulse.wav``: the room IR used, if any.

See ``evaluation.simulator`` for the signal chain. A simulation, not a phone recording.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from common.audio import AudioError, find_audio_files, load_audio, write_wav
from common.config import ConfigError, Key, Schema
from data_prep.impulses import place_in_room, simulate_rir
from evaluation.ground_truth import PlaylistEntry, read_playlist, write_playlist
from evaluation.simulator import RecordingSimulator, concatenate_songs, noise_bed

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
        Key("sr", "int", 8000, help="sample rate of the recordings (Hz)"),
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
        files = []
        for entry in read_playlist(config["playlist"]):
            path = Path(entry.song) if Path(entry.song).is_absolute() else folder / entry.song
            if not path.is_file():
                raise ConfigError(f"{config['playlist']}: song '{entry.song}' not found in true_songs ({path})")
            files.append(path)
        return files
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


def run_simulation(config: dict) -> dict:
    """Simulate the recordings described by ``config`` (see SCHEMA); returns the ``simulation.json`` content."""
    sr = config["sr"]
    levels = _levels(config["snr_levels"])
    output_dir = Path(config["output_dir"])
    songs_rng, room_rng, noise_rng = (np.random.default_rng([config["seed"], part]) for part in range(3))
    song_files = choose_songs(config, songs_rng)
    songs = [load_audio(path, sr) for path in song_files]
    print(f"playlist: {len(songs)} songs, {sum(map(len, songs)) / sr / 60:.1f} min")
    room_impulse, room_source = _room_impulse(config, sr, room_rng)
    speaker_impulse = None
    if config["speaker_impulse"]:
        speaker_impulse = load_audio(config["speaker_impulse"], sr)
        speaker_impulse = speaker_impulse / np.abs(speaker_impulse).max()
    simulator = RecordingSimulator(
        sr=sr,
        speaker_impulse=speaker_impulse,
        speaker_band_hz=_band(config["speaker_band_hz"], "speaker_band_hz"),
        room_impulse=room_impulse,
        phone_band_hz=_band(config["phone_band_hz"], "phone_band_hz"),
        level_dbfs=config["level_dbfs"],
    )
    playlist = concatenate_songs(songs, sr, config["lead_in_seconds"])
    noise = None
    if any(snr is not None for snr in levels.values()):
        if not config["background_noises"]:
            raise ConfigError("key 'background_noises' is needed when a level in 'snr_levels' has an SNR")
        clips = []
        for path in find_audio_files(config["background_noises"]):
            try:
                clips.append(load_audio(path, sr))
            except AudioError as error:
                print(f"skipped: {error}")
        if not clips:
            raise ConfigError(f"key 'background_noises': no usable audio in {config['background_noises']}")
        noise = noise_bed(clips, len(playlist.samples), noise_rng)
    recordings = simulator.record(playlist, levels, noise)

    folder = Path(config["true_songs"])
    names = [path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path) for path in song_files]
    delay = simulator.room_delay_samples() + (
        int(np.argmax(np.abs(speaker_impulse))) if speaker_impulse is not None else 0
    )
    truth = [
        PlaylistEntry(name, (start + delay) / sr, (start + delay + length) / sr)
        for name, start, length in zip(names, playlist.starts, playlist.lengths)
    ]
    for recording in recordings:
        write_wav(output_dir / f"{recording.name}.wav", recording.samples, sr)
        snr = "no noise" if recording.target_snr_db is None else f"SNR {recording.measured_snr_db:.2f} dB"
        print(f"{output_dir / recording.name}.wav: {snr}, gain {20 * np.log10(recording.gain):.1f} dB")
    if room_impulse is not None:
        write_wav(output_dir / "room_impulse.wav", room_impulse * 0.99, sr)
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
