#!/usr/bin/env bash
# Issue 13: mini-family recipe trials judged on the proxy-regime lines only (never on
# 1bit-Merging's numbers). For each recipe: `bitmerge mini build --config RECIPE` on
# $DEVICE (default cuda), then the grid configs/experiments/mini-regime.toml on it
# (`--family mini`: base, experts, TA / TIES / DARE and the [[claims]] regime-1..5),
# then `bitmerge claims` and the letter probe. One archive per recipe: $OUT/<name>.tgz (recipe, family.json
# with settings and sha256, results.json, claims.md, letters.md, logs), and a one-line verdict per
# claim on stdout.
#   source scripts/device/prebuilt.sh .device/bin.tar.xz
#   bash scripts/device/mini_trial.sh RECIPE.toml [RECIPE.toml ...]
# A recipe is a configs/mini/mini.toml with other settings ([generator], [pretrain],
# [finetune]); its [family] name must stay "mini" (the grid runs with --family mini).
# A nano recipe (configs/mini/nano.toml with other settings, [family] name "nano") runs the
# grid with --family mini-nano.
# Env: DEVICE (cuda | cpu), BITMERGE_BIN (default build-gpu/bitmerge, else build/bitmerge),
# LIMIT (items per benchmark; smoke tests only), OUT (default out/mini-trials),
# SEED_FROM (a built family directory copied in first, so a recipe that changes only
# [finetune] reuses its base), DEADLINE (epoch seconds: each step is killed at it).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BITMERGE_BIN:-build-gpu/bitmerge}
[ -x "$BIN" ] || BIN=build/bitmerge
[ -x "$BIN" ] || { echo "mini_trial.sh: no bitmerge (scripts/device/prebuilt.sh first, or BITMERGE_BIN)" >&2; exit 2; }
[ $# -ge 1 ] || { sed -n 2,15p "$0"; exit 2; }
DEVICE=${DEVICE:-cuda}
PY=python3; for p in /opt/torch/.venv/bin/python .venv/bin/python; do [ -x "$p" ] && { PY="$p"; break; }; done
OUTD=${OUT:-out/mini-trials}
mkdir -p "$OUTD"
trial() {  # one recipe; prints its verdict lines, returns 0 / 1 (failed) / 2 (bad recipe)
  local recipe=$1 name work fam famarg t tb tg lim extra
  [ -f "$recipe" ] || { echo "mini_trial.sh: $recipe: no such recipe file" >&2; return 2; }
  name=$(basename "$recipe" .toml)
  work=$(mktemp -d)/$name
  mkdir -p "$work"
  cp "$recipe" "$work/recipe.toml"
  fam=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$recipe" | head -1)
  case "$fam" in mini) famarg=mini ;; nano) famarg=mini-nano ;;
    *) echo "$name: [family] name must be \"mini\" or \"nano\", got \"$fam\"" >&2; return 2 ;; esac
  [ -n "${SEED_FROM:-}" ] && { mkdir -p "$work/family" && cp -r "$SEED_FROM"/. "$work/family/"; }
  lim=(); [ -n "${DEADLINE:-}" ] && lim=(timeout -s KILL $(( DEADLINE - $(date +%s) )))
  t=$(date +%s)
  if ! "${lim[@]}" "$BIN" mini build --config "$recipe" --out "$work/family" --threads 1 --device "$DEVICE" > "$work/build.log" 2>&1; then
    echo "$name: mini build failed (tail of $work/build.log below)"; tail -5 "$work/build.log"; return 1
  fi
  tb=$(( $(date +%s) - t )); t=$(date +%s)
  extra=(); [ -n "${LIMIT:-}" ] && extra=(--limit "$LIMIT")
  [ -n "${DEADLINE:-}" ] && lim=(timeout -s KILL $(( DEADLINE - $(date +%s) )))
  if ! BITMERGE_MINI_DIR="$work/family" OMP_NUM_THREADS=1 "${lim[@]}" "$BIN" run configs/experiments/mini-regime.toml \
       --family "$famarg" --results-dir "$work/regime" "${extra[@]}" > "$work/run.log" 2>&1; then
    echo "$name: the mini-regime grid failed (tail of $work/run.log below)"; tail -5 "$work/run.log"; return 1
  fi
  tg=$(( $(date +%s) - t ))
  "$BIN" claims "$work/regime/results.json" --out "$work/claims.md" > "$work/claims.log" 2>&1
  # Letter binding or a letter prior (scripts/mini_letter_probe.py): each model's picks on its own
  # practice items and the test; the MMLU line's score alone cannot tell them apart.
  "$PY" scripts/mini_letter_probe.py "$work/family" --bin "$BIN" > "$work/letters.md" 2> "$work/letters.log" ||
    echo "(letter probe failed: $(tail -1 "$work/letters.log"))" > "$work/letters.md"
  cp "$work/family/family.json" "$work/family.json"
  tar czf "$OUTD/$name.tgz.tmp" -C "$work" recipe.toml family.json claims.md letters.md build.log run.log regime/results.json &&
    mv "$OUTD/$name.tgz.tmp" "$OUTD/$name.tgz"
  echo "== $name: trained in $tb s, grid in $tg s; $OUTD/$name.tgz"
  grep -E "^\| regime-" "$work/claims.md" | sed 's/^/   /'
  grep -E "^\| base " "$work/letters.md" | sed 's/^/   letters: /'
}
status=0
if [ "${JOBS:-1}" -le 1 ]; then
  for recipe in "$@"; do trial "$recipe" || status=$?; done
else  # JOBS recipes at once (small models leave one GPU mostly idle): each one's lines printed when done
  logs=$(mktemp -d); i=0; pids=()
  for recipe in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done
    i=$((i + 1)); ( trial "$recipe" > "$logs/$i.log" 2>&1; echo $? > "$logs/$i.rc" ) &
  done
  wait
  for j in $(seq 1 $i); do cat "$logs/$j.log"; rc=$(cat "$logs/$j.rc" 2>/dev/null || echo 1); [ "$rc" = 0 ] || status=$rc; done
fi
exit $status
