#!/usr/bin/env bash
# bitmerge vs HF transformers, side by side on one machine, same weights and requests.
#
#   bash bench/gpu/run_bench.sh [--data-dir DIR] [--layers 8] [--shape llama7b] [--limit 32]
#        [--batch-size 32] [--max-new-tokens 0] [--mode suite|scaling|all] [--device cuda]
#        [--scale-shapes llama7b,llama13b] [--scale-batches 1,32,128] [--scale-new-tokens 64]
#        [--scale-score-n 256] [--scale-prompt-tokens 64] [--tasks mmlu,...] [--work DIR] [--bin build-gpu/bitmerge] [--python PY]
#   (binary: --bin, else $BITMERGE_BIN, else build-gpu/bitmerge from scripts/device/build.sh or prebuilt.sh)
#
# Chain: random model(s) (bench/gpu/make_random_model.py) -> `bitmerge requests` (with token
# ids) -> `bitmerge eval` (timed end to end) -> `bitmerge score` / `bitmerge generate` on the
# same requests (engine time, from their log lines) -> bench/gpu/hf_peer.py on the same requests
# -> bench/gpu/report.py: markdown table in $OUT/bench_gpu.md (and on stdout).
# Scaling mode: batch sizes x shapes through `bitmerge score` / `bitmerge generate` vs hf_peer.
# GPU memory peaks are sampled with nvidia-smi (whole process, both peers alike).
set -euo pipefail
ARGS="$*"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

DATA=""; LAYERS=8; SHAPE=llama7b; LIMIT=32; BATCH=32; MAXNEW=0; MODE=all
DEVICE=cuda; SCALE_SHAPES=llama7b,llama13b; SCALE_BATCHES=1,32,128; SCALE_NEW=64; SCALE_N=256; SCALE_PROMPT=64
TASKS=mmlu,hellaswag,truthfulqa,gsm8k,math,humaneval,mbpp; WORK=/tmp/bm_bench_gpu; BIN=""; PY=""
PEAK_TFLOPS=790; HBM_TBS=3.0; DTYPE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA="$2"; shift 2;;
    --layers) LAYERS="$2"; shift 2;;
    --shape) SHAPE="$2"; shift 2;;
    --limit) LIMIT="$2"; shift 2;;
    --batch-size) BATCH="$2"; shift 2;;
    --max-new-tokens) MAXNEW="$2"; shift 2;;
    --mode) MODE="$2"; shift 2;;
    --device) DEVICE="$2"; shift 2;;
    --dtype) DTYPE="$2"; shift 2;;
    --scale-shapes) SCALE_SHAPES="$2"; shift 2;;
    --scale-batches) SCALE_BATCHES="$2"; shift 2;;
    --scale-new-tokens) SCALE_NEW="$2"; shift 2;;
    --scale-score-n) SCALE_N="$2"; shift 2;;
    --scale-prompt-tokens) SCALE_PROMPT="$2"; shift 2;;
    --tasks) TASKS="$2"; shift 2;;
    --work) WORK="$2"; shift 2;;
    --bin) BIN="$2"; shift 2;;
    --python) PY="$2"; shift 2;;
    --peak-tflops) PEAK_TFLOPS="$2"; shift 2;;
    --hbm-tbs) HBM_TBS="$2"; shift 2;;
    -h|--help) sed -n 2,17p "$0"; exit 0;;
    *) echo "run_bench.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
case "$MODE" in suite|scaling|all) ;; *) echo "run_bench.sh: --mode must be suite, scaling or all" >&2; exit 2;; esac
if [ -z "$DATA" ]; then  # $BITMERGE_DATA_DIR (make exports ../shared/data), else a carried copy
  for d in "${BITMERGE_DATA_DIR:-}" .device/data data ../shared/data; do [ -n "$d" ] && [ -d "$d/mmlu" ] && { DATA="$d"; break; }; done
