#!/usr/bin/env bash
# Issue 12's proof on another CPU: train the nano family on THIS machine's CPU
# (1 thread, the program's numerics pin) and compare the sha256 of base, chat,
# math and code with the committed results/mini/family.json.
#   bash scripts/device/nano_proof.sh [OUT_DIR]      (default $OUT or out/nano-proof)
# Writes OUT_DIR/nano_proof.md (CPU model, wall time, both hash lists, verdict)
# and OUT_DIR/family.json; exit 0 only when all four hashes equal the committed ones.
# NANO_PROOF_DIR (default: a fresh temp dir): where the family is built. Inside the
# repository (e.g. out/nano-proof-family, git-ignored) it survives between calls on a
# warm device machine, so a build cut by the 10-minute call limit resumes with its
# saved base (the whole recipe is ~1,600 steps on the critical path: ~10 min on one core).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BITMERGE_BIN:-build-gpu/bitmerge}
[ -x "$BIN" ] || BIN=build/bitmerge
out=${1:-${OUT:-out/nano-proof}}
mkdir -p "$out"
fam=${NANO_PROOF_DIR:-$(mktemp -d)/mini-nano}
mkdir -p "$fam"
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512f\|avx2' | sort -u | tr '\n' ' ')
t=$(date +%s)
CUDA_VISIBLE_DEVICES= "$BIN" mini build --size nano --out "$fam" --threads 1 --device cpu > "$out/build.log" 2>&1
wall=$(( $(date +%s) - t ))
cp "$fam/family.json" "$out/family.json"
set +e
verdict=$("$BIN" mini hashes "$fam/family.json" results/mini/family.json 2>&1); rc=$?
set -e
{
  echo "# nano family on $cpu"
  echo
  echo "- CPU: $cpu (flags: $flags), $(nproc) cores; training with 1 thread"
  echo "- date: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || cat PREBUILT 2>/dev/null | head -1)"
  echo "- command: \`bash scripts/device/nano_proof.sh\` (= \`bitmerge mini build --size nano --threads 1\`), wall $wall s"
  echo "- verdict (\`bitmerge mini hashes NEW results/mini/family.json\`, exit $rc): $verdict"
  echo
  tail -8 "$out/build.log" | sed 's/^/    /'
} > "$out/nano_proof.md"
cat "$out/nano_proof.md"
exit $rc
