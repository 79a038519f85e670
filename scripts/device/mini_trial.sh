#!/usr/bin/env bash
# Issue 13: mini-family recipe trials judged on the proxy-regime lines only (never on
# 1bit-Merging's numbers). For each recipe: `bitmerge mini build --config RECIPE` on
# $DEVICE (default cuda), then the grid configs/experiments/mini-regime.toml on it
# (`--family mini`: base, experts, TA / TIES / DARE and the [[claims]] regime-1..5),
# then `bitmerge claims`. One archive per recipe: $OUT/<name>.tgz (recipe, family.json
# with settings and sha256, results.json, claims.md, logs), and a one-line verdict per
# claim on stdout.
#   source scripts/device/prebuilt.sh .device/bin.tar.xz
#   bash scripts/device/mini_trial.sh RECIPE.toml [RECIPE.toml ...]
# A recipe is a configs/mini/mini.toml with other settings ([generator], [pretrain],
# [finetune]); its [family] name must stay "mini" (the grid runs with --family mini).
# Env: DEVICE (cuda | cpu), BITMERGE_BIN (default build-gpu/bitmerge, else build/bitmerge),
# LIMIT (items per benchmark; smoke tests only), OUT (default out/mini-trials).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BITMERGE_BIN:-build-gpu/bitmerge}
[ -x "$BIN" ] || BIN=build/bitmerge
[ -x "$BIN" ] || { echo "mini_trial.sh: no bitmerge (scripts/device/prebuilt.sh first, or BITMERGE_BIN)" >&2; exit 2; }
[ $# -ge 1 ] || { sed -n 2,15p "$0"; exit 2; }
DEVICE=${DEVICE:-cuda}
OUTD=${OUT:-out/mini-trials}
mkdir -p "$OUTD"
status=0
for recipe in "$@"; do
  [ -f "$recipe" ] || { echo "mini_trial.sh: $recipe: no such recipe file" >&2; status=2; continue; }
  name=$(basename "$recipe" .toml)
  work=$(mktemp -d)/$name
  mkdir -p "$work"
  cp "$recipe" "$work/recipe.toml"
  t=$(date +%s)
  if ! "$BIN" mini build --config "$recipe" --out "$work/family" --threads 1 --device "$DEVICE" > "$work/build.log" 2>&1; then
    echo "$name: mini build failed (tail of $work/build.log below)"; tail -5 "$work/build.log"; status=1; continue
  fi
  tb=$(( $(date +%s) - t )); t=$(date +%s)
  extra=(); [ -n "${LIMIT:-}" ] && extra=(--limit "$LIMIT")
  if ! BITMERGE_MINI_DIR="$work/family" OMP_NUM_THREADS=1 "$BIN" run configs/experiments/mini-regime.toml \
       --family mini --results-dir "$work/regime" "${extra[@]}" > "$work/run.log" 2>&1; then
    echo "$name: the mini-regime grid failed (tail of $work/run.log below)"; tail -5 "$work/run.log"; status=1; continue
  fi
  tg=$(( $(date +%s) - t ))
  "$BIN" claims "$work/regime/results.json" --out "$work/claims.md" > "$work/claims.log" 2>&1
  cp "$work/family/family.json" "$work/family.json"
  tar czf "$OUTD/$name.tgz.tmp" -C "$work" recipe.toml family.json claims.md build.log run.log regime/results.json &&
    mv "$OUTD/$name.tgz.tmp" "$OUTD/$name.tgz"
  echo "== $name: trained in $tb s, grid in $tg s; $OUTD/$name.tgz"
  grep -E "^\| regime-" "$work/claims.md" | sed 's/^/   /'
done
exit $status
