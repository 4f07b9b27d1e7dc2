"""Music rendered from scores: music21's corpus -> MIDI -> FluidSynth -> mono 16-bit WAV, cached.

A score is one file of music21's bundled corpus (a chorale, a madrigal, a mass movement), or
one tune of a multi-tune ABC file (a folk-song book). music21 parses it and writes MIDI once
(``score_midi``, cached, as parsing takes about a second); each render then draws a soundfont
and, per part, a General MIDI program (``draw_plan``, replayable from the seed), gives every
part its own channel and program, appends the messages that end every sound
(``prepare_midi``), renders with the ``fluidsynth`` program at 22.05 kHz or more
(``render_midi``), and trims, levels and resamples the result to the build's rate with soxr
(``finish_audio``). ``render_score`` does all of it for one score, in a worker process.

FluidSynth 2.3's file renderer can run forever once a sustained instrument is assigned, so
every MIDI file ends with sustain-pedal-up and all-notes-off (CC 64, CC 123), then, after a
release, all-sound-off (CC 120) on all 16 channels, and fluidsynth runs under a timeout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from itertools import product
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
import soxr

from common.atomic import atomic_path, atomic_write_text
from data_prep.decode import DecodedAudio, read_cached, store_decoded, to_int16
from data_prep.manifest import copyright_file, licence_for

SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
# Collections whose scores take minutes each to parse (string quartets, sonatas in full detail).
SLOW_COLLECTIONS = ("beethoven", "mozart")
# General MIDI programs (0-based) by instrument family; each part draws a family, then a program.
GM_FAMILIES: dict[str, tuple[int, ...]] = {
    "keyboards": (0, 1, 2, 4, 5, 6, 7),  # pianos, electric pianos, harpsichord, clavinet
    "mallets": (8, 9, 10, 11, 12, 13),  # celesta, glockenspiel, music box, vibraphone, marimba, xylophone
    "organs": (16, 17, 19, 20, 21),  # drawbar, percussive, church and reed organ, accordion
    "guitars": (24, 25, 26, 27),  # nylon, steel, jazz and clean electric guitar
    "strings": (40, 41, 42, 43, 44, 45, 46, 48, 49),  # violin to contrabass, tremolo, pizzicato, harp, ensembles
    "choir": (52, 53, 54),  # choir aahs, voice oohs, synth voice
    "brass": (56, 57, 58, 60, 61),  # trumpet, trombone, tuba, French horn, brass section
    "reeds": (64, 65, 66, 68, 69, 70, 71),  # saxophones, oboe, English horn, bassoon, clarinet
    "pipes": (72, 73, 74, 75, 79),  # piccolo, flute, recorder, pan flute, ocarina
    "synth": (80, 81, 88, 89, 90, 91),  # square and saw leads, pads
}
DEFAULT_FAMILIES = [name for name in GM_FAMILIES if name != "synth"]
MELODIC_CHANNELS = tuple(channel for channel in range(16) if channel != 9)  # channel 10 (index 9) is percussion
PERCUSSION_CHANNEL = 9
RELEASE_BEATS = 2  # between all-notes-off and all-sound-off: the last notes' release is heard
MIN_RENDER_RATE = 22050  # FluidSynth renders at least this fast; soxr then resamples (no aliasing at 8 kHz)
FLUIDSYNTH_GAIN = 0.5  # rendered as float, so no clipping; the level is set afterwards
TRIM_BELOW_PEAK_DB = -60.0  # leading and trailing audio this far below the peak is silence
TARGET_RMS_DB = -20.0  # level of every render (dBFS RMS) ...
PEAK_LIMIT = 0.9  # ... unless that would put its peak above this
# fluidsynth is stopped after RENDER_TIMEOUT_BASE_S + RENDER_TIMEOUT_PER_SECOND x the MIDI's length;
# it renders hundreds of times faster than real time, so only a hang reaches it.
RENDER_TIMEOUT_BASE_S = 60.0
RENDER_TIMEOUT_PER_SECOND = 2.0
RENDER_VERSION = 1  # part of every cached render's key: bump when rendering changes


class RenderError(Exception):
    """A score that cannot be rendered; the message names the score and says why, on one line."""


@dataclass(frozen=True)
class Score:
    """One score of the corpus: a file of ``collection`` (a corpus folder), or one tune of a multi-tune ABC file."""

    collection: str
    relative: str  # path inside the collection folder, POSIX
    number: int | None = None  # the tune's X: number in a multi-tune ABC file

    @property
    def name(self) -> str:
        """'bach/bwv66.6.mxl', or 'essenFolksong/altdeu10.abc#5' for one tune of a book."""
        tune = f"#{self.number}" if self.number is not None else ""
        return f"{self.collection}/{self.relative}{tune}"

    @property
    def stem(self) -> str:
        """The path inside the collection without suffix, the tune number appended: 'altdeu10_5'."""
        stem = self.relative.rsplit(".", 1)[0]
        return stem if self.number is None else f"{stem}_{self.number}"


@dataclass(frozen=True)
class RenderPlan:
    """The random choices of one render: a soundfont and, per part, a GM program (None: the score's own)."""

    soundfont: str
    programs: tuple[int, ...] | None


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs to render one score into the cache."""

    score: Score
    seed: int
    soundfonts: tuple[str, ...]
    families: tuple[str, ...]  # GM_FAMILIES names; empty: keep the score's instruments
    sample_rate: int
    max_seconds: float
    cache_dir: str


@dataclass(frozen=True)
class Rendered:
    """A rendered score in the cache, how it was rendered, and the SHA-1 of its notes (same notes, same score)."""

    audio: DecodedAudio
    plan: RenderPlan
    notes_sha1: str


# --------------------------------------------------------------------------- the corpus


def corpus_root() -> Path | None:
    """music21's bundled corpus folder, found without importing music21 (seconds); None when not installed."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "corpus"


def music21_version() -> str:
    return metadata.version("music21")


def corpus_collections(root: Path) -> list[str]:
    """The corpus folders (composers and collections: 'bach', 'palestrina', 'ryansMammoth', ...), sorted."""
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def list_scores(root: Path, collection: str) -> list[Score]:
    """Every score of a collection, sorted.

    A multi-tune ABC file gives one score per tune, unless all its tunes share their title:
    then they are the voices of one piece (Josquin's chansons) and make one score.
    """
    folder = Path(root) / collection
    scores = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SCORE_SUFFIXES):
        relative = path.relative_to(folder).as_posix()
        tunes = _abc_tunes(path) if path.suffix.lower() == ".abc" else []
        if len(tunes) > 1 and len({title for _, title in tunes}) > 1:
            scores += [Score(collection, relative, number) for number, _ in tunes]
        else:
            scores.append(Score(collection, relative))
    return scores


