"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from common.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line naming the machine the figures were taken on."""
    return (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {datetime.date.today().isoformat()}"
    )


def median_seconds(run, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_result(topic: str, markdown: str) -> Path:
    """Write ``bench/results/<topic>.md``; ``bench/collect.py`` assembles them into BENCHMARKS.md."""
    path = RESULTS / f"{topic}.md"
    atomic_write_text(path, markdown.rstrip() + "\n")
    return path
