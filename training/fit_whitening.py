"""Fit the whitening of a trained checkpoint's embeddings and write the whitened checkpoint (docs/training.md).

python training/fit_whitening.py --config configs/whitening_cpu.json [--set key=value ...]
"""

from __future__ import annotations

import sys

from common.config import run_script
from training.whitening import SCHEMA, fit_whitening


def main(config) -> None:
    fit_whitening(config)


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__, main))
