#!/usr/bin/env bash
# Builds bitmerge on the GPU device machine (Ubuntu 24.04, CUDA 13, CMake and
# ninja in /opt/torch/.venv, PyTorch 2.11 there, no package registry).
#   1. unpacks the Debian 12 .debs carried in .debs/ (scripts/device/fetch_debs.sh)
#      with dpkg -x into a private prefix (default /tmp/bmprefix) and points
#      their .pc files at it;
#   2. configures build-gpu/ with BITMERGE_CUDA=ON (sm_90), Torch from the
#      device's venv and the prefix on CMAKE_PREFIX_PATH / PKG_CONFIG_PATH;
#   3. builds the given ninja targets (default: all) and checks that the
#      programs find every shared library;
#   4. writes build-gpu/device_env.sh: `source` it before running anything
#      built here (LD_LIBRARY_PATH for the prefix's libraries).
# Usage (device `run`, carry [".debs"]):
#   bash scripts/device/build.sh [ninja targets...]
# Env: BM_PREFIX, BM_BUILD_DIR (build-gpu), BM_TORCH_PYTHON, BM_JOBS.
# A build that ran out of the 10-minute command limit resumes when rerun on
# the same (still warm) machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
PREFIX="${BM_PREFIX:-/tmp/bmprefix}"
BUILD="${BM_BUILD_DIR:-build-gpu}"
PY="${BM_TORCH_PYTHON:-/opt/torch/.venv/bin/python3}"
[ -x "$PY" ] || PY="$(command -v python3)"
JOBS="${BM_JOBS:-$(nproc)}"
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
t0=$(date +%s)

# ---- 1. unpack the .debs ----
source "$root/scripts/device/unpack_debs.sh"

# ---- 2. environment ----
TORCH_CMAKE="$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)')"
TORCH_VERSION="$("$PY" -c 'import torch;print(torch.__version__, torch.version.cuda)')"
export BITMERGE_PYTHON="$PY"
# venv first (cmake, ninja from pip), the prefix's tools (pkg-config, ninja) as a fallback.
export PATH="$(dirname "$PY"):/usr/local/cuda/bin:$PATH:$PREFIX/usr/bin"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if ! command -v pkg-config >/dev/null; then echo "build.sh: no pkg-config found, not even in $PREFIX/usr/bin" >&2; exit 2; fi
for tool in cmake ninja nvcc; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' not found on PATH ($PATH)" >&2; exit 2; }
done
# Tests read python oracles from .venv/bin/python: use the device's venv.
[ -e .venv ] || ln -s "$(dirname "$(dirname "$PY")")" .venv
echo "build.sh: torch $TORCH_VERSION ($TORCH_CMAKE); $(cmake --version | head -1); ninja $(ninja --version); $(nvcc --version | tail -2 | head -1)"

# The prefix's libraries for the link (indirect needs) and at run time.
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- 3. configure + build ----
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DBITMERGE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DBITMERGE_CUDA_ARCHS=90 -DTORCH_CUDA_ARCH_LIST=9.0 \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr;$TORCH_CMAKE" \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$LIBDIR" \
    -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$LIBDIR"
fi
cat >"$BUILD/device_env.sh" <<ENV
# source me before running programs built by scripts/device/build.sh
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PATH="$(dirname "$PY"):/usr/local/cuda/bin:\$PATH:$PREFIX/usr/bin"
export BITMERGE_PYTHON="$PY"
ENV
ninja -C "$BUILD" -j"$JOBS" "$@"

# ---- 4. every built program finds its libraries ----
bad=0
while IFS= read -r exe; do
  if ldd "$exe" 2>/dev/null | grep -q "not found"; then
    echo "build.sh: $exe misses: $(ldd "$exe" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')" >&2
    bad=1
  fi
done < <(find "$BUILD" -type f -perm -u+x \( -name 'test_*' -o -name 'bench_*' -o -name bitmerge -o -name '*_test' \) 2>/dev/null)
[ "$bad" = 0 ] || { echo "build.sh: add the missing libraries' packages to scripts/device/fetch_debs.sh" >&2; exit 3; }
echo "build.sh: built ${*:-all} in $BUILD in $(( $(date +%s) - t0 )) s; source $BUILD/device_env.sh before running"
