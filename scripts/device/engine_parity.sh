#!/usr/bin/env bash
# Engine bf16 parity vs HF transformers on a random LLaMA-2-7B-shaped model (H100).
# usage: scripts/device/engine_parity.sh [LAYERS]   (default 32; binary from scripts/device/build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${BITMERGE_DEVICE_PYTHON:-/opt/torch/.venv/bin/python}
BIN=${BITMERGE_BIN:-build-gpu/bitmerge}
LAYERS=${1:-32}
MODEL=${ENGINE_MODEL_DIR:-${TMPDIR:-/tmp}/bitmerge_engine_llama7b_L${LAYERS}}
[ -x "$BIN" ] || { echo "engine_parity: $BIN not built; run scripts/device/build.sh first" >&2; exit 2; }
# LD_LIBRARY_PATH of the libraries scripts/device/build.sh unpacked
ENVSH="$(dirname "$BIN")/device_env.sh"
if [ -f "$ENVSH" ]; then source "$ENVSH"; fi
"$PY" scripts/device/engine_make_model.py "$MODEL" --layers "$LAYERS"
"$PY" scripts/device/engine_parity.py --bin "$BIN" --model "$MODEL"
