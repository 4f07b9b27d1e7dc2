"""Which summary of the best candidate's row similarities makes the best "no match" statistic?

    python -m bench.row_statistics [--weights pretrained/fingerprinter_cpu.pt] \
        [--database runs/demo/index/demo.json] [--recordings runs/demo/recordings] \
        [--true-songs data/demo/music/test] [--unknown-songs data/demo/music/train] [--lengths 2 5 10 15]

The matcher scores a candidate by the mean inner product of its J aligned rows, and the decision
rule thresholds that mean per J (docs/calibration.md). A noisy recording may keep a few clean
rows among many drowned ones, so a statistic that counts agreeing rows, or averages only the
best ones, might separate right answers from out-of-database queries better than the plain mean.
Here every statistic is computed on the rows of the same best candidate (the matcher's, chosen by
the mean) and thresholded at the same 1 % false-match rate, the plain quantile of its scores on
out-of-database queries (the queries ``evaluation/calibrate.py`` would cut with these songs,
``--max-songs``, ``--seed``, noise and IRs: the demo calibration's own by default; ``--queries``
random starts at each of 4 SNRs);
what is compared is the share of the recordings' non-overlapping queries answered with the right
song and accepted. The counts and sums are not divided by the rows, so a candidate running past
its song's end (fewer rows) scores lower on them; a query with no candidate at all is rejected.
Writes ``bench/results/row_statistics.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.common import machine, write_result
from bench.learning_curve import LEVELS
from common.audio import load_audio, load_song
from common.playlist import playlist_files, read_playlist
from evaluation.calibration import calibration_songs
from evaluation.calibration_queries import degraded_queries
from evaluation.ground_truth import cut_queries
from evaluation.queries import QueryDegrader
from evaluation.recording_protocol import recording_ground_truth
from matching.decision import threshold_for
from matching.matcher import Match, Matcher
from matching.recognizer import Recognizer

SNRS = [0, 5, 10, 15]
FALSE_MATCH_RATE = 0.01


def _top_mean(share: float) -> Callable[[np.ndarray], float]:
    return lambda rows: float(np.sort(rows)[::-1][: max(1, int(np.ceil(share * len(rows))))].mean())


def _count(level: float) -> Callable[[np.ndarray], float]:
    # Whole counts tie often; the mean (at most 1 in size, scaled by 0.01) only breaks the ties.
    return lambda rows: float((rows >= level).sum() + 0.01 * rows.mean())


def _hinge(level: float) -> Callable[[np.ndarray], float]:
    return lambda rows: float(np.clip(rows - level, 0.0, None).sum())


STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "mean (the matcher's score)": lambda rows: float(rows.mean()),
    "mean of the best 75 % of rows": _top_mean(0.75),
    "mean of the best 50 % of rows": _top_mean(0.5),
    "median": lambda rows: float(np.median(rows)),
    "rows >= 0.5": _count(0.5),
    "rows >= 0.6": _count(0.6),
    "rows >= 0.7": _count(0.7),
    "sum of (s - 0.4)+": _hinge(0.4),
    "sum of (s - 0.5)+": _hinge(0.5),
}


def _score(statistic: Callable[[np.ndarray], float], rows: np.ndarray) -> float:
    """The statistic of a candidate's rows; -inf for a query with no candidate (always rejected)."""
    return statistic(rows) if len(rows) else -np.inf


class RowSimilarities:
    """The per-row similarities of a match's best candidate, from the database's exact vectors."""

    def __init__(self, recognizer: Recognizer, neighbors: int):
        self.database = recognizer.database
        self.matcher = Matcher(self.database, neighbors=neighbors, method="sequence", nprobe=self.database.nprobe)

    def __call__(self, rows: np.ndarray, match: Match) -> np.ndarray:
        """(rows inside the song,) similarities; empty when the matcher found no candidate."""
        if match.song_index is None:
            return np.full(0, -1.0)
        start = int(round(match.offset_seconds / self.database.hop_seconds))
        ids, inside = self.matcher._aligned_rows(len(rows), np.array([match.song_index]), np.array([start]))
        ids, inside = ids[0], inside[0]
        return (rows[inside] * self.database.vectors_at(ids[inside])).sum(axis=1)

    def answer(self, query_rows: list[np.ndarray]) -> list[tuple[Match, np.ndarray]]:
        return [(match, self(rows, match)) for rows, match in zip(query_rows, self.matcher.match_many(query_rows))]


