#!/usr/bin/env bash
# Code-execution throughput of the sandbox on this machine: all 164 canonical
# HumanEval solutions, 3 runs, plus the same without bubblewrap for comparison.
# Usage: bench/tasks/run_exec_bench.sh [BUILD_DIR]   (default build-tasks)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build-tasks}"
export BITMERGE_DATA_DIR="${BITMERGE_DATA_DIR:-$root/../shared/data}"
cmake -S "$root" -B "$build" -G Ninja >/dev/null
ninja -C "$build" bench_tasks_exec >/dev/null
echo "== $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) $(nproc) cores =="
"$build/bench/tasks/bench_tasks_exec" --repeat 3
"$build/bench/tasks/bench_tasks_exec" --unsafe-no-sandbox --repeat 1 || true
