"""faiss database benchmarks: index size and search latency per factory and size, query latency end
to end, and how the sequence search's accuracy depends on ``neighbors`` and nprobe.

    nice -n 10 .venv/bin/python -m bench.database [--sizes 100000 1000000 10000000] [--queries 100]

Writes bench/results/database.md and bench/results/database_accuracy.png.

The large collections are random unit vectors (d = 128): a hard case for IVF (no clusters), so
the nprobe needed here is an upper bound for real fingerprints. One hour of audio is 7200
vectors at the 0.5 s hop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from bench.common import RESULTS, machine, write_result
from common.atomic import save_figure
from database import Database, SongEntry
from matching.matcher import Matcher
from models import get_model
from models.encoder import WaveformEncoder, embed_samples
from models.frontend import FrontEndConfig
from tests.signals import synth_song

D = 128
VECTORS_PER_HOUR = 7200
CHUNK = 1_000_000
FACTORIES = ("Flat", "IVF200,PQ32", "IVF1024,PQ64")
SONG_ROWS = 600  # 5 min songs in the synthetic collections
QUERY_ROWS = 9  # a 5 s query
TRAIN_VECTORS = 100_000
STUDY_VECTORS = 1_000_000  # collection of the accuracy study and the end-to-end latency


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def unit_vectors(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, D), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def collection_chunks(total: int):
    """The first ``total`` vectors of one fixed random collection, CHUNK rows at a time."""
    for number, start in enumerate(range(0, total, CHUNK)):
        yield unit_vectors(min(CHUNK, total - start), seed=1000 + number)


def index_bytes(index: faiss.Index) -> int:
    with tempfile.NamedTemporaryFile(suffix=".index", dir="/tmp") as handle:
        faiss.write_index(index, handle.name)
        return Path(handle.name).stat().st_size


def noisy_queries(collection: np.ndarray, count: int, noise: float, seed: int):
    """Queries of QUERY_ROWS consecutive rows cut from random songs with Gaussian noise added.

    Returns (queries (count, QUERY_ROWS, D), true song numbers, true start rows).
    """
    rng = np.random.default_rng(seed)
    songs = rng.integers(0, len(collection) // SONG_ROWS, count)
    starts = rng.integers(0, SONG_ROWS - QUERY_ROWS + 1, count)
    queries = np.stack([collection[s * SONG_ROWS + r : s * SONG_ROWS + r + QUERY_ROWS] for s, r in zip(songs, starts)])
    queries = queries + noise * rng.standard_normal(queries.shape, dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=2, keepdims=True)
    return queries.astype(np.float32), songs, starts


def synthetic_database(index: faiss.Index, collection: np.ndarray, factory: str) -> Database:
    starts = range(0, len(collection), SONG_ROWS)  # the last song takes the remainder
    songs = [
        SongEntry(f"song{n:06d}", start, min(SONG_ROWS, len(collection) - start), SONG_ROWS * 0.5 + 0.5)
        for n, start in enumerate(starts)
    ]
    arrays = [collection[song.first_id : song.first_id + song.count] for song in songs]
    return Database(index, songs, None, factory, 0.5, song_arrays=arrays)


def search_latency_ms(index: faiss.Index, queries: np.ndarray, neighbors: int = 4) -> float:
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, neighbors)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def size_and_latency(sizes: list[int], query_count: int, nprobes: list[int]) -> tuple[list[str], dict]:
    """Table rows for every factory and size; also returns the 1e6-vector indexes for the accuracy study."""
    rows, kept = [], {}
    queries = unit_vectors(query_count * QUERY_ROWS, seed=7).reshape(query_count, QUERY_ROWS, D)
    for factory in FACTORIES:
        empty = faiss.index_factory(D, factory, faiss.METRIC_INNER_PRODUCT)
        train_seconds = 0.0
        if not empty.is_trained:
            start = time.perf_counter()
            empty.train(unit_vectors(TRAIN_VECTORS, seed=3))
            train_seconds = time.perf_counter() - start
            log(f"{factory}: trained on 100000 vectors in {train_seconds:.1f} s")
        for size in sizes:
            index = faiss.clone_index(empty)
            start = time.perf_counter()
            for chunk in collection_chunks(size):
                index.add(chunk)
            add_seconds = time.perf_counter() - start
            size_bytes = index_bytes(index)
            hours = size / VECTORS_PER_HOUR
            ivf = "IVF" in factory
            timed = queries if (factory != "Flat" or size <= 1_000_000) else queries[: max(5, query_count // 10)]
            for nprobe in nprobes if ivf else [None]:
                if nprobe is not None:
                    faiss.ParameterSpace().set_index_parameter(index, "nprobe", nprobe)
                latency = search_latency_ms(index, timed)
                rows.append(
                    f"| {factory} | {size:,} | {hours:,.0f} | {'-' if nprobe is None else nprobe} | {latency:.2f} | "
                    f"{size_bytes / 2**20:,.1f} | {size_bytes / hours / 2**20:.3f} | "
                    f"{train_seconds:.0f} | {add_seconds:.0f} |"
                )
                log(rows[-1])
            if size == STUDY_VECTORS:
                kept[factory] = index
            else:
                del index
    return rows, kept


def accuracy_study(indexes: dict, noise: float, query_count: int) -> tuple[list[str], dict]:
    """Exact-hit rate of the sequence search on 1e6 random vectors for neighbors x nprobe."""
    collection = np.concatenate(list(collection_chunks(STUDY_VECTORS)))
    queries, true_songs, true_starts = noisy_queries(collection, query_count, noise, seed=11)
    cosine = float(
        np.mean(
            np.sum(
                queries
                * np.stack(
                    [
                        collection[s * SONG_ROWS + r : s * SONG_ROWS + r + QUERY_ROWS]
                        for s, r in zip(true_songs, true_starts)
                    ]
                ),
                axis=2,
            )
        )
    )
    rows, curves = [], {}
    for factory, index in indexes.items():
        database = synthetic_database(index, collection, factory)
        for nprobe in [1, 4, 16, 64] if "IVF" in factory else [None]:
            for neighbors in (1, 4, 10, 20):
                matcher = Matcher(database, neighbors=neighbors, nprobe=nprobe)
                hits, times = 0, []
                for query, song, start in zip(queries, true_songs, true_starts):
                    begin = time.perf_counter()
                    match = matcher.match(query)
                    times.append(time.perf_counter() - begin)
                    hits += match.song_index == song and match.offset_seconds == start * 0.5
                accuracy = 100 * hits / query_count
                curves.setdefault((factory, nprobe), []).append((neighbors, accuracy))
                rows.append(
                    f"| {factory} | {'-' if nprobe is None else nprobe} | {neighbors} | {accuracy:.1f} | "
                    f"{1000 * statistics.median(times):.2f} |"
                )
                log(rows[-1])
    return rows, {"curves": curves, "cosine": cosine}


def query_latency(repeats: int) -> list[str]:
    """Feature + model (published fingerprinter, width 1.0) and match time for 1, 5 and 10 s queries."""
    torch.manual_seed(0)
    frontend = FrontEndConfig()
    encoder = WaveformEncoder(get_model("fingerprinter", 1.0, frontend), frontend).eval()
    collection = np.concatenate(list(collection_chunks(STUDY_VECTORS)))
    flat = faiss.IndexFlatIP(D)
    flat.add(collection)
    database = synthetic_database(flat, collection, "Flat")
    matcher = Matcher(database, neighbors=4)
    rows = []
    for seconds in (1, 5, 10):
        audio = synth_song(seconds, seed=seconds)
        embed_times, match_times = [], []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            embeddings = embed_samples(encoder, audio)
            middle = time.perf_counter()
            matcher.match(embeddings)
            embed_times.append(middle - start)
            match_times.append(time.perf_counter() - middle)
        embed_ms, match_ms = 1000 * statistics.median(embed_times[1:]), 1000 * statistics.median(match_times[1:])
        rows.append(
            f"| {seconds} s | {2 * seconds - 1} | {embed_ms:.0f} | {match_ms:.1f} | {embed_ms + match_ms:.0f} |"
        )
        log(rows[-1])
    return rows


def real_study(
    fingerprints: str, weights: str, noise_dir: str, queries: int, snr_db: float, factories: list[str]
) -> tuple[list[str], dict, str]:
    """Exact-hit rate on real fingerprints: 5 s queries at random (off-grid) starts, real background noise."""
    from augmentation.clips import load_clip_set
    from augmentation.noise import mix_at_snr
    from common.audio import load_audio
    from extraction.manifest import load_fingerprint_folder
    from models.encoder import load_encoder

    manifest, songs = load_fingerprint_folder(fingerprints, mmap=False)
    encoder, _ = load_encoder(weights)
    noises, _ = load_clip_set(noise_dir)
    rng = np.random.default_rng(5)
    query_rows, truth = [], []
    for _ in range(queries):
        number = int(rng.integers(len(songs)))
        name, _, duration, source = songs[number]
        start = float(rng.uniform(0.0, duration - 5.0))
        clean = load_audio(source)[int(start * 8000) : int(start * 8000) + 40000]
        noise = noises[int(rng.integers(len(noises)))]
        noise = np.resize(noise, len(clean)) if len(noise) < len(clean) else noise[: len(clean)]
        query_rows.append(embed_samples(encoder, mix_at_snr(clean, noise, snr_db)))
        truth.append((number, start))
    total = sum(len(song[1]) for song in songs)
    hours = sum(song[2] for song in songs) / 3600
    rows, curves = [], {}
    for factory in factories:
        database = Database.build(songs, factory=factory, identity=manifest["identity"], max_train_vectors=total)
        for nprobe in [1, 4, 16, 64] if "IVF" in factory else [None]:
            for neighbors in (1, 4, 10, 20):
                matcher = Matcher(database, neighbors=neighbors, nprobe=nprobe)
                start_time = time.perf_counter()
                matches = matcher.match_many(query_rows)
                seconds = (time.perf_counter() - start_time) / queries
                song_hits = sum(m.song_index == number for m, (number, _) in zip(matches, truth))
                exact = sum(
                    m.song_index == number and abs(m.offset_seconds - start) <= 0.25
                    for m, (number, start) in zip(matches, truth)
                )
                curves.setdefault((factory, nprobe), []).append((neighbors, 100 * exact / queries))
                rows.append(
                    f"| {factory} | {'-' if nprobe is None else nprobe} | {neighbors} | "
                    f"{100 * song_hits / queries:.1f} | {100 * exact / queries:.1f} | {1000 * seconds:.2f} |"
                )
                log(rows[-1])
    describe = (
        f"{len(songs)} songs, {total:,} vectors ({hours:.2f} h) from `{fingerprints}` "
        f"(model `{weights}`); {queries} queries of 5 s at random starts (off the 0.5 s grid), "
        f"background noise from `{noise_dir}` at {snr_db:g} dB SNR"
    )
    return rows, curves, describe


def plot(curves: dict, path: Path, title: str = "Sequence search, 5 s queries, 1e6 random vectors") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for (factory, nprobe), points in curves.items():
        label = factory if nprobe is None else f"{factory}, nprobe {nprobe}"
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axis.set_xlabel("neighbors (k per query row)")
    axis.set_ylabel("exact hit % (song and offset)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    save_figure(figure, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=100, help="5 s queries timed per index")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 10, 32])
    parser.add_argument("--accuracy-queries", type=int, default=300)
    parser.add_argument(
        "--noise", type=float, default=0.2, help="Gaussian noise std per dimension of the accuracy queries"
    )
    parser.add_argument("--latency-repeats", type=int, default=10)
    parser.add_argument(
        "--stages", nargs="+", default=["sizes", "accuracy", "latency"], choices=["sizes", "accuracy", "latency"]
    )
    parser.add_argument("--real-fingerprints", help="fingerprint folder: run only the real-fingerprint study")
    parser.add_argument("--real-weights", default="pretrained/fingerprinter_cpu.pt")
    parser.add_argument("--real-noise", default="data/demo/noise/background_test")
    parser.add_argument("--real-queries", type=int, default=300)
    parser.add_argument("--real-snr", type=float, default=5.0)
    parser.add_argument("--real-factories", nargs="+", default=["Flat", "IVF64,PQ32"])
    args = parser.parse_args()
    if args.real_fingerprints:
        return main_real(args)
    load_at_start = os.getloadavg()[0]
    command = "nice -n 10 .venv/bin/python -m bench.database " + " ".join(sys.argv[1:])
    sections = [
        "## Database: index size, search latency, sequence-search accuracy (issue 5)\n",
        f"Command: `{command.strip()}`\n",
        f"Machine: {machine()}; faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads); "
        f"1-minute load average {load_at_start:.1f} at the start (the cores are shared with other jobs; "
        "latencies on an idle machine are lower).\n",
    ]
    if "sizes" in args.stages or "accuracy" in args.stages:
        sizes = sorted(set(args.sizes) | ({STUDY_VECTORS} if "accuracy" in args.stages else set()))
        table, indexes = size_and_latency(sizes, args.queries, args.nprobe)
        sections.append(f"""### Index size and search latency (random unit vectors, d = 128, inner product)
