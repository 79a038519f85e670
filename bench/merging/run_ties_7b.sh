#!/usr/bin/env bash
# 3-expert TIES and 1bit-Merging (onebit) merges of random 7B-shaped
# checkpoints (8 layers, bf16, 15 GB of inputs) on the GPU vs the time to
# merely read the inputs once; target merge/read <= 1.5.
# On the device, from the repo root, with programs packed here
# (bash scripts/device/pack.sh -B build-<you> -o .device/bin-<you>.tar.xz bench_merging_stream):
#   source scripts/device/prebuilt.sh .device/bin-<you>.tar.xz && bash bench/merging/run_ties_7b.sh [BUILD_DIR]
# BUILD_DIR defaults to build-gpu (what prebuilt.sh unpacks). Also prints the
# page-cache read bandwidth with 8/16 pread threads, the time to write + fsync
# one output's bytes (plain, and through SafetensorsWriter with write-behind),
# and each merge (run twice) with its phase line ("cuda merge of ...").
# CPU_ROW=1 adds the CPU merge (peak RSS vs inputs); LAYERS, BENCH_DIR override.
set -euo pipefail
B=${1:-build-gpu}
D=${BENCH_DIR:-/tmp/bm-bench-merging}
LAYERS=${LAYERS:-8}
if [ ! -x "$B/bench_merging_stream" ]; then
  echo "run_ties_7b.sh: no $B/bench_merging_stream; source scripts/device/prebuilt.sh <archive> first or pass a build dir" >&2
  exit 2
fi
rm -rf "$D"
"$B/bench_merging_stream" gen "$D" --hidden 4096 --inter 11008 --layers "$LAYERS" --vocab 32000 --experts 3 --device cuda
"$B/bench_merging_stream" read "$D" >/dev/null            # warm the page cache
# The read limit: the fastest of three warm reads (the strictest ratio).
READ_S=
for i in 1 2 3; do
  READ=$("$B/bench_merging_stream" read "$D")
  echo "$READ"
  READ_S=$(echo "$READ" | awk -v best="$READ_S" '{print (best == "" || $2 < best) ? $2 : best}')
done
echo "read_s used for the ratios: $READ_S"
"$B/bench_merging_stream" read "$D" --threads 8
"$B/bench_merging_stream" read "$D" --threads 16
"$B/bench_merging_stream" write "$D"
for m in ties onebit ties onebit; do
  "$B/bench_merging_stream" merge "$D" --method $m --device cuda --read-s "$READ_S" 2>&1 | grep -E "merge_s|cuda merge|rror" || true
done
if [ "${CPU_ROW:-0}" = 1 ]; then
  "$B/bench_merging_stream" merge "$D" --method ties --device cpu --read-s "$READ_S"
fi
rm -rf "$D"
