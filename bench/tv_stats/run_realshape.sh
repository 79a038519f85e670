#!/usr/bin/env bash
# Task-vector statistics at real shape: a LLaMA-2-7B-shaped family (full width,
# 2 layers, fp16; base + 2 experts, 1.3 GB each) generated in DIR (default
# /tmp/tvreal; never the repository), then `bitmerge inspect --task-vectors`
# under /usr/bin/time -v. Prints the Markdown, wall time and peak RSS, and the
# ratio of the run's time to a plain read of the inputs (cat > /dev/null).
# usage: bench/tv_stats/run_realshape.sh [DIR] [BIN]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-/tmp/tvreal}
BIN=${2:-$ROOT/build/bitmerge}
PY=${BITMERGE_PYTHON:-$ROOT/.venv/bin/python}
FAM=$DIR/llama2-7b-2l
if [ ! -f "$FAM/math/model.safetensors" ]; then
  OMP_NUM_THREADS=1 "$PY" "$ROOT/bench/tv_stats/make_realshape.py" "$FAM"
fi
read_s=$( { /usr/bin/time -f %e cat "$FAM"/*/model.safetensors >/dev/null; } 2>&1 )
/usr/bin/time -v "$BIN" inspect --task-vectors --base "$FAM/base" \
  --experts "chat=$FAM/chat,math=$FAM/math" --json "$DIR/tv-stats.json" 2>"$DIR/time.txt"
grep -E "Elapsed|Maximum resident" "$DIR/time.txt"
wall=$(grep Elapsed "$DIR/time.txt" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
echo "read of the inputs (cat, page cache as it is): ${read_s} s; inspect --task-vectors: ${wall} s; ratio $(awk -v a="$wall" -v b="$read_s" 'BEGIN{printf "%.2f", a/b}')"