One search = one 5 s query ({QUERY_ROWS} rows) with k = 4, median over {args.queries} queries
(Flat above 10^6: fewer). Training: {TRAIN_VECTORS:,} vectors. Size: bytes of the written .index file.

| factory | vectors | hours of audio | nprobe | search ms / query | index MiB | MiB per hour | train s | add s |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(table)}

PQ indexes additionally keep a float16 copy of the vectors for exact scoring
(`<name>.vectors.npy`, 256 bytes per vector = 1.76 MiB per hour, memory-mapped, read only for
the candidate rows).
""")
        if "accuracy" in args.stages:
            accuracy, study = accuracy_study(indexes, args.noise, args.accuracy_queries)
            plot(study["curves"], RESULTS / "database_accuracy.png")
            sections.append(f"""### Sequence search: exact hits against neighbors and nprobe
{args.accuracy_queries} queries of {QUERY_ROWS} rows cut from random 5-minute "songs"
(10^6 vectors), Gaussian noise std {args.noise} per dimension (mean cosine to the true rows
{study["cosine"]:.2f}). Exact hit = right song and right start row. Time: `Matcher.match`, median.

| factory | nprobe | neighbors | exact hit % | match ms |
|---|---|---|---|---|
{chr(10).join(accuracy)}

![accuracy](database_accuracy.png)
""")
        del indexes
    if "latency" in args.stages:
        latency = query_latency(args.latency_repeats)
        sections.append(f"""### Query latency end to end (published `fingerprinter`, width 1.0, CPU)
