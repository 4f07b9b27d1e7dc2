import json

import pytest

from common.config import ConfigError, Key, Schema, load_config, run_script

SCHEMA = Schema(
    "test",
    [
        Key("epochs", "int", help="epochs"),
        Key("lr", "float", 1e-3),
        Key("data_path", "path", must_exist=True),
        Key("model_str", "choice", "fingerprinter", choices=("fingerprinter", "audsearch")),
        Key("freq_cut_bool", "bool", True),
        Key("input dirs", "paths", [], must_exist=True),
    ],
)


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_valid_config_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, {"epochs": 3, "data_path": str(tmp_path)}), SCHEMA)
    assert config["epochs"] == 3 and config["lr"] == 1e-3 and config["freq_cut_bool"] is True


def test_unknown_key_names_it_and_the_closest_valid_key(tmp_path):
    path = write(tmp_path, {"epochs": 3, "data_path": str(tmp_path), "learning_rat": 1})
    with pytest.raises(ConfigError, match=r"config\.json: unknown key 'learning_rat'"):
        load_config(path, SCHEMA)
    with pytest.raises(ConfigError, match=r"did you mean 'freq_cut_bool'"):
        load_config(write(tmp_path, {"epochs": 3, "data_path": str(tmp_path), "freq_cut": True}), SCHEMA)


def test_missing_required_keys_are_listed(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key\(s\): 'epochs', 'data_path'"):
        load_config(write(tmp_path, {}), SCHEMA)


def test_missing_path_names_the_key_and_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'data_path': path does not exist: /nowhere/songs"):
        load_config(write(tmp_path, {"epochs": 1, "data_path": "/nowhere/songs"}), SCHEMA)
    with pytest.raises(ConfigError, match=r"key 'input dirs': path does not exist: /nowhere/b"):
        load_config(write(tmp_path, {"epochs": 1, "data_path": str(tmp_path), "input dirs": ["/nowhere/b"]}), SCHEMA)


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'epochs' must be int, got str '3'"):
        load_config(write(tmp_path, {"epochs": "3", "data_path": str(tmp_path)}), SCHEMA)
    with pytest.raises(ConfigError, match=r"key 'model_str' must be one of 'fingerprinter', 'audsearch'"):
        load_config(write(tmp_path, {"epochs": 3, "data_path": str(tmp_path), "model_str": "resnet"}), SCHEMA)


def test_python_style_true_gets_a_hint(tmp_path):
    path = write(tmp_path, '{"epochs": 3, "freq_cut_bool": True}')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 1.*JSON spells Python's True as true"):
        load_config(path, SCHEMA)


def test_set_overrides_a_key_from_the_command_line(tmp_path):
    path = write(tmp_path, {"epochs": 3, "data_path": str(tmp_path)})
    config = load_config(path, SCHEMA, ["epochs=7", "model_str=audsearch", "freq_cut_bool=false"])
    assert config["epochs"] == 7 and config["model_str"] == "audsearch" and config["freq_cut_bool"] is False


def test_run_script_prints_one_line_and_exits_2_on_a_bad_config(tmp_path, capsys):
    path = write(tmp_path, {"epochs": 3, "data_path": str(tmp_path), "bogus": 1})
    status = run_script(SCHEMA, "test", lambda config: 0, ["--config", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "unknown key 'bogus'" in err


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.json: config file not found"):
        load_config(tmp_path / "nope.json", SCHEMA)
