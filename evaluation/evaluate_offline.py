"""Offline protocol (docs/evaluation.md): degraded excerpts of indexed test songs, per model, length, SNR and trial.

Reports song accuracy, exact and near hits, false matches and timings.

Usage: python evaluation/evaluate_offline.py --config FILE [--set key=value ...]
"""

import sys

from common.config import run_script
from evaluation.offline_protocol import SCHEMA, run_offline

__all__ = ["SCHEMA", "main"]


def main(config) -> int:
    run_offline(config)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