def _abc_tunes(path: Path) -> list[tuple[int, str]]:
    """(X: number, first T: title) of every tune of an ABC file."""
    tunes: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        number = re.match(r"X:\s*(\d+)", line)
        if number:
            tunes.append((int(number.group(1)), ""))
        elif line.startswith("T:") and tunes and not tunes[-1][1]:
            tunes[-1] = (tunes[-1][0], line[2:].strip())
    return tunes


# --------------------------------------------------------------------------- score -> MIDI (cached)


def score_midi(score: Score, cache_dir: Path) -> Path:
    """The score as a MIDI file written by music21, parsed once and cached; raises RenderError if unparsable.

    A failed parse is cached too (a ``.error`` file beside), so a rerun does not parse it again.
    """
    target = Path(cache_dir) / "renders" / "midi" / f"music21-{music21_version()}" / f"{score.collection}"
    target = target / f"{score.stem}.mid"
    failed = target.with_suffix(".error")
    if target.exists():
        return target
    if failed.exists():
        raise RenderError(failed.read_text(encoding="utf-8").strip())
    try:
        midi = _parse_to_midi(score)
    except Exception as error:  # music21 raises many kinds of errors on scores it cannot read
        reason = str(error).splitlines()[0][:200] if str(error) else ""
        message = f"{score.name}: music21 cannot turn it into MIDI ({type(error).__name__}: {reason})"
        atomic_write_text(failed, message + "\n")
        raise RenderError(message) from None
    with atomic_path(target) as tmp:
        midi.open(str(tmp), "wb")
        midi.write()
        midi.close()
    return target


def _parse_to_midi(score: Score):
    from music21 import converter, midi, stream

    path = corpus_root() / score.collection / score.relative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if score.number is None:
            parsed = converter.parse(path, forceSource=True)
        else:
            parsed = converter.parse(path, number=score.number, forceSource=True)
        if isinstance(parsed, stream.Opus):  # the voices of one piece, one tune each: play them together
            combined = stream.Score()
            for part in (part for each in parsed.scores for part in each.parts):
                combined.insert(0, part)
            parsed = combined
        return midi.translate.streamToMidiFile(parsed)


