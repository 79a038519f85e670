#!/usr/bin/env bash
# A/B of the fused whole-sequence forward (Transformer::set_fused_prefill, BITMERGE_FUSED_PREFILL=1: residual
# add + RMSNorm and SiLU*up as one kernel each, q|k|v and gate|up as one GEMM each, in scoring and prefill)
# against the default unfused forward, on one model, same binary, same warm GPU: `bitmerge eval` per arm
# (off, on, then off again when --repeat 2) with samples; per task the engine seconds and the process wall,
# and per item how far the two arms' answers differ (MC: the chosen option; generation: the extracted answer)
# and the largest metric gap, so a speed gain is never reported without what it changed.
#   bash bench/gpu/fused_prefill_ab.sh --model DIR | --shape llama7b [--layers 32]  [--tasks mmlu,hellaswag]
#        [--data-dir DIR] [--bin B] [--repeat 1|2]
# --shape writes a random bf16 model of that shape (bench/gpu/make_random_model.py, as full_suite.sh does, at the
# same path, so a model full_suite.sh wrote is reused).
# Writes $OUT/fused_prefill_ab.md (also printed) and the arms' results/samples under $OUT (or /tmp/bm_fused_ab).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODEL=""; SHAPE=""; LAYERS=32; TASKS=mmlu,hellaswag; DATA=""; BIN=""; REPEAT=1; DEVICE=cuda; LIMIT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2;;
    --shape) SHAPE="$2"; shift 2;;
    --layers) LAYERS="$2"; shift 2;;
    --tasks) TASKS="$2"; shift 2;;
    --data-dir) DATA="$2"; shift 2;;
    --bin) BIN="$2"; shift 2;;
    --repeat) REPEAT="$2"; shift 2;;
    --device) DEVICE="$2"; shift 2;;  # cpu + --limit: smoke test of this script (both arms equal there)
    --limit) LIMIT="$2"; shift 2;;
    *) echo "fused_prefill_ab.sh: unknown option $1 (see the header)" >&2; exit 2;;
  esac
done
[ -n "$BIN" ] || { [ -x build-gpu/bitmerge ] && BIN=build-gpu/bitmerge || BIN=build/bitmerge; }
[ -x "$BIN" ] || { echo "fused_prefill_ab.sh: no bitmerge at $BIN; build it or pass --bin" >&2; exit 2; }
[ -f "$(dirname "$BIN")/device_env.sh" ] && source "$(dirname "$BIN")/device_env.sh"
PY=python3; for p in /opt/torch/.venv/bin/python .venv/bin/python; do [ -x "$p" ] && { PY="$p"; break; }; done
if [ -z "$MODEL" ] && [ -n "$SHAPE" ]; then
  for d in "$DATA" .device/data ../shared/data; do [ -n "$d" ] && [ -d "$d/tokenizers" ] && { TD="$d"; break; }; done
  case "$SHAPE" in mistral*) TOK="$TD/tokenizers/mistral-7b-v0.1/tokenizer.model";; *) TOK="$TD/tokenizers/llama2/tokenizer.model";; esac
  MODEL=/tmp/bm_full_suite/model-$SHAPE-L$LAYERS
  [ -f "$MODEL/config.json" ] || "$PY" bench/gpu/make_random_model.py "$MODEL" --shape "$SHAPE" --layers "$LAYERS" \
      --tokenizer "$TOK" --device "$DEVICE" --dtype bfloat16 --bin "$BIN" >&2
fi
[ -n "$MODEL" ] && [ -d "$MODEL" ] || { echo "fused_prefill_ab.sh: pass --model DIR (a model folder) or --shape" >&2; exit 2; }
DARGS=(); [ -n "$DATA" ] && DARGS=(--data-dir "$DATA")
OUTD="${OUT:-/tmp/bm_fused_ab}"; mkdir -p "$OUTD"
DT=bfloat16; [ "$DEVICE" = cpu ] && DT=float32
arms=(off on); [ "$REPEAT" = 2 ] && arms=(off on off2)
for arm in "${arms[@]}"; do
  env_val=0; [ "$arm" = on ] && env_val=1
  s=$(date +%s.%N)
  BITMERGE_FUSED_PREFILL=$env_val "$BIN" eval --model "$MODEL" --tasks "$TASKS" "${DARGS[@]}" --device "$DEVICE" \
      --dtype "$DT" --limit "$LIMIT" --output "$OUTD/$arm.json" --samples "$OUTD/$arm.jsonl" \
      > "$OUTD/$arm.out" 2> "$OUTD/$arm.err" || { echo "arm $arm failed: $(tail -1 "$OUTD/$arm.err")" >&2; exit 1; }
  awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", e - s}' > "$OUTD/$arm.wall"
done
"$PY" - "$OUTD" "$TASKS" "${arms[@]}" <<'PYEOF' | tee "$OUTD/fused_prefill_ab.md"
import json, sys
outd, tasks, arms = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
res = {a: json.load(open(f"{outd}/{a}.json"))["tasks"] for a in arms}
wall = {a: open(f"{outd}/{a}.wall").read().strip() for a in arms}
samp = {}
for a in arms:
    d = {}
    for line in open(f"{outd}/{a}.jsonl"):
        j = json.loads(line)
        d[(j["task"], j["id"])] = j
    samp[a] = d
print("| task | items | " + " | ".join(f"engine s ({a})" for a in arms) + " | on / off | answers differing (on vs off) | largest metric gap |")
print("|---|---:|" + "---:|" * len(arms) + "---:|---:|---:|")
for t in tasks:
    n = int(res["off"][t].get("n", 0))
    secs = [res[a][t]["seconds"] for a in arms]
    diff, gap = 0, 0.0
    for (task, i), x in samp["off"].items():
        if task != t:
            continue
        y = samp["on"][(task, i)]
        diff += x["extracted"] != y["extracted"]
        for k, v in x["metrics"].items():
            gap = max(gap, abs(v - y["metrics"].get(k, v)))
    print(f"| {t} | {n} | " + " | ".join(f"{s:.1f}" for s in secs) + f" | {secs[1] / secs[0]:.3f} | {diff} | {gap:.4f} |")
print("\nprocess wall s: " + ", ".join(f"{a} {wall[a]}" for a in arms))
PYEOF
