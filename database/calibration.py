"""The optional ``calibration`` field of a database JSON: the "no match" rule fitted for this database.

Written by ``evaluation/calibrate.py`` (docs/calibration.md), read by ``matching.recognizer``.
Only the JSON is rewritten (atomically, every other field kept as it was), so the index and
vector files and their recorded digests stay valid. The field:

    "calibration": {
      "created": "2026-11-28T22:40:00+00:00",       # when it was fitted (UTC, ISO 8601)
      "model": {...},                                 # model_identity of the model that was calibrated
      "database": {"songs": 72, "ntotal": 26015},     # the database it was fitted on
      "target_false_match_rate": 0.01,                # per query
      "confidence": 0.95,                             # of the bound on that rate at each fitted J
      "neighbors": 4,                                 # faiss hits per query row while fitting
      "data": {"songs": [...], "background_noises": "...", "impulse_responses": "...",
               "snrs": [...], "query_lengths": [...], "queries_per_song": 20, "seed": 0},
      "rules": {"sequence": {...}, "vote": {...}},    # matching.decision.DecisionRule.to_json per method
      "fitted": {"sequence": [{"rows": 1, "queries": 800, "false_matches": 2}, ...], ...}
    }

A database without the field works as before (every best candidate answered unless a config
gives a threshold). ``Database.save`` (building, ``update_index``) writes a new JSON without it:
a changed database must be calibrated again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.atomic import atomic_write_text
from database.errors import DatabaseError
from database.files import read_table

CALIBRATION_KEY = "calibration"
REQUIRED_FIELDS = ("created", "model", "target_false_match_rate", "rules")


def read_calibration(json_path: str | os.PathLike) -> dict | None:
    """The calibration stored in the database JSON at ``json_path``, or None when it has none.

    DatabaseError naming the file and the field when the field is present but malformed.
    """
    json_path = Path(json_path)
    calibration = read_table(json_path).get(CALIBRATION_KEY)
    if calibration is None:
        return None
    if not isinstance(calibration, dict):
        raise DatabaseError(f"{json_path}: '{CALIBRATION_KEY}' must be an object, got {type(calibration).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in calibration]
    if missing:
        raise DatabaseError(f"{json_path}: '{CALIBRATION_KEY}' lacks {', '.join(map(repr, missing))}")
    if not isinstance(calibration["rules"], dict) or not calibration["rules"]:
        raise DatabaseError(f"{json_path}: '{CALIBRATION_KEY}.rules' must map a matching method to its rule")
    return calibration


def store_calibration(json_path: str | os.PathLike, calibration: dict | None) -> None:
    """Write ``calibration`` into the database JSON at ``json_path`` (None removes it), atomically."""
    json_path = Path(json_path)
    read_table(json_path)  # a DatabaseError for anything but a database JSON of this toolkit
    try:
        table = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DatabaseError(f"{json_path}: cannot read database JSON ({error})") from None
    if calibration is None:
        table.pop(CALIBRATION_KEY, None)
    else:
        table[CALIBRATION_KEY] = calibration
    # The same layout Database.save writes (indent 1, trailing newline).
    atomic_write_text(json_path, json.dumps(table, indent=1) + "\n")
