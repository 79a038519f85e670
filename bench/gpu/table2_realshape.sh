#!/usr/bin/env bash
# Table 2 end to end at real shape on one GPU (issue 16 item 1): a random-weight family
# with the LLaMA-2-7B family's shapes and file layouts (bench/gpu/make_random_family.py),
# then `bitmerge run configs/experiments/table2.toml` on it with a per-benchmark --limit,
# one `bitmerge run --only-variant I` process per variant in --order (each kind early:
# an expert, a static merge, 1bit-Merging, Routing), wall time per variant and per cell,
# GPU memory sampled with nvidia-smi, a kill-and-resume check (SIGKILL after --kill-after
# finished cells of --kill-variant, rerun, finished cells must be untouched), results.json
# and the table over the finished cells, all within --budget-s (what is not reached is
# reported as not run, never extrapolated). --work auto: /tmp/bm_t2 if the family (54 GB at
# the 7B shape) fits that disk or is already there, else /dev/shm/bm_t2 (RAM), else an error.
#   bash bench/gpu/table2_realshape.sh [--data-dir DIR] [--bin build-gpu/bitmerge] [--work auto|DIR]
#        [--limit 100] [--budget-s 540] [--shape llama7b|tiny] [--layers N] [--device cuda|cpu]
#        [--order "Chat,TIES-Merging,..."] [--kill-variant TIES-Merging] [--kill-after 3] [--kill-signal KILL]
#        [--no-routing] [--keep-results] [--config configs/experiments/table2.toml] [--python PY]
#        smoke-test only (they change cell keys): [--max-new-tokens N] [--router-per-domain N] [--router-epochs N]
# The experiment is run from a copy in WORK (family = the generated family.toml, or
# `--family` where `bitmerge run` has it; plus a Routing variant, which Table 2 lacks,
# unless --no-routing). Writes $OUT/table2_realshape.md (also printed), $OUT/results.json,
# $OUT/table2_logs.tar.gz (logs, cell records, GPU samples); WORK/out when $OUT is unset.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ARGS="$*"
DATA=""; BIN=""; PY=""; WORK=auto; LIMIT=100; BUDGET=540; SHAPE=llama7b; LAYERS=0; DEVICE=cuda
ORDER="Chat,TIES-Merging,1bit-Merging,Routing,Math,1bit-Math,Code,1bit-Code,1bit-Chat,Task Arithmetic,DARE"
KILL_VARIANT="TIES-Merging"; KILL_AFTER=3; KILL_SIGNAL=KILL; ROUTING=1; CONFIG=configs/experiments/table2.toml
MAXNEW=""; R_PER_DOMAIN=""; R_EPOCHS=""; RESERVE=25; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA="$2"; shift 2;;
    --bin) BIN="$2"; shift 2;;
    --python) PY="$2"; shift 2;;
    --work) WORK="$2"; shift 2;;
    --limit) LIMIT="$2"; shift 2;;
    --budget-s) BUDGET="$2"; shift 2;;
    --shape) SHAPE="$2"; shift 2;;
    --layers) LAYERS="$2"; shift 2;;
    --device) DEVICE="$2"; shift 2;;
    --order) ORDER="$2"; shift 2;;
    --kill-variant) KILL_VARIANT="$2"; shift 2;;   # "" = no kill-and-resume check
    --kill-after) KILL_AFTER="$2"; shift 2;;
    --kill-signal) KILL_SIGNAL="$2"; shift 2;;
    --no-routing) ROUTING=0; shift;;
    --keep-results) KEEP=1; shift;;  # resume WORK/results of an earlier call (warm machine) instead of starting afresh
    --config) CONFIG="$2"; shift 2;;
    --max-new-tokens) MAXNEW="$2"; shift 2;;
    --router-per-domain) R_PER_DOMAIN="$2"; shift 2;;
    --router-epochs) R_EPOCHS="$2"; shift 2;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0;;
    *) echo "table2_realshape.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
