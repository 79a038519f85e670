#!/usr/bin/env bash
# Builds a mini family and evaluates base + experts on the 7 benchmarks with
# the real eval path, printing the acceptance table for docs/mini-family.md.
#   tests/mini/measure_family.sh nano [cpu] [OUT]        (CPU, CI-sized)
#   tests/mini/measure_family.sh mini cuda [OUT]         (GPU)
# Needs a built ./build/bitmerge (or BITMERGE_BIN).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-nano}
DEVICE=${2:-cpu}
OUT=${3:-mini-$SIZE}
BIN=${BITMERGE_BIN:-./build/bitmerge}
TASKS=mmlu,hellaswag,truthfulqa,gsm8k,math,humaneval,mbpp
EXTRA=()
[ "$DEVICE" != cpu ] && EXTRA=(--dtype float32)
# --config from this checkout (--size alone reads the configs/ the binary was built in)
time "$BIN" mini build --size "$SIZE" --config "configs/mini/$SIZE.toml" --device "$DEVICE" --out "$OUT"
for m in base chat math code; do
  time "$BIN" eval --model "$OUT/models/$m" --tasks "$TASKS" --data-dir "$OUT/data" --device "$DEVICE" \
    "${EXTRA[@]}" --output "$OUT/eval-$m.json" --samples "$OUT/samples-$m.jsonl"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
tasks = ["mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "humaneval", "mbpp"]
dom = {"chat": tasks[:3], "math": tasks[3:5], "code": tasks[5:]}
def headline(r):
    vals = {}
    for t, x in r["tasks"].items():
        v = x["headline"]["value"]
        if v is not None: vals[t] = 100.0 * float(v)
    return vals
rows = {m: headline(json.load(open(f"{out}/eval-{m}.json"))) for m in ["base", "chat", "math", "code"]}
print("| model | " + " | ".join(tasks) + " | chat avg | math avg | code avg |")
print("|---" * (len(tasks) + 4) + "|")
for m, v in rows.items():
    avgs = [sum(v.get(t, 0) for t in ts) / len(ts) for ts in dom.values()]
    print(f"| {m} | " + " | ".join(f"{v.get(t, float('nan')):.1f}" for t in tasks) + " | " + " | ".join(f"{a:.1f}" for a in avgs) + " |")
PY
