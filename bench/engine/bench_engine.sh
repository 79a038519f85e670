#!/usr/bin/env bash
# Engine score / generate tokens/s vs HF transformers at batch sizes 1, 32, 128 (H100, bf16).
# usage: bench/engine/bench_engine.sh [LAYERS] [bench_engine.py options: --eager --profile ...]
#   (default 32 layers). Binary: $BITMERGE_BIN, default build-gpu/bitmerge (scripts/device/build.sh,
#   or scripts/device/prebuilt.sh for programs packed on the dev machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${BITMERGE_DEVICE_PYTHON:-/opt/torch/.venv/bin/python}
BIN=${BITMERGE_BIN:-build-gpu/bitmerge}
LAYERS=${1:-32}
shift || true
MODEL=${ENGINE_MODEL_DIR:-${TMPDIR:-/tmp}/bitmerge_engine_llama7b_L${LAYERS}}
[ -x "$BIN" ] || { echo "bench_engine: $BIN not built; run scripts/device/build.sh or prebuilt.sh first" >&2; exit 2; }
# LD_LIBRARY_PATH of the libraries scripts/device/build.sh / prebuilt.sh unpacked
ENVSH="$(dirname "$BIN")/device_env.sh"
if [ -f "$ENVSH" ]; then source "$ENVSH"; fi
"$PY" scripts/device/engine_make_model.py "$MODEL" --layers "$LAYERS"
STAMP="$(dirname "$BIN")/PREBUILT"
if [ -f "$STAMP" ]; then
  echo "binary: $(head -2 "$STAMP" | tr '\n' ' ')($(grep -c '^dirty' "$STAMP") dirty files)  $(date -u +%FT%TZ)"
else
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)  $(date -u +%FT%TZ)"
fi
"$PY" bench/engine/bench_engine.py --bin "$BIN" --model "$MODEL" --batch-sizes "${BATCH_SIZES:-1,32,128}" "$@"
