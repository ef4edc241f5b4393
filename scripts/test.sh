#!/usr/bin/env bash
# The one command that runs every camkit test (CI runs it through `npm test`).
#
#   bash scripts/test.sh
#
# 1. Checks the system packages the build and the tests need. Missing ones are installed
#    with apt-get when running as root (CI containers); otherwise the exact `sudo apt-get`
#    command is printed and the script fails. Tests never skip for lack of a tool: a green
#    run means everything ran.
# 2. Rust: formatting, clippy with warnings as errors, the whole workspace's tests.
# 3. Later steps (C bindings, Node bindings, browser): see the functions near the end.
set -euo pipefail

# Run from the repository root whatever the caller's directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCRIPT_START=$SECONDS
section() {
    printf '\n==== %s ====\n' "$*"
}
# Prints how long the step took, so slow steps are visible in CI logs.
done_in() {
    printf -- '---- %s: ok (%ss)\n' "$1" "$(($SECONDS - $2))"
}

# --------------------------------------------------------------------------------------
# 1. System packages
# --------------------------------------------------------------------------------------

# /usr/bin/python3 on purpose: PyGObject (gi) comes from Debian and is invisible to a
# pyenv/venv python3 that may come first on PATH.
SYSTEM_PYTHON=/usr/bin/python3

has_cmd() { command -v "$1" >/dev/null 2>&1; }
has_gst_element() { has_cmd gst-inspect-1.0 && gst-inspect-1.0 --exists "$1" >/dev/null 2>&1; }
# FFmpeg 4-7's libavcodec, which camkit loads at run time (core/src/decode/libavcodec.rs).
has_libavcodec() { /sbin/ldconfig -p 2>/dev/null | grep -qE 'libavcodec\.so\.(58|59|60|61) '; }
has_py_module() { [ -x "$SYSTEM_PYTHON" ] && "$SYSTEM_PYTHON" -c "import $1" >/dev/null 2>&1; }
# Instantiating the server proves the typelib *and* the libgstrtspserver it loads are there.
has_rtsp_server_bindings() {
    [ -x "$SYSTEM_PYTHON" ] && "$SYSTEM_PYTHON" -c '
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
GstRtspServer.RTSPServer()
' >/dev/null 2>&1
}

MISSING=()
# need <package...> -- <check command...>: queue the packages if the check fails.
need() {
    local pkgs=()
    while [ "$1" != "--" ]; do
        pkgs+=("$1")
        shift
    done
    shift
    if ! "$@"; then
        MISSING+=("${pkgs[@]}")
    fi
}

