#!/usr/bin/env bash
# Where the GPU time of one `bitmerge eval` goes, by kernel (issue 16's "where the time goes"): runs it under
# Nsight Systems (nsys, CUDA trace only) and writes the per-kernel summary (time share, calls, mean) to
# $OUT/nsys_<tag>.txt (the top 40 rows also printed). Without nsys on the machine it says so and exits 3.
#   bash bench/gpu/nsys_kernels.sh TAG --model DIR --tasks mmlu --limit 1000 [other bitmerge eval flags]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TAG="${1:?usage: nsys_kernels.sh TAG --model DIR --tasks T [eval flags]}"; shift
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
[ -n "$NSYS" ] && [ -x "$NSYS" ] || { echo "nsys_kernels.sh: no nsys on this machine (looked in PATH, /usr/local/cuda*/bin, /opt/nvidia)"; exit 3; }
BIN=build-gpu/bitmerge; [ -x "$BIN" ] || BIN=build/bitmerge
[ -f "$(dirname "$BIN")/device_env.sh" ] && source "$(dirname "$BIN")/device_env.sh"
OUTD="${OUT:-/tmp/bm_nsys}"; mkdir -p "$OUTD"
W=$(mktemp -d)
"$NSYS" profile -t cuda --sample=none --cpuctxsw=none -o "$W/$TAG" --force-overwrite true \
  "$BIN" eval --device cuda --dtype bfloat16 --output "$W/$TAG.json" "$@" > "$W/run.log" 2>&1 || { tail -5 "$W/run.log"; exit 1; }
"$NSYS" stats --report cuda_gpu_kern_sum --format csv --output "$W/$TAG" "$W/$TAG.nsys-rep" > /dev/null 2>&1
f=$(ls "$W/$TAG"*kern_sum*.csv 2>/dev/null | head -1)
[ -n "$f" ] || { echo "nsys_kernels.sh: no kernel summary written"; tail -5 "$W/run.log"; exit 1; }
cp "$f" "$OUTD/nsys_$TAG.csv"
python3 - "$f" <<'PYEOF' | tee "$OUTD/nsys_$TAG.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tot = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"GPU kernel time {tot / 1e9:.2f} s in {sum(int(r['Instances']) for r in rows)} launches")
print("| share | s | calls | mean us | kernel |")
print("|---:|---:|---:|---:|---|")
for r in rows[:40]:
    t = float(r["Total Time (ns)"])
    print(f"| {100 * t / tot:.1f}% | {t / 1e9:.2f} | {r['Instances']} | {float(r['Avg (ns)']) / 1e3:.1f} | {r['Name'][:110]} |")
PYEOF
rm -rf "$W"
