"""Landmark models under test: a model entry of kind "landmarks" in an evaluation config.

    {"kind": "landmarks", "name": "landmarks dense", "database": "runs/demo/landmarks/demo_dense.npz"}

``database`` is a landmark table (``generation/generate_landmarks.py``, docs/landmarks.md);
``min_count``, ``min_margin`` and ``margin_per_runner_up`` optionally replace the table's own
no-match rule. The model answers the protocols' queries exactly as a neural model does
(``identify``, ``song_name``, ``report_line``, ``report_metadata``), so one report holds both rows.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from common.config import ConfigError, checked_path, closest_key
from common.errors import UserError
from matching.landmark_recognizer import LandmarkRecognizer

LANDMARK_KIND = "landmarks"
LANDMARK_KEYS = {
    "kind": "'landmarks'",
    "name": "label in tables and plots (default: the table's file stem)",
    "database": "the landmark table (.npz written by generation/generate_landmarks.py)",
    "min_count": "fewest aligned hashes of a match (default null: the table's own)",
    "min_margin": "fewest aligned hashes above the runner-up song (default null: the table's own)",
    "margin_per_runner_up": "extra margin per aligned hash of the runner-up (default null: the table's own)",
}
RULE_KEYS = ("min_count", "min_margin", "margin_per_runner_up")


@dataclass(frozen=True)
class LandmarkSpec:
    """One landmark model entry of a config, validated. ``rule`` holds only the overridden rule keys."""

    name: str
    database: str
    rule: dict
    kind: str = LANDMARK_KIND
    threshold = None  # not a field: a table decides by its own rule (``decision_label``), not a score threshold


def parse_landmark_spec(entry: dict, place: str, base_dir: Path | None = None) -> LandmarkSpec:
    """A ``{"kind": "landmarks", ...}`` entry -> LandmarkSpec; errors name ``place`` (the entry) and the key.

    ``base_dir``: the config's folder, where a relative table path is also looked for.
    """
    for key in entry:
        if key not in LANDMARK_KEYS:
            raise ConfigError(
                f"{place}: unknown key '{key}' for a landmark model{closest_key(key, list(LANDMARK_KEYS))}"
            )
    if "database" not in entry:
        raise ConfigError(f"{place}: missing required key 'database' (the landmark table)")
    database = checked_path(entry["database"], place, "database", must_exist=False, base_dir=base_dir)
    if not Path(database).is_file():
        raise ConfigError(f"{place}: key 'database': landmark table does not exist: {database}")
    rule = {key: entry[key] for key in RULE_KEYS if entry.get(key) is not None}
    for key, value in rule.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = key != "margin_per_runner_up"
        if not number or (whole and not isinstance(value, int)) or value < (1 if key == "min_count" else 0):
            wanted = "a number >= 0" if not whole else "an integer >= 1" if key == "min_count" else "an integer >= 0"
            raise ConfigError(f"{place}: key '{key}' must be {wanted}, got {value!r}")
    name = entry.get("name") or Path(database).stem
    if not isinstance(name, str):
        raise ConfigError(f"{place}: key 'name' must be a string, got {name!r}")
    return LandmarkSpec(name, database, rule)


class LandmarkModelUnderTest(LandmarkRecognizer):
    """A ``LandmarkRecognizer`` loaded from a config's landmark entry, with the names and lines a report needs."""

    def __init__(self, spec: LandmarkSpec):
        try:
            super().__init__(LandmarkRecognizer.load(spec.database).table, **spec.rule)
        except UserError as error:
            raise ConfigError(f"model '{spec.name}': {error}") from None
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def song_count(self) -> int:
        return len(self.table)

    @property
    def decides(self) -> bool:
        """Always True: the table's rule answers "no match" when too few hashes align."""
        return True

    @property
    def decision_label(self) -> str:
        """What decides "no match", short, for tables."""
        config = self.table.config
        extra = f" + {config.margin_per_runner_up:g} x runner-up" if config.margin_per_runner_up else ""
        return f"count >= {config.min_count}, margin >= {config.min_margin}{extra}"

    def song_name(self, path: str | os.PathLike) -> str | None:
        """The table's name for the audio file ``path`` (its file stem), or None when the song is not in it."""
        stem = Path(path).stem
        return stem if stem in self._numbers else None

    def report_line(self) -> str:
        """One line describing the table, its size, ingest speed and rule, for a report's notes."""
        table, config = self.table, self.table.config
        hours = table.total_seconds / 3600
        ingest = (
            f"ingest {table.total_seconds / table.ingest_seconds:.0f} audio s per s on the machine that built it"
            if table.ingest_seconds > 0
            else "ingest speed not recorded"
        )
        return (
            f"model '{self.name}': landmark table {self.spec.database}, {len(table)} songs ({hours:.2f} h), "
            f"{table.entries} hashes, {table.nbytes / 1e6:.1f} MB ({table.nbytes / 1e6 / max(hours, 1e-9):.1f} MB "
            f"per audio hour), {ingest}; density {config.density:g}, fan-out {config.fan_out}, "
            f"hop {config.hop_samples} samples; {self.decision_note}"
        )

    def report_metadata(self) -> dict:
        """The table's settings and sizes, for a report's JSON."""
        table = self.table
        return {
            **asdict(self.spec),
            "config": table.config.to_dict(),
            "songs": len(table),
            "entries": table.entries,
            "bytes": table.nbytes,
            "audio_seconds": table.total_seconds,
            "ingest_seconds": table.ingest_seconds,
            "decision": self.decision_note,
        }
