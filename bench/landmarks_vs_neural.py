"""Landmark table against the neural model: ingest speed, database bytes per audio hour, query latency.

    nice -n 10 .venv/bin/python -m bench.landmarks_vs_neural --songs 8

Ingest: the first ``--songs`` songs of ``data/demo/music/test`` decoded and fingerprinted
(landmarks: ``LandmarkTable.add_files``; neural: ``embed_samples`` at the database's hop),
audio seconds per wall second. Size: the dense demo table's entry arrays and the neural demo
database's index file, per audio hour of what they hold. Latency: ``identify`` (analysis or
embedding + search) on excerpts of the simulated mid-noise recording, median of ``--queries``.
Writes ``bench/results/landmarks_vs_neural.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench.common import machine, write_result
from common.audio import find_audio_files, load_audio
from landmarks import LandmarkConfig, LandmarkTable
from matching.landmark_recognizer import LandmarkRecognizer
from matching.recognizer import Recognizer
from models.encoder import embed_samples

SONGS = Path("data/demo/music/test")
TABLE = Path("runs/demo/landmarks/demo_dense.npz")
WEIGHTS = Path("pretrained/fingerprinter_cpu.pt")
DATABASE = Path("runs/demo/index/demo.json")
RECORDING = Path("runs/demo/recordings/mid_t.wav")
QUERY_SECONDS = (1, 2, 5, 10)


def ingest_speed(files: list[Path], landmarks: bool, recognizer: Recognizer) -> float:
    """Audio seconds per wall second, decoding included."""
    audio_seconds, start = 0.0, time.perf_counter()
    if landmarks:
        table = LandmarkTable(LandmarkConfig.preset("dense")).add_files(files, progress=False)
        table.sort()
        audio_seconds = table.total_seconds
    else:
        for path in files:
            samples = load_audio(path, recognizer.sample_rate)
            embed_samples(recognizer.encoder, samples, hop_samples=recognizer.hop_samples)
            audio_seconds += len(samples) / recognizer.sample_rate
    return audio_seconds / (time.perf_counter() - start)


def latency_ms(recognizer, recording: np.ndarray, sample_rate: int, seconds: float, queries: int) -> float:
    rng = np.random.default_rng(0)
    times = []
    for start in rng.integers(0, len(recording) - int(seconds * sample_rate), size=queries):
        _, analysis_ms, search_ms = recognizer.identify(recording[start : start + int(seconds * sample_rate)])
        times.append(analysis_ms + search_ms)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8, help="songs fingerprinted to time ingestion")
    parser.add_argument("--queries", type=int, default=20, help="queries per length to time")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    neural = Recognizer.load(WEIGHTS, DATABASE)
    landmark = LandmarkRecognizer.load(TABLE)
    files = sorted(find_audio_files(SONGS))[: args.songs]
    recording = load_audio(RECORDING, landmark.sample_rate)
    neural_hours = sum(song.duration for song in neural.database.songs) / 3600
    index_bytes = sum(path.stat().st_size for path in DATABASE.parent.glob(f"{DATABASE.stem}.*"))
    rows = [
        (
            "landmarks (dense)",
            ingest_speed(files, True, neural),
            landmark.table.nbytes / 1e6 / (landmark.table.total_seconds / 3600),
            [latency_ms(landmark, recording, landmark.sample_rate, s, args.queries) for s in QUERY_SECONDS],
        ),
        (
            f"neural ({WEIGHTS.name}, {neural.database.factory})",
            ingest_speed(files, False, neural),
            index_bytes / 1e6 / neural_hours,
            [latency_ms(neural, recording, neural.sample_rate, s, args.queries) for s in QUERY_SECONDS],
        ),
    ]
    load_end = os.getloadavg()[0]
    lines = [
        "## Landmark table against the neural model: ingest, size, latency (issue 13)",
        "",
        "```bash",
        f"nice -n 10 .venv/bin/python -m bench.landmarks_vs_neural --songs {args.songs} --queries {args.queries}",
        "```",
        "",
        f"Machine: {machine()}; 1-minute load average {load_start:.1f} at the start and {load_end:.1f} at the end"
        + (
            " (the cores were shared with other jobs, so speeds are pessimistic and latencies noisy)."
            if max(load_start, load_end) > (os.cpu_count() or 1) + 0.5  # the benchmark itself loads every core
            else " (otherwise idle)."
        ),
        "",
        f"Ingest: the first {len(files)} songs of `{SONGS}`, decoded and fingerprinted (neural: embedding at the "
        f"database's hop, CPU; writing the index not included). Size: the dense demo table `{TABLE}` "
        f"(entry arrays, 12 bytes per hash) and the demo database `{DATABASE.parent}/{DATABASE.stem}.*` "
        f"(index, JSON, vectors), per audio hour held. Latency: `identify` on random excerpts of `{RECORDING}`, "
        f"median of {args.queries} per length (analysis or embedding + search).",
        "",
        "| model | ingest (audio s per s) | MB per audio hour | "
        + " | ".join(f"{s} s query ms" for s in QUERY_SECONDS)
        + " |",
        "|---" * (3 + len(QUERY_SECONDS)) + "|",
    ]
    for name, speed, size, latencies in rows:
        lines.append(f"| {name} | {speed:.0f} | {size:.1f} | " + " | ".join(f"{ms:.0f}" for ms in latencies) + " |")
    path = write_result("landmarks_vs_neural", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