def notes_sha1(midi: mido.MidiFile) -> str:
    """SHA-1 of a MIDI file's notes (onset in beats, pitch), whatever their channels and programs."""
    onsets = []
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                onsets.append((round(tick / midi.ticks_per_beat, 4), message.note))
    return hashlib.sha1(json.dumps(sorted(onsets)).encode()).hexdigest()


def part_tracks(midi: mido.MidiFile) -> list[int]:
    """Indices of the tracks that play pitched notes: music21 writes one per part (percussion tracks excluded)."""
    parts = []
    for index, track in enumerate(midi.tracks):
        channels = {message.channel for message in track if message.type == "note_on"}
        if channels and channels != {PERCUSSION_CHANNEL}:
            parts.append(index)
    return parts


# --------------------------------------------------------------------------- the random choices


def draw_plan(score: Score, parts: int, soundfonts: tuple[str, ...], families: tuple[str, ...], seed: int):
    """The soundfont and per-part programs of ``score``'s render, a function of the seed and the score's name."""
    rng = np.random.default_rng([seed, zlib.crc32(score.name.encode())])
    soundfont = soundfonts[int(rng.integers(len(soundfonts)))]
    if not families:
        return RenderPlan(soundfont, None)
    programs = []
    for _ in range(parts):
        family = GM_FAMILIES[families[int(rng.integers(len(families)))]]
        programs.append(family[int(rng.integers(len(family)))])
    return RenderPlan(soundfont, tuple(programs))


# --------------------------------------------------------------------------- MIDI -> audio


def prepare_midi(midi: mido.MidiFile, programs: tuple[int, ...] | None) -> mido.MidiFile:
    """A copy of ``midi`` with one channel per part, the parts' ``programs`` (None: their own), and a final
    track that releases and then silences every note on all 16 channels (see the module docstring)."""
    prepared = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat)
    parts = part_tracks(midi)
    for index, track in enumerate(midi.tracks):
        if index not in parts:
            prepared.tracks.append(track.copy())
            continue
        part = parts.index(index)
        channel = MELODIC_CHANNELS[part % len(MELODIC_CHANNELS)]
        rewritten, delay = mido.MidiTrack(), 0
        if programs is not None:
            rewritten.append(mido.Message("program_change", channel=channel, program=programs[part], time=0))
        for message in track:
            if programs is not None and message.type == "program_change":
                delay += message.time  # replaced by the drawn program; its delta time moves to the next message
                continue
            changes = {"time": message.time + delay}
            if not message.is_meta and hasattr(message, "channel"):
                changes["channel"] = channel
            rewritten.append(message.copy(**changes))
            delay = 0
        prepared.tracks.append(rewritten)
    prepared.tracks.append(_silencing_track(prepared))
    return prepared


def _silencing_track(midi: mido.MidiFile) -> mido.MidiTrack:
    end = max((sum(message.time for message in track) for track in midi.tracks), default=0)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="all notes off", time=0)])
    # At the end: sustain pedal up and all notes off (notes release); RELEASE_BEATS later: all sound off.
    for delay, controls in ((end, (64, 123)), (RELEASE_BEATS * midi.ticks_per_beat, (120,))):
        for k, (channel, control) in enumerate(product(range(16), controls)):
            message = mido.Message("control_change", channel=channel, control=control, value=0, time=0)
            track.append(message.copy(time=delay) if k == 0 else message)
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def render_timeout_s(midi_seconds: float) -> float:
    return RENDER_TIMEOUT_BASE_S + RENDER_TIMEOUT_PER_SECOND * midi_seconds


def render_midi(midi_path: Path, soundfont: str, rate: int, timeout_s: float, name: str) -> np.ndarray:
    """(n,) float32 mono at ``rate``: the MIDI file rendered by fluidsynth; RenderError naming ``name`` on failure."""
    with tempfile.TemporaryDirectory(prefix="render-") as folder:
        wav = Path(folder) / "render.wav"
        command = ["fluidsynth", "-n", "-i", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(rate), "-O", "float"]
        command += ["-T", "wav", "-F", str(wav), soundfont, str(midi_path)]
        try:
            result = subprocess.run(command, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RenderError(
                f"{name}: fluidsynth did not finish rendering with {Path(soundfont).name} within {timeout_s:.0f} s "
                "(a note left sounding?)"
            ) from None
        except FileNotFoundError:
            raise RenderError(f"{name}: the fluidsynth program is not installed (Debian: fluidsynth)") from None
        if result.returncode != 0 or not wav.exists():
            reason = result.stderr.decode(errors="replace").strip().replace("\n", " ")[-200:]
            raise RenderError(f"{name}: fluidsynth failed with exit status {result.returncode} ({reason})")
        samples, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    return samples.mean(axis=1)


def finish_audio(mono: np.ndarray, rate: int, sample_rate: int, max_seconds: float) -> np.ndarray:
    """(m,) int16 at ``sample_rate``: ``mono`` (float32 at ``rate``) with silent ends trimmed, cut to
    ``max_seconds``, resampled (soxr HQ) and levelled to TARGET_RMS_DB with its peak at most PEAK_LIMIT."""
    magnitude = np.abs(mono)
    peak = float(magnitude.max()) if mono.size else 0.0
    if peak > 0:
        audible = np.flatnonzero(magnitude >= peak * 10 ** (TRIM_BELOW_PEAK_DB / 20))
        mono = mono[audible[0] : audible[-1] + 1]
    mono = mono[: int(max_seconds * rate)]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) if mono.size else 0.0
    if rms > 0:
        gain = min(10 ** (TARGET_RMS_DB / 20) / rms, PEAK_LIMIT / float(np.abs(mono).max()))
        mono = mono * gain
    return to_int16(np.ascontiguousarray(mono, dtype=np.float32))