Feature + model = `embed_samples` (log-mel and network, batch of all windows);
match = `Matcher.match` (neighbors 4) on a Flat index of 10^6 random vectors. Median of {args.latency_repeats}.

| query | windows | feature + model ms | match ms | total ms |
|---|---|---|---|---|
{chr(10).join(latency)}
""")
    sections.append(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}.\n")
    text = "\n".join(sections)
    path = write_result("database", text)
    print(text)
    log(f"wrote {path}")


def main_real(args) -> None:
    load_at_start = os.getloadavg()[0]
    command = "nice -n 10 .venv/bin/python -m bench.database " + " ".join(sys.argv[1:])
    rows, curves, describe = real_study(
        args.real_fingerprints,
        args.real_weights,
        args.real_noise,
        args.real_queries,
        args.real_snr,
        args.real_factories,
    )
    plot(curves, RESULTS / "database_real_accuracy.png", "Sequence search on real fingerprints, 5 s noisy queries")
    text = f"""## Sequence search on real fingerprints: neighbors and nprobe (issue 5)

Command: `{command.strip()}`

Machine: {machine()}; faiss {faiss.__version__}; 1-minute load average {load_at_start:.1f} at the start
and {os.getloadavg()[0]:.1f} at the end.

{describe}. Song = right song; exact = right song and offset within 0.25 s. Time: `Matcher.match_many`
per query (faiss search + exact scoring; the model is not timed here). IVF indexes are trained
on all vectors of this small collection.

| factory | nprobe | neighbors | song % | exact % | match ms |
|---|---|---|---|---|---|
{chr(10).join(rows)}

![accuracy](database_real_accuracy.png)
"""
    print(text)
    write_result("database_real", text)


if __name__ == "__main__":
    main()
