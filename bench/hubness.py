"""Does a hubness penalty help the sequence score? A tried-and-rejected variant, kept reproducible.

    python -m bench.hubness --weights pretrained/fingerprinter_cpu.pt \
        --database runs/demo/index/demo.json --recordings runs/demo/recordings \
        --true-songs data/demo/music/test [--alphas 0 0.25 0.5 1] [--lengths 1 2 5]

Some database rows resemble many songs (quiet passages, sustained chords, near-duplicate audio)
and turn up as the nearest neighbour of unrelated queries: "hubs". Cross-domain similarity local
scaling (Conneau et al., "Word translation without parallel data", ICLR 2018) lowers a row's
similarity by its mean similarity to its nearest neighbours. Here each database row r gets
h(r) = mean inner product with its ``--hub-neighbors`` nearest rows of *other* songs (exact
search), and a candidate's score becomes the mean over aligned rows of (q_i . v_r - alpha h(r));
alpha 0 is the shipped matcher. Every alpha runs the real-world protocol on the recordings with
every best candidate answered (no rule: the penalty shifts scores, so a calibrated rule would not
apply). Writes ``bench/results/hubness.md``; reports go under ``--work``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from unittest import mock

import faiss
import numpy as np

from bench.common import machine, write_result
from bench.learning_curve import LEVELS
from common.config import validate
from database import Database
from evaluation.recording_protocol import SCHEMA, run_recording
from matching.matcher import Matcher


def hub_scores(database: Database, neighbors: int) -> np.ndarray:
    """(ntotal,) mean inner product of every database row with its ``neighbors`` nearest rows of other songs."""
    vectors = database.vectors_at(np.arange(database.ntotal))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    own_song, _ = database.locate_many(np.arange(database.ntotal))
    # Search deep enough that every row has `neighbors` hits outside its own song (its own song's
    # nearby rows come first); rows that still lack them take the largest mean found.
    similarities, ids = index.search(vectors, min(database.ntotal, neighbors + 400))
    songs = database.locate_many(ids.ravel())[0].reshape(ids.shape)
    other = (songs != own_song[:, None]) & (ids >= 0)
    first = np.cumsum(other, axis=1) <= neighbors
    chosen = other & first
    counts = chosen.sum(axis=1)
    means = np.where(counts > 0, (similarities * chosen).sum(axis=1) / np.maximum(counts, 1), np.nan)
    return np.where(np.isnan(means), np.nanmax(means), means)


class HubPenalisedMatcher(Matcher):
    """The sequence matcher with each aligned row's similarity lowered by ``alpha`` x its hub score."""

    alpha = 0.0
    hub_neighbors = 10
    _cache: dict[int, np.ndarray] = {}

    def _aligned_scores(self, query: np.ndarray, songs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        scores = super()._aligned_scores(query, songs, starts)
        if not self.alpha:
            return scores
        key = id(self.database)
        if key not in self._cache:
            self._cache[key] = hub_scores(self.database, self.hub_neighbors)
        ids, inside = self._aligned_rows(len(query), songs, starts)
        penalty = np.where(inside, self._cache[key][ids], 0.0).sum(axis=1) / inside.sum(axis=1)
        return scores - self.alpha * penalty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="pretrained/fingerprinter_cpu.pt")
    parser.add_argument("--database", default="runs/demo/index/demo.json")
    parser.add_argument("--recordings", default="runs/demo/recordings")
    parser.add_argument("--true-songs", default="data/demo/music/test")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--hub-neighbors", type=int, default=10)
    parser.add_argument("--lengths", type=float, nargs="+", default=[1.0, 2.0, 5.0])
    parser.add_argument("--work", default="runs/bench/hubness")
    args = parser.parse_args()
    HubPenalisedMatcher.hub_neighbors = args.hub_neighbors
    rows = []
    for alpha in args.alphas:
        HubPenalisedMatcher.alpha = alpha
        config = {
            "experiment_name": f"hubness penalty alpha {alpha:g}",
            "models": [{"name": f"alpha {alpha:g}", "weights": args.weights, "database": args.database,
                        "neighbors": 4, "threshold": -1.0, "method": "sequence"}],
            "recording_wavs": [str(Path(args.recordings) / f"{level}.wav") for level in LEVELS],
            "csv_path": str(Path(args.recordings) / "playlist.csv"),
            "true_songs": args.true_songs,
            "query_lengths": args.lengths,
            "output_dir": str(Path(args.work) / f"alpha_{alpha:g}"),
        }  # fmt: skip
        with mock.patch("matching.recognizer.Matcher", HubPenalisedMatcher):
            cells = run_recording(validate(config, SCHEMA))
        accuracy = {(cell["condition"], float(cell["query_seconds"])): cell["accuracy_mean"] for cell in cells}
        row = " | ".join(
            " / ".join(f"{100 * accuracy[(level, length)]:.1f}" for level in LEVELS) for length in args.lengths
        )
        print(f"alpha {alpha:g}: {row}", flush=True)
        rows.append(f"| {alpha:g} | {row} |")
    header = "| alpha | " + " | ".join(f"{length:g} s" for length in args.lengths) + " |"
    markdown = "\n".join(
        [
            "## Hubness penalty on the sequence score",
            "",
            f"`{shlex.join(['python', '-m', 'bench.hubness', *sys.argv[1:]])}` on {machine()}.",
            "",
            f"Model `{args.weights}`, database `{args.database}`, recordings `{args.recordings}`; song accuracy "
            f"(%, low / mid / high noise), every best candidate answered, neighbors 4; hub score: mean inner "
            f"product with the {args.hub_neighbors} nearest rows of other songs. alpha 0 is the shipped matcher.",
            "",
            header,
            "|---" * (len(args.lengths) + 1) + "|",
            *rows,
        ]
    )
    print(f"wrote {write_result('hubness', markdown)}")


if __name__ == "__main__":
    main()
