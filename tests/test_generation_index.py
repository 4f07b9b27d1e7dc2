import json

import numpy as np
import pytest

from common.audio import write_wav
from common.config import run_script
from database import Database
from extraction.extractor import extract_fingerprints
from extraction.songs import plan_songs
from generation import generate_index, update_index
from models.encoder import load_encoder
from tests.fakes import save_tiny_checkpoint
from tests.signals import synth_song


@pytest.fixture
def setup(tmp_path, tiny_checkpoint):
    """Fingerprints of songs a0..a2 (folder fp_a) and b0 (folder fp_b) made by one tiny model."""
    checkpoint = tmp_path / "tiny.pt"
    checkpoint.symlink_to(tiny_checkpoint)
    encoder, payload = load_encoder(checkpoint)
    for number in range(3):
        write_wav(tmp_path / "a" / f"a{number}.wav", synth_song(4.0 + number, number))
    write_wav(tmp_path / "b" / "b0.wav", synth_song(5.0, 20))
    for name in ("a", "b"):
        extract_fingerprints(encoder, payload, plan_songs([tmp_path / name]), tmp_path / f"fp_{name}", progress=False)
    return tmp_path


def write_config(path, **values):
    path.write_text(json.dumps(values))
    return path


def build_flat_index(setup):
    """Build db/demo.index from the fp_a fingerprints with generate_index.py; asserts it succeeded.

    Returns the config file's path."""
    config = write_config(
        setup / "index.json",
        input_dir=str(setup / "fp_a"),
        output_dir=str(setup / "db"),
        name="demo",
        index="Flat",
        d=128,
    )
    status = run_script(
        generate_index.SCHEMA, "t", generate_index.main, ["--config", str(config), "--set", "progress=false"]
    )
    assert status == 0
    return config


def test_generate_index_writes_index_and_json_with_songs_in_name_order(setup, capsys):
    config = build_flat_index(setup)
    table = json.loads((setup / "db" / "demo.json").read_text())
    assert table["factory"] == "Flat" and table["d"] == 128 and table["format_version"] == 1
    assert table["identity"]["model_str"] == "fingerprinter" and "frontend" in table["identity"]
    assert [(s["name"], s["first_id"], s["count"]) for s in table["songs"]] == [
        ("a0", 0, 7),
        ("a1", 7, 9),
        ("a2", 16, 11),
    ]
    database = Database.load(setup / "db" / "demo.index")
    np.testing.assert_array_equal(database.song_vectors(1), np.load(setup / "fp_a" / "a1.npy"))
    # a second run refuses to overwrite
    assert run_script(generate_index.SCHEMA, "t", generate_index.main, ["--config", str(config)]) == 2
    assert "exists" in capsys.readouterr().err


def test_generate_index_trains_ivf_pq_on_a_bounded_sample_and_stores_nprobe(setup):
    config = write_config(
        setup / "index.json",
        input_dir=str(setup / "fp_a"),
        output_dir=str(setup / "db"),
        name="ivf",
        index="IVF2,PQ8x4",
        d=128,
        nprobe=2,
        max_train_vectors=20,
        progress=False,
    )
    assert run_script(generate_index.SCHEMA, "t", generate_index.main, ["--config", str(config)]) == 0
    database = Database.load(setup / "db" / "ivf.index")
    import faiss

    assert faiss.extract_index_ivf(database.index).nprobe == 2
    np.testing.assert_allclose(database.song_vectors(2), np.load(setup / "fp_a" / "a2.npy"), atol=2e-3)


def test_wrong_d_is_an_error_naming_both(setup, capsys):
    config = write_config(
        setup / "index.json", input_dir=str(setup / "fp_a"), output_dir=str(setup / "db"), name="x", index="Flat", d=64
    )
    assert run_script(generate_index.SCHEMA, "t", generate_index.main, ["--config", str(config)]) == 2
    assert "d is 64" in capsys.readouterr().err


def test_update_index_adds_and_removes_songs_atomically(setup, capsys):
    Database.build(
        [("a0", np.load(setup / "fp_a" / "a0.npy"), 4.0, "")],
        identity=json.loads((setup / "fp_a" / "manifest.json").read_text())["identity"],
    ).save(setup / "db" / "demo.index")
    add = write_config(
        setup / "add.json", database=str(setup / "db" / "demo.json"), add_fingerprint_dirs=[str(setup / "fp_b")]
    )
    assert (
        run_script(update_index.SCHEMA, "t", update_index.main, ["--config", str(add), "--set", "progress=false"]) == 0
    )
    assert [s.name for s in Database.load(setup / "db" / "demo.index").songs] == ["a0", "b0"]
    # adding the same songs again is refused and leaves the database as it was
    assert run_script(update_index.SCHEMA, "t", update_index.main, ["--config", str(add)]) == 2
    assert "b0' is already in the database" in capsys.readouterr().err
    remove = write_config(setup / "remove.json", database=str(setup / "db" / "demo.json"), remove=["a0"])
    assert run_script(update_index.SCHEMA, "t", update_index.main, ["--config", str(remove)]) == 0
    database = Database.load(setup / "db" / "demo.index")
    assert [(s.name, s.first_id) for s in database.songs] == [("b0", 0)]
    np.testing.assert_array_equal(database.song_vectors(0), np.load(setup / "fp_b" / "b0.npy"))


def test_update_index_fingerprints_audio_folders_with_the_databases_model(setup):
    build_flat_index(setup)
    add = write_config(
        setup / "add.json",
        database=str(setup / "db" / "demo.json"),
        add_audio_dirs=[str(setup / "b")],
        weights=str(setup / "tiny.pt"),
        num_workers=0,
        progress=False,
    )
    assert run_script(update_index.SCHEMA, "t", update_index.main, ["--config", str(add)]) == 0
    database = Database.load(setup / "db" / "demo.index")
    assert [s.name for s in database.songs] == ["a0", "a1", "a2", "b0"]
    np.testing.assert_allclose(database.song_vectors(3), np.load(setup / "fp_b" / "b0.npy"), atol=1e-5)


def test_adding_fingerprints_of_another_model_is_an_error_naming_both(setup, capsys):
    build_flat_index(setup)
    other = save_tiny_checkpoint(setup / "other.pt", seed=5)
    add = write_config(
        setup / "add.json",
        database=str(setup / "db" / "demo.json"),
        add_audio_dirs=[str(setup / "b")],
        weights=str(other),
    )
    assert run_script(update_index.SCHEMA, "t", update_index.main, ["--config", str(add)]) == 2
    error = capsys.readouterr().err
    assert "model mismatch" in error and error.count("weights ") == 2  # both weight hashes are named
    assert len(Database.load(setup / "db" / "demo.index").songs) == 3
