#!/usr/bin/env bash
# 3-expert TIES merge of random 7B-shaped checkpoints (8 layers, bf16) on the
# GPU vs the time to merely read the inputs; target merge/read <= 1.5.
# One command on a GPU machine, from the repo root:
#   bash bench/merging/run_ties_7b.sh [BUILD_DIR]
# Also runs the CPU merge of the same inputs and reports peak RSS vs input bytes.
set -euo pipefail
B=${1:-build}
D=${BENCH_DIR:-/tmp/bm-bench-merging}
LAYERS=${LAYERS:-8}
if [ ! -x "$B/bench_merging_stream" ]; then
  cmake -S . -B "$B" -G Ninja >/dev/null && ninja -C "$B" bench_merging_stream
fi
rm -rf "$D"
"$B/bench_merging_stream" gen "$D" --hidden 4096 --inter 11008 --layers "$LAYERS" --vocab 32000 --experts 3 --device cuda
"$B/bench_merging_stream" read "$D" >/dev/null            # warm the page cache
READ=$("$B/bench_merging_stream" read "$D")
echo "$READ"
READ_S=$(echo "$READ" | awk '{print $2}')
"$B/bench_merging_stream" merge "$D" --method ties --device cuda --read-s "$READ_S"
"$B/bench_merging_stream" merge "$D" --method onebit --device cuda --read-s "$READ_S"
"$B/bench_merging_stream" merge "$D" --method ties --device cpu --read-s "$READ_S"
rm -rf "$D"
