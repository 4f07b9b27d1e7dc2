"""Real-world protocol (docs/evaluation.md): song accuracy on recordings of a playlist, per query length and recording.

Usage: python evaluation/evaluate_recording.py --config FILE [--set key=value ...]
"""

import sys

from common.config import run_script
from evaluation.recording_protocol import SCHEMA, run_recording

__all__ = ["SCHEMA", "main"]


def main(config) -> int:
    run_recording(config)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
