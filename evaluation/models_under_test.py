"""The models an evaluation compares: each a checkpoint, its database and matcher settings.

A config lists models as JSON objects:

    {"name": "fingerprinter demo", "weights": "pretrained/fingerprinter_cpu.pt",
     "database": "runs/demo/index/demo.json", "nprobe": 8, "neighbors": 4, "threshold": null,
     "method": "sequence"}

``name`` defaults to the weights' file stem; ``database`` is the database's JSON (its index file
lies beside it). Each model is a ``matching.recognizer.Recognizer`` loaded from its entry. An
entry ``{"kind": "landmarks", "database": "<table>.npz", ...}`` is the classical landmark baseline
instead (``evaluation.landmark_models``), answering the same queries in the same report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from common.config import ConfigError, checked_path, closest_key
from evaluation.landmark_models import LANDMARK_KEYS, LANDMARK_KIND, LandmarkModelUnderTest, parse_landmark_spec
from matching.matcher import METHODS
from matching.recognizer import Recognizer

MODEL_KEYS = {
    "kind": f"'neural' (default) or '{LANDMARK_KIND}' (a landmark table as 'database'; other keys: "
    + ", ".join(key for key in LANDMARK_KEYS if key not in ("kind", "name", "database"))
    + ")",
    "name": "label in tables and plots (default: the weights' file stem)",
    "weights": "checkpoint file (.pt)",
    "database": "the database's JSON (<name>.json, written by generate_index.py from this model's fingerprints)",
    "nprobe": "IVF cells searched (default null: the database's own setting; ignored by flat indexes)",
    "neighbors": "neighbours searched per query row (default 4)",
    "threshold": "score under which the answer is 'no match' (default null: the database's calibrated rule "
    "from evaluation/calibrate.py, or always answer when it has none)",
    "method": "'sequence' (sequence search) or 'vote' (majority vote, the reference's recording rule)",
}

# Keys of earlier versions -> the key that replaced them.
RENAMED_KEYS = {"index": "database", "json": "database"}


@dataclass(frozen=True)
class ModelSpec:
    """One model entry of a config, validated."""

    name: str
    weights: str
    database: str
    nprobe: int | None = None
    neighbors: int = 4
    threshold: float | None = None
    method: str = "sequence"
    kind: str = "neural"


def parse_model_specs(
    entries: list, where: str, default_method: str = "sequence", base_dir: Path | None = None
) -> list[ModelSpec]:
    """Validate the ``models`` list of a config; errors name the entry and the key.

    ``base_dir``: the config's folder, where relative paths are also looked for (as for every
    other path key, ``common.config.resolve_path``).
    """
    if not entries:
        raise ConfigError(f"{where}: key 'models' must list at least one model")
    specs = []
    for number, entry in enumerate(entries, start=1):
        place = f"{where}: models[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{place} must be an object with keys {', '.join(MODEL_KEYS)}")
        kind = entry.get("kind", "neural")
        if kind == LANDMARK_KIND:
            specs.append(parse_landmark_spec(entry, place, base_dir))
            continue
        if kind != "neural":
            raise ConfigError(f"{place}: key 'kind' must be 'neural' or '{LANDMARK_KIND}', got {kind!r}")
        for key in entry:
            if key not in MODEL_KEYS:
                raise ConfigError(f"{place}: unknown key '{key}'{closest_key(key, list(MODEL_KEYS), RENAMED_KEYS)}")
        for key in ("weights", "database"):
            if key not in entry:
                raise ConfigError(f"{place}: missing required key '{key}'")
        weights = checked_path(entry["weights"], place, "weights", base_dir=base_dir)
        database = checked_path(entry["database"], place, "database", base_dir=base_dir)
        nprobe, neighbors = entry.get("nprobe"), entry.get("neighbors", 4)
        for key, value in (("nprobe", nprobe), ("neighbors", neighbors)):
            if value is None and key == "nprobe":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{place}: key '{key}' must be a positive integer, got {value!r}")
        threshold = entry.get("threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise ConfigError(f"{place}: key 'threshold' must be a number or null, got {threshold!r}")
        method = entry.get("method", default_method)
        if method not in METHODS:
            raise ConfigError(f"{place}: key 'method' must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        name = entry.get("name") or Path(weights).stem
        specs.append(
            ModelSpec(
                name,
                weights,
                database,
                nprobe,
                neighbors,
                None if threshold is None else float(threshold),
                method,
            )
        )
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{where}: model names must be unique; give 'name' to tell apart {duplicates}")
    return specs


class ModelUnderTest(Recognizer):
    """A ``Recognizer`` loaded from a config's model entry, with the names and lines a report needs."""

    def __init__(self, spec: ModelSpec, device: str = "cpu"):
        loaded = Recognizer.load(
            spec.weights, spec.database, device, spec.neighbors, spec.threshold, spec.method, spec.nprobe
        )
        super().__init__(loaded.encoder, loaded.database, loaded.matcher, loaded.identity, loaded.decision_note)
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def song_count(self) -> int:
        return len(self.database.songs)

    @property
    def decides(self) -> bool:
        """True when some answers can be "no match"."""
        return self.matcher.decides

    def report_line(self) -> str:
        """One line describing the model and its search settings, for a report's notes."""
        return (
            f"model '{self.name}': {self.database.factory}, {self.database.ntotal} vectors, "
            f"nprobe {self.database.nprobe if self.spec.nprobe is None else self.spec.nprobe}, "
            f"neighbors {self.spec.neighbors}, threshold {self.spec.threshold}, method {self.spec.method}; "
            + self.decision_note
        )

    @property
    def decision_label(self) -> str:
        """What decides "no match", short, for tables: the threshold, "calibrated" or "none"."""
        if self.spec.threshold is not None:
            return f"{self.spec.threshold:g}"
        return "calibrated" if self.matcher.rule is not None else "none"

    def report_metadata(self) -> dict:
        """The model's settings and identity, for a report's JSON."""
        rule = self.matcher.rule
        return {
            **asdict(self.spec),
            "identity": self.identity,
            "decision": self.decision_note,
            "rule": None if rule is None else rule.to_json(),
        }

    def song_name(self, path: str | os.PathLike) -> str | None:
        """The database's name for the audio file ``path``, or None when the song is not in the database."""
        return self.database.name_of_file(path)


def load_models(specs: list[ModelSpec], device: str) -> list[ModelUnderTest]:
    """Load every model; all must share one sample rate (queries are cut once for all of them)."""
    models = [
        LandmarkModelUnderTest(spec) if spec.kind == LANDMARK_KIND else ModelUnderTest(spec, device) for spec in specs
    ]
    rates = {model.sample_rate for model in models}
    if len(rates) > 1:
        raise ConfigError(f"models use different sample rates {sorted(rates)}; evaluate them in separate runs")
    return models
