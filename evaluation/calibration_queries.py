"""Degraded queries answered by both matching methods, kept as arrays: what a decision rule is fitted on.

For every song, query length, SNR and query slot, a random-start excerpt is degraded the way
the offline protocol degrades its queries (``evaluation.queries.QueryDegrader``: room IR, noise
at the SNR, optional cut-off filters), embedded once, and matched by every method with no
threshold. What is kept per query: the song it came from, the length, the SNR, the number of
query rows J, and per method the best candidate's song, score, offset and margin. A rule is
then a function of (score, margin, J) fitted on the out-of-database rows of such a table
(``matching.decision``), and tried on in-database ones.

Seeding: positions from ``default_rng([seed, 0, song number, length ms])``, degradations from
``default_rng([seed, 1, song number, length ms, SNR code, slot])``; a song's queries do not
depend on the other songs, lengths or SNRs chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.atomic import atomic_path
from common.audio import is_silent
from evaluation.queries import QueryDegrader, random_starts, snr_seed
from matching.matcher import METHODS, Matcher
from matching.recognizer import Recognizer


@dataclass
class QueryTable:
    """One row per answered query; per-method columns are dicts keyed by method name."""

    song: np.ndarray  # (N,) int: number of the query's song in the song list given
    length: np.ndarray  # (N,) float: query length (s)
    snr: np.ndarray  # (N,) float: SNR (dB), nan for clean
    rows: np.ndarray  # (N,) int: query rows J
    best_song: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) str: best candidate ('' none)
    score: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) float
    margin: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) float, inf with one candidate song
    offset: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) float: best candidate's offset (s)
    start: np.ndarray | None = None  # (N,) float: where the query starts in its song (s)

    def __len__(self) -> int:
        return len(self.song)

    def select(self, keep: np.ndarray) -> QueryTable:
        """The rows where the (N,) boolean ``keep`` is true."""
        return QueryTable(
            self.song[keep],
            self.length[keep],
            self.snr[keep],
            self.rows[keep],
            {method: values[keep] for method, values in self.best_song.items()},
            {method: values[keep] for method, values in self.score.items()},
            {method: values[keep] for method, values in self.margin.items()},
            {method: values[keep] for method, values in self.offset.items()},
            None if self.start is None else self.start[keep],
        )

    def save(self, path: str | Path) -> None:
        arrays = {"song": self.song, "length": self.length, "snr": self.snr, "rows": self.rows}
        if self.start is not None:
            arrays["start"] = self.start
        for name in ("best_song", "score", "margin", "offset"):
            for method, values in getattr(self, name).items():
                arrays[f"{name}.{method}"] = values
        with atomic_path(path) as tmp:  # a killed run leaves no truncated table for the next to load
            np.savez_compressed(tmp, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> QueryTable:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        table = cls(arrays["song"], arrays["length"], arrays["snr"], arrays["rows"], start=arrays.get("start"))
        for key, values in arrays.items():
            if "." in key:
                name, method = key.split(".", 1)
                getattr(table, name)[method] = values
        return table


def degraded_queries(
    songs: list[tuple[Path, np.ndarray]],
    degrade: QueryDegrader,
    lengths: list[float],
    snrs: list[float | None],
    queries_per_song: int,
    seed: int,
    sample_rate: int,
    window: int,
    hop: int,
) -> Iterator[tuple[int, float, list[tuple[float | None, int, np.ndarray]]]]:
    """For every song and length: (song number, length, [(SNR, start sample, (n,) degraded query)]).

    ``queries_per_song`` random starts per song and length, each degraded at every SNR; silent
    excerpts are left out (the list may be empty). Seeded as the module docstring says.
    """
    for number, (_, samples) in enumerate(songs):
        for length in lengths:
            query_samples = int(round(length * sample_rate))
            length_ms = int(round(length * 1000))
            position_rng = np.random.default_rng([seed, 0, number, length_ms])
            starts = random_starts(len(samples), query_samples, queries_per_song, position_rng)
            queries = []
            for snr in snrs:
                snr_code = snr_seed(snr)
                for slot, start in enumerate(starts):
                    clean = samples[start : start + query_samples]
                    if not is_silent(clean, window, hop):
                        rng = np.random.default_rng([seed, 1, number, length_ms, snr_code, slot])
                        queries.append((snr, start, degrade(clean, snr, rng)))
            yield number, length, queries


def answer_queries(
    recognizer: Recognizer,
    songs: list[tuple[Path, np.ndarray]],
    degrade: QueryDegrader,
    lengths: list[float],
    snrs: list[float | None],
    queries_per_song: int,
    seed: int,
    methods: tuple[str, ...] = METHODS,
    neighbors: int = 4,
    desc: str = "queries",
) -> QueryTable:
    """Degraded random-start queries of every song, embedded by ``recognizer``, matched by every method.

    ``songs``: [(path, (n,) float32 at the recogniser's rate)]. Matching uses no threshold, so
    the best candidate of every query is kept.
    """
    sr = recognizer.sample_rate
    window = recognizer.encoder.frontend_config.window_samples
    matchers = {
        method: Matcher(recognizer.database, neighbors=neighbors, method=method, nprobe=recognizer.database.nprobe)
        for method in methods
    }
    columns: dict[str, list] = {key: [] for key in ("song", "length", "snr", "rows", "start")}
    per_method: dict[str, dict[str, list]] = {
        name: {method: [] for method in methods} for name in ("best_song", "score", "margin", "offset")
    }
    total = len(songs) * len(lengths) * len(snrs) * queries_per_song
    with tqdm(total=total, desc=desc, unit="query", dynamic_ncols=True, mininterval=1.0) as progress:
        for number, length, queries in degraded_queries(
            songs, degrade, lengths, snrs, queries_per_song, seed, sr, window, recognizer.hop_samples
        ):
            progress.update(queries_per_song * len(snrs))
            if not queries:
                continue
            # All variants of this song and length in one forward pass: 1 s queries are one window each.
            all_rows = recognizer.embed_many([query for _, _, query in queries])
            for method, matcher in matchers.items():
                for match in matcher.match_many(all_rows):
                    per_method["best_song"][method].append(match.ranked[0][0] if match.ranked else "")
                    per_method["score"][method].append(match.score)
                    per_method["margin"][method].append(match.margin)
                    per_method["offset"][method].append(match.offset_seconds)
            for (snr, start, _), rows in zip(queries, all_rows, strict=True):
                columns["song"].append(number)
                columns["length"].append(length)
                columns["snr"].append(np.nan if snr is None else snr)
                columns["rows"].append(len(rows))
                columns["start"].append(start / sr)
    return QueryTable(
        np.array(columns["song"], dtype=np.int64),
        np.array(columns["length"], dtype=np.float64),
        np.array(columns["snr"], dtype=np.float64),
        np.array(columns["rows"], dtype=np.int64),
        {method: np.array(values, dtype=str) for method, values in per_method["best_song"].items()},
        {method: np.array(values, dtype=np.float64) for method, values in per_method["score"].items()},
        {method: np.array(values, dtype=np.float64) for method, values in per_method["margin"].items()},
        {method: np.array(values, dtype=np.float64) for method, values in per_method["offset"].items()},
        np.array(columns["start"], dtype=np.float64),
    )
