# Source on the device (repo root) to run programs packed on the dev machine by
# scripts/device/pack.sh, without building there:
#   source scripts/device/prebuilt.sh [ARCHIVE...]     (default .device/bin.tar.xz)
# carry [".debs", ARCHIVE] (and .device/data.tar.xz, unpacked into .device/data). Unpacks the .debs into /tmp/bmprefix (as build.sh
# does), extracts the programs into build-gpu/, and sets LD_LIBRARY_PATH to the
# prefix, the device's libtorch (/opt/torch/.venv) and CUDA; exits if a program
# misses a library. Then run e.g. build-gpu/bitmerge.
root="$(pwd)"
PREFIX="${BM_PREFIX:-/tmp/bmprefix}"
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
PY="${BM_TORCH_PYTHON:-/opt/torch/.venv/bin/python3}"
[ -x "$PY" ] || PY="$(command -v python3)"
source "$root/scripts/device/unpack_debs.sh"
[ $# -gt 0 ] || set -- .device/bin.tar.xz
for a in "$@"; do
  [ -f "$a" ] || { echo "prebuilt.sh: no $a; run scripts/device/pack.sh here and carry it" >&2; exit 2; }
  tar -xJf "$a"
done
# The benchmark data, carried as one archive (.device/data.tar.xz: `bash scripts/device/pack.sh -d`):
# the working tree, .debs and the plain files together pass the 64 MiB carry limit.
if [ -f .device/data.tar.xz ] && [ ! -d .device/data ]; then
  rm -rf .device/data.unpack && mkdir -p .device/data.unpack &&
    tar -xJf .device/data.tar.xz -C .device/data.unpack && mv .device/data.unpack/data .device/data ||
    { rm -rf .device/data.unpack; echo "prebuilt.sh: .device/data.tar.xz is corrupt or truncated; pack it again (scripts/device/pack.sh -d)" >&2; exit 2; }
  rm -rf .device/data.unpack
fi
TORCH_LIB="$("$PY" -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')"
export LD_LIBRARY_PATH="$LIBDIR:$TORCH_LIB:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$(dirname "$PY"):/usr/local/cuda/bin:$PATH:$PREFIX/usr/bin"
export BITMERGE_PYTHON="$PY"
[ -e .venv ] || ln -s "$(dirname "$(dirname "$PY")")" .venv
cat > build-gpu/device_env.sh <<ENV
export LD_LIBRARY_PATH="$LD_LIBRARY_PATH"
export PATH="$PATH"
export BITMERGE_PYTHON="$PY"
ENV
while IFS= read -r exe; do
  if ldd "$exe" 2>/dev/null | grep -q "not found"; then
    echo "prebuilt.sh: $exe misses: $(ldd "$exe" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')" >&2
    exit 3
  fi
done < <(find build-gpu -type f -perm -u+x)
echo "prebuilt.sh: $(head -2 build-gpu/PREBUILT | tr '\n' ' ')($(grep -c '^dirty' build-gpu/PREBUILT) dirty files); programs in build-gpu/"