fi
[ -n "$DATA" ] && [ -d "$DATA" ] || { echo "run_bench.sh: benchmark data not found; pass --data-dir DIR (layout of shared/data)" >&2; exit 2; }
DATA="$(cd "$DATA" && pwd)"
if [ -z "$BIN" ]; then
  for b in "${BITMERGE_BIN:-}" build-gpu/bitmerge build/bitmerge; do [ -n "$b" ] && [ -x "$b" ] && { BIN="$b"; break; }; done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "run_bench.sh: bitmerge binary not found; build it (scripts/device/build.sh bitmerge) or pass --bin" >&2; exit 2; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
# library path of scripts/device/build.sh / prebuilt.sh (programs packed on the dev machine)
if [ -f "$(dirname "$BIN")/device_env.sh" ]; then source "$(dirname "$BIN")/device_env.sh"; fi
if [ -z "$PY" ]; then
  for p in /opt/torch/.venv/bin/python .venv/bin/python; do [ -x "$p" ] && { PY="$p"; break; }; done
  PY="${PY:-python3}"
fi
if [ -z "$DTYPE" ]; then [ "$DEVICE" = cpu ] && DTYPE=float32 || DTYPE=bfloat16; fi
OUT="${OUT:-$WORK/out}"
mkdir -p "$WORK" "$OUT"
LOGS="$WORK/logs"; mkdir -p "$LOGS"
tok_for() { case "$1" in mistral*) echo "$DATA/tokenizers/mistral-7b-v0.1/tokenizer.model";; *) echo "$DATA/tokenizers/llama2/tokenizer.model";; esac; }
T_START=$(date +%s)
say() { echo "[run_bench +$(( $(date +%s) - T_START ))s] $*" >&2; }

# ---- GPU memory sampling (nvidia-smi; whole device, both peers measured alike) ----
MON_PID=""
mon_start() {  # $1 = samples file
  : > "$1"
  if [ "$DEVICE" != cpu ] && command -v nvidia-smi >/dev/null 2>&1; then
    # one nvidia-smi per sample: each exits (flushes) on its own, nothing lost when the loop is killed
    ( while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 >> "$1" 2>/dev/null; sleep 0.2; done ) &
    MON_PID=$!
  fi
}
mon_stop() {  # prints the peak MiB (or empty)
  if [ -n "$MON_PID" ]; then kill "$MON_PID" 2>/dev/null || true; wait "$MON_PID" 2>/dev/null || true; MON_PID=""; fi
  sort -n "$1" 2>/dev/null | tail -1 | tr -d ' '
}
now() { date +%s.%N; }
# Timed run: $1 = name; rest = command. Appends {name, wall_s, peak_mib} to $WORK/timings.jsonl.
timed() {
  local name="$1"; shift
  mon_start "$LOGS/$name.mem"
  local t0 t1 rc=0
  t0=$(now)
  "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err" || rc=$?
  t1=$(now)
  local peak; peak=$(mon_stop "$LOGS/$name.mem")
  if [ $rc -ne 0 ]; then echo "run_bench.sh: step '$name' failed (exit $rc); last lines of $LOGS/$name.err:" >&2; tail -20 "$LOGS/$name.err" >&2; exit $rc; fi
  echo "{\"name\": \"$name\", \"wall_s\": $(awk "BEGIN{print $t1 - $t0}"), \"peak_mib\": ${peak:-null}}" >> "$WORK/timings.jsonl"
}
: > "$WORK/timings.jsonl"

