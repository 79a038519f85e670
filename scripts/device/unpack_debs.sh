# Sourced by scripts/device/build.sh and scripts/device/prebuilt.sh (from the
# repo root, with PREFIX and LIBDIR set): unpacks the carried Debian 12 .debs
# (.debs/, made by scripts/device/fetch_debs.sh) with dpkg -x into $PREFIX, only
# when the set of .debs changed, and points their .pc files and absolute dev
# symlinks at the prefix.
if ! ls .debs/*.deb >/dev/null 2>&1; then
  echo "unpack_debs: no .debs/*.deb here; run 'bash scripts/device/fetch_debs.sh' on the dev machine and pass carry [\".debs\"] to run" >&2
  exit 2
fi
stamp="$PREFIX/.bm_debs_stamp"
want="$(ls .debs/*.deb | xargs -n1 basename | sort | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  for f in .debs/*.deb; do dpkg -x "$f" "$PREFIX"; done
  # .pc files say prefix=/usr, libdir=/usr/lib/..., includedir=/usr/include: point them at the prefix.
  sed -i -E "s#^([A-Za-z_]+)=/usr#\1=$PREFIX/usr#" "$LIBDIR"/pkgconfig/*.pc "$PREFIX"/usr/share/pkgconfig/*.pc
  # Absolute dev symlinks (libz.so -> /lib/.../libz.so.1.2.13) name Debian's
  # exact version: point them at the prefix's copy or the system's soname.
  find "$PREFIX" -type l | while IFS= read -r l; do
    t="$(readlink "$l")"
    case "$t" in /*) ;; *) continue ;; esac
    if [ -e "$PREFIX$t" ]; then ln -sf "$PREFIX$t" "$l"; continue; fi
    [ -e "$t" ] && continue
    soname="$(echo "$t" | sed -E 's/(\.so\.[0-9]+)(\.[0-9.]+)?$/\1/')"
    if [ -e "$soname" ]; then ln -sf "$soname" "$l"; else echo "unpack_debs: warning: dangling $l -> $t" >&2; fi
  done
  echo "$want" >"$stamp"
  echo "unpack_debs: unpacked $(ls .debs/*.deb | wc -l) .debs into $PREFIX"
fi

