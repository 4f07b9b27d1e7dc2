"""Train a fingerprint model with contrastive loss (docs/training.md).

python training/trainer.py --config configs/train_fingerprinter.json [--set key=value ...]
torchrun --nproc_per_node 2 training/trainer.py --config FILE      # several GPUs / processes
"""

from __future__ import annotations

import sys

from common.config import run_script
from training.config import SCHEMA
from training.loop import train


def main(config) -> None:
    train(config)


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__, main))
