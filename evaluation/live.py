"""Live recognition (SPEC 7.3): audio keeps arriving, and every hop the last few seconds are matched.

The pieces, in the order audio flows through them:

- ``RingBuffer``: the most recent samples (fixed capacity), written by an audio source's thread
  and read by the recogniser, addressed by absolute sample position.
- Audio sources fill it: ``MicrophoneSource`` (a PyAudio input stream whose callback writes
  into the buffer; no blocking read-then-process) and ``FileSource`` (a recording played into
  the buffer at real time, ``speed`` times faster, or synchronously as fast as possible).
- ``Recognizer``: one window of samples -> embeddings (``models.encoder.embed_samples``) ->
  ``common.matcher.Matcher`` -> a ``Match`` and the time it took.
- ``StabilityTracker``: consecutive windows that agree (same song, offset advancing with the
  audio clock) make a stable match.
- ``LiveSession``: the loop that waits for each hop, recognises, reports a line and at the end
  a ``LiveSummary``. ``run_live`` wires everything from a config, as ``live_query.py`` does.

PyAudio is imported only on the microphone path, so recordings work without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from common.audio import SAMPLE_RATE, load_audio
from common.errors import UserError

PYAUDIO_INSTALL_HINT = (
    "install PortAudio (Debian/Ubuntu: sudo apt-get install portaudio19-dev) then `pip install PyAudio` "
    "(or rerun `bash scripts/setup.sh`, which does both where it can); "
    "a recording still works without it: --input FILE"
)
# Audio arrives in blocks of this length (microphone callback, file chunks): short enough that a
# window is available promptly after its last sample, long enough to keep callback overhead low.
CHUNK_SECONDS = 0.1
# How far (s) the recogniser may fall behind the audio before unread samples are overwritten.
RING_SLACK_SECONDS = 10.0


class MicrophoneUnavailable(UserError):
    """PyAudio/PortAudio missing, or no usable input device; the message says how to fix it."""


class WindowOverwritten(Exception):
    """The samples of a window left the ring buffer before the recogniser read them."""


class RingBuffer:
    """The last ``capacity`` float32 samples of an endless stream, safe for one writer and one reader thread.

    Samples are addressed by absolute position (sample 0 = the first ever written). Writing past
    the capacity overwrites the oldest samples; those that were overwritten before any read
    reached them are counted in ``dropped`` (the reader fell more than the capacity behind).
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0
        self._read_mark = 0  # end position of the newest read
        self.dropped = 0
        self._changed = threading.Condition()

    @property
    def written(self) -> int:
        """Total samples written so far: the absolute position of the end of the stream."""
        with self._changed:
            return self._written

    def write(self, samples: np.ndarray) -> int:
        """Append (n,) samples; returns how many unread samples this write overwrote."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        count = len(samples)
        if count == 0:
            return 0
        with self._changed:
            # Positions leaving the buffer: [oldest held, new oldest held); unread ones are >= read mark.
            leaving_start = max(0, self._written - self.capacity)
            leaving_end = max(0, self._written + count - self.capacity)
            lost = max(0, leaving_end - max(leaving_start, self._read_mark))
            self.dropped += lost
            kept = samples[-self.capacity :]
            start = (self._written + count - len(kept)) % self.capacity
            first = min(len(kept), self.capacity - start)
            self._data[start : start + first] = kept[:first]
            self._data[: len(kept) - first] = kept[first:]
            self._written += count
            self._changed.notify_all()
        return lost

    def read(self, end: int, count: int) -> np.ndarray:
        """A copy of samples [end - count, end) as (count,) float32; ValueError if not all are held."""
        with self._changed:
            if end > self._written or end - count < max(0, self._written - self.capacity) or count < 0:
                raise ValueError(
                    f"samples [{end - count}, {end}) are not in the buffer "
                    f"(holds [{max(0, self._written - self.capacity)}, {self._written}))"
                )
            indices = np.arange(end - count, end) % self.capacity
            self._read_mark = max(self._read_mark, end)
            return self._data[indices]

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until ``position`` samples have been written or ``timeout`` seconds pass; True if reached."""
        with self._changed:
            return self._changed.wait_for(lambda: self._written >= position, timeout)