make_model() {  # $1 shape -> prints dir
  local dir="$WORK/model-$1-L$LAYERS-$DTYPE"
  say "model $1 x $LAYERS layers -> $dir"
  local mdev=cuda; [ "$DEVICE" = cpu ] && mdev=cpu
  "$PY" bench/gpu/make_random_model.py "$dir" --shape "$1" --layers "$LAYERS" --tokenizer "$(tok_for "$1")" \
      --device "$mdev" --dtype "$DTYPE" --bin "$BIN" >&2
  echo "$dir"
}
EVAL_FLAGS=()
# Code tasks run generated programs in bubblewrap; where it is missing or cannot make namespaces
# (containers), fall back to rlimits + temp dir (random-weight output, a throwaway machine).
if ! { command -v bwrap >/dev/null 2>&1 && bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all true >/dev/null 2>&1; }; then
  EVAL_FLAGS+=(--unsafe-no-sandbox)
  say "bubblewrap unusable here: bitmerge eval runs code tasks with --unsafe-no-sandbox"
fi

if [ "$MODE" != scaling ]; then
  MODEL=$(make_model "$SHAPE")
  say "bitmerge requests"
  "$BIN" requests --tasks "$TASKS" --data-dir "$DATA" --limit "$LIMIT" --max-new-tokens "$MAXNEW" \
      --tokenizer "$MODEL" --output "$WORK/requests.jsonl" 2> "$LOGS/requests.err" || { cat "$LOGS/requests.err" >&2; exit 2; }
  "$PY" - "$WORK" <<'EOF'
import json, sys, collections, os
w = sys.argv[1]
rq = [json.loads(l) for l in open(f"{w}/requests.jsonl") if l.strip()]
gen = [r for r in rq if r["type"] == "generate"]
for name, rs in (("ll", [r for r in rq if r["type"] == "loglikelihood"]), ("gen", gen)):
    with open(f"{w}/{name}.jsonl", "w") as f:
        for r in rs:
            f.write(json.dumps(r) + "\n")
with open(f"{w}/gen_prefill.jsonl", "w") as f:
    for g in gen:
        f.write(json.dumps(dict(g, max_new_tokens=1)) + "\n")
by = collections.OrderedDict()
for g in gen:
    by.setdefault(g["task"], []).append(g)
with open(f"{w}/gen_tasks.txt", "w") as t:
    for task, rs in by.items():
        with open(f"{w}/gen_{task}.jsonl", "w") as f:
            for g in rs:
                f.write(json.dumps(g) + "\n")
        t.write(task + "\n")
EOF
  say "bitmerge eval (limit $LIMIT, batch $BATCH)"
  timed bm_eval "$BIN" eval --model "$MODEL" --tasks "$TASKS" --data-dir "$DATA" --limit "$LIMIT" \
      --max-new-tokens "$MAXNEW" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$BATCH" \
      --output "$WORK/bm_results.json" "${EVAL_FLAGS[@]}"
  say "bitmerge score / generate on the same requests"
  if [ -s "$WORK/ll.jsonl" ]; then
    timed bm_score "$BIN" score --model "$MODEL" --input "$WORK/ll.jsonl" \
        --output "$WORK/bm_ll_out.jsonl" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$BATCH"
  fi
  if [ -s "$WORK/gen.jsonl" ]; then
    timed bm_gen_prefill "$BIN" generate --model "$MODEL" --input "$WORK/gen_prefill.jsonl" \
        --output "$WORK/bm_gen_prefill_out.jsonl" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$BATCH"
    while read -r task; do
      timed "bm_gen_$task" "$BIN" generate --model "$MODEL" --input "$WORK/gen_$task.jsonl" \
          --output "$WORK/bm_gen_${task}_out.jsonl" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$BATCH"
    done < "$WORK/gen_tasks.txt"
  fi
  say "HF transformers peer"
  timed hf_suite "$PY" bench/gpu/hf_peer.py --model "$MODEL" --requests "$WORK/requests.jsonl" \
      --out "$WORK/hf_suite.json" --batch-size "$BATCH" --device "$DEVICE" --dtype "$DTYPE" --mode suite \
      --outputs "$WORK/hf_suite_out.jsonl"
fi

