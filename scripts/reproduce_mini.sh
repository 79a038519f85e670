#!/usr/bin/env bash
# Main job: the paper on the self-built mini family (nano size on CPU).
#   1. build the family (bitmerge mini build --size nano; cached when unchanged)
#   2. run every configs/experiments/mini-*.toml grid (cached cells are skipped; JOBS at once)
#   3. tables (md, LaTeX, CSV) and figures (PNG, SVG) into results/mini/<experiment>/
#   4. compare against the committed baseline results/mini/baseline/<experiment>.json
# Environment: BITMERGE_BIN (default build/bitmerge), BITMERGE_MINI_DIR (default
# mini-nano), GPUS (e.g. 0,1: one worker per GPU), LIMIT (items per benchmark),
# COMPARE_TOLERANCE (points, default 5.0 = two items of a 40-item nano benchmark), UPDATE_BASELINE=1 (write the baseline),
# JOBS (grids run at once, default nproc; each with one libtorch thread; 1 when GPUS is set).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BITMERGE_BIN:-./build/bitmerge}
export BITMERGE_MINI_DIR=${BITMERGE_MINI_DIR:-$PWD/mini-nano}
OUT=results/mini
TOL=${COMPARE_TOLERANCE:-5.0}
[ -x "$BIN" ] || { echo "reproduce_mini: $BIN not built; run 'make build' first" >&2; exit 2; }

"$BIN" mini build --size nano --out "$BITMERGE_MINI_DIR" --threads 1  # 1 thread: bit-reproducible training

run_args=()
[ -n "${GPUS:-}" ] && run_args+=(--gpus "$GPUS")
[ -n "${LIMIT:-}" ] && run_args+=(--limit "$LIMIT")

status=0
mkdir -p "$OUT"
# The grids are independent (each its own results dir and router cache): run
# up to JOBS at once, one libtorch thread each (the nano model is too small for
# intra-op threads to pay, and two multi-threaded processes on two cores would
# oversubscribe them). Logs are printed in order once all have finished.
JOBS=${JOBS:-$(nproc)}
[ -n "${GPUS:-}" ] && JOBS=1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export BIN OUT logs
grid_status=0
printf '%s\n' configs/experiments/mini-*.toml | xargs -P "$JOBS" -I{} bash -c '
  name=$(basename "$1" .toml); shift
  OMP_NUM_THREADS=1 "$BIN" run "configs/experiments/$name.toml" --results-dir "$OUT/$name" "$@" > "$logs/$name.log" 2>&1 ||
    { echo "reproduce_mini: $name failed (log below)" >&2; exit 1; }' _ {} "${run_args[@]}" || grid_status=1
for cfg in configs/experiments/mini-*.toml; do cat "$logs/$(basename "$cfg" .toml).log"; done
[ $grid_status = 0 ] || { echo "reproduce_mini: a grid failed" >&2; exit 1; }

all_md="$OUT/tables.md"
tmp_md="$all_md.tmp.$$"
echo "# Mini family (nano) results" > "$tmp_md"
for cfg in configs/experiments/mini-*.toml; do
  name=$(basename "$cfg" .toml)
  dir="$OUT/$name"
  "$BIN" table "$dir/results.json" --format md --storage --out "$dir/table.md" --plots "$dir"
  "$BIN" table "$dir/results.json" --format latex --storage --out "$dir/table.tex"
  "$BIN" table "$dir/results.json" --format csv --out "$dir/table.csv"
  { echo; cat "$dir/table.md"; } >> "$tmp_md"
  base="$OUT/baseline/$name.json"
  if [ "${UPDATE_BASELINE:-0}" = 1 ]; then
    mkdir -p "$OUT/baseline" && cp "$dir/results.json" "$base.tmp" && mv "$base.tmp" "$base"
    echo "reproduce_mini: baseline updated: $base"
  elif [ -f "$base" ]; then
    echo "== compare $name against $base (tolerance $TOL)"
    "$BIN" compare "$dir/results.json" "$base" --tolerance "$TOL" || status=1
  else
    echo "reproduce_mini: no baseline $base yet (UPDATE_BASELINE=1 writes it)"
  fi
done
mv "$tmp_md" "$all_md"
echo "reproduce_mini: tables in $all_md; per-experiment tables, figures and results.json in $OUT/"
exit $status
