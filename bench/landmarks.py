"""Landmark fingerprinter on real music: ingest speed, bytes per audio hour, accuracy of noisy
reverberant excerpts per length and SNR, false matches of songs outside the table, latency.

    nice -n 10 .venv/bin/python -m bench.landmarks [--tables default dense] [--queries 40]
    # try a variant: NAME=PRESET:key=value,key=value
    nice -n 10 .venv/bin/python -m bench.landmarks --tables "d50=dense:density=50,fan_out=6" --no-write

Every query is a random excerpt of a table song, convolved with a random measured room impulse
response and mixed with a random background-noise clip at the cell's SNR; out-of-table queries
are made the same way from other songs. The same queries are given to every table.
Writes bench/results/landmarks.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal

from common.atomic import atomic_write_text
from common.audio import SAMPLE_RATE, find_audio_files, load_audio
from landmarks import LandmarkConfig, LandmarkTable
from landmarks.peaks import find_peaks, log_spectrogram

RESULTS = Path(__file__).resolve().parent / "results"
OFFSET_TOLERANCE_SECONDS = 0.1
MIN_MARGINS = (0, 2, 4, 6, 8, 10, 12, 15, 20)
IMPULSE_SECONDS = 2.0  # measured responses are cut to this length


@dataclass
class Query:
    samples: np.ndarray
    song: str | None  # None: the song is not in the table
    start_seconds: float
    seconds: float
    snr_db: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_table(text: str) -> tuple[str, LandmarkConfig]:
    """``dense`` or ``NAME=PRESET:key=value,...`` -> (name, config)."""
    name, _, spec = text.partition("=") if "=" in text.split(":")[0] else (text.split(":")[0], "", text)
    preset, _, overrides = spec.partition(":")
    changes = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        changes[key] = float(value) if key in ("density", "spread_bins") else int(value)
    return name, LandmarkConfig.preset(preset, **changes)


def load_folder(folder: Path, limit: int | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    files = find_audio_files(folder)
    if limit is not None and limit < len(files):
        files = [files[i] for i in sorted(rng.choice(len(files), limit, replace=False))]
    return {path.stem: load_audio(path, SAMPLE_RATE) for path in files}


def degrade(clean: np.ndarray, impulse: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Reverberate ``clean`` (which starts len(impulse) - 1 samples before the query), then add noise at ``snr_db``."""
    wet = scipy.signal.fftconvolve(clean, impulse)[len(impulse) - 1 : len(clean)]
    wet *= np.sqrt(np.mean(clean[len(impulse) - 1 :] ** 2) / max(np.mean(wet**2), 1e-12))
    noise = noise * np.sqrt(np.mean(wet**2) / max(np.mean(noise**2), 1e-12) / 10 ** (snr_db / 10))
    mixed = wet + noise
    return (mixed / max(np.abs(mixed).max(), 1e-9) * 0.5).astype(np.float32)


