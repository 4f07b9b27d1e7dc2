"""Build real training and evaluation data from Debian packages: ``python data_prep/prepare_data.py --config FILE``.

Downloads the packages named in the config (``apt-get download``, no root), extracts their audio
and licences, decodes to 8 kHz mono 16-bit WAV and writes music, noise and impulse-response sets
with manifests, a training config and ``summary.json``; with ``music_renders``, also music
rendered from music21's corpus with FluidSynth. See docs/data.md for every key.
"""

from __future__ import annotations

import sys

from common.config import run_script
from data_prep.build import SCHEMA, build_dataset


def main(argv: list[str] | None = None) -> int:
    return run_script(SCHEMA, __doc__.splitlines()[0], lambda config: build_dataset(config) and 0, argv)


if __name__ == "__main__":
    sys.exit(main())