check_system_packages() {
    MISSING=()
    # Build tools: libjpeg-turbo is built from source with cmake + nasm (SIMD), openh264
    # with the C/C++ compiler.
    need nasm -- has_cmd nasm
    need cmake -- has_cmd cmake
    need pkg-config -- has_cmd pkg-config
    need build-essential -- has_cmd cc
    need build-essential -- has_cmd c++
    need build-essential -- has_cmd make
    # The GStreamer RTSP test server (tests/gst/rtsp_server.py) and its pipelines.
    need gstreamer1.0-tools -- has_cmd gst-launch-1.0
    need gstreamer1.0-tools -- has_cmd gst-inspect-1.0
    need python3 -- test -x "$SYSTEM_PYTHON"
    need python3-gi -- has_py_module gi
    need gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp -- has_rtsp_server_bindings
    need gstreamer1.0-plugins-base -- has_gst_element videotestsrc
    need gstreamer1.0-plugins-base -- has_gst_element audiotestsrc
    need gstreamer1.0-plugins-good -- has_gst_element rtph264pay
    need gstreamer1.0-plugins-good -- has_gst_element rtph265pay
    need gstreamer1.0-plugins-good -- has_gst_element rtpmp4gpay
    need gstreamer1.0-plugins-good -- has_gst_element rtspsrc
    need gstreamer1.0-plugins-good -- has_gst_element jpegenc
    need gstreamer1.0-plugins-ugly -- has_gst_element x264enc
    need gstreamer1.0-plugins-bad -- has_gst_element x265enc
    need gstreamer1.0-libav -- has_gst_element avdec_h264
    need gstreamer1.0-libav -- has_gst_element avdec_h265
    need gstreamer1.0-libav -- has_gst_element avenc_aac
    # Independent decoders/encoders for cross-checks, and leak checks of the C API.
    need ffmpeg -- has_cmd ffmpeg
    # camkit's faster H.264 decoder (its tests compare it with OpenH264); `ffmpeg` depends on
    # the release's libavcodecNN, whatever its number.
    need ffmpeg -- has_libavcodec
    need valgrind -- has_cmd valgrind
    need nats-server -- has_cmd nats-server
    # Deduplicate, keeping order.
    if [ ${#MISSING[@]} -gt 0 ]; then
        mapfile -t MISSING < <(printf '%s\n' "${MISSING[@]}" | awk '!seen[$0]++')
    fi
}

ensure_system_packages() {
    section "System packages"
    local t=$SECONDS
    check_system_packages
    if [ ${#MISSING[@]} -eq 0 ]; then
        done_in "all present" "$t"
        return
    fi
    echo "Missing: ${MISSING[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo
        echo "Install them with:"
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${MISSING[*]}"
        echo "then run this script again."
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
    # A package can install and still not provide what was checked (renamed element,
    # different distribution): say exactly what is still wrong instead of failing later.
    check_system_packages
    if [ ${#MISSING[@]} -gt 0 ]; then
        echo "Still missing after apt-get install: ${MISSING[*]}" >&2
        exit 1
    fi
    done_in "installed" "$t"
}

ensure_rust_components() {
    if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
        return
    fi
    if has_cmd rustup; then
        rustup component add rustfmt clippy
    else
        echo "cargo fmt / cargo clippy are missing; install rustfmt and clippy for this toolchain." >&2
        exit 1
    fi
}

# --------------------------------------------------------------------------------------
# 2. Rust
# --------------------------------------------------------------------------------------

rust_checks() {
    ensure_rust_components
    local t

    section "cargo fmt --check"
    t=$SECONDS
    cargo fmt --all -- --check
    done_in "fmt" "$t"

    section "cargo clippy (warnings are errors)"
    t=$SECONDS
    # camkit-tests/cluster: the cluster-mode test (tests/tests/cluster_feed.rs, ~10 s, a
    # real nats-server) and benchmark. camkit is built with `cluster` for the bindings
    # anyway, so this only adds those targets.
    cargo clippy --workspace --all-targets --features camkit-tests/cluster -- -D warnings
    done_in "clippy" "$t"

    # Dev profile, not --release: dependencies are already optimised in dev builds (see the
    # root Cargo.toml), and a second profile would double the build time.
    section "cargo test --workspace"
    # --no-fail-fast: one failing crate should not hide the results of the others.
    t=$SECONDS
    cargo test --workspace --features camkit-tests/cluster --no-fail-fast
    done_in "cargo test" "$t"

    # The camkit crate as a crates.io user gets it: packaged, documented, built from the
    # .crate by a project outside the workspace (only camkit itself is compiled again).
    section "camkit crate package (scripts/test-crate-package.sh)"
    t=$SECONDS
    bash scripts/test-crate-package.sh
    done_in "crate package" "$t"
}

# --------------------------------------------------------------------------------------
# 3. Later steps. Each is a function so adding one is a local change: fill in the body
#    and keep the call in main below.
# --------------------------------------------------------------------------------------

# C bindings (bindings-c): header verified against cbindgen, the C examples built against
# the static and the shared library, run against the demo camera and the GStreamer server,
# under valgrind.
c_tests() {
    section "C API (bindings-c/tests/run_c_tests.sh)"
    local t=$SECONDS
    bash bindings-c/tests/run_c_tests.sh
    done_in "C tests" "$t"
}

# Node bindings (bindings-node): build the addon, run the Node tests.
node_tests() {
    bash scripts/test-node.sh
}

# Browser tests (pages served by the Node bindings, driven headless).
browser_tests() {
    # The viewer page's chromium test runs with the Node tests (scripts/test-node.sh).
    :
}

main() {
    ensure_system_packages
    rust_checks
    c_tests
    node_tests
    browser_tests
    section "All tests passed ($((SECONDS - SCRIPT_START))s)"
}

main "$@"
