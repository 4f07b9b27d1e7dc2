import dataclasses
import json
from pathlib import Path

import pytest

from common.config import ConfigError, Schema, validate
from evaluation.live_query import SCHEMA as LIVE
from evaluation.models_under_test import parse_model_specs
from evaluation.offline_protocol import SCHEMA as OFFLINE
from evaluation.recording_protocol import SCHEMA as RECORDING
from evaluation.simulator import SCHEMA as SIMULATION
from generation.update_index import SCHEMA as UPDATE
from generation.update_landmarks import SCHEMA as UPDATE_LANDMARKS

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def without_path_checks(schema: Schema) -> Schema:
    """The demo data and model may not be built on the machine running the tests: check keys and types only."""
    return Schema(schema.script, [dataclasses.replace(key, must_exist=False) for key in schema.keys])


@pytest.mark.parametrize(
    "name, schema",
    [("eval_offline_demo.json", OFFLINE), ("eval_recording_demo.json", RECORDING), ("simulate_demo.json", SIMULATION)],
)
def test_demo_configs_hold_only_known_keys_of_the_right_type(name, schema):
    config = validate(json.loads((CONFIGS / name).read_text()), without_path_checks(schema), where=name)
    for entry in config.get("models", []):
        assert set(entry) <= {"kind", "name", "weights", "database", "nprobe", "neighbors", "threshold", "method"}


def test_the_recording_demo_reads_what_the_simulation_demo_writes():
    simulation = json.loads((CONFIGS / "simulate_demo.json").read_text())
    recording = json.loads((CONFIGS / "eval_recording_demo.json").read_text())
    folder = Path(simulation["output_dir"])
    assert recording["recording_wavs"] == [str(folder / f"{level}.wav") for level in simulation["snr_levels"]]
    assert recording["csv_path"] == str(folder / "playlist.csv")
    assert recording["true_songs"] == simulation["true_songs"]
    assert recording["query_lengths"] == [1, 2, 3, 4, 5, 10, 15]


@pytest.mark.parametrize(
    "schema, old, new",
    [(LIVE, "hop", "step"), (LIVE, "index", "database"), (LIVE, "json", "database"), (UPDATE, "index", "database")],
)
def test_a_renamed_key_is_an_unknown_key_error_naming_its_new_name(schema, old, new):
    with pytest.raises(ConfigError, match=f"unknown key '{old}' \\(did you mean '{new}'\\?\\)"):
        validate({old: 1}, schema, where="old.json")


def test_an_old_model_entry_key_names_its_new_name():
    with pytest.raises(ConfigError, match="unknown key 'index' \\(did you mean 'database'\\?\\)"):
        parse_model_specs([{"weights": "w.pt", "index": "db.index"}], "old.json")


@pytest.mark.parametrize(
    "name, schema",
    [("live_demo.json", LIVE), ("update_index_demo.json", UPDATE), ("update_landmarks_demo.json", UPDATE_LANDMARKS)],
)
def test_live_and_update_demo_configs_hold_only_known_keys(name, schema):
    validate(json.loads((CONFIGS / name).read_text()), without_path_checks(schema), where=name)
