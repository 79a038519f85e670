#!/usr/bin/env bash
# Main job: the paper on the self-built mini family (nano size on CPU).
#   SIZE=mini: the GPU size (configs/mini/mini.toml, trained on cuda, the same grids
#   with `--family mini`), reference results/mini-gpu, output out/mini-gpu.
#   1. build the family (bitmerge mini build --size $SIZE; cached when unchanged)
#   2. run every configs/experiments/mini-*.toml grid into $MINI_OUT/<experiment>
#      (cached cells are skipped; JOBS grids at once)
#   3. tables (md, LaTeX, CSV), figures (PNG, SVG) and claims next to each results.json
#   4. compare with the committed reference results/mini/<experiment>/results.json:
#      the same model hashes -> exact equality; other hashes (another pin, a
#      retrained family) -> said in one line, and a noise-aware comparison.
# The committed files are never written, except with --regenerate, which writes
# the results into results/mini itself (and results/mini/family.json).
# Environment: SIZE (nano | mini, default nano), BITMERGE_BIN (default build/bitmerge),
# BITMERGE_MINI_DIR (default mini-$SIZE), MINI_OUT (default out/mini, or out/mini-gpu
# for SIZE=mini; ignored by git), DEVICE (mini build device; default cpu for nano,
# cuda for mini), GPUS (e.g. 0,1),
# LIMIT (items per benchmark), JOBS (grids at once, default nproc; one libtorch
# thread each), COMPARE_FLAGS (extra flags for `bitmerge compare`).
set -euo pipefail
cd "$(dirname "$0")/.."
REGEN=0
[ "${1:-}" = --regenerate ] && REGEN=1
BIN=${BITMERGE_BIN:-./build/bitmerge}
SIZE=${SIZE:-nano}
case $SIZE in
  nano) REF=results/mini; OUT=${MINI_OUT:-out/mini}; DEVICE=${DEVICE:-cpu}; family_args=() ;;
  mini) REF=results/mini-gpu; OUT=${MINI_OUT:-out/mini-gpu}; DEVICE=${DEVICE:-cuda}; family_args=(--family mini) ;;
  *) echo "reproduce_mini: SIZE=$SIZE is not one of nano, mini" >&2; exit 2 ;;
esac
export BITMERGE_MINI_DIR=${BITMERGE_MINI_DIR:-$PWD/mini-$SIZE}
[ $REGEN = 1 ] && OUT=$REF
[ -x "$BIN" ] || { echo "reproduce_mini: $BIN not built; run 'make build' first" >&2; exit 2; }
t_all=$(date +%s)
phase() { echo "[time] $1: $(( $(date +%s) - $2 )) s"; }

t=$(date +%s)
"$BIN" mini build --size "$SIZE" --out "$BITMERGE_MINI_DIR" --threads 1 --device "$DEVICE"  # 1 thread: the same bits on every CPU
phase "$SIZE training (or cache)" "$t"

run_args=("${family_args[@]}")
[ -n "${GPUS:-}" ] && run_args+=(--gpus "$GPUS")
[ -n "${LIMIT:-}" ] && run_args+=(--limit "$LIMIT")

mkdir -p "$OUT"
# The grids run up to JOBS at once, one libtorch thread each (the nano model is
# too small for intra-op threads to pay), each with its own results dir and router
# cache and one shared cell cache ($OUT/cells): half of the grids' cells are the same
# cell (an expert or a merge in several tables), evaluated once; a grid that reaches a
# variant another grid is building waits for it (variant locks). Logs are printed in
# order once all have finished.
t=$(date +%s)
JOBS=${JOBS:-$(nproc)}
[ -n "${GPUS:-}" ] && JOBS=1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export BIN OUT logs
grid_status=0
printf '%s\n' configs/experiments/mini-*.toml | xargs -P "$JOBS" -I{} bash -c '
  name=$(basename "$1" .toml); shift
  OMP_NUM_THREADS=1 "$BIN" run "configs/experiments/$name.toml" --results-dir "$OUT/$name" --cells-dir "$OUT/cells" "$@" > "$logs/$name.log" 2>&1 ||
    { echo "reproduce_mini: $name failed (log below)" >&2; exit 1; }' _ {} "${run_args[@]}" || grid_status=1
for cfg in configs/experiments/mini-*.toml; do cat "$logs/$(basename "$cfg" .toml).log"; done
[ $grid_status = 0 ] || { echo "reproduce_mini: a grid failed" >&2; exit 1; }
phase "grids" "$t"

t=$(date +%s)
all_md="$OUT/tables.md"
tmp_md="$all_md.tmp.$$"
echo "# Mini family ($SIZE) results" > "$tmp_md"
for cfg in configs/experiments/mini-*.toml; do
  name=$(basename "$cfg" .toml)
  dir="$OUT/$name"
  "$BIN" table "$dir/results.json" --format md --storage --out "$dir/table.md" --plots "$dir"
  "$BIN" table "$dir/results.json" --format latex --storage --out "$dir/table.tex"
  "$BIN" table "$dir/results.json" --format csv --out "$dir/table.csv"
  { echo; cat "$dir/table.md"; } >> "$tmp_md"
done
mv "$tmp_md" "$all_md"
# The paper's claims ([[claims]] in each config) on these results: claims.md next to
# each results.json, all of them in $OUT/claims.md.
"$BIN" claims "$OUT"/mini-*/results.json --out "$OUT/claims.md"
phase "tables, plots and claims" "$t"

# The family's metadata (settings, numeric pin, sha256 of every model).
fam="$BITMERGE_MINI_DIR/family.json"
if [ $REGEN = 1 ]; then
  cp "$fam" "$REF/family.json.tmp" && mv "$REF/family.json.tmp" "$REF/family.json"
  echo "reproduce_mini: regenerated the committed results in $REF (review with git diff)"
  phase "total" "$t_all"
  exit 0
fi

status=0
"$BIN" mini hashes "$fam" "$REF/family.json" || true  # one line: same or different models (informational)
for cfg in configs/experiments/mini-*.toml; do
  name=$(basename "$cfg" .toml)
  ref="$REF/$name/results.json"
  if [ -f "$ref" ]; then
    echo "== compare $name: $OUT/$name/results.json against $ref"
    # shellcheck disable=SC2086
    "$BIN" compare "$OUT/$name/results.json" "$ref" ${COMPARE_FLAGS:-} || status=1
  else
    echo "reproduce_mini: no committed reference $ref yet (make regen-mini writes it)"
  fi
done
echo "reproduce_mini: tables in $all_md; per-experiment tables, figures and results.json in $OUT/"
phase "total" "$t_all"
exit $status
