#!/usr/bin/env bash
# Creates .venv and installs the project into it; reruns are a no-op until requirements change.
# Sourced by scripts/test.sh and scripts/demo.sh, so a fresh clone needs nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt requirements-audio.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing requirements (first run only)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # requirements.txt ends with "-e .": the project is installed (editable) with its dependencies.
  .venv/bin/python -m pip install -q -r requirements.txt 2>.venv/install.log || { cat .venv/install.log; exit 1; }
  # Live microphone input needs PortAudio's headers to build PyAudio. Optional: without it,
  # live_query.py still reads recordings with --input.
  if ! .venv/bin/python -c "import pyaudio" 2>/dev/null; then
    if ! dpkg -s portaudio19-dev >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      (apt-get install -y -q portaudio19-dev >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q portaudio19-dev >/dev/null 2>&1; }) \
        || echo "setup: could not install portaudio19-dev; microphone input disabled (file input still works)"
    fi
    .venv/bin/python -m pip install -q -r requirements-audio.txt 2>/dev/null \
      || echo "setup: PyAudio not installed; microphone input disabled (file input still works)"
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The optional test through a real audio server (tests/test_live_audio_server.py) needs PulseAudio;
# without it that test is skipped. Tried once per .venv, as root with apt-get only.
if [ ! -f .venv/.pulseaudio-tried ] && ! command -v pulseaudio >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q pulseaudio pulseaudio-utils >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q pulseaudio pulseaudio-utils >/dev/null 2>&1; }) \
    || echo "setup: could not install pulseaudio; the audio-server test will be skipped"
  touch .venv/.pulseaudio-tried
fi
# Rendered training music (data_prep/build_renders.py, the music_renders key) needs FluidSynth and two
# General MIDI soundfonts; without them a build asking for renders stops with the reason and the render
# tests are skipped. Tried once per .venv, as root with apt-get only.
if [ ! -f .venv/.fluidsynth-tried ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
  && ! { command -v fluidsynth >/dev/null && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] && [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ]; }; then
  packages="fluidsynth fluid-soundfont-gm timgm6mb-soundfont"
  (apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1; }) \
    || echo "setup: could not install fluidsynth and the soundfonts; rendered music (music_renders) unavailable"
  touch .venv/.fluidsynth-tried
fi
