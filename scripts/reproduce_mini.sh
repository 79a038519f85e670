#!/usr/bin/env bash
# Main job: the paper on the self-built mini family (nano size on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./build/bitmerge --help
