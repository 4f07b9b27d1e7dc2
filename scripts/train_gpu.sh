#!/usr/bin/env bash
# Train the published-size fingerprinter on a CUDA GPU from a training pack, for MINUTES of wall time.
#   bash scripts/train_gpu.sh PACK MINUTES [OUTPUT_DIR] [--set key=value ...]
# PACK: a folder or .tar from data_prep/make_pack.py. No network needed once .venv exists.
# The recipe (width 1.0, batch 512, Lamb, bf16, one DataLoader worker per core but one) is in
# training/gpu_recipe.py; docs/training.md, "Training on a GPU", has the details.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3)"
cd "$root"
exec "$python" training/gpu_recipe.py "$@"
