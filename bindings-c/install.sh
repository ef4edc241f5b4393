#!/usr/bin/env bash
# Installs the C library into PREFIX in the usual layout:
#
#   PREFIX/include/camkit.h
#   PREFIX/lib/libcamkit.so  PREFIX/lib/libcamkit.a
#   PREFIX/lib/pkgconfig/camkit.pc
#   PREFIX/lib/cmake/camkit/camkitConfig.cmake, camkitConfigVersion.cmake
#                                  (find_package(camkit) -> camkit::camkit, camkit::camkit_static)
#
#   cargo build --release -p camkit-c
#   bindings-c/install.sh /usr/local            # from target/release
#   bindings-c/install.sh --debug --symlink DIR # from target/debug, symlinked (tests)
#
# Builds nothing: build first. Honours CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile=release
symlink=0
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --release) profile=release ;;
    --symlink) symlink=1 ;;
    -*) echo "usage: $0 [--debug|--release] [--symlink] PREFIX" >&2; exit 2 ;;
    *) prefix="$1" ;;
  esac
  shift
done
if [ -z "$prefix" ]; then
  echo "usage: $0 [--debug|--release] [--symlink] PREFIX" >&2
  exit 2
fi

libdir="${CARGO_TARGET_DIR:-$root/target}/$profile"
for f in libcamkit.so libcamkit.a; do
  if [ ! -f "$libdir/$f" ]; then
    echo "install.sh: $libdir/$f not found; build it first: cargo build $([ $profile = release ] && echo --release) -p camkit-c" >&2
    exit 1
  fi
done

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/camkit"
prefix="$(cd "$prefix" && pwd)"
put() { # put SRC DEST
  rm -f "$2"
  if [ "$symlink" = 1 ]; then ln -s "$1" "$2"; else cp "$1" "$2"; fi
}
put "$here/include/camkit.h" "$prefix/include/camkit.h"
put "$libdir/libcamkit.so" "$prefix/lib/libcamkit.so"
put "$libdir/libcamkit.a" "$prefix/lib/libcamkit.a"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$here/camkit.pc.in" \
  > "$prefix/lib/pkgconfig/camkit.pc"
for f in camkitConfig camkitConfigVersion; do
  sed -e "s|@VERSION@|$version|" "$here/$f.cmake.in" > "$prefix/lib/cmake/camkit/$f.cmake"
done
echo "install.sh: installed camkit $version ($profile) into $prefix"
