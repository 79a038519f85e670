#!/usr/bin/env bash
# Downloads, HERE (a Debian 12 machine with apt), the .debs that the GPU device
# (Ubuntu 24.04, CUDA 13, no package registry) needs to build bitmerge, into
# the git-ignored folder .debs/ at the repo root. build.sh unpacks them there
# with dpkg -x into a private prefix. Only libc/libstdc++/compression libs
# and other Ubuntu 24.04 base libraries with the same soname are left out; the
# rest is a self-consistent Debian 12 closure, so no Ubuntu/Debian mix of
# sonames (libicu72, libldap-2.5, libunistring2 differ on Ubuntu 24.04).
# Usage: bash scripts/device/fetch_debs.sh        (about 25 MB)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.debs"

# Build-time: headers, CMake/pkg-config files, static gtest/gmock, tools.
DEV=(libsentencepiece-dev nlohmann-json3-dev libtomlplusplus-dev libgtest-dev googletest libgmock-dev
     libbenchmark-dev libcli11-dev libarchive-dev zlib1g-dev libcurl4-openssl-dev libssl-dev
     ninja-build pkgconf pkgconf-bin libpkgconf3)
# Run-time closure of the shared libraries we link.
RUNTIME=(libsentencepiece0 libtomlplusplus3 libbenchmark1debian libarchive13 libcurl4 libssl3
         libxml2 libicu72 libldap-2.5-0 libsasl2-2 libsasl2-modules-db libbrotli1 libnghttp2-14 libpsl5
         librtmp1 libssh2-1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
         libnettle8 libhogweed6 libgnutls30 libidn2-0 libunistring2 libp11-kit0 libtasn1-6 libgmp10 libffi8
         bubblewrap libcap2)
# On every Ubuntu 24.04 system with the same soname (libc-dev: any box with g++).
BASE=(libc6 libgcc-s1 libstdc++6 gcc-12-base zlib1g libzstd1 liblzma5 libbz2-1.0 libacl1 liblz4-1
      libcom-err2 libdb5.3 debconf libselinux1 libpcre2-8-0 libc-dev libc6-dev)

if ! apt-cache show libsentencepiece0 >/dev/null 2>&1; then
  echo "fetch_debs: apt knows no libsentencepiece0; run 'apt-get update' first (needs Debian 12 sources)" >&2
  exit 2
fi

# Every dependency of a shipped package must be shipped or in BASE.
shipped=" ${DEV[*]} ${RUNTIME[*]} ${BASE[*]} "
missing=0
for p in "${DEV[@]}" "${RUNTIME[@]}"; do
  for d in $(apt-cache depends "$p" | awk '/^ *(Pre)?Depends:/ {print $2}' | tr -d '<>'); do
    case "$shipped" in *" $d "*) ;; *) echo "fetch_debs: $p depends on $d, which is neither shipped nor base" >&2; missing=1 ;; esac
  done
done
[ "$missing" = 0 ] || { echo "fetch_debs: add those to RUNTIME (or BASE if Ubuntu 24.04 has the same soname)" >&2; exit 2; }

mkdir -p "$dest"
rm -f "$dest"/*.deb
cd "$dest"
apt-get download "${DEV[@]}" "${RUNTIME[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
n=$(ls *.deb | wc -l)
want=$(( ${#DEV[@]} + ${#RUNTIME[@]} ))
[ "$n" = "$want" ] || { echo "fetch_debs: got $n of $want packages" >&2; exit 1; }
du -sh "$dest"
echo "fetch_debs: $n packages in .debs/; carry [\".debs\"] to the device and run scripts/device/build.sh"
