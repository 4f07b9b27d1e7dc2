"""Which source file goes to which set: candidate listing, split rules, duplicate and short-file removal.

Split rules: music is split by package (no package in both train and test); noise by source
(a named package/speaker/language subset; no source, and no file, in two splits). Exact
duplicates (identical 16-bit samples after decoding) are removed across all splits of a kind,
the earlier split in priority order keeping its copy, so nothing is heard on both sides.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import soundfile as sf

from common.audio import SAMPLE_RATE, AudioError
from common.config import ConfigError
from data_prep.decode import DecodedAudio, list_audio_files, probe

# A file whose loudest 1 s window is quieter than this is silence (Asterisk ships silence/1..10.wav),
# not noise or music; -60 dBFS keeps quiet real ambience (the quietest kept here is about -45 dBFS).
SILENCE_DB = -60.0


@dataclass(frozen=True)
class SourceFile:
    """One audio file inside an extracted package; ``seconds`` from its header."""

    source: str  # the split unit: a package (music) or a named noise source
    package: str
    relative: str  # path inside the package, POSIX
    path: Path
    seconds: float
    channels: int
    channel: int | None = None  # set for impulse responses, which keep each channel apart


@dataclass
class SelectionStats:
    """What happened to a set's candidates (counts, and the first few reasons for unreadable files)."""

    candidates: int = 0
    too_short: int = 0
    duplicates: int = 0
    silent: int = 0
    unreadable: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, other: SelectionStats) -> None:
        self.candidates += other.candidates
        self.too_short += other.too_short
        self.duplicates += other.duplicates
        self.silent += other.silent
        self.unreadable += other.unreadable
        self.reasons.extend(other.reasons)


def loudest_window_db(path: Path, sample_rate: int = SAMPLE_RATE) -> float:
    """RMS level in dBFS of the loudest 1 s window of a decoded WAV (the whole file when shorter)."""
    samples, _ = sf.read(str(path), dtype="float32")
    energy = np.square(samples, dtype=np.float64)
    if len(samples) <= sample_rate:
        mean_power = energy.mean() if len(samples) else 0.0
    else:
        running = np.cumsum(np.concatenate([[0.0], energy]))
        mean_power = float((running[sample_rate:] - running[:-sample_rate]).max()) / sample_rate
    return 10 * np.log10(mean_power + 1e-20)


def matches(relative: str, include: Iterable[str] = ("*",), exclude: Iterable[str] = ()) -> bool:
    """Glob filter on a package-relative path ('*' also crosses '/')."""
    return any(fnmatchcase(relative, pattern) for pattern in include) and not any(
        fnmatchcase(relative, pattern) for pattern in exclude
    )


def list_candidates(
    source: str,
    package: str,
    extracted: Path,
    include: Iterable[str] = ("*",),
    exclude: Iterable[str] = (),
    min_seconds: float = 0.0,
    stats: SelectionStats | None = None,
) -> list[SourceFile]:
    """Audio files of an extracted package passing the globs and at least ``min_seconds`` long (by header)."""
    stats = stats if stats is not None else SelectionStats()
    found = []
    for relative in list_audio_files(extracted):
        if not matches(relative, tuple(include), tuple(exclude)):
            continue
        stats.candidates += 1
        try:
            seconds, channels = probe(extracted / relative)
        except AudioError as error:
            stats.unreadable += 1
            stats.reasons.append(str(error))
            continue
        if seconds < min_seconds:
            stats.too_short += 1
            continue
        found.append(SourceFile(source, package, relative, extracted / relative, seconds, channels))
    return found


def shuffled(files: list[SourceFile], seed: int, salt: str) -> list[SourceFile]:
    """``files`` in a random order that depends only on ``seed``, ``salt`` and the file names."""
    ordered = sorted(files, key=lambda f: (f.relative, f.channel if f.channel is not None else -1))
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    return [ordered[i] for i in rng.permutation(len(ordered))]


