"""Building, reading and updating a database given bad input: one-line errors, nothing written outside its folder."""

import json
import shutil

import numpy as np
import pytest
import torch

from common.audio import write_wav
from common.config import run_script
from database import Database, DatabaseError
from extraction.extractor import extract_fingerprints
from extraction.songs import plan_songs
from generation import generate_index, update_index
from models import get_model
from models.checkpoint import save_checkpoint
from models.encoder import load_encoder
from tests.fakes import error_line
from tests.signals import synth_song


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder with a tiny checkpoint, songs in a/, their fingerprints and a Flat database db/demo.json."""
    root = tmp_path_factory.mktemp("database")
    torch.manual_seed(0)
    save_checkpoint(root / "tiny.pt", get_model("fingerprinter", width=0.125), "fingerprinter", 0.125)
    for number in range(3):
        write_wav(root / "a" / f"song{number}.wav", synth_song(3.0, number))
    encoder, payload = load_encoder(root / "tiny.pt")
    extract_fingerprints(encoder, payload, plan_songs([root / "a"]), root / "fingerprints", progress=False)
    assert run_index(index_config(root, root)) == 0
    return root


def index_config(root, where, **changes):
    config = {
        "input_dir": str(root / "fingerprints"),
        "output_dir": str(where / "db"),
        "name": "demo",
        "progress": False,
    }
    config.update(changes)
    path = where / "index.json"
    path.write_text(json.dumps(config))
    return path


def update_config(root, where, **changes):
    config = {
        "database": str(root / "db" / "demo.json"),
        "add_audio_dirs": [str(root / "a")],
        "weights": str(root / "tiny.pt"),
        "output_database": str(where / "updated" / "demo.json"),
        "device": "cpu",
        "num_workers": 0,
        "progress": False,
    }
    config.update(changes)
    path = where / "update.json"
    path.write_text(json.dumps(config))
    return path


def run_index(config_path) -> int:
    return run_script(generate_index.SCHEMA, "test", generate_index.main, ["--config", str(config_path)])


def run_update(config_path) -> int:
    return run_script(update_index.SCHEMA, "test", update_index.main, ["--config", str(config_path)])


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x", "'../x' must be a plain file name, without a folder part (set the output folder instead)"),
        ("sub/x", "'sub/x' must be a plain file name, without a folder part (set the output folder instead)"),
        ("", "the name is empty"),
        (".x", "'.x' must not start with '.' (hidden files and '..' are refused)"),
    ],
)
def test_an_index_name_with_a_folder_part_or_hidden_or_empty_is_refused(built, tmp_path, capsys, name, problem):
    config = index_config(built, tmp_path, name=name)
    assert run_index(config) == 2
    assert error_line(capsys) == f"error: {config}: key 'name': {problem}"
    assert not list(tmp_path.rglob("*.index"))


def test_an_absolute_index_name_is_refused_and_nothing_is_written_there(built, tmp_path, capsys):
    config = index_config(built, tmp_path, name=str(tmp_path / "elsewhere"))
    assert run_index(config) == 2
    assert "must be a plain file name" in error_line(capsys)
    assert not (tmp_path / "elsewhere.index").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"chunk_size": 0}, "key 'chunk_size' must be at least 1, got 0"),
        ({"index": "IVF4,Flat", "max_train_vectors": 0}, "key 'max_train_vectors' must be at least 1, got 0"),
    ],
)
def test_a_zero_chunk_size_or_training_sample_is_a_one_line_error_naming_the_key(
    built, tmp_path, capsys, changes, message
):
    config = index_config(built, tmp_path, **changes)
    assert run_index(config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"


def test_building_from_python_with_no_training_vectors_or_zero_chunks_is_a_database_error():
    songs = [("a", np.eye(8, dtype=np.float32), 4.0, "a.wav")]
    with pytest.raises(DatabaseError, match="max_train_vectors must be at least 1, got 0"):
        Database.build(songs, factory="IVF2,Flat", max_train_vectors=0)
    with pytest.raises(DatabaseError, match="chunk size must be at least 1 vector, got 0"):
        Database.build(songs, chunk_rows=0)


def test_an_output_dir_that_cannot_be_written_is_a_one_line_error_naming_it(built, tmp_path, capsys):
    (tmp_path / "db").write_text("a file where the folder should go")
    config = index_config(built, tmp_path)
    assert run_index(config) == 2
    assert error_line(capsys) == f"error: {config}: key 'output_dir': {tmp_path / 'db'} is a file, not a folder"


def broken_copy(built, tmp_path, change) -> str:
    """A copy of the database whose JSON is edited by ``change``; returns the JSON path."""
    shutil.copy(built / "db" / "demo.index", tmp_path / "demo.index")
    table = json.loads((built / "db" / "demo.json").read_text())
    change(table)
    (tmp_path / "demo.json").write_text(json.dumps(table))
    return str(tmp_path / "demo.json")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda table: table.pop("files"), "database JSON lacks 'files'"),
        (lambda table: table.pop("songs"), "database JSON lacks 'songs'"),
        (
            lambda table: table["songs"][1].update(colour="red"),
            "songs[1] (song1) has unknown field 'colour' (fields: name, first_id, count, duration, source)",
        ),
        (
            lambda table: table["songs"][0].pop("count"),
            "songs[0] (song0) has no 'count' (fields: name, first_id, count, duration, source)",
        ),
    ],
)
def test_a_database_json_without_files_or_songs_or_with_an_odd_song_field_is_refused_by_name(
    built, tmp_path, capsys, change, problem
):
    json_path = broken_copy(built, tmp_path, change)
    with pytest.raises(DatabaseError) as caught:
        Database.open(json_path)
    assert str(caught.value) == f"{json_path}: {problem}"
    assert run_update(update_config(built, tmp_path, database=json_path, add_audio_dirs=[])) == 2
    assert error_line(capsys) == f"error: {json_path}: {problem}"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_workers", -1, "key 'num_workers' must be at least 0, got -1"),
        ("batch size", 0, "key 'batch size' must be at least 1, got 0"),
        ("device", "gpu", "key 'device': 'gpu' is not a device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"),
    ],
)
def test_an_update_with_a_bad_worker_count_batch_size_or_device_is_a_one_line_error(
    built, tmp_path, capsys, key, value, message
):
    config = update_config(built, tmp_path, **{key: value})
    assert run_update(config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"
    assert not (tmp_path / "updated").exists()
