"""Fingerprint extraction given bad input or killed: one-line errors, nothing lost, no process left behind."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common.audio import write_wav
from common.config import run_script
from extraction.errors import ExtractionError
from extraction.songs import SongSource, keep_names_unique
from generation.generate_fingerprints import SCHEMA, main
from models import get_model
from models.checkpoint import save_checkpoint
from tests.fakes import error_line
from tests.signals import synth_song

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def songs(tmp_path):
    """tmp_path with a tiny checkpoint, a/ holding song0 and song1, b/ holding another song0."""
    tiny_checkpoint(tmp_path / "tiny.pt")
    write_wav(tmp_path / "a" / "song0.wav", synth_song(3.0, 0))
    write_wav(tmp_path / "a" / "song1.wav", synth_song(3.0, 1))
    write_wav(tmp_path / "b" / "song0.wav", synth_song(3.0, 20))
    return tmp_path


@pytest.fixture
def make_unreadable(monkeypatch):
    """Factory: make a folder unreadable (chmod 000; for root, which reads anything, scandir refuses it too)."""
    made, refused = [], set()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def make(folder: Path) -> Path:
        folder.chmod(0)
        made.append(folder)
        if os.geteuid() == 0:
            refused.add(str(folder))
            monkeypatch.setattr(os, "scandir", scandir)
        return folder

    yield make
    for folder in made:
        folder.chmod(0o755)


def run(config_path) -> int:
    return run_script(SCHEMA, "test", main, ["--config", str(config_path)])


def manifest_songs(folder: Path) -> dict[str, str]:
    """name -> source of every song in a fingerprint folder's manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return {song["name"]: song["source"] for song in manifest["songs"]}


def test_a_second_run_with_a_same_named_song_from_another_folder_keeps_both_songs(songs, capsys):
    folder = songs / "fingerprints"
    assert run(write_config(songs)) == 0
    first = np.load(folder / "song0.npy")
    assert run(write_config(songs, **{"input dirs": [str(songs / "b")]})) == 0
    names = manifest_songs(folder)
    assert len(names) == 3
    assert names["song0"] == str((songs / "a" / "song0.wav").resolve())
    (other,) = [name for name in names if name.startswith("song0-")]
    assert names[other] == str((songs / "b" / "song0.wav").resolve())
    assert np.array_equal(np.load(folder / "song0.npy"), first)
    assert not np.array_equal(np.load(folder / f"{other}.npy")[: len(first)], first)


def test_rerunning_into_a_shared_folder_finds_every_song_done_under_the_name_it_was_given(songs, capsys):
    assert run(write_config(songs)) == 0
    assert run(write_config(songs, **{"input dirs": [str(songs / "b")]})) == 0
    capsys.readouterr()
    both = write_config(songs, **{"input dirs": [str(songs / "a"), str(songs / "b")]})
    assert run(both) == 0
    assert "0 songs fingerprinted" in capsys.readouterr().out
    assert len(manifest_songs(songs / "fingerprints")) == 3


def test_a_song_name_that_cannot_be_made_unique_stops_the_run_before_anything_is_written(tmp_path):
    taken = {"x": {"source": "/elsewhere/x.wav"}}
    new = SongSource("x", tmp_path / "x.wav")
    tagged = keep_names_unique([new], taken)[0].name
    assert tagged.startswith("x-")
    with pytest.raises(ExtractionError, match=f"song name '{tagged}' is taken in the output dir by /third/x.wav"):
        keep_names_unique([new], {**taken, tagged: {"source": "/third/x.wav"}})


def test_an_unreadable_input_folder_is_an_error_naming_it(songs, make_unreadable, capsys):
    make_unreadable(songs / "a")
    assert run(write_config(songs)) == 2
    assert error_line(capsys) == f"error: input dirs: {songs / 'a'}: cannot read folder (Permission denied)"
    assert not (songs / "fingerprints" / "manifest.json").exists()


def test_an_unreadable_sub_folder_is_an_error_naming_it(songs, make_unreadable, capsys):
    write_wav(songs / "a" / "more" / "song2.wav", synth_song(3.0, 2))
    make_unreadable(songs / "a" / "more")
    assert run(write_config(songs)) == 2
    assert error_line(capsys) == f"error: input dirs: {songs / 'a' / 'more'}: cannot read folder (Permission denied)"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_workers", -1, "key 'num_workers' must be at least 0, got -1"),
        ("batch size", 0, "key 'batch size' must be at least 1, got 0"),
        ("device", "gpu", "key 'device': 'gpu' is not a device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"),
    ],
)
def test_a_bad_worker_count_batch_size_or_device_is_a_one_line_error_naming_the_key(songs, capsys, key, value, message):
    config = write_config(songs, **{key: value})
    assert run(config) == 2
    assert error_line(capsys) == f"error: {config}: {message}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_a_one_line_error_naming_the_key(songs, capsys):
    config = write_config(songs, device="cuda")
    assert run(config) == 2
    assert error_line(capsys) == (
        f"error: {config}: key 'device': 'cuda' asked for but no CUDA device is available (use 'cpu' or 'auto')"
    )


def test_an_output_dir_that_cannot_be_written_is_a_one_line_error_naming_it(songs, capsys):
    (songs / "taken").write_text("a file where the folder should go")
    config = write_config(songs, **{"output dir": str(songs / "taken" / "fingerprints")})
    assert run(config) == 2
    assert error_line(capsys) == (
        f"error: {config}: key 'output dir': cannot write to {songs / 'taken' / 'fingerprints'} (Not a directory)"
    )


def tiny_checkpoint(path):
    torch.manual_seed(0)
    save_checkpoint(path, get_model("fingerprinter", width=0.125), "fingerprinter", 0.125)
    return path


def write_config(tmp_path, **changes):
    config = {
        "input dirs": [str(tmp_path / "a")],
        "weights": str(tmp_path / "tiny.pt"),
        "output dir": str(tmp_path / "fingerprints"),
        "batch size": 16,
        "num_workers": 0,
        "device": "cpu",
        "progress": False,
    }
    config.update(changes)
    path = tmp_path / "fingerprints.json"
    path.write_text(json.dumps(config))
    return path


def children(pid: int) -> list[int]:
    """Ids of the live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a dead process nobody has reaped yet)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_an_extraction_with_two_workers_leaves_no_worker_behind(tmp_path):
    tiny_checkpoint(tmp_path / "tiny.pt")
    for number in range(16):  # long songs: workers block handing over decoded windows
        write_wav(tmp_path / "a" / f"song{number}.wav", synth_song(60.0, number))
    config = write_config(tmp_path, num_workers=2, **{"batch size": 4})
    process = subprocess.Popen(
        [sys.executable, "generation/generate_fingerprints.py", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            workers = children(process.pid)
        assert len(workers) == 2, "the extraction did not start its two workers"
        time.sleep(2.0)  # let them decode and queue songs
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 5
        while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in workers if is_running(pid)] == []
    finally:
        process.kill()
        for pid in workers:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_checkpoint_without_frontend_is_a_one_line_error_naming_the_file(songs, capsys):
    contents = torch.load(songs / "tiny.pt", weights_only=True)
    del contents["frontend"]
    torch.save(contents, songs / "no_frontend.pt")
    assert run(write_config(songs, weights=str(songs / "no_frontend.pt"))) == 2
    assert error_line(capsys) == f"error: {songs / 'no_frontend.pt'}: checkpoint lacks 'frontend'"
