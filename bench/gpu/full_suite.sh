#!/usr/bin/env bash
# The full seven-benchmark zero-shot suite (every item, each task's usual
# generation budget) on a random-weight bf16 model of a real shape, bitmerge
# alone: wall time per task and in all, against the speed issue's target
# (LLaMA-2-7B shape <= 10 min on one H100). Random weights never emit EOS, so
# every generation runs to its budget (the worst case). Tasks run one
# `bitmerge eval` each, within --budget-s in all: a task cut by the budget is
# reported as such (with the items it would have needed), never extrapolated.
#   bash bench/gpu/full_suite.sh [--data-dir DIR] [--shape llama7b] [--layers 32] [--budget-s 540]
#        [--tasks mmlu,hellaswag,truthfulqa,gsm8k,math,humaneval,mbpp] [--bin build-gpu/bitmerge] [--one-process]
# --one-process: the tasks in one `bitmerge eval --tasks A,B,...` (the model loaded and warmed up once, as a
# user runs the suite); per task the engine's own seconds from the results JSON, the process wall in all. A
# process cut by the budget reports nothing, so give it the whole suite's time.
# Writes $OUT/full_suite.md (table) and $OUT/full_<task>.json (bitmerge results) when $OUT is set.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DATA=""; SHAPE=llama7b; LAYERS=32; BUDGET=540; BIN=""; WORK=/tmp/bm_full_suite; DEVICE=cuda; LIMIT=0; ONE=0
TASKS=mmlu,hellaswag,truthfulqa,gsm8k,math,humaneval,mbpp
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA="$2"; shift 2;;
    --shape) SHAPE="$2"; shift 2;;
    --layers) LAYERS="$2"; shift 2;;
    --budget-s) BUDGET="$2"; shift 2;;
    --tasks) TASKS="$2"; shift 2;;
    --bin) BIN="$2"; shift 2;;
    --work) WORK="$2"; shift 2;;
    --device) DEVICE="$2"; shift 2;;   # cpu: smoke test of this script with --shape tiny
    --limit) LIMIT="$2"; shift 2;;     # smoke tests only: the target is for every item
    --one-process) ONE=1; shift;;
    -h|--help) sed -n 2,16p "$0"; exit 0;;
    *) echo "full_suite.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
for d in "$DATA" "${BITMERGE_DATA_DIR:-}" .device/data ../shared/data; do [ -n "$d" ] && [ -d "$d/mmlu" ] && { DATA="$(cd "$d" && pwd)"; break; }; done
[ -d "$DATA/mmlu" ] || { echo "full_suite.sh: benchmark data not found; pass --data-dir DIR" >&2; exit 2; }
for b in "$BIN" "${BITMERGE_BIN:-}" build-gpu/bitmerge; do [ -n "$b" ] && [ -x "$b" ] && { BIN="$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"; break; }; done
[ -x "$BIN" ] || { echo "full_suite.sh: bitmerge not found (scripts/device/prebuilt.sh or build.sh first, or --bin)" >&2; exit 2; }
[ -f "$(dirname "$BIN")/device_env.sh" ] && source "$(dirname "$BIN")/device_env.sh"
PY=python3; for p in /opt/torch/.venv/bin/python .venv/bin/python; do [ -x "$p" ] && { PY="$p"; break; }; done
OUTD="${OUT:-$WORK/out}"; mkdir -p "$WORK" "$OUTD"
case "$SHAPE" in mistral*) TOK="$DATA/tokenizers/mistral-7b-v0.1/tokenizer.model";; *) TOK="$DATA/tokenizers/llama2/tokenizer.model";; esac
MODEL="$WORK/model-$SHAPE-L$LAYERS"
"$PY" bench/gpu/make_random_model.py "$MODEL" --shape "$SHAPE" --layers "$LAYERS" --tokenizer "$TOK" --device "$DEVICE" --dtype bfloat16 --bin "$BIN" >&2
FLAGS=()
if ! { command -v bwrap >/dev/null 2>&1 && bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all true >/dev/null 2>&1; }; then
  FLAGS+=(--unsafe-no-sandbox)  # random-weight output on a throwaway machine
  echo "full_suite.sh: bubblewrap unusable here: code tasks run with --unsafe-no-sandbox" >&2
