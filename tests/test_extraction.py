import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.audio import load_audio, write_wav
from extraction.errors import ExtractionError
from extraction.extractor import extract_fingerprints
from extraction.manifest import load_fingerprint_folder, read_fingerprint_manifest
from extraction.songs import plan_songs
from generation.generate_fingerprints import SCHEMA, main
from models.checkpoint import load_checkpoint
from models.encoder import embed_samples, load_encoder
from tests.fakes import save_tiny_checkpoint
from tests.signals import synth_song

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def library(tmp_path):
    """Two folders: a/ with three songs, b/ with a same-named song, a too-short file and a broken file."""
    for number, seconds in enumerate([6.0, 4.5, 3.0]):
        write_wav(tmp_path / "a" / f"song{number}.wav", synth_song(seconds, number))
    write_wav(tmp_path / "b" / "song0.wav", synth_song(5.0, 10))
    write_wav(tmp_path / "b" / "short.wav", synth_song(0.6, 11))
    (tmp_path / "b" / "broken.wav").write_bytes(b"not audio at all")
    return tmp_path


def config_for(tmp_path, library, checkpoint, **changes):
    config = {
        "SR": 8000,
        "HOP SIZE": 4000,
        "input dirs": [str(library / "a"), str(library / "b")],
        "batch size": 7,
        "weights": str(checkpoint),
        "output dir": str(tmp_path / "fingerprints"),
        "num_workers": 0,
        "model_str": "fingerprinter",
        "progress": False,
    }
    config.update(changes)
    path = tmp_path / "fingerprints.json"
    path.write_text(json.dumps(config))
    return path


def run(config_path, *extra):
    from common.config import run_script

    return run_script(SCHEMA, "test", main, ["--config", str(config_path), *extra])


def test_same_named_files_in_different_folders_get_distinct_stable_names(library):
    sources = plan_songs([library / "a", library / "b"])
    names = [source.name for source in sources]
    assert len(set(names)) == len(names) == 6
    assert {"song1", "song2", "short", "broken"} <= set(names)
    song0_names = [name for name in names if name.startswith("song0-")]
    assert len(song0_names) == 2
    assert names == [source.name for source in plan_songs([library / "b", library / "a"])]  # order-independent


def test_fingerprints_match_embedding_each_song_alone_and_skip_bad_files(tiny_checkpoint, tmp_path, library, capsys):
    checkpoint = tiny_checkpoint
    assert run(config_for(tmp_path, library, checkpoint)) == 0
    folder = tmp_path / "fingerprints"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["identity"]["model_str"] == "fingerprinter" and manifest["hop_seconds"] == 0.5
    assert manifest["identity"]["frontend"]["n_mels"] == 256
    by_source = {Path(song["source"]).relative_to(library).as_posix(): song for song in manifest["songs"]}
    assert set(by_source) == {"a/song0.wav", "a/song1.wav", "a/song2.wav", "b/song0.wav"}
    assert by_source["a/song1.wav"]["rows"] == 8 and by_source["a/song1.wav"]["duration"] == 4.5
    skipped = {Path(entry["source"]).name: entry["reason"] for entry in manifest["skipped"]}
    assert set(skipped) == {"short.wav", "broken.wav"} and "too short" in skipped["short.wav"]
    assert "skipped" in capsys.readouterr().err
    # batches pool windows of several songs (batch size 7): rows must still equal per-song embedding
    encoder, _ = load_encoder(checkpoint)
    for relative, song in by_source.items():
        stored = np.load(folder / song["file"])
        assert stored.dtype == np.float32 and stored.shape == (song["rows"], 128)
        expected = embed_samples(encoder, load_audio(library / relative))
        np.testing.assert_allclose(stored, expected, atol=1e-5)
    assert not [name for name in os.listdir(folder) if name.startswith(".")]  # no logs or temporaries left


def test_a_rerun_resumes_without_recomputing_finished_songs(tiny_checkpoint, tmp_path, library):
    checkpoint = tiny_checkpoint
    config = config_for(tmp_path, library, checkpoint)
    assert run(config) == 0
    folder = tmp_path / "fingerprints"
    song1 = folder / "song1.npy"
    song1_time = song1.stat().st_mtime_ns
    (folder / "song2.npy").unlink()  # as if the run had been interrupted before song2
    assert run(config) == 0
    assert song1.stat().st_mtime_ns == song1_time
    assert (folder / "song2.npy").exists()
    manifest, songs = load_fingerprint_folder(folder)
    assert len(songs) == 4


