"""Fingerprint every song in the input folders: ``python generation/generate_fingerprints.py --config FILE``.

Multi-GPU: ``torchrun --nproc_per_node N generation/generate_fingerprints.py --config FILE``
(each rank takes every N-th song). See docs/database.md for the keys.
"""

from __future__ import annotations

import sys

import common.distributed as process_group
from common.atomic import writable_folder
from common.config import Key, Schema, run_script
from common.devices import DEVICE_HELP, device_problem
from extraction.errors import ExtractionError
from extraction.extractor import extract_fingerprints
from extraction.songs import plan_songs
from models.encoder import load_encoder
from models.frontend import FrontEndConfig

FRONT_END = FrontEndConfig()  # the defaults; a checkpoint's own front end is checked against SR
SCHEMA = Schema(
    "generation/generate_fingerprints.py",
    [
        Key("SR", "int", FRONT_END.sample_rate, min=1, help="sample rate (Hz); must equal the checkpoint's front end"),
        Key(
            "HOP SIZE",
            "int",
            FRONT_END.default_hop_samples,
            min=1,
            help=f"samples between window starts ({FRONT_END.default_hop_samples} = "
            f"{FRONT_END.default_hop_seconds:g} s)",
        ),
        Key("input dirs", "paths", help="folders searched (recursively) for audio files", must_exist=True),
        Key("batch size", "int", 256, min=1, help="1 s windows per model batch (windows of several songs are pooled)"),
        Key("weights", "path", help="checkpoint (.pt) written by the trainer", must_exist=True),
        Key("output dir", "path", help="folder for <song>.npy files and manifest.json"),
        Key("num_workers", "int", 2, min=0, help="DataLoader worker processes decoding songs"),
        Key(
            "model_str",
            "choice",
            None,
            "fingerprinter or audsearch; must agree with the checkpoint",
            choices=("fingerprinter", "audsearch"),
        ),
        Key(
            "device",
            "str",
            "auto",
            f"{DEVICE_HELP}; under torchrun each rank uses cuda:LOCAL_RANK",
            check=device_problem,
        ),
        Key("progress", "bool", True, "show a progress bar"),
        Key(
            "overwrite",
            "bool",
            False,
            "replace the fingerprints in 'output dir' when another model made them (default: refuse)",
        ),
    ],
)


def main(config) -> int:
    writable_folder(config["output dir"], f"{config.source}: key 'output dir'")
    context = process_group.setup(config["device"], config.source)  # joins torchrun's group, if any
    device = str(context.device)
    try:
        encoder, payload = load_encoder(config["weights"], device)
        if config["model_str"] is not None and config["model_str"] != payload["model_str"]:
            raise ExtractionError(
                f"{config.source}: model_str '{config['model_str']}' but {config['weights']} holds a "
                f"'{payload['model_str']}' model"
            )
        if config["SR"] != encoder.frontend_config.sample_rate:
            raise ExtractionError(
                f"{config.source}: SR {config['SR']} but {config['weights']} was trained at "
                f"{encoder.frontend_config.sample_rate} Hz"
            )
        sources = plan_songs(config["input dirs"])
        summary = extract_fingerprints(
            encoder,
            payload,
            sources,
            config["output dir"],
            hop_samples=config["HOP SIZE"],
            batch_size=config["batch size"],
            num_workers=config["num_workers"],
            rank=context.rank,
            world_size=context.world_size,
            progress=config["progress"],
            barrier=(lambda: process_group.barrier(context)) if context.enabled else None,
            overwrite=config["overwrite"],
        )
    finally:
        process_group.cleanup(context)
    for _source, reason in summary.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    print(
        f"rank {context.rank}: {len(summary.written)} songs fingerprinted ({summary.audio_seconds:.0f} audio s at "
        f"{summary.speed:.0f} audio s/s on {device}), {len(summary.already_done)} already done, "
        f"{len(summary.skipped)} skipped -> {config['output dir']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_script(SCHEMA, __doc__.splitlines()[0], main))
