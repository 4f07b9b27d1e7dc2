"""Which "no match" rule holds a known false-match rate at every query length: the study behind matching.decision.

    python -m bench.calibration [--weights pretrained/fingerprinter_cpu.pt] \
        [--database runs/demo/index/demo.json] [--queries 3] [--known-queries 2]

Three sets of degraded random-start queries (``evaluation.calibration_queries``), at lengths 1,
2, 3, 5, 10 s and SNRs 0, 5, 10, 15 dB, each run through a room IR (longer queries keep the
10 s threshold, see ``matching.decision``):
- ``known``: excerpts of the database's songs (``data/demo/music/test``), test noise, test IRs;
- ``fit``: half of the out-of-database songs (``data/demo/music/train``, shuffled with the seed),
  validation noise and validation IRs: the rules are fitted on these only;
- ``held_out``: the other half of the out-of-database songs, test noise and test IRs: the rules'
  false-match rate is measured here, on songs, noise and rooms the fit never saw.
Every query is matched by both methods without a threshold; the answers are cached under
``--cache``/<model id> (a new model gets its own cache; delete it to re-embed). Every candidate
rule of ``matching.decision`` is then fitted for a 1 % false-match rate per query and reported
per length: held-out false-match rate and in-database recall (right song accepted), with both
methods, and against the fixed threshold 0.77. Figures go to the console and
``bench/results/calibration.md`` (+ a PNG of the trade-off).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench.common import RESULTS, machine, write_result
from common.atomic import atomic_write_text, save_figure
from common.audio import find_audio_files, load_song
from evaluation.calibration_queries import QueryTable, answer_queries
from evaluation.queries import QueryDegrader
from matching.decision import finite_margin, fit_rule
from matching.matcher import METHODS
from matching.recognizer import Recognizer
from models.checkpoint import model_identity
from models.encoder import load_encoder

LENGTHS = [1, 2, 3, 5, 10]
SNRS = [0, 5, 10, 15]
TARGET = 0.01
OLD_THRESHOLD = 0.77


def _songs(folder: str, sr: int) -> list[tuple[Path, np.ndarray]]:
    return [(path, load_song(path, sr)) for path in find_audio_files(folder)]


def collect(args) -> dict[str, QueryTable]:
    """The three query tables, from the cache when present."""
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    tables = {
        name: QueryTable.load(cache / f"{name}.npz")
        for name in ("known", "fit", "held_out")
        if (cache / f"{name}.npz").exists()
    }
    if len(tables) == 3:
        return tables
    recognizer = Recognizer.load(args.weights, args.database, "cpu")
    sr = recognizer.sample_rate
    data = Path(args.data)
    unknown = _songs(str(data / "music/train"), sr)
    order = np.random.default_rng(args.seed).permutation(len(unknown))
    halves = {
        "fit": [unknown[n] for n in sorted(order[: len(order) // 2])],
        "held_out": [unknown[n] for n in sorted(order[len(order) // 2 :])],
    }
    plans = {
        "known": (lambda: _songs(str(data / "music/test"), sr), "test", args.known_queries),
        "fit": (lambda: halves["fit"], "val", args.queries),
        "held_out": (lambda: halves["held_out"], "test", args.queries),
    }
    for name, (songs, split, queries) in plans.items():
        if name in tables:
            continue
        chosen = songs()
        degrade, _ = QueryDegrader.from_folders(
            data / f"noise/background_{split}", data / f"impulse/impulse_{split}", sr
        )
        table = answer_queries(recognizer, chosen, degrade, LENGTHS, SNRS, queries, args.seed + len(name), desc=name)
        table.save(cache / f"{name}.npz")
        atomic_write_text(cache / f"{name}.songs.txt", "\n".join(str(path) for path, _ in chosen) + "\n")
        tables[name] = table
    return tables


def _known_truth(cache: Path, table: QueryTable) -> np.ndarray:
    names = [Path(line).stem for line in (cache / "known.songs.txt").read_text().split()]
    return np.array(names, dtype=str)[table.song]


def _logistic_values(method: str, fit_negatives: QueryTable, positives: QueryTable):
    """A logistic model of P(in database | score, margin, 1/sqrt(J)); returns a function table -> logit."""
    from scipy.optimize import minimize

    def features(table: QueryTable) -> np.ndarray:
        score = table.score[method]
        columns = [score, finite_margin(method, score, table.margin[method]), 1 / np.sqrt(table.rows)]
        return np.stack(columns + [np.ones(len(score))], axis=1)

    x = np.concatenate([features(fit_negatives), features(positives)])
    y = np.concatenate([np.zeros(len(fit_negatives)), np.ones(len(positives))])

    def loss(weights):  # mean logistic loss plus a small L2 penalty (not on the bias)
        logits = x @ weights
        penalty = 0.05 * np.sum(weights[:-1] ** 2)
        gradient = x.T @ (1 / (1 + np.exp(-logits)) - y) / len(y) + np.append(0.1 * weights[:-1], 0.0)
        return np.mean(np.logaddexp(0, logits) - y * logits) + penalty, gradient

    weights = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    return lambda table: features(table) @ weights


def evaluate_rules(tables: dict[str, QueryTable], cache: Path, method: str) -> dict[str, dict]:
    """Each candidate rule fitted on ``fit``: per length, held-out false-match rate and in-database recall."""
    fit, held, known = tables["fit"], tables["held_out"], tables["known"]
    truth = _known_truth(cache, known)
    right = known.best_song[method] == truth
    # The logistic model learns from the even-numbered database songs; every rule's recall is
    # measured on the odd-numbered ones, which no fit has seen.
    train_known, test_known = known.select(known.song % 2 == 0), known.select(known.song % 2 == 1)
    test_right = right[known.song % 2 == 1]

    def margin(table):
        return finite_margin(method, table.score[method], table.margin[method])

    logit = _logistic_values(method, fit, train_known.select(right[known.song % 2 == 0]))
    statistics = {"score": lambda t: t.score[method], "margin": margin, "logit": logit}
    candidates = {
        "(a) one score threshold": ("score", True, 0.95),
        "(b) score threshold per J": ("score", False, 0.95),
        "(b0) score threshold per J, plain 1 % quantile": ("score", False, 0.0),
        "(c) margin threshold per J": ("margin", False, 0.95),
        "(d) logistic(score, margin, J) cut per J": ("logit", False, 0.95),
    }
    results = {}
    for name, (statistic, pooled, confidence) in candidates.items():
        value = statistics[statistic]
        rows_fit = np.ones_like(fit.rows) if pooled else fit.rows
        rule = fit_rule(method, rows_fit, value(fit), TARGET, confidence)

        def accepted(table, rule=rule, value=value, pooled=pooled):
            rows = np.ones_like(table.rows) if pooled else table.rows
            return value(table) >= np.array([rule.threshold_at(int(row)) for row in rows])

        results[name] = _per_length(accepted(held), held, accepted(test_known) & test_right, test_known)
    if method == "sequence":
        results[f"fixed threshold {OLD_THRESHOLD}"] = _per_length(
            held.score[method] >= OLD_THRESHOLD,
            held,
            (test_known.score[method] >= OLD_THRESHOLD) & test_right,
            test_known,
        )
    results["no threshold"] = _per_length(np.ones(len(held), bool), held, test_right, test_known)
    return results


def _per_length(false_accepts, held, hits, known) -> dict:
    out = {}
    for length in LENGTHS:
        negatives, positives = held.length == length, known.length == length
        zero_db = positives & (known.snr == 0)
        out[length] = {
            "false_match": float(np.mean(false_accepts[negatives])),
            "negatives": int(negatives.sum()),
            "recall": float(np.mean(hits[positives])),
            "recall_0db": float(np.mean(hits[zero_db])),
            "positives": int(positives.sum()),
        }
    return out


def plot_tradeoff(tables: dict[str, QueryTable], cache: Path, method: str, path: Path) -> None:
    """False-match rate (held-out) against miss rate (database songs), sweeping a score threshold, per length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held, known = tables["held_out"], tables["known"]
    right = known.best_song[method] == _known_truth(cache, known)
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for length in LENGTHS:
        negatives = held.score[method][held.length == length]
        positives = known.score[method][known.length == length]
        hit = right[known.length == length]
        thresholds = np.unique(np.concatenate([negatives, positives]))
        false_match = [(negatives >= t).mean() for t in thresholds]
        miss = [1 - ((positives >= t) & hit).mean() for t in thresholds]
        axis.plot(miss, false_match, label=f"{length:g} s")
    axis.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
    axis.set_yscale("log")
    axis.set_ylim(1e-3, 1)
    axis.set_xlim(0, 1)
    axis.set_xlabel("miss rate (database songs not named right)")
    axis.set_ylabel("false-match rate (out-of-database queries)")
    axis.set_title(f"score threshold swept per query length ({method})")
    axis.legend(title="query")
    save_figure(figure, path, dpi=110)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def report(tables: dict[str, QueryTable], cache: Path, args) -> str:
    lines = [
        '## Decision rule for "no match" (issue 12)',
        "",
        "Command: `.venv/bin/python -m bench.calibration "
        f"--queries {args.queries} --known-queries {args.known_queries}`  ",
        f"Machine: {machine()}  ",
        f"Model `{args.weights}` (model id {Path(args.cache).name}), database `{args.database}` "
        f"({len(set(tables['known'].song))} songs queried). "
        f"Queries at random starts through a room IR plus noise at {', '.join(map(str, SNRS))} dB: "
        f"{len(tables['known'])} in-database (test noise/IRs), {len(tables['fit'])} out-of-database for fitting "
        f"(half of music/train, validation noise/IRs), {len(tables['held_out'])} held-out out-of-database "
        "(the other half, test noise/IRs). Every rule is fitted for a 1 % false-match rate per query on the "
        "fitting set only (with 95 % confidence unless said otherwise); recall = in-database queries of the "
        "odd-numbered songs (not used by the logistic fit) accepted with the right song.",
        "",
    ]
    for method in METHODS:
        results = evaluate_rules(tables, cache, method)
        lines += [f"### method `{method}`", ""]
        header = "| rule | " + " | ".join(f"{length:g} s" for length in LENGTHS) + " |"
        for title, key in (
            ("held-out false-match rate (%)", "false_match"),
            ("recall, all SNRs (%)", "recall"),
            ("recall at 0 dB (%)", "recall_0db"),
        ):
            lines += [f"{title}:", "", header, "|---" * (len(LENGTHS) + 1) + "|"]
            for name, per_length in results.items():
                lines.append(f"| {name} | " + " | ".join(_pct(per_length[length][key]) for length in LENGTHS) + " |")
            lines.append("")
        counts = results["no threshold"]
        lines.append(
            "queries per length (held-out negatives / in-database positives): "
            + ", ".join(
                f"{length:g} s {counts[length]['negatives']}/{counts[length]['positives']}" for length in LENGTHS
            )
        )
        lines.append("")
        png = RESULTS / f"calibration_tradeoff_{method}.png"
        plot_tradeoff(tables, cache, method, png)
        lines += [f"![trade-off {method}]({png.name})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="pretrained/fingerprinter_cpu.pt")
    parser.add_argument("--database", default="runs/demo/index/demo.json")
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--cache", default="runs/bench/calibration")
    parser.add_argument("--queries", type=int, default=3, help="queries per out-of-database song, length and SNR")
    parser.add_argument("--known-queries", type=int, default=2, help="queries per database song, length and SNR")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.cache = str(Path(args.cache) / model_identity(load_encoder(args.weights)[1])["model_id"])
    tables = collect(args)
    markdown = report(tables, Path(args.cache), args)
    print(markdown)
    write_result("calibration", markdown)


if __name__ == "__main__":
    main()