fi
T0=$(date +%s.%N)
rows=""; total=0; all_done=1
IFS=, read -r -a TL <<< "$TASKS"
if [ "$ONE" = 1 ]; then
  rc=0
  timeout "$BUDGET" "$BIN" eval --model "$MODEL" --tasks "$TASKS" --data-dir "$DATA" --device "$DEVICE" --dtype bfloat16 \
      --limit "$LIMIT" --output "$OUTD/full_all.json" "${FLAGS[@]}" > "$WORK/all.out" 2> "$WORK/all.err" || rc=$?
  total=$(awk -v s="$T0" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e - s}')
  if [ $rc -eq 0 ]; then
    rows=$("$PY" - "$OUTD/full_all.json" "$TASKS" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))["tasks"]
out = []
for t in sys.argv[2].split(","):
    x = r[t]
    out.append(f"| {t} | {int(x.get('n', 0))} | {x['seconds']:.1f} (engine) | done | |")
out.append(f"| (all, engine) | | {sum(r[t]['seconds'] for t in sys.argv[2].split(',')):.1f} | | |")
print("\\n".join(out))
PYEOF
)
    eng=$( { grep -E "tok/s" "$WORK/all.err" || true; } | sed 's/^\[bitmerge\] //' | tr '\n' ';' | sed 's/;$//')
    rows+="\n| (one process, wall) | | $total | done | ${eng} |\n"
  else
    st=$([ $rc -eq 124 ] && echo "cut at the budget" || echo "failed (exit $rc): $(tail -1 "$WORK/all.err")")
    rows="| $TASKS | | $total | $st | |\n"; all_done=0
  fi
  echo "full_suite.sh: one process, $TASKS: $([ $rc -eq 0 ] && echo done || echo "exit $rc") in $total s" >&2
  TL=()
fi
for t in "${TL[@]}"; do
  left=$(awk -v b="$BUDGET" -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN{printf "%d", b - (now - t0)}')
  if [ "$left" -lt 15 ]; then rows+="| $t | | | not run (budget spent) |\n"; all_done=0; continue; fi
  s=$(date +%s.%N); rc=0
  timeout "$left" "$BIN" eval --model "$MODEL" --tasks "$t" --data-dir "$DATA" --device "$DEVICE" --dtype bfloat16 \
      --limit "$LIMIT" --output "$OUTD/full_$t.json" "${FLAGS[@]}" > "$WORK/$t.out" 2> "$WORK/$t.err" || rc=$?
  w=$(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e - s}')
  total=$(awk -v a="$total" -v b="$w" 'BEGIN{printf "%.1f", a + b}')
  n=$("$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(int(x.get('n', 0)) for x in r['tasks'].values()))" "$OUTD/full_$t.json" 2>/dev/null || true)
  eng=$( { grep -E "tok/s" "$WORK/$t.err" || true; } | sed 's/^\[bitmerge\] //' | tr '\n' ';' | sed 's/;$//')
  if [ $rc -eq 0 ]; then st="done"; elif [ $rc -eq 124 ]; then st="cut at the budget"; all_done=0; else st="failed (exit $rc): $(tail -1 "$WORK/$t.err")"; all_done=0; fi
  rows+="| $t | ${n} | $w | $st | ${eng} |\n"
  echo "full_suite.sh: $t $st in $w s" >&2
done
COMMIT=$(sed -n 's/^commit //p' "$(dirname "$BIN")/PREBUILT" 2>/dev/null | head -1 || true)
[ -n "$COMMIT" ] || COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "#### Full suite, bitmerge alone ($SHAPE x $LAYERS layers, random bf16 weights, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo "$DEVICE"), $(date -u +%F), binary at commit $COMMIT)"
  echo
  echo "| task | items | wall s | status | engine log |"
  echo "|---|---:|---:|---|---|"
  printf "%b" "$rows"
  echo
  echo "Total $total s for the tasks run (budget $BUDGET s, --limit $LIMIT); every task done: $([ $all_done = 1 ] && echo yes || echo no). Target (issue 16, one H100): $(case "$SHAPE" in llama7b) echo "<= 300 s for the whole suite";; llama13b) echo "<= 720 s for the whole suite";; *) echo "none for this shape";; esac)$(case "$SHAPE" in llama7b|llama13b|mistral7b) echo "; the physical limit: \`python bench/gpu/suite_limit.py --shape $SHAPE\`";; esac)."
} | tee "$OUTD/full_suite.md"