def test_an_interrupted_run_is_resumed_from_its_progress_log(tiny_checkpoint, tmp_path, library):
    checkpoint = tiny_checkpoint
    encoder, payload = load_encoder(checkpoint)
    folder = tmp_path / "fingerprints"
    sources = plan_songs([library / "a"])

    calls = {"count": 0}
    real_save = np.save

    def crash_on_second_song(path, array):
        calls["count"] += 1
        if calls["count"] == 2:
            raise KeyboardInterrupt("simulated crash")
        real_save(path, array)

    np.save = crash_on_second_song
    try:
        with pytest.raises(KeyboardInterrupt):
            extract_fingerprints(encoder, payload, sources, folder, batch_size=64, progress=False)
    finally:
        np.save = real_save
    written = sorted(path.name for path in folder.glob("*.npy"))
    assert written == ["song0.npy"]  # one finished song, no half-written second one
    assert not [path for path in folder.iterdir() if ".tmp" in path.name]
    summary = extract_fingerprints(encoder, payload, sources, folder, batch_size=64, progress=False)
    assert summary.already_done == ["song0"] and sorted(summary.written) == ["song1", "song2"]


def test_model_str_that_disagrees_with_the_checkpoint_is_an_error_naming_both(
    tiny_checkpoint, tmp_path, library, capsys
):
    checkpoint = tiny_checkpoint
    assert run(config_for(tmp_path, library, checkpoint, model_str="audsearch")) == 2
    error = capsys.readouterr().err
    assert "audsearch" in error and "fingerprinter" in error and error.count("\n") == 1


def test_a_folder_of_another_models_fingerprints_is_refused(tmp_path, library, capsys):
    assert run(config_for(tmp_path, library, save_tiny_checkpoint(tmp_path / "one.pt", seed=0))) == 0
    assert run(config_for(tmp_path, library, save_tiny_checkpoint(tmp_path / "two.pt", seed=1))) == 2
    assert "holds fingerprints of fingerprinter" in capsys.readouterr().err


def test_overwrite_replaces_another_models_fingerprints(tmp_path, library):
    assert run(config_for(tmp_path, library, save_tiny_checkpoint(tmp_path / "one.pt", seed=0))) == 0
    folder = tmp_path / "fingerprints"
    first = {path.name: np.load(path) for path in folder.glob("*.npy")}
    two = save_tiny_checkpoint(tmp_path / "two.pt", seed=1)
    assert run(config_for(tmp_path, library, two, overwrite=True)) == 0
    manifest = read_fingerprint_manifest(folder)
    assert manifest["identity"]["model_id"] == load_checkpoint(two)["model_id"]
    second = {path.name: np.load(path) for path in folder.glob("*.npy")}
    assert sorted(second) == sorted(first) and not np.allclose(second[sorted(first)[0]], first[sorted(first)[0]])


def test_loader_workers_give_the_same_fingerprints(tiny_checkpoint, tmp_path, library):
    checkpoint = tiny_checkpoint
    encoder, payload = load_encoder(checkpoint)
    sources = plan_songs([library / "a"])
    extract_fingerprints(encoder, payload, sources, tmp_path / "w0", batch_size=5, num_workers=0, progress=False)
    extract_fingerprints(encoder, payload, sources, tmp_path / "w2", batch_size=5, num_workers=2, progress=False)
    for source in sources:
        np.testing.assert_array_equal(
            np.load(tmp_path / "w0" / f"{source.name}.npy"), np.load(tmp_path / "w2" / f"{source.name}.npy")
        )


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ExtractionError, match="no manifest.json"):
        load_fingerprint_folder(tmp_path)


def test_torchrun_ranks_split_the_songs_and_write_one_manifest(tiny_checkpoint, tmp_path, library):
    checkpoint = tiny_checkpoint
    config = config_for(tmp_path, library, checkpoint, device="cpu")
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "generation/generate_fingerprints.py",
            "--config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rank 0: 2 songs" in result.stdout and "rank 1: 2 songs" in result.stdout
    manifest, songs = load_fingerprint_folder(tmp_path / "fingerprints")
    assert len(songs) == 4 and len(manifest["skipped"]) == 2
    single = tmp_path / "single"
    assert run(config_for(tmp_path, library, checkpoint, **{"output dir": str(single)})) == 0
    for name, vectors, _, _ in songs:
        np.testing.assert_allclose(vectors, np.load(single / f"{name}.npy"), atol=1e-5)