def out_of_database(args, recognizer: Recognizer, rows_of: RowSimilarities) -> dict[float, list[np.ndarray]]:
    """Row similarities of the best candidate of every out-of-database query, per length: the
    calibration's songs (``calibration_songs``) and queries (``degraded_queries``) for this seed."""
    sr = recognizer.sample_rate
    paths = calibration_songs([args.unknown_songs], args.max_songs, args.seed)
    songs = [(path, load_song(path, sr)) for path in tqdm(paths, desc="loading songs", unit="song")]
    degrade, _ = QueryDegrader.from_folders(args.noise, args.impulses, sr)
    window = recognizer.encoder.frontend_config.window_samples
    similarities: dict[float, list[np.ndarray]] = {length: [] for length in args.lengths}
    queries_of = degraded_queries(
        songs, degrade, args.lengths, SNRS, args.queries, args.seed, sr, window, recognizer.hop_samples
    )
    for _, length, queries in tqdm(
        queries_of,
        total=len(songs) * len(args.lengths),
        desc="out-of-database queries",
        unit="song-length",
        dynamic_ncols=True,
    ):
        if queries:
            answered = rows_of.answer(recognizer.embed_many([query for _, _, query in queries]))
            similarities[length] += [rows for _, rows in answered]
    return similarities


def recordings(args, recognizer: Recognizer, rows_of: RowSimilarities) -> dict[tuple[str, float], list]:
    """(row similarities, right song) of every non-overlapping query of every recording, per (level, length)."""
    sr = recognizer.sample_rate
    playlist = Path(args.recordings) / "playlist.csv"
    entries = read_playlist(playlist)
    files = playlist_files(entries, args.true_songs, playlist)
    references = [load_audio(path, sr) for path in files]
    names = {path.stem: recognizer.database.name_of_file(path) for path in files}
    answers = {}
    for level in LEVELS:
        recording = load_audio(Path(args.recordings) / f"{level}.wav", sr)
        intervals = {
            interval.name: interval for interval in recording_ground_truth(recording, sr, entries, files, references)
        }
        for length in args.lengths:
            cut = cut_queries(list(intervals.values()), length)
            queries = []
            for query in cut:
                first = int(round((intervals[query.song].start + query.offset_in_song) * sr))
                queries.append(recording[first : first + int(round(length * sr))])
            answered = rows_of.answer(recognizer.embed_many(queries))
            answers[(level, length)] = [
                (rows, match.song == names[query.song]) for query, (match, rows) in zip(cut, answered, strict=True)
            ]
    return answers


def compare(null: dict, positive: dict, lengths: list[float]) -> str:
    """The markdown tables: per length, each statistic's threshold and recall per recording."""
    lines = []
    for length in lengths:
        right = [100 * np.mean([ok for _, ok in positive[(level, length)]]) for level in LEVELS]
        lines += [
            f"\n### {length:g} s queries ({len(null[length])} out-of-database queries; "
            f"right song without a rule: {' / '.join(f'{value:.1f}' for value in right)} %)\n",
            "| statistic | threshold | right and accepted, " + " / ".join(LEVELS) + " (%) |",
            "|---|---|---|",
        ]
        for name, statistic in STATISTICS.items():
            scores = [_score(statistic, rows) for rows in null[length]]
            threshold = threshold_for(np.array(scores), int(np.floor(FALSE_MATCH_RATE * len(scores))))
            recall = [
                100 * np.mean([ok and _score(statistic, rows) >= threshold for rows, ok in positive[(level, length)]])
                for level in LEVELS
            ]
            lines.append(f"| {name} | {threshold:.3f} | " + " / ".join(f"{value:.1f}" for value in recall) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="pretrained/fingerprinter_cpu.pt")
    parser.add_argument("--database", default="runs/demo/index/demo.json")
    parser.add_argument("--recordings", default="runs/demo/recordings")
    parser.add_argument("--true-songs", default="data/demo/music/test")
    parser.add_argument("--unknown-songs", default="data/demo/music/train")
    parser.add_argument("--noise", default="data/demo/noise/background_val")
    parser.add_argument("--impulses", default="data/demo/impulse/impulse_val")
    parser.add_argument("--max-songs", type=int, default=48)
    parser.add_argument("--queries", type=int, default=4, help="random starts per song, length and SNR")
    parser.add_argument("--lengths", type=float, nargs="+", default=[2, 5, 10, 15])
    parser.add_argument("--neighbors", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recognizer = Recognizer.load(args.weights, args.database, "cpu")
    rows_of = RowSimilarities(recognizer, args.neighbors)
    null = out_of_database(args, recognizer, rows_of)
    positive = recordings(args, recognizer, rows_of)
    tables = compare(null, positive, args.lengths)
    print(tables)
    command = "python -m bench.row_statistics " + shlex.join(argv if argv is not None else sys.argv[1:])
    markdown = (
        "## Row statistics for the no-match decision\n\n"
        f"`{command.strip()}`\n\n{machine()}; model {args.weights}, database {args.database}.\n"
        "Each statistic summarises the similarities of the best candidate's aligned rows; its threshold\n"
        f"lets {100 * FALSE_MATCH_RATE:g} % of the out-of-database queries through (plain quantile, no\n"
        "confidence bound, the same for every statistic); recall is the share of the recordings'\n"
        "queries answered with the right song and accepted.\n" + tables + "\n"
    )
    print(f"written {write_result('row_statistics', markdown)}")


if __name__ == "__main__":
    main()
