"""Live recognition from the microphone or a recording (docs/live.md).

    python evaluation/live_query.py --config configs/live_demo.json
    python evaluation/live_query.py --config configs/live_demo.json --input recording.wav --speed 0
    python evaluation/live_query.py --list-devices

Every ``step`` seconds the last ``duration`` seconds of audio are matched against the database;
each line shows the wall time, the song, the offset in the song, the score and the latency (or
"no match"), and windows that agree make a stable match. Ctrl-C stops with a summary.
"""

from __future__ import annotations

import argparse
import sys

from common.config import Key, Schema, argument_parser, load_config
from common.errors import UserError
from live.microphone import format_devices, list_input_devices
from live.session import run_live
from matching.matcher import METHODS

SCHEMA = Schema(
    "live_query",
    [
        Key(
            "kind",
            "choice",
            "neural",
            choices=("neural", "landmarks"),
            help="'neural' (weights + faiss database) or 'landmarks' (a landmark table as 'database', no weights)",
        ),
        Key(
            "weights",
            "path",
            None,
            help="model checkpoint (.pt) that made the database (required unless kind is 'landmarks')",
            must_exist=True,
            nullable=True,
        ),
        Key(
            "database",
            "path",
            help="the database's JSON (<name>.json from generate_index.py; its index file lies beside it), "
            "or with kind 'landmarks' the table (.npz from generate_landmarks.py)",
            must_exist=True,
        ),
        Key(
            "duration", "float", 5.0, min=1.0, help="seconds of audio matched each time (the query length, at least 1)"
        ),
        Key(
            "step",
            "float",
            1.0,
            help="seconds of audio between two recognitions",
            check=lambda value: None if value > 0 else f"must be positive, got {value!r}",
        ),
        Key("neighbors", "int", 4, min=1, help="nearest neighbours searched per query row"),
        Key(
            "nprobe",
            "int",
            None,
            min=1,
            help="IVF lists searched per row (null: the database's own setting)",
            nullable=True,
        ),
        Key(
            "threshold",
            "float",
            None,
            nullable=True,
            help="scores below this are 'no match' (null: the database's calibrated rule from "
            "evaluation/calibrate.py, or always report the best song when it has none)",
        ),
        Key(
            "method",
            "choice",
            "sequence",
            choices=METHODS,
            help="'sequence': mean similarity of aligned rows; 'vote': majority vote over the hits",
        ),
        Key("stable_count", "int", 3, min=1, help="consecutive agreeing windows that make a stable match"),
        Key(
            "offset_tolerance",
            "float",
            0.75,
            min=0.0,
            help="seconds by which a window's song offset may differ from the previous one plus the step "
            "and still agree",
        ),
        Key("device", "choice", "cpu", choices=("cpu", "cuda"), help="where the model runs"),
    ],
    renamed={"index": "database", "json": "database", "hop": "step"},
)

DESCRIPTION = "Recognise songs live from the microphone, or from a recording played as if it were the microphone."


def build_parser() -> argparse.ArgumentParser:
    parser = argument_parser(SCHEMA, DESCRIPTION)
    parser.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    parser.add_argument(
        "--device-index",
        type=int,
        default=None,
        metavar="N",
        help="record from input device N (see --list-devices; default: the system default)",
    )
    parser.add_argument("--input", default=None, metavar="FILE", help="read this recording instead of the microphone")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="with --input: play X times faster than real time; 0 = as fast as possible, "
        "every window recognised (default 1)",
    )
    parser.add_argument("--max-seconds", type=float, default=None, metavar="S", help="stop after S seconds of audio")
    parser.add_argument(
        "--truth",
        default=None,
        metavar="CSV",
        help="song,start,end of the audio (the simulator's truth.csv): the summary counts wrong announcements",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        # Listing devices needs no config, so it is answered before the full parser requires one.
        if "--list-devices" in argv:
            print(format_devices(list_input_devices()))
            return 0
        args = build_parser().parse_args(argv)
        config = load_config(args.config, SCHEMA, args.set)
        run_live(config, args.input, args.device_index, args.speed, args.max_seconds, truth_path=args.truth)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while loading; once listening, the session stops itself with a summary
        print("stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
