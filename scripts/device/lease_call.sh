#!/usr/bin/env bash
# One device call: a list of steps, each "suite SHAPE LAYERS TASKS [full_suite.sh flags, e.g. --one-process]" | "cells ARGS..." | "trials [JOBS [RECIPE.toml ...]]" | "sh CMD", run in order within the call.
#   bash scripts/device/lease_call.sh 'suite llama13b 40 math' 'suite llama7b 32 truthfulqa,hellaswag,mmlu'
# Each step gets the call's time left minus 40 s (CALL_S, default 560, from the start); "sh CMD" runs a shell
# command (e.g. removing a model to free the disk); quote a command with a pipe or redirection as one word,
# 'sh "CMD 2>&1 | tail -5"' (each step is split with eval "set -- STEP"). H200_STEPS (quoted steps) replaces the list when the machine
# that came is an H200, so that H100 timings are never mixed with H200 ones. Results: $OUT/call.tgz (r/s<N>/ per
# step, r/smi.csv GPU samples). Carry [".debs", ".device/bin.tar.xz", ".device/data.tar.xz"] (scripts/device/README.md).
set -u
T0=$(date +%s); DEADLINE=$(( T0 + ${CALL_S:-560} ))
source scripts/device/prebuilt.sh .device/bin.tar.xz > /tmp/prebuilt.log 2>&1 || { cat /tmp/prebuilt.log; exit 1; }
echo "prebuilt ok in $(( $(date +%s) - T0 )) s; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(nproc) cores; $(head -1 build-gpu/PREBUILT 2>/dev/null); data $(ls .device/data | tr '\n' ' ')"
R=$OUT/r; mkdir -p $R
( nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 5 > $R/smi.csv 2>&1 ) & SMI=$!
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$GPU" in *H200*) [ -n "${H200_STEPS:-}" ] && { echo "H200: running H200_STEPS"; eval "set -- $H200_STEPS"; };; esac
i=0
for step in "$@"; do
  i=$((i+1)); eval "set -- $step"; kind=$1; shift
  left=$(( DEADLINE - $(date +%s) - 40 )); [ $left -gt 30 ] || { echo "step $i ($step): not run, ${left}s left"; continue; }
  S=$(date +%s); echo "=== step $i: $step (budget ${left}s) at +$(( S - T0 ))s"
  mkdir -p $R/s$i
  case $kind in
    suite) OUT=$R/s$i bash bench/gpu/full_suite.sh --data-dir .device/data --shape $1 --layers $2 --tasks $3 "${@:4}" --budget-s $left 2>&1 | tail -14
           for t in ${3//,/ } all; do cp /tmp/bm_full_suite/$t.err $R/s$i/ 2>/dev/null; done;;  # this step's logs only
    cells) OUT=$R/s$i bash bench/gpu/table2_realshape.sh --data-dir .device/data --budget-s $left "$@" 2>&1 | tail -40;;
    sh) eval "$*"; df -h /tmp /dev/shm | tail -2;;
    trials) jobs=${1:-4}; [ $# -gt 0 ] && shift; [ $# -gt 0 ] || set -- scripts/device/trials/*.toml
            OUT=$R/s$i JOBS=$jobs DEADLINE=$(( DEADLINE - 30 )) bash scripts/device/mini_trial.sh "$@" 2>&1 | tail -60;;
  esac
  echo "=== step $i done in $(( $(date +%s) - S ))s"
done
kill $SMI; wait $SMI 2>/dev/null
echo "peak GPU memory MiB: $(cut -d, -f3 $R/smi.csv | tr -dc '0-9\n' | sort -n | tail -1)"
tar czf $OUT/call.tgz -C $OUT r && rm -rf $R
echo "total $(( $(date +%s) - T0 )) s"
