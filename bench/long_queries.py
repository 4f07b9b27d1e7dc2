"""Where queries fail, by length: a diagnostic of the sequence matcher on recordings of a playlist.

    python -m bench.long_queries --weights pretrained/fingerprinter_cpu.pt \
        --database runs/demo/index/demo.json --recordings runs/demo/recordings \
        --true-songs data/demo/music/test [--lengths 2 5 10 15] [--neighbors 4 20 100]

For every recording (low_t, mid_t, high_t) and query length, the non-overlapping queries of the
real-world protocol (a random subset of ``--max-queries`` per cell) are embedded once and then:
- per query row: the rank of the true database row among all database vectors (exact search),
  reported as the share of rows whose true row is the nearest (``row top-1``);
- per query: whether the true start (+-1 row) is among the candidates the faiss hits propose,
  for each ``--neighbors`` k (``true start retrieved``);
- song accuracy of the matcher at each k, and of an exhaustive alignment (every start of every
  song scored by the same mean of aligned similarities): the ceiling of that score, with perfect
  candidate retrieval;
- why the exhaustive alignment fails: the median gap between the true start's score and the best
  wrong song's.
So a failure is either "true start never retrieved" (raise k, or the model is weak on single
rows) or "outscored by another song at the true score" (the model, not the search).
Figures go to the console and ``bench/results/long_queries.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import machine, write_result
from common.audio import load_audio
from common.playlist import read_playlist
from database import Database
from evaluation.ground_truth import cut_queries
from evaluation.recording_protocol import recording_ground_truth
from matching.matcher import Matcher
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder


def exhaustive_best(similarities: np.ndarray, song_of: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(J, N) similarities of query rows to every database vector -> (best start id, its mean score, all scores).

    Start id s aligns query row i with vector s + i; starts whose J rows cross a song boundary are excluded.
    """
    rows, total = similarities.shape
    starts = total - rows + 1
    scores = np.zeros(starts)
    for i in range(rows):
        scores += similarities[i, i : i + starts]
    scores /= rows
    scores[song_of[:starts] != song_of[rows - 1 :]] = -np.inf
    best = int(np.argmax(scores))
    return best, float(scores[best]), scores


