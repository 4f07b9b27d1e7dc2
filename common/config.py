"""JSON configuration shared by every script.

Each script declares its keys (type, default, help) in a ``Schema``. ``load_config`` reads the
JSON, applies ``--set key=value`` overrides, and rejects anything it does not understand with a
one-line message naming the file and the key.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

REQUIRED = object()


class ConfigError(UserError):
    """A configuration problem; the message names the file and the key."""


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``kind`` is one of: "str", "int", "float", "bool", "path", "paths", "list", "dict", "choice",
    "filename" (a plain file name inside a configured folder: no folder part, not hidden).
    A "path" must exist when ``must_exist`` is set (input files and folders); output paths do not.
    ``min``: the lowest value of an "int" or "float", the fewest entries of a "list" or "paths".
    ``check``: a function of the value returning what is wrong with it, or None when it is fine.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    help: str = ""
    must_exist: bool = False
    choices: tuple = ()
    nullable: bool = False
    min: float | None = None
    check: Callable[[Any], str | None] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Schema:
    """The keys a script accepts, in the order they are documented."""

    script: str
    keys: list[Key] = field(default_factory=list)
    # Keys of earlier versions -> the key that replaced them, so "did you mean" names the new key.
    renamed: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [key.name for key in self.keys]

    def get(self, name: str) -> Key | None:
        return next((key for key in self.keys if key.name == name), None)

    def describe(self) -> str:
        """A Markdown table of the keys, for the README and ``--help``."""
        rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key in self.keys:
            default = "required" if key.required else json.dumps(key.default)
            rows.append(f"| `{key.name}` | {key.kind} | {default} | {key.help} |")
        return "\n".join(rows)


class Config(dict):
    """The validated values, a plain dict of key -> value with the source file remembered."""

    source: Path | None = None


def closest_key(name: str, candidates: list[str], renamed: dict[str, str] | None = None) -> str:
    """The " (did you mean 'x'?)" hint: the key that replaced ``name``, else the closest spelling."""
    if renamed and name in renamed:
        return f" (did you mean '{renamed[name]}'?)"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.0)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(key: Key, value: Any, where: str, base_dir: Path) -> Any:
    """Check ``value`` against ``key``'s type, bound and check; returns the value (paths resolved)."""
    if value is None and (key.nullable or key.default is None):
        return None
    value = _coerce_kind(key, value, where, base_dir)
    if key.min is not None:
        if key.kind in ("list", "paths") and len(value) < key.min:
            entries = "one entry" if key.min == 1 else f"{key.min:g} entries"
            raise ConfigError(f"{where}: key '{key.name}' must list at least {entries}, got {value!r}")
        if key.kind in ("int", "float") and value < key.min:
            raise ConfigError(f"{where}: key '{key.name}' must be at least {key.min:g}, got {value!r}")
    problem = key.check(value) if key.check is not None else None
    if problem:
        raise ConfigError(f"{where}: key '{key.name}': {problem}")
    return value


def file_name_problem(name: str) -> str | None:
    """What keeps ``name`` from being a plain file name inside a folder (None when it is one)."""
    if not name:
        return "the name is empty"
    if "/" in name or "\\" in name:  # either separator: a config must mean the same on every system
        return f"{name!r} must be a plain file name, without a folder part (set the output folder instead)"
    if name.startswith("."):
        return f"{name!r} must not start with '.' (hidden files and '..' are refused)"
    return None


def _coerce_kind(key: Key, value: Any, where: str, base_dir: Path) -> Any:
    wrong = f"{where}: key '{key.name}' must be {key.kind}, got {type(value).__name__} {value!r}"
    kind = key.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(wrong)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(wrong)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(wrong)
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(wrong)
        return value
    if kind == "filename":
        if not isinstance(value, str):
            raise ConfigError(wrong)
        problem = file_name_problem(value)
        if problem:
            raise ConfigError(f"{where}: key '{key.name}': {problem}")
        return value
    if kind == "choice":
        if value not in key.choices:
            raise ConfigError(
                f"{where}: key '{key.name}' must be one of {', '.join(map(repr, key.choices))}, got {value!r}"
            )
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise ConfigError(wrong)
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(wrong)
        return value
    if kind == "path":
        if not isinstance(value, str) or not value:
            raise ConfigError(wrong)
        return checked_path(value, where, key.name, key.must_exist, base_dir)
    if kind == "paths":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(wrong)
        return [checked_path(v, where, key.name, key.must_exist, base_dir) for v in value]
    raise AssertionError(f"unknown key kind {kind}")


