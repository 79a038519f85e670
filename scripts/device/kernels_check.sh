#!/usr/bin/env bash
# Runs the kernel tests (CUDA vs libtorch reference) and the kernel benchmark
# on the GPU device and prints a markdown block for bench/RESULTS.md.
# Needs build-gpu from scripts/device/build.sh (targets test_kernels bench_kernels).
# Usage (device `run`, carry [".debs"]):
#   bash scripts/device/build.sh test_kernels bench_kernels && bash scripts/device/kernels_check.sh
# Writes $OUT/kernels_check.md and $OUT/bench_kernels.json when $OUT is set.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
BUILD="${BM_BUILD_DIR:-build-gpu}"
[ -f "$BUILD/device_env.sh" ] || { echo "kernels_check: no $BUILD/device_env.sh; run scripts/device/build.sh first" >&2; exit 2; }
# shellcheck disable=SC1091
source "$BUILD/device_env.sh"
out="${OUT:-/tmp/kernels_check}"
mkdir -p "$out"
test_bin="$BUILD/tests/kernels/test_kernels"
bench_bin="$BUILD/bench/kernels/bench_kernels"
for b in "$test_bin" "$bench_bin"; do
  [ -x "$b" ] || { echo "kernels_check: $b not built; run scripts/device/build.sh test_kernels bench_kernels" >&2; exit 2; }
done

gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
echo "== kernels_check on ${gpu:-unknown GPU}, commit $commit, $(date -u +%Y-%m-%dT%H:%MZ)"

echo "== test_kernels"
"$test_bin" --gtest_brief=1 2>&1 | tee "$out/test_kernels.log"
test_rc=${PIPESTATUS[0]}
if grep -q "no CUDA device visible\|build has no CUDA kernels" "$out/test_kernels.log"; then
  echo "kernels_check: the CUDA tests were skipped (see above); on the device that is a failure" >&2
  test_rc=1
fi
test_summary="$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/test_kernels.log" | grep -v '^\[  SKIPPED \] [A-Z]' | tr '\n' ' ')"

echo "== compute-sanitizer memcheck (small and misaligned shapes)"
san_status="not run"
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 "$test_bin" --gtest_brief=1 \
    --gtest_filter='*1x1_*:*/7_*:*/13x3_*:*/33x65_*:*offset1*:OnebitCudaMisc.*' >"$out/memcheck.log" 2>&1
  san_rc=$?
  tail -5 "$out/memcheck.log"
  if grep -q "Device not supported\|LibraryNotLoaded" "$out/memcheck.log"; then san_status="unavailable on this machine"
  elif [ "$san_rc" = 0 ]; then san_status="clean"
  else san_status="FAILED (exit $san_rc, see memcheck.log)"; test_rc=1; fi
fi
echo "memcheck: $san_status"

echo "== bench_kernels"
"$bench_bin" --benchmark_counters_tabular=true --benchmark_out="$out/bench_kernels.json" --benchmark_out_format=json 2>&1 |
  tee "$out/bench_kernels.log"
bench_rc=${PIPESTATUS[0]}

python3 - "$out/bench_kernels.json" "$gpu" "$commit" "$test_rc" "$test_summary; memcheck: $san_status" >"$out/kernels_check.md" <<'PY'
import json, sys, datetime
path, gpu, commit, test_rc, test_summary = sys.argv[1:6]
try:
    rows = json.load(open(path))["benchmarks"]
except Exception as e:
    rows = []
    print(f"(no benchmark JSON: {e})")
print(f"### 1-bit CUDA kernels: {gpu}, commit {commit}, {datetime.datetime.utcnow():%Y-%m-%d}")
print()
print("Command: `bash scripts/device/build.sh test_kernels bench_kernels && bash scripts/device/kernels_check.sh`")
print()
print(f"test_kernels (CUDA vs libtorch reference): exit {test_rc}; {test_summary.strip()}")
print()
print("| kernel | time (us) | GB/s | D2D copy GB/s (same bytes) | ratio | >= 0.80 |")
print("|---|---:|---:|---:|---:|:---:|")
ok = 0
for r in rows:
    ratio = r.get("x_copy", 0.0)
    ok += ratio >= 0.80
    print(f"| {r['name'].replace('/manual_time','')} | {r['real_time']:.1f} | {r['GB/s']:.0f} | {r['copy_GB/s']:.0f} | {ratio:.2f} | {'yes' if ratio >= 0.80 else 'no'} |")
print()
print(f"{ok} of {len(rows)} kernels reach 80% of copy bandwidth. GB/s counts bytes read + written.")
PY
echo
cat "$out/kernels_check.md"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