def diagnose_cell(queries, database: Database, vectors: np.ndarray, neighbor_counts: list[int]) -> dict:
    """queries: list of ((J, d) rows, true song number, true start row). Returns the cell's figures."""
    counts = database.song_counts
    first = database.first_ids
    song_of = np.repeat(np.arange(len(counts)), counts)
    matchers = {k: Matcher(database, neighbors=k) for k in neighbor_counts}
    stats = {f"acc_k{k}": 0 for k in neighbor_counts}
    stats.update({f"retrieved_k{k}": 0 for k in neighbor_counts})
    stats.update(row_top1=0.0, acc_exhaustive=0, gaps=[])
    search_seconds = dict.fromkeys(neighbor_counts, 0.0)
    for rows, song, start in queries:
        similarities = rows @ vectors.T
        true_ids = first[song] + np.minimum(start + np.arange(len(rows)), counts[song] - 1)
        stats["row_top1"] += float(np.mean(np.argmax(similarities, axis=1) == true_ids))
        for k, matcher in matchers.items():
            started = time.perf_counter()
            stats[f"acc_k{k}"] += matcher.match(rows).song_index == song
            search_seconds[k] += time.perf_counter() - started
            _, ids = database.index.search(rows, k)
            hit_songs, hit_rows = database.locate_many(np.clip(ids, 0, None).ravel())
            proposed = hit_rows - np.repeat(np.arange(len(rows)), k)
            stats[f"retrieved_k{k}"] += bool(np.any((hit_songs == song) & (np.abs(proposed - start) <= 1)))
        best, _, scores = exhaustive_best(similarities, song_of)
        stats["acc_exhaustive"] += song_of[best] == song
        true_start = first[song] + min(start, counts[song] - len(rows))
        true_score = scores[max(true_start - 1, 0) : true_start + 2].max()
        wrong = np.where(song_of[: len(scores)] != song, scores, -np.inf).max()
        stats["gaps"].append(true_score - wrong)
    n = len(queries)
    cell = {key: 100.0 * value / n for key, value in stats.items() if key != "gaps"}
    cell["median_gap"] = float(np.median(stats["gaps"]))
    cell["queries"] = n
    cell.update({f"ms_k{k}": 1000.0 * seconds / n for k, seconds in search_seconds.items()})
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--database", required=True, help="database JSON")
    parser.add_argument("--recordings", required=True, help="folder with low_t/mid_t/high_t.wav and playlist.csv")
    parser.add_argument("--true-songs", required=True, help="folder of the playlist's reference songs")
    parser.add_argument("--levels", nargs="+", default=["low_t", "mid_t", "high_t"])
    parser.add_argument("--lengths", nargs="+", type=float, default=[2, 5, 10, 15])
    parser.add_argument("--neighbors", nargs="+", type=int, default=[4, 20, 100])
    parser.add_argument("--max-queries", type=int, default=200, help="random subset per cell")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    encoder, payload = load_encoder(args.weights)
    database = Database.open(args.database)
    database.check_compatible(model_identity(payload))
    vectors = database.vectors_at(np.arange(database.ntotal))
    sr = int(encoder.frontend_config.sample_rate)
    hop_samples = int(round(database.hop_seconds * sr))
    recordings = Path(args.recordings)
    entries = read_playlist(recordings / "playlist.csv")
    song_files = [Path(args.true_songs) / entry.song for entry in entries]
    references = [load_audio(path, sr) for path in song_files]
    number_of = {path.stem: database.song_number(path.stem) for path in song_files}
    lines = [
        "## Long queries: where they fail (issue 11)",
        "",
        f"Command: `.venv/bin/python -m bench.long_queries {shlex.join(sys.argv[1:])}`  ",
        f"Long-query diagnostic: `{Path(args.weights).name}` against `{args.database}` ({database.ntotal} vectors), "
        f"{machine()}",
        "",
        "| recording | query (s) | queries | row top-1 % | "
        + " | ".join(f"true start retrieved k={k} %" for k in args.neighbors)
        + " | "
        + " | ".join(f"accuracy k={k} %" for k in args.neighbors)
        + " | accuracy exhaustive % | median score gap true - best wrong | "
        + " | ".join(f"search ms k={k}" for k in args.neighbors)
        + " |",
        "|" + "---|" * (5 + 3 * len(args.neighbors)),
    ]
    rng = np.random.default_rng(0)
    for level in args.levels:
        recording = load_audio(recordings / f"{level}.wav", sr)
        intervals = recording_ground_truth(recording, sr, entries, song_files, references)
        song_rows = {}
        for interval in intervals:
            first = int(round(interval.start * sr))
            region = recording[first : first + int(round((interval.end - interval.start) * sr))]
            song_rows[interval.name] = embed_samples(encoder, region, hop_samples=hop_samples)
        for length in args.lengths:
            rows_per_query = int(round(2 * length)) - 1
            labelled = cut_queries(intervals, length)
            chosen = sorted(rng.permutation(len(labelled))[: args.max_queries])
            queries = []
            for position in chosen:
                query = labelled[position]
                start = int(round(query.offset_in_song / database.hop_seconds))
                rows = song_rows[query.song][start : start + rows_per_query]
                if len(rows) == rows_per_query:
                    queries.append((rows, number_of[query.song], start))
            cell = diagnose_cell(queries, database, vectors, args.neighbors)
            line = (
                f"| {level} | {length:g} | {cell['queries']} | {cell['row_top1']:.1f} | "
                + " | ".join(f"{cell[f'retrieved_k{k}']:.1f}" for k in args.neighbors)
                + " | "
                + " | ".join(f"{cell[f'acc_k{k}']:.1f}" for k in args.neighbors)
                + f" | {cell['acc_exhaustive']:.1f} | {cell['median_gap']:+.3f} | "
                + " | ".join(f"{cell[f'ms_k{k}']:.2f}" for k in args.neighbors)
                + " |"
            )
            print(line, flush=True)
            lines.append(line)
    write_result("long_queries", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