def noise_clip(noises: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    noise = noises[rng.integers(len(noises))]
    if len(noise) < n:
        noise = np.tile(noise, n // len(noise) + 1)
    start = rng.integers(0, len(noise) - n + 1)
    return noise[start : start + n]


def make_queries(songs, impulses, noises, lengths, snrs, count, in_table, rng) -> list[Query]:
    queries = []
    names = sorted(songs)
    for seconds in lengths:
        for snr_db in snrs:
            for _ in range(count):
                name = names[rng.integers(len(names))]
                song = songs[name]
                n = int(seconds * SAMPLE_RATE)
                start = int(rng.integers(0, max(1, len(song) - n)))
                impulse = impulses[rng.integers(len(impulses))]
                before = min(start, len(impulse) - 1)
                clean = np.concatenate(
                    [np.zeros(len(impulse) - 1 - before, np.float32), song[start - before : start + n]]
                )
                samples = degrade(clean, impulse, noise_clip(noises, len(clean) - len(impulse) + 1, rng), snr_db)
                queries.append(Query(samples, name if in_table else None, start / SAMPLE_RATE, seconds, snr_db))
    return queries


def load_impulses(folder: Path | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Measured responses, cut to IMPULSE_SECONDS from their peak; without a folder, synthetic exponential decays."""
    if folder is not None and folder.is_dir() and find_audio_files(folder):
        impulses = []
        for path in find_audio_files(folder):
            response = load_audio(path, SAMPLE_RATE)
            peak = int(np.argmax(np.abs(response)))
            impulses.append(response[peak : peak + int(IMPULSE_SECONDS * SAMPLE_RATE)])
        return impulses
    log(f"no impulse responses in {folder}; using synthetic exponential decays (RT60 0.3-0.8 s)")
    impulses = []
    for rt60 in (0.3, 0.5, 0.8):
        t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
        response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * 0.3
        response[0] = 1.0
        impulses.append(response.astype(np.float32))
    return impulses


def build(config: LandmarkConfig, songs: dict[str, np.ndarray]) -> tuple[LandmarkTable, dict]:
    table = LandmarkTable(config)
    start = time.perf_counter()
    for name, samples in songs.items():
        table.add(name, samples)
    table.sort()  # part of the ingest cost
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = table.save(Path(folder) / "table.npz")
        file_bytes = path.stat().st_size
        start = time.perf_counter()
        LandmarkTable.load(path)
        load_seconds = time.perf_counter() - start
    hours = table.total_seconds / 3600
    sample = list(songs.values())[:5]
    peaks = sum(len(find_peaks(log_spectrogram(samples, config), config)[0]) for samples in sample)
    return table, {
        "ingest_x": table.total_seconds / seconds,
        "mb_per_hour": file_bytes / hours / 1e6,
        "hashes_per_second": table.entries / table.total_seconds,
        "load_seconds": load_seconds,
        "peaks_per_second": peaks / (sum(map(len, sample)) / SAMPLE_RATE),
    }


def evaluate(table: LandmarkTable, queries: list[Query]) -> list[tuple]:
    """(query, match, milliseconds) for every query; thresholds are applied later from score and runner-up."""
    return [(query, *table.match_timed(query.samples)) for query in queries]


def accepted(match, config: LandmarkConfig, min_margin: int | None = None) -> bool:
    """The table's no-match rule, with another ``min_margin`` when given."""
    return config.accepts(match.score, match.runner_up_score, min_margin)


def cell_rates(results, config: LandmarkConfig, min_margin: int | None = None) -> tuple[float, float]:
    """(song accuracy %, offset hit %): right song accepted; and also within 0.1 s."""
    right = [accepted(m, config, min_margin) and m.candidate == q.song for q, m, _ in results]
    on_time = [
        ok and abs(m.offset_seconds - q.start_seconds) <= OFFSET_TOLERANCE_SECONDS
        for ok, (q, m, _) in zip(right, results)
    ]
    return 100 * np.mean(right), 100 * np.mean(on_time)


def false_match_rate(results, config: LandmarkConfig, min_margin: int | None = None) -> float:
    return 100 * np.mean([accepted(m, config, min_margin) for _, m, _ in results])


def report(name, config, stats, known, unknown, lengths, snrs) -> list[str]:
    lines = [f"### `{name}`", ""]
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(LandmarkConfig(), k)}
    lines.append(f"Changes from `default`: {changed or 'none'}. ")
    lines.append(
        f"{stats['peaks_per_second']:.0f} peaks and {stats['hashes_per_second']:.0f} hashes per audio s; "
        f"ingest {stats['ingest_x']:.0f} audio s per s, "
        f"{stats['mb_per_hour']:.1f} MB per audio hour (file), load {stats['load_seconds'] * 1000:.0f} ms."
    )
    rule = f"min_count {config.min_count}, min_margin {config.min_margin}"
    lines += [
        "",
        f"Song accuracy % (offset within 0.1 s %) at {rule}; false matches {false_match_rate(unknown, config):.1f}%:",
    ]
    lines += [""]
    lines += ["| query (s) | " + " | ".join(f"{snr:g} dB" for snr in snrs) + " | median ms |"]
    lines += ["|---" * (len(snrs) + 2) + "|"]
    for seconds in lengths:
        row = [f"| {seconds:g} "]
        for snr_db in snrs:
            cell = [r for r in known if r[0].seconds == seconds and r[0].snr_db == snr_db]
            song, offset = cell_rates(cell, config)
            row.append(f" {song:.1f} ({offset:.1f}) ")
        latency = statistics.median(ms for q, _, ms in known if q.seconds == seconds)
        lines.append("|".join(row) + f"| {latency:.1f} |")
    lines += ["", f"By min_margin (min_count {config.min_count}): song accuracy % over all cells, false matches %:", ""]
    lines += ["| min_margin | " + " | ".join(str(c) for c in MIN_MARGINS) + " |", "|---" * (len(MIN_MARGINS) + 1) + "|"]
    lines.append("| accuracy | " + " | ".join(f"{cell_rates(known, config, c)[0]:.1f}" for c in MIN_MARGINS) + " |")
    lines.append(
        "| false matches | " + " | ".join(f"{false_match_rate(unknown, config, c):.1f}" for c in MIN_MARGINS) + " |"
    )
    safe = next(c for c in range(1000) if false_match_rate(unknown, config, c) <= 1.0)
    lines += [
        "",
        f"Smallest min_margin with at most 1% false matches: {safe} "
        f"(song accuracy {cell_rates(known, config, safe)[0]:.1f}%).",
    ]
    margins = sorted(m.score - m.runner_up_score for _, m, _ in unknown)
    scores = sorted(m.score for _, m, _ in unknown)
    lines += ["", f"Out-of-table queries (n = {len(scores)}): score median {np.median(scores):.0f}, max {scores[-1]}; "]
    lines[-1] += f"margin over the runner-up median {np.median(margins):.0f}, max {margins[-1]}."
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--music", type=Path, default=Path("data/demo/music/test"), help="songs of the table")
    parser.add_argument("--unknown", type=Path, default=Path("data/demo/music/train"), help="out-of-table songs")
    parser.add_argument("--noise", type=Path, default=Path("data/demo/noise/background_test"))
    parser.add_argument("--impulse", type=Path, default=Path("data/demo/impulse/impulse_test"))
    parser.add_argument("--tables", nargs="+", default=["default", "dense"], help="PRESET or NAME=PRESET:k=v,...")
    parser.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0, 5.0, 15.0])
    parser.add_argument("--queries", type=int, default=40, help="queries per (length, SNR) cell")
    parser.add_argument("--unknown-queries", type=int, default=20, help="out-of-table queries per cell")
    parser.add_argument("--songs", type=int, default=None, help="use only this many table songs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    songs = load_folder(args.music, args.songs, rng)
    others = load_folder(args.unknown, 40, rng)
    noises = [load_audio(p, SAMPLE_RATE) for p in find_audio_files(args.noise)]
    impulses = load_impulses(args.impulse, rng)
    log(f"{len(songs)} table songs ({sum(map(len, songs.values())) / SAMPLE_RATE / 3600:.2f} h), {len(others)} others")
    known = make_queries(songs, impulses, noises, args.lengths, args.snrs, args.queries, True, rng)
    unknown = make_queries(others, impulses, noises, args.lengths, args.snrs, args.unknown_queries, False, rng)

    lines = [
        "## Landmark fingerprinter (classical baseline)",
        "",
        "```bash",
        "nice -n 10 .venv/bin/python -m bench.landmarks " + " ".join(sys.argv[1:]),
        "```",
        "",
        f"{len(songs)} table songs from `{args.music}` ({sum(map(len, songs.values())) / SAMPLE_RATE / 3600:.2f} h); "
        f"{args.queries} queries per cell, random excerpts convolved with a random room response from "
        f"`{args.impulse}` and mixed with `{args.noise}` at the SNR; {len(unknown)} out-of-table queries "
        f"from {len(others)} songs of `{args.unknown}` made the same way. "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), {datetime.date.today().isoformat()}.",
        "",
    ]
    for spec in args.tables:
        name, config = parse_table(spec)
        log(f"{name}: building")
        table, stats = build(config, songs)
        log(f"{name}: querying")
        known_results, unknown_results = evaluate(table, known), evaluate(table, unknown)
        section = report(name, config, stats, known_results, unknown_results, args.lengths, args.snrs)
        print("\n".join(section), flush=True)
        lines += section
    if not args.no_write:
        path = RESULTS / "landmarks.md"
        atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
