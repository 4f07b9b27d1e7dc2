"""Live recognition: audio keeps arriving, and every step the last few seconds are matched.

The pieces, in the order audio flows through them, one module each in ``live/``:

- ``ring_buffer.RingBuffer``: the most recent samples (fixed capacity), written by an audio
  source's thread and read by the recogniser, addressed by absolute sample position.
- Audio sources fill it: ``microphone.MicrophoneSource`` (a PyAudio input stream whose callback
  writes into the buffer; no blocking read-then-process) and ``sources.FileSource`` (a recording
  played into the buffer at real time, ``speed`` times faster, or synchronously as fast as possible).
- ``matching.recognizer.Recognizer``: one window of samples -> embeddings -> ``Match``, timed.
- ``stability.StabilityTracker``: consecutive windows whose best candidates agree (same song,
  offset advancing with the audio clock); when ``stable_count`` agree, the audio they span is
  matched as one longer query, and the match is stable (announced) only when that combined
  evidence passes the decision rule (the database's calibrated rule, or the config's threshold).
- This module: ``LiveSession``, the loop that waits for each step, recognises, reports a line
  and at the end a ``LiveSummary``; ``run_live`` wires everything from a config, as
  ``evaluation/live_query.py`` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from common.devices import resolve_device
from common.errors import UserError
from live.microphone import MicrophoneSource
from live.ring_buffer import RingBuffer, WindowOverwritten
from live.sources import FileSource
from live.stability import StabilityTracker, StableMatch
from live.truth import TruthCheck, check_against, read_truth
from matching.landmark_recognizer import LandmarkRecognizer
from matching.recognizer import Recognizer

# How far (s) the recogniser may fall behind the audio before unread samples are overwritten.
RING_SLACK_SECONDS = 10.0


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
    run_length: int  # consecutive windows whose best candidates agree, this one included
    stable: bool  # the agreeing windows' combined evidence passed the decision rule
    new_stable_song: bool  # this window made a stable match of a song other than the last stable one

    def line(self, stable_count: int) -> str:
        head = f"{self.wall_time:%H:%M:%S}  audio {self.clock_seconds:7.1f} s  "
        tail = f"  latency {self.latency_seconds * 1000:6.1f} ms"
        agreement = f"  [stable {self.run_length}]" if self.stable else f"  [agree {self.run_length}/{stable_count}]"
        if self.song is None:
            best = ""
            if self.best_candidate is not None:
                best = f"  (best {self.best_candidate[0]} score {self.best_candidate[2]:.3f})"
            text = f"{head}no match{best}{tail}" + (agreement if self.run_length > 1 else "")
        else:
            text = f"{head}{self.song}  offset {self.offset_seconds:7.1f} s  score {self.score:.3f}{tail}{agreement}"
        if self.new_stable_song:
            # The window alone may be "no match": what became stable is the agreeing windows' candidate.
            song, offset = (
                (self.song, self.offset_seconds) if self.song else (self.best_candidate[0], self.best_candidate[1])
            )
            text += f"\n{head}== stable match: {song} (offset {offset:.1f} s)"
        return text


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
    skipped_windows: int = 0  # steps not recognised because recognition fell behind the audio
    latencies: list[float] = field(default_factory=list)
    input_overflows: int = 0  # blocks the audio device reported as overflowed (input lost)
    dropped_samples: int = 0  # samples overwritten in the ring buffer before being read
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    truth: TruthCheck | None = None  # the announcements checked against a truth file (``check_against``)

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
        if self.truth is not None:
            lines += self.truth.lines()
        return "\n".join(lines)


class LiveSession:
    """Every ``step_seconds`` of audio, recognise the last ``duration_seconds``; report and summarise.

    Windows end on a fixed grid (``duration``, ``duration + step``, ... seconds into the stream),
    so what is recognised does not depend on timing; when recognition falls more than a step
    behind, the session jumps to the newest full window and counts the steps it skipped.
    ``recognizer`` is a ``matching.recognizer.Recognizer`` (anything with its ``identify``).
    """

    def __init__(
        self,
        recognizer,
        sample_rate: int,
        duration_seconds: float = 5.0,
        step_seconds: float = 1.0,
        stable_count: int = 3,
        offset_tolerance_seconds: float = 0.75,
        on_result: Callable[[WindowResult], None] | None = None,
    ):
        if step_seconds <= 0:
            raise UserError(f"step must be positive, got {step_seconds} s")
        self.recognizer = recognizer
        self.sample_rate = sample_rate
        self.duration_samples = int(round(duration_seconds * sample_rate))
        self.step_samples = max(1, int(round(step_seconds * sample_rate)))
        self.tracker = StabilityTracker(stable_count, offset_tolerance_seconds)
        self.on_result = on_result
        # The agreeing windows' combined evidence: the audio from the first one's start to the last one's end.
        self.evidence_samples = self.duration_samples + (stable_count - 1) * self.step_samples
        self._evidence_passed = False  # for the current agreeing run
        # With a recogniser that embeds and searches separately, and steps a whole number of its
        # hops, the evidence reuses the windows' rows instead of embedding its audio again.
        hop = getattr(recognizer, "hop_samples", None)
        self._rows_reusable = (
            hasattr(recognizer, "embed") and hasattr(recognizer, "search") and bool(hop)
            and self.step_samples % hop == 0 and self.duration_samples >= hop
        )  # fmt: skip
        self._recent_rows: dict[int, np.ndarray] = {}  # window end (sample) -> its (J, d) rows
        # One window plus the evidence's steps (at least one step), plus slack.
        held = self.duration_samples + max(1, stable_count - 1) * self.step_samples
        self.ring = RingBuffer(held + int(RING_SLACK_SECONDS * sample_rate))

    def _recognize_window(self, end: int, summary: LiveSummary) -> WindowResult:
        try:
            window = self.ring.read(end, self.duration_samples)
        except ValueError as error:
            raise WindowOverwritten(str(error)) from None
        match, inference_ms, search_ms = self._identify_window(end, window)
        latency = (inference_ms + search_ms) / 1000.0
        clock = end / self.sample_rate
        was_stable = self.tracker.stable and self._evidence_passed
        song, offset = _best_candidate(match)
        run_length = self.tracker.update(song, offset, clock)
        if run_length <= 1:
            self._evidence_passed = False
        if self.tracker.stable and not self._evidence_passed:
            self._evidence_passed, evidence_seconds = self._combined_evidence_passes(end, song, offset, match)
            latency += evidence_seconds
        stable = self.tracker.stable and self._evidence_passed
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
            stable=stable,
            # A song that becomes stable again after a blip, or at another alignment (music repeats its
            # sections, so a window can match an earlier repeat), is still the song that is playing.
            new_stable_song=stable and not was_stable and (not summary.songs or summary.songs[-1].song != song),
        )
        summary.windows += 1
        summary.no_match += match.song is None
        summary.latencies.append(latency)
        if result.new_stable_song:
            summary.songs.append(StableMatch(song, clock, offset))
        return result

    def _identify_window(self, end: int, window: np.ndarray):
        """(match, inference ms, search ms) of one window; its rows are kept for the evidence when they can be."""
        if not self._rows_reusable:
            return self.recognizer.identify(window)
        rows, inference_ms = self.recognizer.embed(window)
        match, search_ms = self.recognizer.search(rows)
        self._recent_rows[end] = rows
        for old in [position for position in self._recent_rows if position <= end - self.evidence_samples]:
            del self._recent_rows[old]
        return match, inference_ms, search_ms

    def _evidence_rows(self, end: int) -> np.ndarray | None:
        """The evidence's (J, d) rows from the agreeing windows' rows, or None when a window is missing.

        Windows a whole number of database hops apart share the row grid: the evidence is the
        first window's rows followed by each later window's last ``step / hop`` rows.
        """
        if not self._rows_reusable:
            return None
        count = (self.evidence_samples - self.duration_samples) // self.step_samples + 1
        ends = [end - number * self.step_samples for number in range(count - 1, -1, -1)]
        if any(position not in self._recent_rows for position in ends):
            return None
        new_rows = self.step_samples // self.recognizer.hop_samples
        parts = [self._recent_rows[ends[0]]] + [self._recent_rows[position][-new_rows:] for position in ends[1:]]
        return np.concatenate(parts)

    def _combined_evidence_passes(self, end: int, song: str, offset: float, match) -> tuple[bool, float]:
        """(whether the agreeing windows' audio, matched as one query, names ``song`` in step, seconds it took).

        With ``stable_count`` 1 the window is its own evidence: its match must have been accepted.
        """
        if self.evidence_samples == self.duration_samples:
            return match.song == song, 0.0
        rows = self._evidence_rows(end)
        if rows is not None:  # the agreeing windows' rows, already embedded: only a search
            combined, search_ms = self.recognizer.search(rows)
            inference_ms = 0.0
        else:
            try:
                evidence = self.ring.read(end, self.evidence_samples)
            except ValueError:  # overwritten, or before the stream began (windows were skipped)
                return False, 0.0
            combined, inference_ms, search_ms = self.recognizer.identify(evidence)
        lead = (self.evidence_samples - self.duration_samples) / self.sample_rate
        in_step = abs((combined.offset_seconds + lead) - offset) <= self.tracker.tolerance_seconds
        return combined.song == song and in_step, (inference_ms + search_ms) / 1000.0

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
                behind = (self.ring.written - next_end) // self.step_samples
                if limit is not None:
                    behind = min(behind, (limit - next_end) // self.step_samples)
                next_end += behind * self.step_samples
                summary.skipped_windows += behind
                try:
                    result = self._recognize_window(next_end, summary)
                except WindowOverwritten:  # the source raced ahead by more than the buffer holds
                    continue
                if self.on_result is not None:
                    self.on_result(result)
                next_end += self.step_samples
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


def _best_candidate(match) -> tuple[str | None, float]:
    """(song, offset s) of the match, or of its best candidate when the window alone was "no match"."""
    if match.song is not None:
        return match.song, match.offset_seconds
    if match.ranked:
        return match.ranked[0][0], match.ranked[0][1]
    return None, 0.0


def load_recognizer(config: dict) -> Recognizer | LandmarkRecognizer:
    """The recogniser a live_query config names: a landmark table (kind 'landmarks') or a checkpoint + database."""
    if config.get("kind", "neural") == "landmarks":
        return LandmarkRecognizer.load(config["database"])
    if config["weights"] is None:
        where = getattr(config, "source", None) or "config"
        raise UserError(f"{where}: key 'weights' is required (unless kind is 'landmarks')")
    return Recognizer.load(
        config["weights"],
        config["database"],
        resolve_device(config["device"]),
        neighbors=config["neighbors"],
        threshold=config["threshold"],
        method=config["method"],
        nprobe=config["nprobe"],
    )


def run_live(
    config: dict,
    input_path: str | os.PathLike | None = None,
    device_index: int | None = None,
    speed: float = 1.0,
    max_seconds: float | None = None,
    pyaudio_module=None,
    out: Callable[[str], None] | None = None,
    truth_path: str | os.PathLike | None = None,
) -> LiveSummary:
    """Load model and database from a live_query config, listen (microphone or ``input_path``), report.

    ``config``: as ``common.config.load_config`` returns it for ``evaluation.live_query.SCHEMA``,
    which checks every value's type and bounds; a hand-built dict is not checked again here.

    Config keys are documented in ``evaluation/live_query.py`` and docs/live.md. With
    ``truth_path`` (the simulator's truth CSV), the summary says which announcements were wrong.
    """
    out = out or (lambda line: print(line, flush=True))
    truth = read_truth(truth_path) if truth_path is not None else None
    recognizer = load_recognizer(config)
    sample_rate = recognizer.sample_rate
    session = LiveSession(
        recognizer,
        sample_rate,
        duration_seconds=config["duration"],
        step_seconds=config["step"],
        stable_count=config["stable_count"],
        offset_tolerance_seconds=config["offset_tolerance"],
        on_result=lambda result: out(result.line(config["stable_count"])),
    )
    if input_path is not None:
        source = FileSource.from_file(input_path, sample_rate, speed, min_samples=session.duration_samples)

        def listening() -> str:
            return f"listening to {Path(input_path)} at {sample_rate} Hz " + (
                "as fast as possible" if source.synchronous else f"at {speed:g}x real time"
            )
    else:
        source = MicrophoneSource(device_index, sample_rate, pyaudio_module)

        def listening() -> str:
            # What was really opened: the device's name, and its rate when it could not record at ours.
            rate = f"{source.capture_rate} Hz" + (
                f" (resampled to {sample_rate} Hz)" if source.capture_rate != sample_rate else ""
            )
            return f"listening to input device {source.opened_device} at {rate} (Ctrl-C stops)"

    songs = len(recognizer.table) if isinstance(recognizer, LandmarkRecognizer) else len(recognizer.database.songs)
    out(f"database: {songs} songs; windows of {config['duration']:g} s every {config['step']:g} s")
    out(recognizer.decision_note)
    summary = session.run(source, max_seconds, on_start=lambda: out(listening()))
    if truth is not None:
        summary.truth = check_against(
            summary.songs,
            truth,
            session.evidence_samples / sample_rate,
            summary.audio_seconds,
            str(truth_path),
        )
    out(summary.text())
    return summary
