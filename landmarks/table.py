"""Stage 3: the hash -> (song, anchor frame) table, with add / remove / save / load / match.

Entries are three parallel numpy arrays sorted by hash, so a lookup is two ``searchsorted``
calls. Songs added since the last sort wait in a list and are merged on the next lookup, save
or removal. A table is saved as one ``.npz`` file (the arrays plus a JSON header with the
format, the configuration and the song list), written atomically.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.atomic import atomic_path
from common.audio import find_audio_files, load_audio
from common.errors import UserError
from landmarks.config import ANALYSIS_FIELDS, LandmarkConfig
from landmarks.hashes import landmark_hashes
from landmarks.matcher import LandmarkMatch, best_offsets, lookup, query_landmarks

FORMAT = "landmark-table"
VERSION = 1
ARRAYS = ("hashes", "songs", "frames")


def song_files(folders: Iterable[str | os.PathLike], where: str) -> list[Path]:
    """Every audio file under ``folders`` (recursive, sorted), each a song named by its file stem.

    Two files with one stem would be one song name twice: a UserError naming ``where`` (the
    config file and key) and the name, before anything is fingerprinted.
    """
    files = sorted({file for folder in folders for file in find_audio_files(folder)})
    doubled = sorted(stem for stem, count in Counter(file.stem for file in files).items() if count > 1)
    if doubled:
        raise UserError(f"{where}: two files are named '{doubled[0]}'; song names must differ")
    return files


class LandmarkTable:
    """Songs fingerprinted as landmark hashes; ``match`` finds which song a query comes from.

    ``table.add(name, samples)`` with (n,) float samples at ``config.sample_rate``;
    ``table.match(samples)`` -> LandmarkMatch. Each entry takes 12 bytes (uint32 hash, int32
    song, int32 anchor frame); ``nbytes`` and ``seconds`` give bytes per audio hour.
    ``ingest_seconds`` is the wall time spent decoding and fingerprinting the songs in the table
    (saved with it), so ``total_seconds / ingest_seconds`` is the ingest speed of the machine
    that built it.
    """

    def __init__(self, config: LandmarkConfig | None = None):
        self.config = config or LandmarkConfig()
        self.names: list[str] = []
        self.seconds: list[float] = []
        self._hashes = np.zeros(0, dtype=np.uint32)
        self._songs = np.zeros(0, dtype=np.int32)
        self._frames = np.zeros(0, dtype=np.int32)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._numbers: dict[str, int] = {}  # song name -> song number (its index in names)
        self.ingest_seconds = 0.0

    # ---- building ----------------------------------------------------------------------------

    def add(self, name: str, samples: np.ndarray) -> int:
        """Fingerprint one song; returns its number of hashes. A name already in the table is a UserError."""
        if not isinstance(name, str) or not name:
            raise UserError(f"landmark table: a song name must be a non-empty string, got {name!r}")
        if name in self._numbers:
            raise UserError(f"landmark table: song '{name}' is already in the table (remove it first)")
        start = time.perf_counter()
        hashes, frames = landmark_hashes(samples, self.config)
        self.ingest_seconds += time.perf_counter() - start
        song = len(self.names)
        self.names.append(name)
        self.seconds.append(len(samples) / self.config.sample_rate)
        self._numbers[name] = song
        self._pending.append((hashes, np.full(len(hashes), song, dtype=np.int32), frames))
        return len(hashes)

    def add_file(self, path: str | os.PathLike, name: str | None = None) -> int:
        """Decode ``path`` (any format libsndfile reads, resampled) and add it as ``name`` (default: the file stem)."""
        path = Path(path)
        start = time.perf_counter()
        samples = load_audio(path, self.config.sample_rate, min_samples=self.config.fft_samples)
        self.ingest_seconds += time.perf_counter() - start
        return self.add(name or path.stem, samples)

    def add_files(self, songs: Iterable[str | os.PathLike | tuple[str, str | os.PathLike]], progress: bool = True):
        """Add paths, or (name, path) pairs, with a progress bar in audio seconds."""
        songs = list(songs)
        with tqdm(total=len(songs), unit="song", disable=not progress, desc="landmarks") as bar:
            for song in songs:
                name, path = song if isinstance(song, tuple) else (None, song)
                self.add_file(path, name)
                bar.update(1)
        return self

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, config: LandmarkConfig | None = None, progress: bool = True):
        """A table of every audio file under ``folder`` (recursive), named by file stem."""
        return cls(config).add_files(find_audio_files(folder), progress=progress)

    def remove(self, name: str) -> None:
        """Drop a song and all its hashes; song numbers above it shift down by one."""
        if name not in self._numbers:
            raise UserError(f"landmark table: no song '{name}' in the table")
        self.sort()
        song = self._numbers[name]
        keep = self._songs != song
        self._hashes, self._songs, self._frames = self._hashes[keep], self._songs[keep], self._frames[keep]
        self._songs[self._songs > song] -= 1
        before = self.total_seconds
        del self.names[song], self.seconds[song]
        self.ingest_seconds *= self.total_seconds / before if before > 0 else 0.0  # the removed song's share
        self._numbers = {name: number for number, name in enumerate(self.names)}

    # ---- matching ----------------------------------------------------------------------------

    def match(self, samples: np.ndarray) -> LandmarkMatch:
        """(n,) query samples at ``config.sample_rate`` -> LandmarkMatch; song None when the no-match rule holds."""
        return self.match_landmarks(*self.analyse(samples))

    def analyse(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) query samples -> (hashes (Q,) uint32, anchor frames (Q,) int32), analysed as the table was."""
        return query_landmarks(samples, self.config)

    def match_landmarks(self, query_hashes: np.ndarray, query_frames: np.ndarray) -> LandmarkMatch:
        """A query's landmarks (``analyse``) -> LandmarkMatch: lookup, offset votes, the no-match rule."""
        self.sort()
        config = self.config
        votes = lookup(query_hashes, query_frames, self._hashes, self._songs, self._frames, config.max_entries_per_hash)
        ranked_songs, ranked_offsets, ranked_scores = best_offsets(*votes, config.offset_tolerance_frames)
        if len(ranked_songs) == 0:
            return LandmarkMatch(None, None, 0, 0, None, len(query_hashes))
        score = int(ranked_scores[0])
        runner_up = int(ranked_scores[1]) if len(ranked_scores) > 1 else 0
        candidate = self.names[ranked_songs[0]]
        accepted = config.accepts(score, runner_up)
        return LandmarkMatch(
            song=candidate if accepted else None,
            offset_seconds=float(ranked_offsets[0]) * config.frame_seconds,
            score=score,
            runner_up_score=runner_up,
            candidate=candidate,
            query_hashes=len(query_hashes),
        )

    def match_timed(self, samples: np.ndarray) -> tuple[LandmarkMatch, float]:
        """``match`` plus its wall time in milliseconds (analysis, lookup and vote)."""
        self.sort()
        start = time.perf_counter()
        result = self.match(samples)
        return result, (time.perf_counter() - start) * 1000.0

    def with_query(self, **changes) -> LandmarkTable:
        """A view of this table with other query parameters (``min_count``, ``query_shifts``...); arrays are shared."""
        fixed = sorted(set(changes) & set(ANALYSIS_FIELDS))
        if fixed:
            raise UserError(f"landmark table: {fixed[0]} is fixed when the table is built; rebuild to change it")
        self.sort()
        view = LandmarkTable(self.config.replace(**changes))
        view.names, view.seconds, view._numbers = list(self.names), list(self.seconds), dict(self._numbers)
        view.ingest_seconds = self.ingest_seconds
        view._hashes, view._songs, view._frames = self._hashes, self._songs, self._frames
        return view

    # ---- size --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    @property
    def entries(self) -> int:
        """Number of stored hashes."""
        return len(self._hashes) + sum(len(hashes) for hashes, _, _ in self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes of the entry arrays (the saved file adds a small header)."""
        return self.entries * (self._hashes.itemsize + self._songs.itemsize + self._frames.itemsize)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    # ---- files -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table to one .npz file atomically: a crash leaves any old file as it was."""
        self.sort()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config.to_dict(),
            "songs": [{"name": name, "seconds": seconds} for name, seconds in zip(self.names, self.seconds)],
            "ingest_seconds": self.ingest_seconds,
        }
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
                hashes=self._hashes,
                songs=self._songs,
                frames=self._frames,
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LandmarkTable:
        """Read a table written by ``save``; anything else is a UserError naming the file."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such landmark table")
        try:
            with np.load(path, allow_pickle=False) as stored:
                header = json.loads(stored["header"].tobytes().decode("utf-8"))
                arrays = {name: stored[name] for name in ARRAYS}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"{path}: not a landmark table ({reason})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise UserError(f"{path}: not a landmark table (format is {header.get('format')!r})")
        if header.get("version") != VERSION:
            raise UserError(f"{path}: landmark table version {header.get('version')} (this code reads {VERSION})")
        try:
            table = cls(LandmarkConfig.from_dict(header["config"]))
            table.names = [str(song["name"]) for song in header["songs"]]
            table.seconds = [float(song["seconds"]) for song in header["songs"]]
            table.ingest_seconds = float(header.get("ingest_seconds", 0.0))
        except (KeyError, TypeError, UserError) as error:
            raise UserError(f"{path}: landmark table header is damaged ({error})") from None
        table._numbers = {name: number for number, name in enumerate(table.names)}
        table._hashes = arrays["hashes"].astype(np.uint32, copy=False)
        table._songs = arrays["songs"].astype(np.int32, copy=False)
        table._frames = arrays["frames"].astype(np.int32, copy=False)
        sizes = {len(array) for array in arrays.values()}
        if len(sizes) != 1 or (len(table._songs) and not 0 <= table._songs.min() <= table._songs.max() < len(table)):
            raise UserError(f"{path}: landmark table is inconsistent (entry arrays disagree with the song list)")
        return table

    def sort(self) -> None:
        """Merge songs added since the last lookup into the sorted entry arrays.

        Done automatically before a lookup, a removal or a save; call it to time ingestion fully.
        Stable, so equal hashes keep song order.
        """
        if not self._pending:
            return
        hashes = np.concatenate([self._hashes] + [hashes for hashes, _, _ in self._pending])
        songs = np.concatenate([self._songs] + [songs for _, songs, _ in self._pending])
        frames = np.concatenate([self._frames] + [frames for _, _, frames in self._pending])
        self._pending = []
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._songs, self._frames = hashes[order], songs[order], frames[order]