T0=$EPOCHREALTIME
DEADLINE=$(awk -v t="$T0" -v b="$BUDGET" 'BEGIN{printf "%.3f", t + b}')
left_s() { awk -v d="$DEADLINE" -v n="$EPOCHREALTIME" -v r="${1:-0}" 'BEGIN{printf "%d", d - n - r}'; }
since() { awk -v a="$1" -v n="$EPOCHREALTIME" 'BEGIN{printf "%.1f", n - a}'; }
for d in "$DATA" "${BITMERGE_DATA_DIR:-}" .device/data ../shared/data; do [ -n "$d" ] && [ -d "$d/mmlu" ] && { DATA="$(cd "$d" && pwd)"; break; }; done
[ -d "$DATA/mmlu" ] || { echo "table2_realshape.sh: benchmark data not found; pass --data-dir DIR" >&2; exit 2; }
for b in "$BIN" "${BITMERGE_BIN:-}" build-gpu/bitmerge; do [ -n "$b" ] && [ -x "$b" ] && { BIN="$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"; break; }; done
[ -x "$BIN" ] || { echo "table2_realshape.sh: bitmerge not found (scripts/device/prebuilt.sh or build.sh first, or --bin)" >&2; exit 2; }
[ -f "$(dirname "$BIN")/device_env.sh" ] && source "$(dirname "$BIN")/device_env.sh"
if [ -z "$PY" ]; then for p in /opt/torch/.venv/bin/python .venv/bin/python; do [ -x "$p" ] && { PY="$p"; break; }; done; fi
PY="${PY:-python3}"
[ -f "$CONFIG" ] || { echo "table2_realshape.sh: no experiment $CONFIG" >&2; exit 2; }
MAKE=("$PY" bench/gpu/make_random_family.py --tokenizers "$DATA/tokenizers" --shape "$SHAPE" --layers "$LAYERS" --device "$DEVICE" --bin "$BIN")
if [ "$WORK" = auto ]; then  # the disk if the family fits there (or is there), else RAM (/dev/shm)
  tried=""
  for c in /tmp/bm_t2 /dev/shm/bm_t2; do
    [ -d "$(dirname "$c")" ] || continue
    chk=$("${MAKE[@]}" "$c" --check 2>/dev/null | tail -1) || continue
    need=$(echo "$chk" | sed 's/.*"need_bytes": \([0-9]*\).*/\1/'); reuse=$(echo "$chk" | grep -c '"reusable": true' || true)
    have=$(df --output=avail -B1 "$(dirname "$c")" | tail -1)
    [ -d "$c/models" ] && have=$((have + $(du -sb "$c/models" | cut -f1)))
    tried+="$c: $((have >> 30)) GiB free for $((need >> 30)) GiB; "
    if [ "$reuse" = 1 ] || [ "$have" -gt $((need + (2 << 30))) ]; then WORK="$c"; break; fi
  done
  [ "$WORK" = auto ] && { echo "table2_realshape.sh: no room for the family: $tried pass --work DIR" | tee "${OUT:-/tmp}/table2_realshape.md" >&2; exit 1; }
fi
WORK="$(mkdir -p "$WORK" && cd "$WORK" && pwd)"
OUTD="${OUT:-$WORK/out}"; mkdir -p "$OUTD"
R="$WORK/results"; LOGS="$WORK/logs"
[ "$KEEP" = 1 ] || rm -rf "$R"
rm -rf "$LOGS"; mkdir -p "$R" "$LOGS"
export BITMERGE_DATA_DIR="$DATA" BITMERGE_SOURCE_DIR="$ROOT" BITMERGE_CACHE_DIR="$WORK/cache"
: > "$WORK/runs.tsv"; : > "$WORK/steps.tsv"
step() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$WORK/steps.tsv"; echo "table2_realshape.sh: $1: $2 s ${3:+($3)}" >&2; }
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

