#!/usr/bin/env bash
# The camkit crate as a crates.io user gets it. Called by scripts/test.sh; runs on its own:
#
#   bash scripts/test-crate-package.sh
#
# 1. `cargo package -p camkit`: the .crate cargo publish would upload (not verified here:
#    step 3 builds it), with its licences, README and example, without the benchmarks.
# 2. `cargo doc -p camkit --no-deps` with warnings as errors (every public item documented),
#    with the default features and again with `cluster` (its module's links are checked
#    only when it is built).
# 3. A scratch Cargo project outside the workspace that depends on the unpacked .crate by
#    path builds and runs. It shares this workspace's target directory, Cargo.lock and
#    profile settings so the dependencies already built are reused: only camkit itself is
#    compiled again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

section() { printf '\n==== %s ====\n' "$*"; }
die() { echo "test-crate-package: $*" >&2; exit 1; }

section "cargo package -p camkit"
cargo package -p camkit --allow-dirty --no-verify
crate="$TARGET/package/camkit-$VERSION.crate"
[ -f "$crate" ] || die "$crate was not written"
files="$(tar tzf "$crate")"
for f in Cargo.toml LICENSE-MIT LICENSE-APACHE README.md src/lib.rs examples/snapshot.rs; do
    grep -qx "camkit-$VERSION/$f" <<<"$files" || die "the .crate lacks $f"
done
if grep -q "^camkit-$VERSION/benches/" <<<"$files"; then die "the .crate holds the benchmarks"; fi
echo "$(wc -l <<<"$files") files, licences, README and examples/snapshot.rs included"

section "cargo doc -p camkit --no-deps (warnings are errors; default features, then cluster)"
RUSTDOCFLAGS="-D warnings" cargo doc -p camkit --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc -p camkit --no-deps --features cluster

section "a scratch project builds the packaged crate"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
tar xzf "$crate" -C "$scratch"
# cargo drops path-only dev-dependencies (the demo camera the benchmark uses) when it packages;
# a path that leaves the crate's own folder would break every user's build.
grep -qE 'path = "\.\.' "$scratch/camkit-$VERSION/Cargo.toml" && die "the packaged Cargo.toml still has a path dependency"
grep -q 'camkit-demo-camera' "$scratch/camkit-$VERSION/Cargo.toml" && die "the packaged Cargo.toml still depends on the demo camera"
mkdir -p "$scratch/user/src"
cp Cargo.lock "$scratch/user/Cargo.lock"
{
    cat <<TOML
[package]
name = "camkit-user"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
camkit = { path = "../camkit-$VERSION" }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

[workspace]

TOML
    # The workspace's profiles, so the dependencies built for the tests are reused.
    sed -n '/^\[profile/,/^$/p' Cargo.toml
} > "$scratch/user/Cargo.toml"
cat > "$scratch/user/src/main.rs" <<'RS'
use camkit::{CameraConfig, CameraManager, ErrorKind, SnapshotOptions};

#[tokio::main]
async fn main() {
    let cameras = CameraManager::new();
    let err = cameras.snapshot("nope", SnapshotOptions::full()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let bad = cameras.connect(CameraConfig::from_url("cam", "http://not-rtsp")).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput, "{bad}");
    println!("camkit {} works from its packaged crate", camkit::VERSION);
}
RS
t=$SECONDS
CARGO_TARGET_DIR="$TARGET" cargo run --quiet --manifest-path "$scratch/user/Cargo.toml"
echo "built and ran in $((SECONDS - t))s"