# ---------------------------------------------------------------- audio sources


class FileSource:
    """A recording played into a ring buffer as if it were the microphone.

    ``speed`` 1 plays at real time, 10 ten times faster (from a background thread, on the wall
    clock); 0 (or ``inf``) is as fast as possible and synchronous: audio is pushed only when the
    session asks for it, so every window is recognised and the run is deterministic.
    """

    def __init__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, speed: float = 1.0):
        if not speed >= 0:
            raise UserError(f"--speed must be 0 (as fast as possible) or positive, got {speed}")
        self.samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.sample_rate = sample_rate
        self.speed = float(speed)
        self.synchronous = speed == 0 or np.isinf(speed)
        self.chunk = max(1, int(round(CHUNK_SECONDS * sample_rate)))
        self.input_overflows = 0  # a file never loses input; kept so every source reports the same
        self._ring: RingBuffer | None = None
        self._pushed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, speed: float = 1.0) -> FileSource:
        """Decode ``path`` (any format libsndfile reads) to mono at ``sample_rate``."""
        return cls(load_audio(path, sr=sample_rate), sample_rate, speed)

    @property
    def finished(self) -> bool:
        return self._pushed >= len(self.samples)

    def _push_chunk(self) -> None:
        chunk = self.samples[self._pushed : self._pushed + self.chunk]
        self._ring.write(chunk)
        self._pushed += len(chunk)

    def _play(self) -> None:
        started = time.monotonic()
        while not self.finished and not self._stop.is_set():
            # Schedule each chunk from the start time, so the wall clock never drifts.
            due = started + (self._pushed + self.chunk) / self.sample_rate / self.speed
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._push_chunk()

    def start(self, ring: RingBuffer) -> None:
        self._ring = ring
        if not self.synchronous:
            self._thread = threading.Thread(target=self._play, name="file-source", daemon=True)
            self._thread.start()

    def advance(self, position: int, timeout: float = 0.1) -> bool:
        """Make samples up to ``position`` available; False once the recording has ended short of it."""
        if self.synchronous:
            while self._ring.written < position and not self.finished:
                self._push_chunk()
        else:
            self._ring.wait_for(position, timeout)
        return self._ring.written >= position or not self.finished

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def import_pyaudio():
    """The ``pyaudio`` module, or MicrophoneUnavailable saying how to install PortAudio and PyAudio."""
    try:
        import pyaudio
    except ImportError as error:
        raise MicrophoneUnavailable(f"microphone input needs PyAudio ({error}): {PYAUDIO_INSTALL_HINT}") from None
    return pyaudio


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what PortAudio's C back ends (ALSA, JACK) print to file descriptor 2 while probing devices."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (unusual embedding); nothing to silence
        yield
        return
    sys.stderr.flush()
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class InputDevice:
    index: int
    name: str
    channels: int
    default_sample_rate: float
    is_default: bool


def list_input_devices(pyaudio_module=None) -> list[InputDevice]:
    """The audio devices that can record (at least one input channel), in PortAudio's order."""
    pyaudio = pyaudio_module or import_pyaudio()
    with _quiet_native_stderr():
        audio = pyaudio.PyAudio()
    try:
        try:
            default_index = audio.get_default_input_device_info()["index"]
        except OSError:
            default_index = None
        devices = []
        for index in range(audio.get_device_count()):
            info = audio.get_device_info_by_index(index)
            if info["maxInputChannels"] > 0:
                devices.append(
                    InputDevice(
                        index,
                        info["name"],
                        int(info["maxInputChannels"]),
                        float(info["defaultSampleRate"]),
                        index == default_index,
                    )
                )
        return devices
    finally:
        audio.terminate()


def format_devices(devices: list[InputDevice]) -> str:
    if not devices:
        return "no input devices found (is a microphone connected, and can this user open it?)"
    lines = ["index  channels  default rate  name"]
    for device in devices:
        marker = "  (default)" if device.is_default else ""
        lines.append(
            f"{device.index:5}  {device.channels:8}  {device.default_sample_rate:9.0f} Hz  {device.name}{marker}"
        )
    return "\n".join(lines)


