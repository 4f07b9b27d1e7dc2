"""Calibration (docs/calibration.md): fit the "no match" rule for a false-match rate, store it in the database JSON.

Usage: python evaluation/calibrate.py --config FILE [--set key=value ...]
"""

import sys

from common.config import run_script
from evaluation.calibration import SCHEMA, run_calibration

__all__ = ["SCHEMA", "main"]


def main(config) -> int:
    run_calibration(config)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
