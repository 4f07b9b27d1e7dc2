"""Simulate phone recordings of a playlist: loudspeaker, room, noise at three levels, phone band.

A simulation, not a substitute for a phone recording.

Usage: python evaluation/simulate_recording.py --config FILE [--set key=value ...]
"""

import sys

from common.config import run_script
from evaluation.simulator import SCHEMA, run_simulation

__all__ = ["SCHEMA", "main"]


def main(config) -> int:
    run_simulation(config)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