# Preflight: code benchmarks need the bubblewrap sandbox (`bitmerge run` has no unsafe switch).
if ! { command -v bwrap >/dev/null 2>&1 && bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all true >/dev/null 2>&1; }; then
  step preflight 0 "bubblewrap unusable here: mbpp and humaneval cells will fail"
fi

# 1. The family (reused when WORK/models matches).
step work_dir 0 "$WORK${tried:+ (chosen from: $tried)}; $(df -hT "$WORK" | tail -1 | awk '{print $5 " free of " $3 " on " $7 " (" $2 ")"}'); RAM $(free -g | awk '/^Mem/{print $2 " GiB, " $7 " GiB available"}')"
s=$EPOCHREALTIME; rc=0
timeout "$(left_s "$RESERVE")" "${MAKE[@]}" "$WORK" > "$WORK/make_family.out" 2> >(stamp > "$LOGS/make_family.log") || rc=$?
step make_family "$(since "$s")" "$(df -h "$WORK" | tail -1 | awk '{print $4 " left"}')"
if [ $rc != 0 ]; then
  echo "table2_realshape.sh: making the family failed (exit $rc): $(tail -1 "$LOGS/make_family.log" | cut -d' ' -f2-)" | tee "$OUTD/table2_realshape.md" >&2
  exit 1
fi

# 2. The experiment: a copy of the config pointing at the family, plus Routing.
CFG="$WORK/table2.toml"; FAMARGS=()
if "$BIN" run --help 2>/dev/null | grep -q -- "--family"; then
  cp "$CONFIG" "$CFG"; FAMARGS=(--family "$WORK/family.toml")
else
  sed "s|^family = .*|family = \"$WORK/family.toml\"|" "$CONFIG" > "$CFG"
fi
[ "$ROUTING" = 1 ] && printf '\n# added by bench/gpu/table2_realshape.sh: the Routing kind, measured here (not a Table 2 variant)\n[[variants]]\nname = "Routing"\ngroup = "Routing"\nkind = "routing"\n' >> "$CFG"
[ -n "$MAXNEW" ] && sed -i "s/^max_new_tokens = .*/max_new_tokens = $MAXNEW/" "$CFG"
[ -n "$R_PER_DOMAIN" ] && sed -i "s/^train_per_domain = .*/train_per_domain = $R_PER_DOMAIN/" "$CFG"
[ -n "$R_EPOCHS" ] && sed -i "s/^epochs = .*/epochs = $R_EPOCHS/" "$CFG"
RUN=("$BIN" run "$CFG" "${FAMARGS[@]}" --results-dir "$R" --limit "$LIMIT")

# 3. The cells (the first listing fingerprints every weight file: sha256, cached in WORK/cache).
s=$EPOCHREALTIME
timeout "$(left_s "$RESERVE")" "${RUN[@]}" --dry-run > "$WORK/cells.tsv" 2> >(stamp > "$LOGS/dry_run.log") ||
  { echo "table2_realshape.sh: bitmerge run --dry-run failed: $(tail -2 "$LOGS/dry_run.log" | cut -d' ' -f2- | tr '\n' ' ')" | tee "$OUTD/table2_realshape.md" >&2; exit 1; }
step fingerprint_and_list "$(since "$s")" "$(tail -1 "$WORK/cells.tsv")"
vindex() { awk -F'\t' -v n="$1" 'NF>=5 && !($2 in seen) {seen[$2]=c++} END {if (n in seen) print seen[n]}' "$WORK/cells.tsv"; }
NB=$(awk -F'\t' -v v="$(awk -F'\t' 'NF>=5 && $1==0 {print $2}' "$WORK/cells.tsv")" 'NF>=5 && $2==v' "$WORK/cells.tsv" | wc -l)
keys_of() { awk -F'\t' -v n="$1" 'NF>=5 && $2==n {print $5}' "$WORK/cells.tsv"; }
done_cells() { local c=0 k; for k in $(keys_of "$1"); do [ -f "$R/cells/$k.json" ] && c=$((c + 1)); done; echo $c; }

