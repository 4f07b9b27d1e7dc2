#!/usr/bin/env bash
# The demo: every stage of the toolkit on real audio from Debian packages, with the shipped model.
# Each step is the plain command a user would type; a second run reuses what the first built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
python=.venv/bin/python
start=$SECONDS
step() { printf '\n\033[1m== %s\033[0m (%ds)\n' "$1" $((SECONDS - start)); }

step "1/8 demo data: music, noise and impulse responses from Debian packages"
$python data_prep/prepare_data.py --config configs/data/demo.json

step "2/8 fingerprints of the 72 reference songs with the shipped model (pretrained/fingerprinter_cpu.pt)"
$python generation/generate_fingerprints.py --config configs/fingerprints_demo.json --set overwrite=true

step "3/8 faiss database"
$python generation/generate_index.py --config configs/index_demo.json --set overwrite=true

step "3b/8 landmark table of the same 72 songs: the classical baseline reported beside the model (docs/landmarks.md)"
$python generation/generate_landmarks.py --config configs/landmarks_demo.json

step "4/8 calibration: the \"no match\" rule for 1 % false matches per query, fitted on 48 out-of-database songs, validation noise and IRs"
$python evaluation/calibrate.py --config configs/calibrate_demo.json

step "5/8 three simulated phone recordings of a 15-song playlist (low, mid, high noise)"
$python evaluation/simulate_recording.py --config configs/simulate_demo.json

step "6/8 real-world protocol on the simulated recordings"
$python evaluation/evaluate_recording.py --config configs/eval_recording_demo.json

step "7/8 offline protocol: random-start queries in test-split noise"
$python evaluation/evaluate_offline.py --config configs/eval_offline_demo.json

step "8/8 live recognition following the mid-noise recording (read as if from a microphone), checked against its truth"
$python evaluation/live_query.py --config configs/live_demo.json --input runs/demo/recordings/mid_t.wav --speed 0 \
  --truth runs/demo/recordings/truth.csv

printf '\ndemo finished in %d s; reports in runs/demo/reports/\n' $((SECONDS - start))
