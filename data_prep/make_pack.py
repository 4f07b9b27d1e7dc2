"""Write a training pack from a built data folder: ``python data_prep/make_pack.py --config configs/data/pack.json``.

A few hours of the folder's training music, noise and impulse responses as 8 kHz Opus and FLAC
with their manifest and a training config, small enough to copy to a GPU machine without
network (docs/data.md, "Training packs"; train on it with ``scripts/train_gpu.sh``).
"""

from __future__ import annotations

import sys

from common.config import run_script
from data_prep.pack import SCHEMA, make_pack


def main(argv: list[str] | None = None) -> int:
    return run_script(SCHEMA, __doc__.splitlines()[0], lambda config: make_pack(config) and 0, argv)


if __name__ == "__main__":
    sys.exit(main())