# 4. GPU memory, sampled (whole GPU: only this script's processes use it).
SAMPLER=""
if [ "$DEVICE" != cpu ] && command -v nvidia-smi >/dev/null 2>&1; then
  ( while :; do printf '%s %s\n' "$EPOCHREALTIME" "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1)"; sleep 0.25; done ) > "$WORK/gpu_mem.txt" &
  SAMPLER=$!
fi
cleanup() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true; }
trap cleanup EXIT

# One variant's process: budget-bounded; with KILL_AT > 0, killed once KILL_AT of its cells exist.
run_variant() {  # name vi attempt kill_at
  local name="$1" vi="$2" att="$3" kill_at="$4" left start pid rc=0 status=done t_end
  left=$(left_s "$RESERVE")
  if [ "$left" -lt 15 ]; then printf '%s\t%s\t%s\t\t\t\tnot run (budget spent)\n' "$vi" "$name" "$att" >> "$WORK/runs.tsv"; return 1; fi
  start=$EPOCHREALTIME
  t_end=$(awk -v s="$start" -v l="$left" 'BEGIN{printf "%.3f", s + l}')
  "${RUN[@]}" --only-variant "$vi" --no-results > "$LOGS/v$vi-$att.out" 2> >(stamp > "$LOGS/v$vi-$att.log") &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$kill_at" -gt 0 ] && [ "$(done_cells "$name")" -ge "$kill_at" ]; then
      kill -"$KILL_SIGNAL" "$pid" 2>/dev/null || true
      status=killed
      break
    fi
    if awk -v n="$EPOCHREALTIME" -v e="$t_end" 'BEGIN{exit !(n > e)}'; then
      kill -TERM "$pid" 2>/dev/null || true; status="cut at the budget"
      sleep 5; kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$pid" || rc=$?
  sleep 0.3  # the log's stamper drains
  if [ "$status" = killed ]; then  # what the killed run had finished: key, sha256, mtime
    for k in $(keys_of "$name"); do
      [ -f "$R/cells/$k.json" ] && echo "$k $(sha256sum < "$R/cells/$k.json" | cut -c1-64) $(stat -c %.9Y "$R/cells/$k.json")"
    done > "$WORK/resume_before.txt"
    status="killed with SIG$KILL_SIGNAL after $(wc -l < "$WORK/resume_before.txt") finished cells"
  fi
  if [ "$status" = done ] && [ "$rc" != 0 ]; then status="failed (exit $rc): $(grep -v '^$' "$LOGS/v$vi-$att.log" | tail -1 | cut -d' ' -f2- | cut -c1-200)"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$vi" "$name" "$att" "$start" "$EPOCHREALTIME" "$rc" "$status" >> "$WORK/runs.tsv"
  echo "table2_realshape.sh: $name: $status in $(since "$start") s ($(done_cells "$name")/$NB cells)" >&2
  [ "$status" = done ]
}

# 5. The variants, in order; the kill-and-resume check on KILL_VARIANT.
: > "$WORK/resume.txt"
IFS=, read -r -a VL <<< "$ORDER"
for name in "${VL[@]}"; do
  vi=$(vindex "$name")
  if [ -z "$vi" ]; then printf '\t%s\t1\t\t\t\tnot in the experiment\n' "$name" >> "$WORK/runs.tsv"; continue; fi
  if [ "$name" = "$KILL_VARIANT" ] && [ "$KILL_AFTER" -gt 0 ] && [ "$(done_cells "$name")" -lt "$KILL_AFTER" ]; then
    run_variant "$name" "$vi" 1 "$KILL_AFTER" || true
    if grep -q "killed" <(tail -1 "$WORK/runs.tsv"); then
      run_variant "$name" "$vi" 2 0 || true
      "$PY" - "$WORK" "$R" "$LOGS/v$vi-2.log" "$name" "$NB" >> "$WORK/resume.txt" <<'EOF' || true
