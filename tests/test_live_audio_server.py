"""live_query.py through a real audio server: PulseAudio with a null sink, its monitor read as the microphone.

Optional: skipped, with the reason, when PulseAudio (pulseaudio, pactl, paplay), PyAudio or a
trained checkpoint in pretrained/ is missing (``scripts/setup.sh`` installs PulseAudio when run
as root). The test starts a headless PulseAudio daemon when none is running (and stops only
the one it started), loads a null sink, makes its monitor the default source, starts
``evaluation/live_query.py`` on the default microphone, plays a short recording of two
database songs into the sink with ``paplay``, and checks that exactly those two songs are
announced, in order.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.audio import write_wav
from database import Database
from models.checkpoint import model_identity
from models.encoder import embed_samples, load_encoder
from tests.signals import synth_song

SR = 8000
ROOT = Path(__file__).resolve().parent.parent
SINK = "fingerprint_test_sink"
SONG_SECONDS = 14.0


def _missing() -> str | None:
    tools = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if tools:
        return f"PulseAudio tools missing ({', '.join(tools)}): apt-get install pulseaudio pulseaudio-utils"
    try:
        import pyaudio  # noqa: F401
    except ImportError:
        return "PyAudio missing (pip install -r requirements-audio.txt)"
    if not sorted((ROOT / "pretrained").glob("*.pt")):
        return "no trained checkpoint in pretrained/"
    return None


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=20).stdout.strip()


@pytest.fixture(scope="module")
def null_sink():
    """A PulseAudio null sink whose monitor is the default source; yields the sink name."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    started = False
    if subprocess.run(["pactl", "info"], capture_output=True, timeout=20).returncode != 0:
        daemon = subprocess.run(
            ["pulseaudio", "-D", "--exit-idle-time=-1", "--disallow-exit"], capture_output=True, text=True, timeout=30
        )
        if daemon.returncode != 0 or subprocess.run(["pactl", "info"], capture_output=True, timeout=20).returncode:
            pytest.skip(f"PulseAudio would not start: {daemon.stderr.strip().splitlines()[-1:] or daemon.returncode}")
        started = True
    module = _pactl("load-module", "module-null-sink", f"sink_name={SINK}", f"rate={SR}", "channels=1")
    previous_source = _pactl("get-default-source")
    _pactl("set-default-source", f"{SINK}.monitor")
    try:
        yield SINK
    finally:
        subprocess.run(["pactl", "set-default-source", previous_source], capture_output=True, timeout=20)
        subprocess.run(["pactl", "unload-module", module], capture_output=True, timeout=20)
        if started:
            subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=20)


def test_live_query_on_the_monitor_of_a_null_sink_announces_the_songs_played_into_it(null_sink, tmp_path):
    weights = sorted((ROOT / "pretrained").glob("*.pt"))[0]
    encoder, payload = load_encoder(weights)
    songs = {f"song{number}": synth_song(30.0, 200 + number) for number in range(4)}
    Database.build(
        [(name, embed_samples(encoder, audio), 30.0, "") for name, audio in songs.items()],
        identity=model_identity(payload),
    ).save(tmp_path / "songs.index")
    # Two songs back to back from mid-song (off the database grid), with faint noise: high SNR.
    played = ["song1", "song3"]
    start = int(3.3 * SR)
    recording = np.concatenate([songs[name][start : start + int(SONG_SECONDS * SR)] for name in played])
    recording = recording + 0.003 * np.random.default_rng(0).standard_normal(len(recording)).astype(np.float32)
    write_wav(tmp_path / "recording.wav", recording, SR)
    config = {"weights": str(weights), "database": str(tmp_path / "songs.json"), "duration": 5.0, "step": 1.0}
    (tmp_path / "live.json").write_text(json.dumps(config))

    listen_seconds = 2 * SONG_SECONDS + 4.0
    live = subprocess.Popen(
        [sys.executable, str(ROOT / "evaluation" / "live_query.py"), "--config", str(tmp_path / "live.json")]
        + ["--max-seconds", str(listen_seconds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in live.stdout:  # wait until the microphone is open before playing
            lines.append(line)
            if line.startswith("listening to"):
                break
        assert lines and lines[-1].startswith("listening to input device"), "".join(lines)
        subprocess.run(["paplay", f"--device={null_sink}", str(tmp_path / "recording.wav")], check=True, timeout=60)
        output, _ = live.communicate(timeout=60)
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    text = "".join(lines) + output
    assert live.returncode == 0, text
    summary = text[text.index("songs recognised in order") :]
    announced = [line.split()[2] for line in summary.splitlines()[1:] if line.strip().endswith(")")]
    assert announced == played, text
    assert " Hz" in lines[-1]  # the header names the capture rate opened