if [ "$MODE" != suite ]; then
  IFS=, read -r -a shapes <<< "$SCALE_SHAPES"
  IFS=, read -r -a bss <<< "$SCALE_BATCHES"
  for sh in "${shapes[@]}"; do
    SM=$(make_model "$sh")
    RQ="$WORK/requests.jsonl"
    if [ ! -s "$RQ" ]; then
      "$BIN" requests --tasks "$TASKS" --data-dir "$DATA" --limit "$LIMIT" --max-new-tokens "$MAXNEW" \
          --tokenizer "$SM" --output "$RQ" 2> "$LOGS/requests.err" || { cat "$LOGS/requests.err" >&2; exit 2; }
    fi
    "$PY" - "$WORK" "$SCALE_N" "$SCALE_BATCHES" "$SCALE_NEW" "$SCALE_PROMPT" <<'EOF'
import json, sys
w, n, bss, new, pt = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rq = [json.loads(l) for l in open(f"{w}/requests.jsonl")]
ll = [r for r in rq if r["type"] == "loglikelihood"][:n]
gen = [r for r in rq if r["type"] == "generate"]
with open(f"{w}/scale_ll.jsonl", "w") as f:
    for r in ll:
        f.write(json.dumps(r) + "\n")
for b in [int(x) for x in bss.split(",") if x.strip()]:
    with open(f"{w}/scale_gen_{b}.jsonl", "w") as f:
        for k in range(b if gen else 0):
            g = gen[k % len(gen)]
            f.write(json.dumps(dict(g, until=[], task="scale", max_new_tokens=new, prompt_ids=g["prompt_ids"][:pt])) + "\n")
EOF
    say "scaling: $sh"
    for b in "${bss[@]}"; do
      if [ -s "$WORK/scale_ll.jsonl" ]; then
        timed "bm_scale_score_${sh}_$b" "$BIN" score --model "$SM" --input "$WORK/scale_ll.jsonl" \
            --output "$WORK/bm_scale_score_${sh}_$b.jsonl" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$b"
      fi
      if [ -s "$WORK/scale_gen_$b.jsonl" ]; then
        timed "bm_scale_gen_${sh}_$b" "$BIN" generate --model "$SM" --input "$WORK/scale_gen_$b.jsonl" \
            --output "$WORK/bm_scale_gen_${sh}_$b.jsonl" --device "$DEVICE" --dtype "$DTYPE" --batch-size "$b"
      fi
    done
    timed "hf_scale_$sh" "$PY" bench/gpu/hf_peer.py --model "$SM" --requests "$RQ" --out "$WORK/hf_scale_$sh.json" \
        --device "$DEVICE" --dtype "$DTYPE" --mode scaling --batch-sizes "$SCALE_BATCHES" \
        --scale-new-tokens "$SCALE_NEW" --scale-score-n "$SCALE_N" --scale-prompt-tokens "$SCALE_PROMPT"
  done
fi

say "report"
# the binary's commit: the PREBUILT stamp of programs packed on the dev machine, else this checkout's
COMMIT=$(sed -n 's/^commit //p' "$(dirname "$BIN")/PREBUILT" 2>/dev/null | head -1)
[ -n "$COMMIT" ] || COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GPU=$( (nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1) || true)
"$PY" bench/gpu/report.py --work "$WORK" --mode "$MODE" --shape "$SHAPE" --layers "$LAYERS" --limit "$LIMIT" \
    --batch-size "$BATCH" --device "$DEVICE" --dtype "$DTYPE" --scale-shapes "$SCALE_SHAPES" \
    --scale-batches "$SCALE_BATCHES" --scale-new-tokens "$SCALE_NEW" --peak-tflops "$PEAK_TFLOPS" --hbm-tbs "$HBM_TBS" \
    --commit "$COMMIT" --gpu "${GPU:-$DEVICE}" --command "bash bench/gpu/run_bench.sh $ARGS" --total-s "$(( $(date +%s) - T_START ))" \
    --out "$OUT/bench_gpu.md"
cat "$OUT/bench_gpu.md"