def take_unique(
    files: list[SourceFile],
    decode: Callable[[list[SourceFile]], list[DecodedAudio | str]],
    seen: dict[str, str],
    owner: str,
    limit: int | None = None,
    min_seconds: float = 0.0,
    stats: SelectionStats | None = None,
) -> list[tuple[SourceFile, DecodedAudio]]:
    """Decode ``files`` in order and keep the first ``limit`` that are long enough, not duplicates, not silent.

    ``seen`` maps the SHA-1 of every kept file's samples to its owner (e.g. "music/test") and is
    updated, so later calls (later splits) drop what earlier ones kept. Files are decoded in
    batches just large enough to reach ``limit``, so a small limit decodes little.
    """
    stats = stats if stats is not None else SelectionStats()
    kept: list[tuple[SourceFile, DecodedAudio]] = []
    position = 0
    while position < len(files) and (limit is None or len(kept) < limit):
        batch_size = len(files) if limit is None else max(4, 2 * (limit - len(kept)))
        batch = files[position : position + batch_size]
        position += len(batch)
        for file, result in zip(batch, decode(batch)):
            if limit is not None and len(kept) >= limit:
                break
            if isinstance(result, str):
                stats.unreadable += 1
                stats.reasons.append(result)
            elif result.seconds < min_seconds:
                stats.too_short += 1
            elif result.sha1 in seen:
                stats.duplicates += 1
            elif loudest_window_db(Path(result.path), result.sample_rate) < SILENCE_DB:
                stats.silent += 1
            else:
                seen[result.sha1] = owner
                kept.append((file, result))
    return kept


def check_disjoint(assignment: dict[str, Iterable[str]], what: str) -> None:
    """Raise ConfigError when one item (package, source) is assigned to two splits."""
    owner: dict[str, str] = {}
    for split, items in assignment.items():
        for item in items:
            if item in owner and owner[item] != split:
                raise ConfigError(
                    f"{what} '{item}' is in both '{owner[item]}' and '{split}'; splits must not share one"
                )
            owner[item] = split


def check_files_disjoint(split_files: dict[str, Iterable[tuple[str, str]]], what: str) -> None:
    """Raise ConfigError when one (package, path) file would be used by two splits (overlapping source globs)."""
    owner: dict[tuple[str, str], str] = {}
    for split, files in split_files.items():
        for key in files:
            if key in owner and owner[key] != split:
                raise ConfigError(
                    f"{what}: {key[0]}:{key[1]} is selected for both '{owner[key]}' and '{split}'; "
                    "make the sources' include/exclude patterns disjoint"
                )
            owner[key] = split


def split_validation(
    kept: list[tuple[SourceFile, DecodedAudio]], fraction: float, seed: int
) -> tuple[list[tuple[SourceFile, DecodedAudio]], list[tuple[SourceFile, DecodedAudio]]]:
    """(train, validation): a random ``fraction`` of the songs (at least one when fraction > 0 and 2+ songs)."""
    count = int(round(fraction * len(kept)))
    if fraction > 0 and len(kept) >= 2:
        count = min(max(count, 1), len(kept) - 1)
    rng = np.random.default_rng([seed, zlib.crc32(b"validation")])
    chosen = set(rng.choice(len(kept), size=count, replace=False).tolist()) if count else set()
    train = [item for index, item in enumerate(kept) if index not in chosen]
    validation = [item for index, item in enumerate(kept) if index in chosen]
    return train, validation


def output_name(prefix: str, relative: str, channel: int | None, taken: set[str]) -> str:
    """A unique WAV name '<prefix>__<file stem>[_chN].wav'; on a clash adds the parent folder, then a counter."""
    path = Path(relative)
    stem = path.stem
    channel_part = f"_ch{channel}" if channel is not None else ""
    candidates = [f"{stem}", f"{path.parent.name}_{stem}"]
    for base in candidates:
        name = f"{_safe(prefix)}__{_safe(base)}{channel_part}.wav"
        if name not in taken:
            taken.add(name)
            return name
    counter = 2
    while True:
        name = f"{_safe(prefix)}__{_safe(candidates[-1])}{channel_part}_{counter}.wav"
        if name not in taken:
            taken.add(name)
            return name
        counter += 1


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "audio"