class MicrophoneSource:
    """A PyAudio input stream (mono float32) whose callback writes each block into the ring buffer.

    The stream is opened at ``sample_rate`` when the device supports it; otherwise at the
    device's default rate, with each block resampled on the fly by a streaming soxr resampler.
    PortAudio's input-overflow flag (audio the device lost because a callback came late) is
    counted in ``input_overflows``. ``pyaudio_module`` replaces the real module (tests).
    """

    def __init__(self, device_index: int | None = None, sample_rate: int = SAMPLE_RATE, pyaudio_module=None):
        self.device_index = device_index
        self.sample_rate = sample_rate
        self.pyaudio = pyaudio_module or import_pyaudio()
        self.input_overflows = 0
        self.capture_rate: int | None = None
        self._audio = None
        self._stream = None
        self._ring: RingBuffer | None = None
        self._resampler = None

    def _device_info(self) -> dict:
        try:
            if self.device_index is None:
                return self._audio.get_default_input_device_info()
            info = self._audio.get_device_info_by_index(self.device_index)
        except (OSError, ValueError) as error:
            which = "no default input device" if self.device_index is None else f"input device {self.device_index}"
            raise MicrophoneUnavailable(f"microphone: {which} ({error}); see --list-devices") from None
        if info["maxInputChannels"] < 1:
            raise MicrophoneUnavailable(
                f"microphone: device {self.device_index} ({info['name']}) has no input channels; see --list-devices"
            )
        return info

    def _choose_capture_rate(self, info: dict) -> int:
        try:
            supported = self._audio.is_format_supported(
                self.sample_rate,
                input_device=info["index"],
                input_channels=1,
                input_format=self.pyaudio.paFloat32,
            )
        except ValueError:
            supported = False
        return self.sample_rate if supported else int(round(info["defaultSampleRate"]))

    def _callback(self, in_data, frame_count, time_info, status_flags):
        # Runs on PortAudio's thread: only copy the block and count overflows.
        if status_flags & self.pyaudio.paInputOverflow:
            self.input_overflows += 1
        samples = np.frombuffer(in_data, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._ring.write(samples)
        return None, self.pyaudio.paContinue

    def start(self, ring: RingBuffer) -> None:
        self._ring = ring
        with _quiet_native_stderr():
            self._audio = self.pyaudio.PyAudio()
        try:
            info = self._device_info()
            self.capture_rate = self._choose_capture_rate(info)
            if self.capture_rate != self.sample_rate:
                import soxr

                self._resampler = soxr.ResampleStream(self.capture_rate, self.sample_rate, 1, dtype="float32")
            self._stream = self._audio.open(
                format=self.pyaudio.paFloat32,
                channels=1,
                rate=self.capture_rate,
                input=True,
                input_device_index=info["index"],
                frames_per_buffer=max(1, int(round(CHUNK_SECONDS * self.capture_rate))),
                stream_callback=self._callback,
                start=False,
            )
            self._stream.start_stream()
        except OSError as error:
            self.stop()
            device = "default" if self.device_index is None else self.device_index
            raise MicrophoneUnavailable(
                f"microphone: cannot open input device {device} at {self.capture_rate} Hz ({error}); see --list-devices"
            ) from None
        except BaseException:
            self.stop()
            raise

    def advance(self, position: int, timeout: float = 0.1) -> bool:
        """Wait for samples up to ``position``; False once the stream has stopped short of it."""
        if self._ring.wait_for(position, timeout):
            return True
        return self._stream is not None and self._stream.is_active()

    def stop(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.stop_stream()
            self._stream.close()
            self._stream = None
        if self._audio is not None:
            self._audio.terminate()
            self._audio = None


# ---------------------------------------------------------------- recognition


class Recognizer:
    """One window of audio -> the best database match, timed.

    ``encoder``: a ``models.encoder.WaveformEncoder``; ``matcher``: a ``common.matcher.Matcher``
    over a database whose rows lie ``database_hop_samples`` apart (the query is embedded at the
    same hop so that rows line up with database rows).
    """

    def __init__(self, encoder, matcher, database_hop_samples: int):
        # Imported here, not at the top: torch takes seconds to load and --list-devices needs none of it.
        from models.encoder import embed_samples

        self._embed = embed_samples
        self.encoder = encoder
        self.matcher = matcher
        self.database_hop_samples = int(database_hop_samples)

    def recognize(self, samples: np.ndarray):
        """(n,) float32 window -> (Match, latency in seconds: embedding plus search)."""
        started = time.perf_counter()
        embeddings = self._embed(self.encoder, samples, hop_samples=self.database_hop_samples)
        match = self.matcher.match(embeddings)
        return match, time.perf_counter() - started


class StabilityTracker:
    """Counts consecutive windows that agree: same song, and the song offset advanced as much as the clock.

    ``update`` returns the length of the current agreeing run (0 after "no match"); a run of at
    least ``stable_count`` windows is a stable match. ``tolerance_seconds`` allows for offsets
    being quantised to the database hop (0.5 s) and for one-row slips.
    """

    def __init__(self, stable_count: int = 3, tolerance_seconds: float = 0.75):
        if stable_count < 1:
            raise UserError(f"stable_count must be at least 1, got {stable_count}")
        self.stable_count = stable_count
        self.tolerance_seconds = tolerance_seconds
        self.run_length = 0
        self._last: tuple[str, float, float] | None = None  # (song, offset s, clock s)

    def agrees(self, previous: tuple[str, float, float] | None, song: str, offset: float, clock: float) -> bool:
        if previous is None or previous[0] != song:
            return False
        return abs((offset - previous[1]) - (clock - previous[2])) <= self.tolerance_seconds

    def update(self, song: str | None, offset_seconds: float, clock_seconds: float) -> int:
        if song is None:
            self.run_length, self._last = 0, None
            return 0
        self.run_length = self.run_length + 1 if self.agrees(self._last, song, offset_seconds, clock_seconds) else 1
        self._last = (song, offset_seconds, clock_seconds)
        return self.run_length

    @property
    def stable(self) -> bool:
        return self.run_length >= self.stable_count


@dataclass
class WindowResult:
    """One recognised window. ``clock_seconds``: audio time at the window's end (since the stream began)."""

    index: int
    clock_seconds: float
    wall_time: datetime
    song: str | None
    offset_seconds: float  # where the window starts in the song
    score: float
    best_candidate: tuple[str, float, float] | None  # (song, offset s, score) even for "no match"
    latency_seconds: float
    run_length: int  # consecutive agreeing windows, this one included
    stable: bool
    new_stable_song: bool  # this window made a stable match of a song other than the last stable one

    def line(self, stable_count: int) -> str:
        head = f"{self.wall_time:%H:%M:%S}  audio {self.clock_seconds:7.1f} s  "
        tail = f"  latency {self.latency_seconds * 1000:6.1f} ms"
        if self.song is None:
            best = ""
            if self.best_candidate is not None:
                best = f"  (best {self.best_candidate[0]} score {self.best_candidate[2]:.3f})"
            return f"{head}no match{best}{tail}"
        agreement = f"  [stable {self.run_length}]" if self.stable else f"  [agree {self.run_length}/{stable_count}]"
        text = f"{head}{self.song}  offset {self.offset_seconds:7.1f} s  score {self.score:.3f}{tail}{agreement}"
        if self.new_stable_song:
            text += f"\n{head}== stable match: {self.song} (offset {self.offset_seconds:.1f} s)"
        return text


@dataclass
class StableMatch:
    song: str
    clock_seconds: float  # audio time when the match became stable
    offset_seconds: float  # song offset of the window that made it stable


@dataclass
class LiveSummary:
    """What a live session heard.

    ``songs``: the stable matches in the order they were recognised, one entry per change of song
    (a song that becomes stable again before another song did is not listed twice, so a song
    played twice in a row is listed once).
    """

    songs: list[StableMatch] = field(default_factory=list)
    windows: int = 0
    no_match: int = 0
    skipped_windows: int = 0  # hops not recognised because recognition fell behind the audio
    latencies: list[float] = field(default_factory=list)
    input_overflows: int = 0  # blocks the audio device reported as overflowed (input lost)
    dropped_samples: int = 0  # samples overwritten in the ring buffer before being read
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False

    @property
    def song_names(self) -> list[str]:
        return [match.song for match in self.songs]

    @property
    def mean_latency(self) -> float:
        return float(np.mean(self.latencies)) if self.latencies else float("nan")

    def text(self) -> str:
        latency = (
            f"mean {self.mean_latency * 1000:.1f} ms, max {max(self.latencies) * 1000:.1f} ms"
            if self.latencies
            else "n/a"
        )
        lines = [
            "summary" + (" (stopped by Ctrl-C)" if self.interrupted else ""),
            f"  audio {self.audio_seconds:.1f} s in {self.wall_seconds:.1f} s wall time; "
            f"{self.windows} windows, {self.no_match} no match, {self.skipped_windows} skipped (recognition behind)",
            f"  latency {latency}",
            f"  input overflows {self.input_overflows}, ring buffer samples dropped {self.dropped_samples}",
            f"  songs recognised in order ({len(self.songs)}):",
        ]
        lines += [
            f"    {match.clock_seconds:7.1f} s  {match.song}  (offset {match.offset_seconds:.1f} s)"
            for match in self.songs
        ] or ["    none"]
        return "\n".join(lines)


class LiveSession:
    """Every ``hop_seconds`` of audio, recognise the last ``duration_seconds``; report and summarise.

    Windows end on a fixed grid (``duration``, ``duration + hop``, ... seconds into the stream),
    so what is recognised does not depend on timing; when recognition falls more than a hop
    behind, the session jumps to the newest full window and counts the hops it skipped.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        sample_rate: int,
        duration_seconds: float = 5.0,
        hop_seconds: float = 1.0,
        stable_count: int = 3,
        offset_tolerance_seconds: float = 0.75,
        on_result: Callable[[WindowResult], None] | None = None,
    ):
        if hop_seconds <= 0:
            raise UserError(f"hop must be positive, got {hop_seconds} s")
        self.recognizer = recognizer
        self.sample_rate = sample_rate
        self.duration_samples = int(round(duration_seconds * sample_rate))
        self.hop_samples = max(1, int(round(hop_seconds * sample_rate)))
        self.tracker = StabilityTracker(stable_count, offset_tolerance_seconds)
        self.on_result = on_result
        self.ring = RingBuffer(self.duration_samples + self.hop_samples + int(RING_SLACK_SECONDS * sample_rate))

    def _recognize_window(self, end: int, summary: LiveSummary) -> WindowResult:
        try:
            window = self.ring.read(end, self.duration_samples)
        except ValueError as error:
            raise WindowOverwritten(str(error)) from None
        match, latency = self.recognizer.recognize(window)
        clock = end / self.sample_rate
        was_stable = self.tracker.stable
        run_length = self.tracker.update(match.song, match.offset_seconds, clock)
        result = WindowResult(
            index=summary.windows,
            clock_seconds=clock,
            wall_time=datetime.now(),
            song=match.song,
            offset_seconds=match.offset_seconds,
            score=match.score,
            best_candidate=tuple(match.ranked[0]) if match.ranked else None,
            latency_seconds=latency,
            run_length=run_length,
            stable=self.tracker.stable,
            # A song that becomes stable again after a blip, or at another alignment (music repeats its
            # sections, so a window can match an earlier repeat), is still the song that is playing.
            new_stable_song=self.tracker.stable
            and not was_stable
            and (not summary.songs or summary.songs[-1].song != match.song),
        )
        summary.windows += 1
        summary.no_match += match.song is None
        summary.latencies.append(latency)
        if result.new_stable_song:
            summary.songs.append(StableMatch(match.song, clock, match.offset_seconds))
        return result

    def run(self, source, max_seconds: float | None = None, on_start: Callable[[], None] | None = None) -> LiveSummary:
        """Recognise from ``source`` until it ends, ``max_seconds`` of audio were heard, or Ctrl-C.

        ``on_start`` is called once the source is running (the microphone opened).
        """
        summary = LiveSummary()
        limit = None if max_seconds is None else int(round(max_seconds * self.sample_rate))
        started = time.monotonic()
        next_end = self.duration_samples
        source.start(self.ring)
        try:
            if on_start is not None:
                on_start()
            while limit is None or next_end <= limit:
                if self.ring.written < next_end:
                    if not source.advance(next_end):
                        break
                    continue
                behind = (self.ring.written - next_end) // self.hop_samples
                if limit is not None:
                    behind = min(behind, (limit - next_end) // self.hop_samples)
                next_end += behind * self.hop_samples
                summary.skipped_windows += behind
                try:
                    result = self._recognize_window(next_end, summary)
                except WindowOverwritten:  # the source raced ahead by more than the buffer holds
                    continue
                if self.on_result is not None:
                    self.on_result(result)
                next_end += self.hop_samples
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            source.stop()
        heard = self.ring.written if limit is None else min(self.ring.written, limit)
        summary.audio_seconds = heard / self.sample_rate
        summary.wall_seconds = time.monotonic() - started
        summary.input_overflows = source.input_overflows
        summary.dropped_samples = self.ring.dropped
        return summary


def check_settings(config: dict) -> None:
    """UserError naming the key for values the schema's types alone cannot rule out."""
    rules = [
        ("duration", config["duration"] >= 1.0, "at least one 1 s window"),
        ("hop", config["hop"] > 0, "positive"),
        ("neighbors", config["neighbors"] >= 1, "at least 1"),
        ("nprobe", config["nprobe"] is None or config["nprobe"] >= 1, "at least 1 (or null)"),
        ("stable_count", config["stable_count"] >= 1, "at least 1"),
        ("offset_tolerance", config["offset_tolerance"] >= 0, "zero or positive"),
    ]
    for key, valid, requirement in rules:
        if not valid:
            raise UserError(
                f"{getattr(config, 'source', None) or 'config'}: {key} must be {requirement}, got {config[key]}"
            )


def run_live(
    config: dict,
    input_path: str | os.PathLike | None = None,
    device_index: int | None = None,
    speed: float = 1.0,
    max_seconds: float | None = None,
    pyaudio_module=None,
    out: Callable[[str], None] | None = None,
) -> LiveSummary:
    """Load model and database from a live_query config, listen (microphone or ``input_path``), report.

    Config keys are documented in ``evaluation/live_query.py`` and docs/live.md.
    """

    from common.database import Database
    from common.devices import resolve_device
    from common.matcher import Matcher
    from models.checkpoint import model_identity
    from models.encoder import load_encoder

    out = out or (lambda line: print(line, flush=True))
    check_settings(config)
    encoder, payload = load_encoder(config["weights"], resolve_device(config["device"]))
    database = Database.load(config["index"], config.get("json"))
    matcher = Matcher(
        database,
        neighbors=config["neighbors"],
        threshold=config["threshold"],
        method=config["method"],
        nprobe=config["nprobe"],
        identity=model_identity(payload),  # refuses a database built by another model
    )
    sample_rate = encoder.frontend_config.sample_rate
    recognizer = Recognizer(encoder, matcher, int(round(database.hop_seconds * sample_rate)))
    session = LiveSession(
        recognizer,
        sample_rate,
        duration_seconds=config["duration"],
        hop_seconds=config["hop"],
        stable_count=config["stable_count"],
        offset_tolerance_seconds=config["offset_tolerance"],
        on_result=lambda result: out(result.line(config["stable_count"])),
    )
    if input_path is not None:
        source = FileSource(
            load_audio(input_path, sr=sample_rate, min_samples=session.duration_samples), sample_rate, speed
        )
        listening = f"listening to {Path(input_path)} " + (
            "as fast as possible" if source.synchronous else f"at {speed:g}x real time"
        )
    else:
        source = MicrophoneSource(device_index, sample_rate, pyaudio_module)
        listening = "listening to the microphone (Ctrl-C stops)"
    out(f"database: {len(database.songs)} songs; windows of {config['duration']:g} s every {config['hop']:g} s")
    summary = session.run(source, max_seconds, on_start=lambda: out(listening))
    out(summary.text())
    return summary
