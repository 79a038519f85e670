#!/usr/bin/env bash
# Packs programs built HERE (the dev machine's build is CUDA-enabled for sm_90
# and links the same libtorch 2.11+cu130 as the device) so that a device call
# runs them without spending ~100 s of device time on a build.
#   bash scripts/device/pack.sh [-B BUILD_DIR] [-o OUT.tar.xz] PROGRAM...
#   bash scripts/device/pack.sh -d [DATA_DIR]    (the benchmark data, default ../shared/data,
#        as .device/data.tar.xz: 8 MB instead of 24; prebuilt.sh unpacks it into .device/data)
# PROGRAM is a path inside BUILD_DIR (bitmerge, tests/engine/test_engine,
# bench/kernels/bench_kernels, bench_merging_stream, ...). The archive holds
# them under build-gpu/ with a PREBUILT stamp (commit, dirty files, date).
# On the device: carry [".debs", "<OUT>"] and `source scripts/device/prebuilt.sh <OUT>`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
BUILD=build OUTF=.device/bin.tar.xz
if [ "${1:-}" = "-d" ]; then
  data="${2:-../shared/data}"
  [ -d "$data/mmlu" ] || { echo "pack.sh: $data is not the benchmark data directory (no mmlu/); pass -d DIR" >&2; exit 2; }
  data="$(cd "$data" && pwd)"
  mkdir -p .device && tmp=".device/data.tar.xz.tmp.$$"
  tar -cJf "$tmp" -C "$(dirname "$data")" --transform "s|^$(basename "$data")|data|" "$(basename "$data")" ||
    { rm -f "$tmp"; echo "pack.sh: could not pack $data into .device/data.tar.xz" >&2; exit 1; }
  mv "$tmp" .device/data.tar.xz
  echo "pack.sh: .device/data.tar.xz ($(du -h .device/data.tar.xz | cut -f1)) from $data"
  exit 0
fi
while getopts "B:o:" opt; do
  case $opt in B) BUILD=$OPTARG ;; o) OUTF=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "pack.sh: name the programs to pack (paths inside $BUILD)" >&2; exit 2; }
grep -q "^BITMERGE_CUDA_ARCHS:STRING=90" "$BUILD/CMakeCache.txt" 2>/dev/null ||
  echo "pack.sh: warning: $BUILD was not configured with BITMERGE_CUDA_ARCHS=90" >&2
find "$BUILD" -name '*.cu.o' | grep -q . ||
  { echo "pack.sh: $BUILD has no CUDA objects (configure with nvcc on PATH, BITMERGE_CUDA=ON)" >&2; exit 2; }
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build-gpu"
for p in "$@"; do
  [ -x "$BUILD/$p" ] || { echo "pack.sh: $BUILD/$p is not a built program; build it first (ninja -C $BUILD $(basename "$p"))" >&2; exit 2; }
  mkdir -p "$stage/build-gpu/$(dirname "$p")"
  strip -o "$stage/build-gpu/$p" "$BUILD/$p"
done
{ echo "commit $(git rev-parse --short HEAD)"; echo "built $(date -u +%FT%TZ) from $BUILD";
  git status --short | sed 's/^/dirty /'; } >"$stage/build-gpu/PREBUILT"
mkdir -p "$(dirname "$OUTF")"
tar -C "$stage" -cJf "$OUTF.tmp" build-gpu && mv "$OUTF.tmp" "$OUTF"
echo "pack.sh: $OUTF ($(du -h "$OUTF" | cut -f1)): $*"