def render_cache_target(job: RenderJob, plan: RenderPlan) -> Path:
    """Where the render of ``job`` with ``plan`` lives in the cache: keyed by score, soundfont, programs, rate."""
    soundfont = Path(plan.soundfont)
    key = {
        "version": RENDER_VERSION,
        "music21": music21_version(),
        "score": job.score.name,
        "soundfont": [str(soundfont.resolve()), soundfont.stat().st_size],
        "programs": plan.programs,
        "sample_rate": job.sample_rate,
        "max_seconds": job.max_seconds,
    }
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(job.cache_dir) / "renders" / f"sr{job.sample_rate}" / job.score.collection
    return folder / f"{job.score.stem}.{digest}.wav"


def render_score(job: RenderJob) -> Rendered | str:
    """Render one score into the cache (or reuse it there); a Rendered, or a one-line reason it was skipped."""
    try:
        base = _read_midi(score_midi(job.score, Path(job.cache_dir)), job.score)
        plan = draw_plan(job.score, len(part_tracks(base)), job.soundfonts, job.families, job.seed)
        target = render_cache_target(job, plan)
        cached = read_cached(target)
        if cached is not None:
            return Rendered(cached, plan, notes_sha1(base))
        prepared = prepare_midi(base, plan.programs)
        rate = max(MIN_RENDER_RATE, job.sample_rate)
        with tempfile.TemporaryDirectory(prefix="render-midi-") as folder:
            midi_path = Path(folder) / "score.mid"
            prepared.save(str(midi_path))
            timeout = render_timeout_s(prepared.length)
            mono = render_midi(midi_path, plan.soundfont, rate, timeout, job.score.name)
        pcm = finish_audio(mono, rate, job.sample_rate, job.max_seconds)
        audio = store_decoded(target, pcm, job.sample_rate, rate, 2)
        return Rendered(audio, plan, notes_sha1(base))
    except RenderError as error:
        return str(error)


def _read_midi(path: Path, score: Score) -> mido.MidiFile:
    try:
        return mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise RenderError(f"{score.name}: cannot read the MIDI file music21 wrote ({reason})") from None


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class SoundfontOrigin:
    """The Debian package a soundfont file comes from, its version, copyright file and licence."""

    package: str
    version: str
    copyright: Path | None
    licence: str


@lru_cache(maxsize=16)
def soundfont_origin(path: str) -> SoundfontOrigin:
    """Where a soundfont comes from, by asking dpkg; 'unknown' fields when it is not a Debian package's file."""
    resolved = Path(path).resolve()
    if shutil.which("dpkg-query") is None:
        return SoundfontOrigin("", "", None, "unknown (not from a Debian package)")
    owner = subprocess.run(["dpkg-query", "-S", str(resolved)], capture_output=True, text=True)
    if owner.returncode != 0 or ":" not in owner.stdout:
        return SoundfontOrigin("", "", None, "unknown (not from a Debian package)")
    package = owner.stdout.split(":", 1)[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    copyright = copyright_file(Path("/"), package)
    licence = licence_for(copyright, resolved.relative_to("/").as_posix())
    return SoundfontOrigin(package, version.stdout.strip(), copyright, licence)


@lru_cache(maxsize=1)
def fluidsynth_version() -> str:
    """'2.3.1', from ``fluidsynth --version`` ('' when it does not say)."""
    result = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True)
    found = re.search(r"version (\S+)", result.stdout)
    return found.group(1) if found else ""
