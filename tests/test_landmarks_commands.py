"""The landmark table's commands (build, update) and its recogniser behind the neural recogniser's interface."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.audio import write_wav
from common.config import run_script
from generation import generate_landmarks, update_landmarks
from landmarks import LandmarkTable
from matching.landmark_recognizer import LandmarkRecognizer
from tests.test_landmarks import SR, room_and_noise, song_in_key


@pytest.fixture(scope="module")
def song_folders(tmp_path_factory):
    """songs/ with three songs in distinct keys, extra/ with a fourth, unknown/ with one never added."""
    root = tmp_path_factory.mktemp("landmark_songs")
    folders = {name: root / name for name in ("songs", "extra", "unknown")}
    for folder in folders.values():
        folder.mkdir()
    for seed in range(5):
        folder = folders["songs"] if seed < 3 else folders["extra"] if seed == 3 else folders["unknown"]
        write_wav(folder / f"song{seed}.wav", song_in_key(seed, 2.5 * seed, seconds=20.0))
    return folders


def run(script, tmp_path, config: dict, capsys) -> tuple[int, str, str]:
    path = tmp_path / f"{script.__name__.rsplit('.', 1)[-1]}.json"
    path.write_text(json.dumps(config))
    code = run_script(script.SCHEMA, "test", script.main, ["--config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build_config(song_folders, tmp_path, **changes) -> dict:
    config = {"input dirs": [str(song_folders["songs"])], "output dir": str(tmp_path / "tables"), "name": "demo"}
    config.update(progress=False, **changes)
    return config


def test_the_build_command_writes_one_table_and_prints_its_size_and_ingest_speed(song_folders, tmp_path, capsys):
    code, out, _ = run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)
    assert code == 0
    table = LandmarkTable.load(tmp_path / "tables" / "demo.npz")
    assert sorted(table.names) == ["song0", "song1", "song2"]
    assert table.config.fan_out == 8  # the dense preset is the default
    assert table.ingest_seconds > 0
    assert "3 songs" in out and "audio s per s" in out and "MB per audio hour" in out


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"preset": "huge"}, "preset"),
        ({"parameters": {"fan_out": 0}}, "fan_out"),
        ({"parameters": {"densty": 50}}, "densty"),
        ({"parameters": {"min_margin": "many"}}, "min_margin"),
        ({"input dirs": []}, "input dirs"),
        ({"name": "../escape"}, "name"),
    ],
)
def test_bad_build_settings_are_one_line_errors_naming_the_key(song_folders, tmp_path, capsys, changes, named):
    code, _, err = run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path, **changes), capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert named in err and "generate_landmarks.json" in err


def test_an_existing_table_is_not_replaced_unless_asked(song_folders, tmp_path, capsys):
    assert run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)[0] == 0
    code, _, err = run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)
    assert code == 2 and "overwrite" in err
    assert run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path, overwrite=True), capsys)[0] == 0


def test_the_update_command_removes_then_adds_songs(song_folders, tmp_path, capsys):
    assert run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)[0] == 0
    table_path = tmp_path / "tables" / "demo.npz"
    edited = tmp_path / "tables" / "edited.npz"
    config = {
        "database": str(table_path),
        "remove": ["song1"],
        "add_audio_dirs": [str(song_folders["extra"])],
        "output_database": str(edited),
        "progress": False,
    }
    code, out, _ = run(update_landmarks, tmp_path, config, capsys)
    assert code == 0 and "3 songs" in out
    assert sorted(LandmarkTable.load(edited).names) == ["song0", "song2", "song3"]
    assert sorted(LandmarkTable.load(table_path).names) == ["song0", "song1", "song2"]  # the input is untouched

    code, _, err = run(update_landmarks, tmp_path, {**config, "remove": ["song9"]}, capsys)
    assert code == 2 and "song9" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(update_landmarks, tmp_path, {**config, "database": str(edited), "remove": []}, capsys)
    assert code == 2 and "song3" in err and "already" in err


def test_two_new_files_with_one_name_are_refused_before_anything_is_fingerprinted(song_folders, tmp_path, capsys):
    assert run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)[0] == 0
    twin = tmp_path / "twin"
    twin.mkdir()
    write_wav(twin / "song3.wav", song_in_key(3, 7.5, seconds=5.0))
    config = {
        "database": str(tmp_path / "tables" / "demo.npz"),
        "add_audio_dirs": [str(song_folders["extra"]), str(twin)],
        "progress": False,
    }
    code, _, err = run(update_landmarks, tmp_path, config, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "add_audio_dirs" in err and "song3" in err and "update_landmarks.json" in err
    code, _, err = run(
        generate_landmarks,
        tmp_path,
        build_config(song_folders, tmp_path, **{"input dirs": config["add_audio_dirs"], "name": "b"}),
        capsys,
    )
    assert code == 2 and "input dirs" in err and "song3" in err


def test_the_landmark_recogniser_answers_like_the_neural_one(song_folders, tmp_path, capsys):
    assert run(generate_landmarks, tmp_path, build_config(song_folders, tmp_path), capsys)[0] == 0
    recognizer = LandmarkRecognizer.load(tmp_path / "tables" / "demo.npz")
    assert recognizer.sample_rate == SR
    song = song_in_key(2, 5.0, seconds=20.0)
    query = room_and_noise(song[6 * SR : 11 * SR], snr_db=5.0, seed=3)
    match, analysis_ms, search_ms = recognizer.identify(query)
    assert match.song == "song2" and match.song_index == recognizer.song_names.index("song2")
    assert abs(match.offset_seconds - 6.0) < 0.1
    assert match.margin > 0 and match.ranked[0][0] == "song2"
    assert analysis_ms > 0 and search_ms > 0

    unknown = song_in_key(4, 10.0, seconds=20.0)[6 * SR : 11 * SR]
    rejected = recognizer.identify(unknown)[0]
    assert rejected.song is None and rejected.song_index is None
    silent = recognizer.identify(np.zeros(5 * SR, dtype=np.float32))[0]
    assert silent.song is None and silent.ranked == []
