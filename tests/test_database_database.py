import json
import os

import faiss
import numpy as np
import pytest

import database.files as database_module
from database import Database, DatabaseError
from database.index import training_sample


def unit_rows(count, seed, d=16):
    rows = np.random.default_rng(seed).standard_normal((count, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def songs(counts, d=16):
    return [
        (f"song{n}", unit_rows(count, n, d), count * 0.5 + 0.5, f"/music/song{n}.wav") for n, count in enumerate(counts)
    ]


IDENTITY = {
    "model_str": "fingerprinter",
    "width": 1.0,
    "embedding_dim": 16,
    "model_id": "abc",
    "frontend": {"n_mels": 256},
}


def test_ids_are_consecutive_per_song_and_located_by_binary_search():
    database = Database.build(songs([3, 5, 2]))
    assert [(s.first_id, s.count) for s in database.songs] == [(0, 3), (3, 5), (8, 2)]
    assert database.locate(0) == (0, 0)  # the first song's first row
    assert database.locate(2) == (0, 2)
    assert database.locate(3) == (1, 0)
    assert database.locate(9) == (2, 1)
    numbers, rows = database.locate_many(np.array([0, 3, 7, 9]))
    assert numbers.tolist() == [0, 1, 1, 2] and rows.tolist() == [0, 0, 4, 1]
    with pytest.raises(DatabaseError, match="outside"):
        database.locate(10)


def test_flat_database_returns_exact_vectors():
    given = songs([4, 6])
    database = Database.build(given)
    np.testing.assert_array_equal(database.song_vectors(1), given[1][1])
    np.testing.assert_array_equal(database.song_rows(1, 2, 4), given[1][1][2:4])


def test_save_and_load_round_trip_keeps_table_identity_and_vectors(tmp_path):
    given = songs([4, 6, 3])
    database = Database.build(given, identity=IDENTITY, hop_seconds=0.5)
    database.save(tmp_path / "db.index")
    table = json.loads((tmp_path / "db.json").read_text())
    assert table["format_version"] == 1 and table["d"] == 16 and table["factory"] == "Flat"
    assert table["identity"] == IDENTITY
    assert [s["name"] for s in table["songs"]] == ["song0", "song1", "song2"]
    assert table["songs"][1] == {
        "name": "song1",
        "first_id": 4,
        "count": 6,
        "duration": 3.5,
        "source": "/music/song1.wav",
    }
    loaded = Database.load(tmp_path / "db.index")
    assert loaded.songs == database.songs and loaded.identity == IDENTITY
    np.testing.assert_array_equal(loaded.song_vectors(2), given[2][1])
    assert sorted(os.listdir(tmp_path)) == ["db.index", "db.json"]  # no temporaries or backups left


def test_pq_database_keeps_a_float16_copy_for_exact_scores(tmp_path):
    given = songs([300, 200, 100])
    database = Database.build(given, factory="IVF4,PQ4x4", max_train_vectors=500, seed=1)
    assert database.index.is_trained
    np.testing.assert_allclose(database.song_vectors(1), given[1][1], atol=1e-6)
    database.save(tmp_path / "pq.index")
    assert (tmp_path / "pq.vectors.npy").exists()
    loaded = Database.load(tmp_path / "pq.index")
    np.testing.assert_allclose(loaded.song_vectors(1), given[1][1], atol=2e-3)  # float16 copy


def test_nprobe_is_set_through_faiss_parameter_space_and_saved(tmp_path):
    database = Database.build(songs([300, 300]), factory="IVF8,Flat")
    database.set_nprobe(5)
    assert faiss.extract_index_ivf(database.index).nprobe == 5
    database.save(tmp_path / "ivf.index")
    assert faiss.extract_index_ivf(Database.load(tmp_path / "ivf.index").index).nprobe == 5
    flat = Database.build(songs([3]))
    flat.set_nprobe(5)  # no inverted lists: nothing to set, no error


def test_duplicate_song_names_are_refused():
    given = songs([3, 3])
    with pytest.raises(DatabaseError, match="song0' is given twice"):
        Database.build([given[0], given[0]])
    database = Database.build(given)
    with pytest.raises(DatabaseError, match="song1' is already in the database"):
        database.add_songs([given[1]])


def test_songs_without_vectors_and_wrong_dimension_are_refused():
    with pytest.raises(DatabaseError, match="song 'empty'"):
        Database.build([("empty", np.zeros((0, 16), np.float32), 0.6, "")])
    database = Database.build(songs([3]))
    with pytest.raises(DatabaseError, match="d=8"):
        database.add_songs([("narrow", unit_rows(3, 9, d=8), 2.0, "")])


@pytest.mark.parametrize("factory", ["Flat", "IVF4,PQ4x4"])
def test_add_then_remove_round_trip_restores_the_database(tmp_path, factory):
    given = songs([200, 150, 120])
    database = Database.build(given[:2], factory=factory, max_train_vectors=300)
    database.save(tmp_path / "db.index")
    database = Database.load(tmp_path / "db.index")
    trained_before = faiss.serialize_index(database.index) if factory == "Flat" else None
    database.add_songs([given[2]])
    assert database.songs[2].first_id == 350 and database.ntotal == 470
    database.remove_songs(["song0"])
    assert [(s.name, s.first_id, s.count) for s in database.songs] == [("song1", 0, 150), ("song2", 150, 120)]
    np.testing.assert_allclose(database.song_vectors(1), given[2][1], atol=2e-3)
    # the remaining vectors are found under their new ids
    _, ids = database.index.search(given[2][1][:5], 1)
    assert (ids[:, 0] >= 150).all()
    database.remove_songs(["song2"])
    database.add_songs([given[0]])
    database.remove_songs(["song1"])
    assert [s.name for s in database.songs] == ["song0"]
    database.save(tmp_path / "db.index")
    reloaded = Database.load(tmp_path / "db.index")
    np.testing.assert_allclose(reloaded.song_vectors(0), given[0][1], atol=2e-3)
    if trained_before is not None:
        assert reloaded.ntotal == 200
    with pytest.raises(DatabaseError, match="not in the database: nothing"):
        reloaded.remove_songs(["nothing"])


@pytest.mark.parametrize("factory", ["Flat", "IVF4,PQ4x4"])
def test_an_interrupted_save_leaves_the_previous_database_loadable(tmp_path, monkeypatch, factory):
    given = songs([200, 150, 120])
    database = Database.build(given[:2], factory=factory, max_train_vectors=300)
    database.save(tmp_path / "db.index")
    database.add_songs([given[2]])
    real_replace = os.replace
    calls = []

    def crash_before_the_json(source, target):
        calls.append(str(target))
        if str(target).endswith(".json"):
            raise KeyboardInterrupt("simulated crash")
        real_replace(source, target)

    monkeypatch.setattr(database_module.os, "replace", crash_before_the_json)
    with pytest.raises(KeyboardInterrupt):
        database.save(tmp_path / "db.index")
    monkeypatch.setattr(database_module.os, "replace", real_replace)
    assert calls[0].endswith("db.index")  # the new index really was moved into place
    with pytest.warns(UserWarning, match="restoring the previous database"):
        previous = Database.load(tmp_path / "db.index")
    assert [s.name for s in previous.songs] == ["song0", "song1"] and previous.ntotal == 350
    np.testing.assert_allclose(previous.song_vectors(1), given[1][1], atol=2e-3)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))  # no temporaries left
    Database.load(tmp_path / "db.index")  # restored for good: loads again without warning