import json, os, re, sys, hashlib
work, res, log, name, nb = sys.argv[1:6]
before = [l.split() for l in open(os.path.join(work, "resume_before.txt")) if l.strip()]
ok = True
lines = []
for key, sha, mt in before:
    p = os.path.join(res, "cells", key + ".json")
    if not os.path.exists(p):
        ok = False; lines.append(f"- {key}: finished before the kill, missing after the rerun"); continue
    sha2 = hashlib.sha256(open(p, "rb").read()).hexdigest()
    mt2 = "%.9f" % os.stat(p).st_mtime
    same = sha2 == sha and abs(float(mt2) - float(mt)) < 1e-6
    ok &= same
    lines.append(f"- {key} ({json.load(open(p))['benchmark']}): bytes {'same' if sha2 == sha else 'CHANGED'}, "
                 f"mtime {'same' if abs(float(mt2) - float(mt)) < 1e-6 else 'CHANGED'}")
text = open(log).read() if os.path.exists(log) else ""
m = re.search(r"(\d+) cells, (\d+) cached, (\d+) to run", text)
cached = int(m.group(2)) if m else -1
ok &= cached == len(before)
keys = [l.rstrip("\n").split("\t")[4] for l in open(os.path.join(work, "cells.tsv")) if l.count("\t") >= 4 and l.split("\t")[1] == name]
present = sum(os.path.exists(os.path.join(res, "cells", k + ".json")) for k in keys)
left = [f for f in os.listdir(os.path.join(res, "cells")) if ".tmp-" in f]
print(f"**Kill-and-resume ({name}): {'PASS' if ok and present == len(keys) else 'FAIL'}**: killed after {len(before)} "
      f"finished cells; the rerun said {cached} cached (expected {len(before)}), then finished {present}/{len(keys)}; "
      f"temp files left by the kill: {len(left)}")
print("\n".join(lines))
EOF
    fi
  else
    run_variant "$name" "$vi" 1 0 || true
  fi
done
cleanup

# 6. results.json and the table over the finished cells (no cell is computed here).
s=$EPOCHREALTIME
"${RUN[@]}" --dry-run > "$WORK/cells_end.tsv" 2>/dev/null || true
mapfile -t CACHED < <(awk -F'\t' 'NF>=5 && $4=="cached" {print $1}' "$WORK/cells_end.tsv")
if [ "${#CACHED[@]}" -gt 0 ]; then
  "${RUN[@]}" --only-cell "${CACHED[@]}" > "$LOGS/assemble.out" 2> >(stamp > "$LOGS/assemble.log") || true
  "$BIN" table "$R/results.json" --format md > "$WORK/table.md" 2> "$LOGS/table.err" || true
fi
step assemble_results "$(since "$s")" "${#CACHED[@]} cells"
step total "$(since "$T0")" "budget $BUDGET s"

# 7. The report and what comes back.
COMMIT=$(sed -n "s/^commit //p" "$(dirname "$BIN")/PREBUILT" 2>/dev/null | head -1 || true)
[ -n "$COMMIT" ] || COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' (dirty tree)' || true)"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
"$PY" bench/gpu/table2_report.py --work "$WORK" --device "${GPU:-$DEVICE}" --commit "$COMMIT" --limit "$LIMIT" \
  --budget "$BUDGET" --args "$ARGS" --out "$OUTD/table2_realshape.md"
[ -f "$R/results.json" ] && cp "$R/results.json" "$OUTD/results.json"
tar -C "$WORK" -czf "$OUTD/table2_logs.tar.gz" --exclude='*.samples.json' --exclude='locks' \
  logs runs.tsv steps.tsv cells.tsv resume.txt table2.toml family.toml make_family.out \
  $(cd "$WORK" && ls -d gpu_mem.txt table.md resume_before.txt make_family.json results/cells results/router 2>/dev/null) || true
cat "$OUTD/table2_realshape.md"
echo; echo "==== the top of $OUTD/table2_realshape.md again (setup, variants, resume check) ===="
awk '/^\| variant \| benchmark/ {exit} {print}' "$OUTD/table2_realshape.md"
