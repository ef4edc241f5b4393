#!/usr/bin/env bash
# Regenerates include/camkit.h from the Rust sources with the cbindgen CLI.
#
#   bindings-c/gen_header.sh            write include/camkit.h
#   bindings-c/gen_header.sh --verify   exit 1 when the committed header differs
#
# Needs cbindgen (cargo install cbindgen --locked --version $CBINDGEN_VERSION); another
# version may format the header differently, so --verify insists on this one.
set -euo pipefail

CBINDGEN_VERSION=0.29.4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
header="$here/include/camkit.h"

verify=0
case "${1:-}" in
  --verify) verify=1 ;;
  "") ;;
  *) echo "usage: $0 [--verify]" >&2; exit 2 ;;
esac

if ! command -v cbindgen >/dev/null 2>&1; then
  echo "gen_header.sh: cbindgen not found; install it with:" >&2
  echo "  cargo install cbindgen --locked --version $CBINDGEN_VERSION" >&2
  exit 1
fi
have="$(cbindgen --version | awk '{print $2}')"
if [ "$have" != "$CBINDGEN_VERSION" ]; then
  echo "gen_header.sh: cbindgen $have found, $CBINDGEN_VERSION needed (the header's format" >&2
  echo "  depends on it); install it with: cargo install cbindgen --locked --version $CBINDGEN_VERSION" >&2
  exit 1
fi

tmp="$(mktemp "${TMPDIR:-/tmp}/camkit.h.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && cbindgen --quiet --config cbindgen.toml --crate camkit-c --output "$tmp")

if [ "$verify" = 1 ]; then
  if ! diff -u "$header" "$tmp" >&2; then
    echo >&2
    echo "gen_header.sh --verify: bindings-c/include/camkit.h is out of date with the Rust" >&2
    echo "  sources (diff above). Run bindings-c/gen_header.sh and commit the header." >&2
    exit 1
  fi
  echo "gen_header.sh: include/camkit.h is up to date"
else
  mkdir -p "$(dirname "$header")"
  cp "$tmp" "$header"
  echo "gen_header.sh: wrote include/camkit.h"
fi