def test_an_index_that_does_not_match_its_json_is_refused(tmp_path):
    Database.build(songs([3, 4])).save(tmp_path / "a.index")
    Database.build(songs([5])).save(tmp_path / "b.index")
    os.replace(tmp_path / "b.index", tmp_path / "a.index")
    with pytest.raises(DatabaseError, match="does not match"):
        Database.load(tmp_path / "a.index")
    with pytest.raises(DatabaseError, match="not found"):
        Database.load(tmp_path / "missing.index")


def test_a_different_model_or_front_end_is_an_error_naming_both():
    database = Database.build(songs([3]), identity=IDENTITY)
    database.check_compatible(dict(IDENTITY))
    other = dict(IDENTITY, model_str="audsearch", model_id="def")
    with pytest.raises(DatabaseError, match="fingerprinter.*audsearch"):
        database.check_compatible(other)
    with pytest.raises(DatabaseError, match="frontend"):
        database.check_compatible(dict(IDENTITY, frontend={"n_mels": 128}))
    with pytest.raises(DatabaseError, match="d=32"):
        Database.build(songs([3])).check_compatible(dict(IDENTITY, embedding_dim=32))


def test_songs_of_another_model_or_hop_are_not_added():
    database = Database.build(songs([3]), identity=IDENTITY, hop_seconds=0.5)
    new = [("new", unit_rows(4, 9), 2.5, "/music/new.wav")]
    with pytest.raises(DatabaseError, match="model_id"):
        database.add_songs(new, identity=dict(IDENTITY, model_id="def"), source="runs/fp")
    with pytest.raises(DatabaseError, match=r"^runs/fp: fingerprints at a 0.25 s hop, the database uses 0.5 s"):
        database.add_songs(new, identity=IDENTITY, hop_seconds=0.25, source="runs/fp")
    assert len(database.songs) == 1
    database.add_songs(new, identity=IDENTITY, hop_seconds=0.5)
    assert [song.name for song in database.songs] == ["song0", "new"]


def test_training_uses_a_bounded_sample():
    sample = training_sample([unit_rows(1000, 1), unit_rows(500, 2)], 300, seed=0)
    assert sample.shape == (300, 16)
    again = training_sample([unit_rows(1000, 1), unit_rows(500, 2)], 300, seed=0)
    np.testing.assert_array_equal(sample, again)


def test_an_audio_file_is_found_by_its_source_path_then_by_its_name(tmp_path):
    database = Database.build(songs([2, 3]))  # sources /music/song0.wav, /music/song1.wav
    assert database.name_of_file("/music/song1.wav") == "song1"
    assert database.name_of_file(tmp_path / "moved" / "song0.flac") == "song0"  # same stem elsewhere
    assert database.name_of_file("/music/other.wav") is None
    database.remove_songs(["song0"])
    assert database.name_of_file("/music/song0.wav") is None
