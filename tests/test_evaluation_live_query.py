"""live_query.py end to end: a small database, a simulated recording, the microphone through a fake PyAudio."""

import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.audio import write_wav
from database import Database
from evaluation.live_query import SCHEMA
from evaluation.live_query import main as live_query_main
from live.session import LiveSession, run_live
from live.sources import FileSource
from matching.matcher import Matcher
from matching.recognizer import Recognizer
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.fakes import fake_pyaudio, save_tiny_checkpoint, wait_until
from tests.signals import synth_song

SR = 8000
# The recording: song1 from 3 s for 12 s, 10 s of a song not in the database, song3 from 5 s for 12 s.
# An untrained model is neither noise- nor shift-invariant, so the songs start on the database's 0.5 s
# grid and the added noise is faint (about 40 dB below the music); robustness is the trained model's job.
PLAYLIST = [("song1", 3.0, 12.0), (None, 0.0, 10.0), ("song3", 5.0, 12.0)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Windows of 9 rows gain nothing from intra-op threads; on a busy shared CPU, threads contend."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def live_setup(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("live")
    weights = folder / "model.pt"
    weights.symlink_to(tiny_checkpoint)
    encoder, payload = load_encoder(weights)
    songs = {name: synth_song(20.0, seed) for name, seed in (("song1", 1), ("song2", 2), ("song3", 3))}
    database = Database.build(
        [(name, embed_samples(encoder, audio), 20.0, "") for name, audio in songs.items()],
        identity=model_identity(payload),
    )
    index = folder / "songs.index"
    database.save(index)
    parts = [
        songs[name][int(start * SR) : int((start + seconds) * SR)] if name else synth_song(seconds, seed=99)
        for name, start, seconds in PLAYLIST
    ]
    recording = np.concatenate(parts) + 0.001 * np.random.default_rng(5).standard_normal(34 * SR).astype(np.float32)
    recording_path = folder / "recording.wav"
    write_wav(recording_path, recording, SR, subtype="FLOAT")
    config = {"weights": str(weights), "database": str(index.with_suffix(".json")), "duration": 5.0, "step": 1.0}
    config["stable_count"] = 3
    config_path = folder / "live.json"
    config_path.write_text(json.dumps(config))
    return {
        "encoder": encoder,
        "database": database,
        "recording": recording,
        "recording_path": recording_path,
        "config_path": config_path,
    }


def window_kind(clock_seconds, duration=5.0):
    """What the window ending at ``clock_seconds`` holds: a song name, None (unrelated audio) or 'mixed'."""
    start, end, kinds = clock_seconds - duration, clock_seconds, set()
    position = 0.0
    for name, _, seconds in PLAYLIST:
        if start < position + seconds and end > position:
            kinds.add(name)
        position += seconds
    return kinds.pop() if len(kinds) == 1 else "mixed"


@pytest.fixture(scope="module")
def threshold(live_setup):
    """A threshold between the scores of in-database windows and unrelated-audio windows, checked to separate them."""
    results = []
    matcher = Matcher(live_setup["database"], threshold=None)
    session = LiveSession(
        Recognizer(live_setup["encoder"], live_setup["database"], matcher), SR, 5.0, 1.0, on_result=results.append
    )
    session.run(FileSource(live_setup["recording"], SR, speed=0))
    known = [r.score for r in results if window_kind(r.clock_seconds) in ("song1", "song3")]
    unknown = [r.score for r in results if window_kind(r.clock_seconds) is None]
    assert len(known) == 16 and len(unknown) == 6
    assert min(known) > max(unknown) + 0.05, (known, unknown)
    return (min(known) + max(unknown)) / 2


def test_live_query_on_a_recording_reports_the_songs_in_order_and_no_match_on_unrelated_audio(
    live_setup, threshold, capsys
):
    argv = ["--config", str(live_setup["config_path"]), "--set", f"threshold={threshold}"]
    assert live_query_main([*argv, "--input", str(live_setup["recording_path"]), "--speed", "0"]) == 0
    output = capsys.readouterr().out
    results = re.findall(r"audio +([\d.]+) s  (no match|song\d)(?:  offset +([\d.]+) s)?", output)
    assert len(results) == 34 - 5 + 1
    for clock, song, offset in results:
        kind = window_kind(float(clock))
        if kind is None:
            assert song == "no match", f"unrelated audio at {clock} s matched {song}"
        elif kind != "mixed":
            assert song == kind
            # Window start in the recording + where that song's excerpt began, minus where it sits in the recording.
            expected = float(clock) - 5.0 + (3.0 if kind == "song1" else 5.0 - 22.0)
            assert float(offset) == pytest.approx(expected)
    summary = output[output.index("songs recognised in order") :]
    assert re.findall(r"song\d", summary) == ["song1", "song3"]
    assert "30 windows" in output and "0 skipped" in output


def test_live_query_from_a_fake_microphone_recognises_the_song_and_counts_overflows(live_setup, threshold):
    from common.config import load_config

    config = load_config(live_setup["config_path"], SCHEMA, [f"threshold={threshold}"])
    song1 = live_setup["recording"][: 12 * SR]
    module = fake_pyaudio({SR: song1}, overflow_blocks=(4, 40), block_delay=0.02)  # 0.1 s blocks at 5x real time
    lines = []
    summary = run_live(config, pyaudio_module=module, out=lines.append)
    assert wait_until(lambda: module.streams[0].closed) and module.terminated == 1
    assert summary.input_overflows == 2 and "input overflows 2" in lines[-1]
    # Timing decides how many windows a loaded machine skips, but every one recognised is song1, in place.
    assert summary.windows >= 1 and summary.windows + summary.skipped_windows == 12 - 5 + 1
    results = re.findall(r"audio +([\d.]+) s  (no match|song\d)(?:  offset +([\d.]+) s)?", "\n".join(lines))
    assert len(results) == summary.windows
    assert all(song == "song1" and float(offset) == float(clock) - 5.0 + 3.0 for clock, song, offset in results)


def test_microphone_without_pyaudio_gives_the_install_instructions(live_setup, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyaudio", None)
    assert live_query_main(["--config", str(live_setup["config_path"])]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: microphone input needs PyAudio") and error.count("\n") == 1
    assert "portaudio19-dev" in error and "pip install PyAudio" in error


def test_bad_live_settings_are_one_line_errors(live_setup, capsys):
    config = str(live_setup["config_path"])
    assert live_query_main(["--config", config, "--set", "duration=0.5", "--input", "x.wav"]) == 2
    assert "live.json: key 'duration' must be at least 1, got 0.5" in capsys.readouterr().err
    recording = str(live_setup["recording_path"])
    assert live_query_main(["--config", config, "--input", recording, "--speed", "-1"]) == 2
    assert "--speed must be 0" in capsys.readouterr().err
    assert live_query_main(["--config", config, "--input", str(live_setup["config_path"])]) == 2
    assert "live.json: cannot decode audio" in capsys.readouterr().err


def test_ctrl_c_stops_a_running_live_query_with_a_summary(live_setup):
    command = [sys.executable, "-m", "evaluation.live_query", "--config", str(live_setup["config_path"])]
    command += ["--input", str(live_setup["recording_path"]), "--speed", "5"]
    # SIGINT restored to its default: a shell that starts a job in the background makes its children ignore it.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in process.stdout:
            if " song1 " in line:  # listening and recognising: now press Ctrl-C
                process.send_signal(signal.SIGINT)
                break
        rest, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, errors
    assert "summary (stopped by Ctrl-C)" in rest and "Traceback" not in errors


def test_a_database_built_by_another_model_is_refused_in_one_line(live_setup, tmp_path, capsys):
    other = save_tiny_checkpoint(tmp_path / "other.pt", seed=1)
    argv = ["--config", str(live_setup["config_path"]), "--set", f"weights={json.dumps(str(other))}"]
    assert live_query_main([*argv, "--input", str(live_setup["recording_path"])]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: model mismatch") and error.count("\n") == 1