def resolve_path(value: str, base_dir: Path | None) -> Path:
    """A config's path: ``~`` expanded; relative paths are read from the working folder (the
    repository root, where scripts run), or from ``base_dir`` (the config's own folder) when only
    there it exists, so a config next to its data also works."""
    path = Path(os.path.expanduser(value))
    if base_dir is not None and not path.is_absolute() and not path.exists() and (base_dir / path).exists():
        path = base_dir / path
    return path


def config_folder(config: dict) -> Path | None:
    """The folder of the file ``config`` was loaded from (``resolve_path``'s ``base_dir``); None for a dict."""
    source = getattr(config, "source", None)
    return Path(source).parent.resolve() if source else None


def checked_path(value, where: str, key: str, must_exist: bool = True, base_dir: Path | None = None) -> str:
    """A path key's value, resolved (``resolve_path``); a ConfigError naming ``where`` and ``key``
    when it is not a non-empty string or, with ``must_exist``, names nothing on disk."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: key '{key}' must be a path string, got {value!r}")
    path = resolve_path(value, base_dir)
    if must_exist and not path.exists():
        raise ConfigError(f"{where}: key '{key}': path does not exist: {value}")
    return str(path)


def _parse_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        hint = ""
        for python_word, json_word in (("True", "true"), ("False", "false"), ("None", "null")):
            if python_word in text:
                hint = f" (JSON spells Python's {python_word} as {json_word})"
                break
        if not hint and "'" in text:
            hint = " (JSON strings need double quotes)"
        raise ConfigError(
            f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}{hint}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a JSON object of key: value pairs")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is read as JSON when it parses, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    name, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def validate(data: dict, schema: Schema, where: str = "config", base_dir: Path | None = None) -> Config:
    """Check ``data`` against ``schema``; fill defaults; raise ConfigError on the first problem."""
    base_dir = base_dir or Path.cwd()
    names = schema.names()
    for name in data:
        if name not in names:
            raise ConfigError(f"{where}: unknown key '{name}'{closest_key(name, names, schema.renamed)}")
    missing = [key.name for key in schema.keys if key.required and key.name not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key(s): {', '.join(repr(m) for m in missing)}")
    config = Config()
    for key in schema.keys:
        if key.name in data:
            config[key.name] = _coerce(key, data[key.name], where, base_dir)
        else:
            config[key.name] = key.default
    return config


def load_config(path: str | os.PathLike, schema: Schema, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a JSON config file."""
    path = Path(path)
    data = _parse_json(path)
    for text in overrides or []:
        name, value = parse_override(text)
        data[name] = value
    config = validate(data, schema, where=str(path), base_dir=path.parent.resolve())
    config.source = path
    return config


def argument_parser(schema: Schema, description: str) -> argparse.ArgumentParser:
    """The common command line: ``--config FILE`` and repeatable ``--set key=value``."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog="config keys:\n"
        + "\n".join(
            f"  {key.name!r:28} {key.kind:7} {'(required)' if key.required else f'default {key.default!r}'}  {key.help}"
            for key in schema.keys
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="JSON configuration file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (value read as JSON)"
    )
    return parser


def run_script(schema: Schema, description: str, main, argv: list[str] | None = None) -> int:
    """Parse ``--config``/``--set``, load the config and call ``main(config)``.

    A UserError (config, audio, checkpoint, database) becomes one line on stderr and exit status 2.
    """
    parser = argument_parser(schema, description)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, schema, args.set)
        result = main(config)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)
