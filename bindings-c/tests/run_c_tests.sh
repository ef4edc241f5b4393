#!/usr/bin/env bash
# camkit's C tests: the C examples (examples/c) built against libcamkit and run against
# camkit's demo camera and an independent RTSP server (GStreamer), some under valgrind.
#
#   bindings-c/tests/run_c_tests.sh
#
# Steps: build libcamkit (cargo build -p camkit-c); check the committed header is what
# cbindgen generates; install into a staging prefix (symlinks) and check its pkg-config
# file; compile the examples with `cc -Wall -Wextra -Werror -std=c11` against the shared
# and the static library, and the header as C++17; start the demo camera (640x360, the C
# example demo_camera) and tests/gst/rtsp_server.py; then run snapshot and stream against
# both, the error paths (wrong password -> UNAUTHORIZED, exit 4; closed port ->
# UNREACHABLE, exit 5; an http:// URL -> INVALID_INPUT naming the field url), the stream
# choice of camkit_snapshot_options with a 4:3 sub-stream beside a 16:9 main stream (AUTO,
# MAIN, SUB; a bad one names the field stream), and snapshot + stream under valgrind (no errors, no definite
# leaks); the video subscription (tests/video.c: fMP4 written to a file that ffprobe and
# ffmpeg read); then the fault matrix under valgrind: the demo camera with one fault active
# (tests/examples/fault_camera.rs) against snapshot and, mid-stream, stream, each exiting
# with the expected camkit_result (~55 s of the run); cluster mode (tests/cluster.c): two
# nodes on a real nats-server sharing a camera, a forwarded snapshot, a wrong cluster key. Ends with `c-tests: N passed, M failed`; exits 1 when anything failed.
#
# Needs: cc, c++, make, pkg-config, valgrind, nats-server, cbindgen (installed with cargo when
# missing), and GStreamer's RTSP server for Python (see tests/gst/rtsp_server.py).
# Everything it makes goes to $CARGO_TARGET_DIR/c-tests (default target/c-tests); the
# servers it starts read a pipe from this script and end with it, even if it is killed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/c-tests"
bin="$work/bin"
logs="$work/logs"
CBINDGEN_VERSION=0.29.4
# valgrind as the tests run it: errors and definite leaks fail; other leak kinds (thread
# stacks and thread-local handles still alive at exit) are reported, not failed on.
# No suppressions file: none is needed today. Add one only for a genuine false positive of
# a third-party library or the Rust runtime, with a comment saying why.
VALGRIND=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite)

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() {
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAIL  $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "----- $2 (last 40 lines)"
    tail -n 40 "$2" | sed 's/^/  | /'
    echo "-----"
  fi
}
die() { echo "run_c_tests.sh: $*" >&2; exit 1; }
# slug NAME : a file name for a check's name ("snapshot-static gst /h264-720").
slug() { printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }

# --- tools -----------------------------------------------------------------------------
for tool in cc c++ make cmake pkg-config valgrind ffmpeg ffprobe; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install -y build-essential pkg-config valgrind)"
done
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != "$CBINDGEN_VERSION" ]; then
  echo "== installing cbindgen $CBINDGEN_VERSION"
  cargo install cbindgen --locked --version "$CBINDGEN_VERSION"
fi

rm -rf "$work"
mkdir -p "$bin" "$logs" "$work/out"

# --- servers (started early: they warm up while the examples build) -------------------
server_pids=()
server_fds=()
cleanup() {
  # Closing their stdin pipe ends both servers; wait briefly, then stop them by pid.
  for fd in "${server_fds[@]}"; do eval "exec $fd>&-" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# start_server NAME FD CMD... : runs CMD with stdin from a pipe held open on FD.
start_server() {
  local name="$1" fd="$2"
  shift 2
  local fifo="$work/$name.stdin"
  mkfifo "$fifo"
  "$@" <"$fifo" >"$logs/$name.log" 2>&1 &
  server_pids+=($!)
  eval "exec $fd>\"\$fifo\""
  server_fds+=("$fd")
  rm -f "$fifo"
}

# wait_ready NAME PID : waits for the server's "READY <port>" line; prints the port.
wait_ready() {
  local log="$logs/$1.log" pid="$2"
  for _ in $(seq 300); do
    if grep -q '^READY ' "$log" 2>/dev/null; then
      awk '/^READY /{print $2; exit}' "$log"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run_c_tests.sh: $1 did not start:" >&2
  cat "$log" >&2
  return 1
}

/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
  || die "GStreamer's RTSP server for Python is missing; see tests/gst/rtsp_server.py for the Debian packages"
start_server gst 8 /usr/bin/python3 tests/gst/rtsp_server.py --port 0
gst_pid="${server_pids[-1]}"

# --- library, header, install layout ---------------------------------------------------
echo "== cargo build -p camkit-c; cargo build -p camkit-tests --example fault_camera"
cargo build -p camkit-c
cargo build -p camkit-tests --example fault_camera
fault_camera="$target/debug/examples/fault_camera"

if bindings-c/gen_header.sh --verify >"$logs/header.log" 2>&1; then
  pass "header: bindings-c/include/camkit.h is what cbindgen generates"
else
  fail "header: bindings-c/include/camkit.h is out of date (run bindings-c/gen_header.sh)" "$logs/header.log"
fi

prefix="$work/prefix"
bindings-c/install.sh --debug --symlink "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
if [ "$(pkg-config --cflags camkit | xargs)" = "-I$prefix/include" ] \
  && pkg-config --libs camkit | grep -q -- "-L$prefix/lib -lcamkit" \
  && pkg-config --static --libs camkit | grep -q -- "-lstdc++"; then
  pass "pkg-config: camkit.pc gives -I, -L -lcamkit, and -lstdc++ for --static"
else
  fail "pkg-config: camkit.pc flags"
fi

echo "== make -C examples/c"
if make -C examples/c OUT="$bin" >"$logs/make.log" 2>&1; then
  pass "compile: snapshot, stream, demo_camera with -Wall -Wextra -Werror -std=c11, shared and static; camkit.h as C++17"
else
  fail "compile: C examples" "$logs/make.log"
  echo "c-tests: $passed passed, $failed failed"
  exit 1
fi

# The same examples with CMake: find_package(camkit) from install.sh's prefix.
echo "== cmake -S examples/c (find_package(camkit) from $prefix)"
cmake_bin="$work/cmake-build"
rm -rf "$cmake_bin"
if cmake -S examples/c -B "$cmake_bin" -DCMAKE_PREFIX_PATH="$prefix" >"$logs/cmake.log" 2>&1 \
  && cmake --build "$cmake_bin" >>"$logs/cmake.log" 2>&1; then
  pass "cmake: find_package(camkit 0.1) -> camkit::camkit and camkit::camkit_static; snapshot, stream, demo_camera built"
else
  fail "cmake: C examples against the installed CMake package" "$logs/cmake.log"
fi

# The demo camera from C, on the static library.
start_server demo 9 "$bin/demo_camera-static" --port 0 --width 640 --height 360
demo_port="$(wait_ready demo "${server_pids[-1]}")" || die "the demo camera did not start"
gst_port="$(wait_ready gst "$gst_pid")" || die "the GStreamer RTSP server did not start"
demo="rtsp://127.0.0.1:$demo_port/demo"
gst="rtsp://127.0.0.1:$gst_port"
echo "== demo camera $demo, GStreamer server $gst"

# --- checks ----------------------------------------------------------------------------
# is_jpeg FILE : the file starts with FF D8.
is_jpeg() { [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" = "ffd8" ]; }

# snapshot_ok LOG N OUTDIR : the run wrote N JPEGs and printed a streaming status.
snapshot_ok() {
  local log="$1" n="$2" dir="$3" i
  for i in $(seq -f '%03g' 1 "$n"); do
    is_jpeg "$dir/snapshot-$i.jpg" || return 1
  done
  grep -q '"state":"streaming"' "$log"
}

# run_snapshot NAME BINARY URL N [ARGS...]
run_snapshot() {
  local name="$1" exe="$2" url="$3" n="$4"
  shift 4
  local dir="$work/out/$(slug "$name")" log="$logs/$(slug "$name").log"
  if "$exe" "$url" "$n" "$dir" "$@" >"$log" 2>&1 && snapshot_ok "$log" "$n" "$dir"; then
    pass "$name: $n JPEG snapshots ($(grep -m1 -o '[0-9]*x[0-9]*' "$log"))"
  else
    fail "$name" "$log"
  fi
}

# run_stream NAME BINARY URL SECONDS FPS [ARGS...]
run_stream() {
  local name="$1" exe="$2" log="$logs/$(slug "$1").log"
  shift 2
  if "$exe" "$@" >"$log" 2>&1 && grep -Eq '^frames=[1-9][0-9]* fps=' "$log"; then
    pass "$name: $(grep -m1 '^frames=' "$log")"
  else
    fail "$name" "$log"
  fi
}

# run_error NAME EXIT CODE_NAME BINARY ARGS... : fails with that exit code and message.
run_error() {
  local name="$1" want="$2" code="$3" log="$logs/$(slug "$1").log"
  shift 3
  local got=0
  "$@" >"$log" 2>&1 || got=$?
  if [ "$got" = "$want" ] && grep -q "^error: $code ($want): " "$log"; then
    pass "$name: exit $got, $(grep -m1 '^error: ' "$log" | cut -c1-110)"
  else
    fail "$name (exit $got, wanted $want and 'error: $code ($want): ...')" "$log"
  fi
}

# run_valgrind NAME WANT_EXIT CMD... : CMD under valgrind exits WANT_EXIT with no errors
# and no definite leaks.
run_valgrind() {
  local name="$1" want="$2"
  shift 2
  local log="$logs/$(slug "$name").log" got=0
  "${VALGRIND[@]}" "$@" >"$log" 2>&1 || got=$?
  if [ "$got" = "$want" ] && grep -q 'ERROR SUMMARY: 0 errors' "$log" \
    && { grep -q 'definitely lost: 0 bytes' "$log" || grep -q 'no leaks are possible' "$log"; }; then
    pass "$name: $(grep -m1 -o 'ERROR SUMMARY: [0-9]* errors' "$log"), $(grep -m1 -o -e 'definitely lost: [0-9,]* bytes' -e 'no leaks are possible' "$log")"
  else
    fail "$name (exit $got, wanted $want)" "$log"
  fi
}

closed_port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
wrong_password="not-the-password"

for link in shared static; do
  run_snapshot "snapshot-$link demo" "$bin/snapshot-$link" "$demo" 3
  run_stream "stream-$link demo" "$bin/stream-$link" "$demo" 2 10
done
run_snapshot "snapshot-shared gst /h264-720" "$bin/snapshot-shared" "$gst/h264-720" 2
for link in shared static; do
  run_snapshot "cmake snapshot-$link gst /baseline" "$cmake_bin/snapshot-$link" "$gst/baseline" 1
done
run_stream "stream-static gst /h264-720" "$bin/stream-static" "$gst/h264-720" 2 5
# H.265 (x265 Main, open GOPs, B-frames), decoded with libavcodec: JPEGs, and the status
# names the codec and its profile.
run_snapshot "snapshot-shared gst /h265-720-bframes" "$bin/snapshot-shared" "$gst/h265-720-bframes" 2
if ! grep -q ' 1280x720 codec=h265 profile=Main$' "$logs/$(slug "snapshot-shared gst /h265-720-bframes").log"; then
  fail "snapshot-shared gst /h265-720-bframes: status without 1280x720 codec=h265 profile=Main" \
    "$logs/$(slug "snapshot-shared gst /h265-720-bframes").log"
fi
run_snapshot "snapshot-static gst /auth/h264-1080 (digest auth)" "$bin/snapshot-static" \
  "$gst/auth/h264-1080" 1 --user camkit --password 's3cr@t:pass/word'

# A camera with a sub-stream (cfg.sub_stream, a path on the same server): 640-wide snapshots
# of the 1080p camera are decoded by its 640x360 sub-stream, never by the main stream.
run_snapshot "snapshot-shared gst /h264-1080 with sub-stream /high" "$bin/snapshot-shared" \
  "$gst/h264-1080" 2 --sub-stream /high --max-width 640
sub_log="$logs/$(slug "snapshot-shared gst /h264-1080 with sub-stream /high").log"
if ! grep -Eq '^sub-stream: state=streaming width=640 sub_decoded=\+[1-9][0-9]* main_decoded=\+0$' "$sub_log" \
  || ! grep -q ', 640x360, seq' "$sub_log" || ! grep -q '"subStream":{' "$sub_log"; then
  fail "snapshot with sub-stream: not 640x360 from the sub-stream alone" "$sub_log"
fi

# The stream choice (camkit_snapshot_options.stream) with a 640x480 (4:3) sub-stream beside
# the 1080p (16:9) main stream: the picture's shape tells which stream it came from. 320
# wide: 320x240 from the sub-stream (AUTO: the width fits it), 320x180 from the main stream
# (MAIN); SUB: the sub-stream's own 640x480. A bad value names the field stream.
check_stream() {
  local name="snapshot gst /h264-1080 sub-stream /sub-4x3 $1" want="$2"
  shift 2
  run_snapshot "$name" "$bin/snapshot-shared" "$gst/h264-1080" 1 --sub-stream /sub-4x3 "$@"
  if ! grep -q ", $want, seq" "$logs/$(slug "$name").log"; then
    fail "$name: not $want" "$logs/$(slug "$name").log"
  fi
}
check_stream "auto 320 wide" 320x240 --max-width 320
check_stream "main 320 wide" 320x180 --max-width 320 --stream main
check_stream "sub" 640x480 --stream sub
run_error "snapshot bad stream" 1 INVALID_INPUT \
  "$bin/snapshot-static" "$gst/h264-1080" 1 "$work/out/bad-stream" --sub-stream /sub-4x3 --stream 7
if ! grep -q '^error: INVALID_INPUT (1): stream: .*(field: stream)$' "$logs/$(slug "snapshot bad stream").log"; then
  fail "snapshot bad stream: camkit_last_error_field does not name stream" "$logs/$(slug "snapshot bad stream").log"
fi

run_error "snapshot wrong password" 4 UNAUTHORIZED \
  "$bin/snapshot-shared" "$gst/auth/h264-1080" 1 "$work/out/unauthorized" \
  --user camkit --password "$wrong_password"
if grep -q -- "$wrong_password" "$logs/$(slug "snapshot wrong password").log"; then
  fail "snapshot wrong password: the password appears in the output"
fi
run_error "snapshot closed port" 5 UNREACHABLE \
  "$bin/snapshot-static" "rtsp://127.0.0.1:$closed_port/x" 1 "$work/out/unreachable"
run_error "stream closed port" 5 UNREACHABLE \
  "$bin/stream-shared" "rtsp://127.0.0.1:$closed_port/x" 1 5
run_error "snapshot bad url" 1 INVALID_INPUT \
  "$bin/snapshot-static" "http://127.0.0.1:$closed_port/x" 1 "$work/out/bad-url"
if ! grep -q '^error: INVALID_INPUT (1): url: .*(field: url)$' "$logs/$(slug "snapshot bad url").log"; then
  fail "snapshot bad url: camkit_last_error_field does not name url" "$logs/$(slug "snapshot bad url").log"
fi

run_valgrind "valgrind snapshot-static demo" 0 "$bin/snapshot-static" "$demo" 2 "$work/out/vg-snapshot"
run_valgrind "valgrind stream-shared demo" 0 "$bin/stream-shared" "$demo" 2 10
run_valgrind "valgrind snapshot-shared wrong password" 4 "$bin/snapshot-shared" \
  "$gst/auth/h264-1080" 1 "$work/out/vg-unauthorized" --user camkit --password "$wrong_password"

# --- video: fragmented MP4 from camkit_video_subscribe, read by ffprobe and ffmpeg -----
# bindings-c/tests/video.c writes 3 s of GStreamer's High-profile B-frame stream to an MP4
# file (checking the API's promises on the way); ffprobe must see H.264 High 640x360 and
# ffmpeg decode it without a single error. Then the same program on the demo camera under
# valgrind.
video_cflags="$(pkg-config --cflags camkit)"
video_libs="$(pkg-config --libs camkit) -Wl,-rpath,$(pkg-config --variable=libdir camkit)"
# shellcheck disable=SC2086 # the flags are word lists
if cc -Wall -Wextra -Werror -std=c11 -g -O1 $video_cflags -o "$bin/video" bindings-c/tests/video.c $video_libs \
  >"$logs/video-compile.log" 2>&1; then
  pass "compile: bindings-c/tests/video.c (-Wall -Wextra -Werror -std=c11, shared)"
  video_mp4="$work/out/high-bframes.mp4"
  video_log="$logs/video-high-bframes.log"
  if "$bin/video" "$gst/high-bframes" 3 "$video_mp4" >"$video_log" 2>&1 \
    && grep -Eq '^codec=avc1\.64[0-9a-f]{4} segments=[1-9][0-9]+ keyframes=[1-9]' "$video_log"; then
    pass "video gst /high-bframes: $(grep -m1 '^codec=' "$video_log")"
  else
    fail "video gst /high-bframes" "$video_log"
  fi
  probe="$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,profile,width,height \
    -of csv=p=0 "$video_mp4" 2>&1 || true)"
  if [ "$probe" = "h264,High,640,360" ]; then
    pass "video ffprobe: $probe"
  else
    fail "video ffprobe: got '$probe', wanted 'h264,High,640,360'"
  fi
  if ffmpeg -nostdin -v error -i "$video_mp4" -f null - >"$logs/video-ffmpeg.log" 2>&1 \
    && [ ! -s "$logs/video-ffmpeg.log" ]; then
    pass "video ffmpeg: the MP4 decodes without an error"
  else
    fail "video ffmpeg: decode errors" "$logs/video-ffmpeg.log"
  fi
  # H.265 (x265 with B-frames and open GOPs): an hvc1 track.
  hevc_mp4="$work/out/h265-720-bframes.mp4"
  hevc_log="$logs/video-h265-720-bframes.log"
  if "$bin/video" "$gst/h265-720-bframes" 3 "$hevc_mp4" >"$hevc_log" 2>&1 \
    && grep -Eq '^codec=hvc1\.1\.6\.L93[.0-9A-F]* segments=[1-9][0-9]+ keyframes=[1-9]' "$hevc_log"; then
    pass "video gst /h265-720-bframes: $(grep -m1 '^codec=' "$hevc_log")"
  else
    fail "video gst /h265-720-bframes" "$hevc_log"
  fi
  probe="$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,codec_tag_string,profile,width,height \
    -of csv=p=0 "$hevc_mp4" 2>&1 || true)"
  if [ "$probe" = "hevc,Main,hvc1,1280,720" ]; then
    pass "video ffprobe H.265: $probe"
  else
    fail "video ffprobe H.265: got '$probe', wanted 'hevc,Main,hvc1,1280,720'"
  fi
  if ffmpeg -nostdin -v error -i "$hevc_mp4" -f null - >"$logs/video-h265-ffmpeg.log" 2>&1 \
    && [ ! -s "$logs/video-h265-ffmpeg.log" ]; then
    pass "video ffmpeg H.265: the MP4 decodes without an error"
  else
    fail "video ffmpeg H.265: decode errors" "$logs/video-h265-ffmpeg.log"
  fi
  run_valgrind "valgrind video demo" 0 "$bin/video" "$demo" 2 "$work/out/vg-video.mp4"
else
  fail "compile: bindings-c/tests/video.c" "$logs/video-compile.log"
fi

# --- cluster mode: two nodes sharing a camera through a real NATS server ---------------
# bindings-c/tests/cluster.c joins two managers as nodes c-a and c-b of one cluster on a
# nats-server with JetStream (its own port and store, ended by pid), connects the
# GStreamer server's camera with digest auth (its credentials sealed in NATS) and takes a
# forwarded and a local snapshot; a third node with another cluster key must be refused
# with UNAUTHORIZED naming cluster_key. ~5 s.
if cc -Wall -Wextra -Werror -std=c11 -g -O1 $video_cflags -o "$bin/cluster" bindings-c/tests/cluster.c $video_libs \
  >"$logs/cluster-compile.log" 2>&1; then
  pass "compile: bindings-c/tests/cluster.c (-Wall -Wextra -Werror -std=c11, shared)"
  nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  nats_port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  mkdir -p "$work/nats"
  "$nats_bin" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$logs/nats.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
  done
  cluster_log="$logs/cluster.log"
  if "$bin/cluster" "nats://127.0.0.1:$nats_port" "$gst/auth/h264-1080" "ctest$$" \
    --user camkit --password 's3cr@t:pass/word' >"$cluster_log" 2>&1 \
    && grep -Eq '^owner=c-[ab] forwarded=1920x1080 local=320x180$' "$cluster_log" \
    && grep -q '^wrong key: error: UNAUTHORIZED (4): .*(field: cluster_key)$' "$cluster_log"; then
    pass "cluster: $(grep -m1 '^owner=' "$cluster_log"); another key refused naming cluster_key"
  else
    fail "cluster: two nodes through nats-server" "$cluster_log"
  fi
  if grep -q 's3cr@t' "$cluster_log" "$logs/nats.log"; then
    fail "cluster: the camera's password appears in the output"
  fi
  kill "$nats_pid" 2>/dev/null || true
  wait "$nats_pid" 2>/dev/null || true
else
  fail "compile: bindings-c/tests/cluster.c" "$logs/cluster-compile.log"
fi

# --- fault matrix, under valgrind --------------------------------------------------------
# The demo camera with one fault active (tests/examples/fault_camera.rs; one camera per
# fault, 640x360), against snapshot (N=1) for every fault and stream (2 s) for the faults
# that strike mid-stream. Every C run here is under valgrind, linkage alternating shared /
# static; each must exit with the expected camkit_result (and print `error: NAME (n): ...`),
# or, mid-stream, exit 0 with frames and the status showing what the camera did; no valgrind
# errors, no definite leaks. Only one-session's first client (holding the session) is native.
fault_t0=$SECONDS

# fault_camera_start FAULT [RUN] : starts the fault camera on fd 10 (log fault-FAULT[-RUN],
# a new name for each camera); sets fault_url.
fault_camera_start() {
  local port name="fault-$1${2:+-$2}"
  start_server "$name" 10 "$fault_camera" --fault "$1"
  fault_pid="${server_pids[-1]}"
  port="$(wait_ready "$name" "$fault_pid")" || die "the fault camera ($name) did not start"
  fault_url="rtsp://127.0.0.1:$port/demo"
}
# fault_camera_stop : closes its stdin, which ends it.
fault_camera_stop() {
  exec 10>&-
  wait "$fault_pid" 2>/dev/null || true
}

# run_fault NAME WANT_EXIT 'REGEX;REGEX...' CMD... : CMD under valgrind exits WANT_EXIT
# (or one of 'A|B'), prints a line matching each extended REGEX, with no valgrind errors
# and no definite leaks.
run_fault() {
  local name="$1" want="$2" patterns="$3"
  shift 3
  local log="$logs/$(slug "$name").log" got=0 pat missing="" pats
  "${VALGRIND[@]}" "$@" >"$log" 2>&1 || got=$?
  IFS=';' read -r -a pats <<<"$patterns"
  for pat in "${pats[@]}"; do
    grep -Eq -- "$pat" "$log" || missing="$missing '$pat'"
  done
  if [[ "|$want|" == *"|$got|"* ]] && [ -z "$missing" ] && grep -q 'ERROR SUMMARY: 0 errors' "$log" \
    && { grep -q 'definitely lost: 0 bytes' "$log" || grep -q 'no leaks are possible' "$log"; }; then
    pass "$name: exit $got, $(grep -m1 -o -E -e '^error: [A-Z_]+ \([0-9]+\)' -e '^frames=[0-9]+' -e '^wrote [^:]*' "$log"), $(grep -m1 -o 'ERROR SUMMARY: [0-9]* errors' "$log")"
  else
    fail "$name (exit $got, wanted $want; missing:${missing:- none})" "$log"
  fi
}

# Faults met while connecting: FAULT EXIT RESULT_NAME.
fault_connect=(
  "401 4 UNAUTHORIZED" "403 4 UNAUTHORIZED" "404 7 PROTOCOL" "454 7 PROTOCOL"
  "play-454 7 PROTOCOL" "503 5 UNREACHABLE" "garbage 7 PROTOCOL" "truncated 7 PROTOCOL"
  "close-describe 5 UNREACHABLE" "silent-describe 6 TIMEOUT" "mpeg4 8 UNSUPPORTED_CODEC"
)
i=0
for row in "${fault_connect[@]}"; do
  read -r fault want code <<<"$row"
  link=$([ $((i % 2)) = 0 ] && echo static || echo shared)
  i=$((i + 1))
  fault_camera_start "$fault"
  run_fault "valgrind fault $fault: snapshot-$link -> $code" "$want" "^error: $code \($want\): " \
    "$bin/snapshot-$link" "$fault_url" 1 "$work/out/fault-$fault" --timeout-ms 1000
  fault_camera_stop
done

# One session at a time: a second client is refused (453 -> UNREACHABLE, busy) while the
# first streams on.
fault_camera_start one-session
# The first client holds the session until the second is done (SIGTERM ends its run):
# valgrind's start-up alone can take seconds on a loaded machine.
"$bin/stream-static" "$fault_url" 120 10 >"$logs/fault-one-session-first.log" 2>&1 &
first_pid=$!
# It connects in ~30 ms on a quiet machine; wait for it however loaded this one is.
for _ in $(seq 300); do
  grep -q '^connected' "$logs/fault-one-session-first.log" && break
  sleep 0.1
done
run_fault "valgrind fault one-session: second client snapshot-shared -> UNREACHABLE" 5 \
  '^error: UNREACHABLE \(5\): ' \
  "$bin/snapshot-shared" "$fault_url" 1 "$work/out/fault-one-session" --timeout-ms 1000
kill -TERM "$first_pid" 2>/dev/null || true
if wait "$first_pid" && grep -Eq '^frames=[1-9]' "$logs/fault-one-session-first.log"; then
  pass "fault one-session: the first client streams on ($(grep -m1 '^frames=' "$logs/fault-one-session-first.log"))"
else
  fail "fault one-session: the first client" "$logs/fault-one-session-first.log"
fi
fault_camera_stop

# Faults that strike mid-stream: FAULT 'REGEX;...' for stream's output (its status JSON).
# loss: OpenH264 fails the frames that miss data or references (framesDropped > 0);
# libavcodec (the default decoder where it is installed) conceals what is missing without
# reporting it, so only "decodes on without a reconnect" holds for both. corrupt: both
# report the damaged frames.
fault_stream=(
  'hangup "reconnects":[1-9];"code":"UNREACHABLE"'
  'stall "reconnects":[1-9];"code":"TIMEOUT"'
  'loss "reconnects":0,;"framesDecoded":[1-9]'
  'corrupt "reconnects":0,;"framesDropped":[1-9]'
)
for row in "${fault_stream[@]}"; do
  read -r fault status <<<"$row"
  # A fresh camera for each run (stall's pause lasts, hangup's count is per connection).
  fault_camera_start "$fault"
  # loss/corrupt: the on-demand decode behind a snapshot may meet only damaged frames
  # (corrupt: 2 of 7 runs under valgrind, 0 of 8 natively): DECODE (9) is accepted there.
  if [ "$fault" = loss ] || [ "$fault" = corrupt ]; then
    want='0|9' pattern='^wrote |^error: DECODE \(9\): '
  elif [ "$fault" = hangup ]; then
    # The camera hangs up after 5 frames (a third of a second): under valgrind the
    # snapshot may come after it, when the camera is reconnecting: NO_FRAME saying so.
    want='0|11' pattern='^wrote |^error: NO_FRAME \(11\): .*reconnecting'
  else
    want=0 pattern='^wrote ;^\{"id":"cam"'
  fi
  run_fault "valgrind fault $fault: snapshot-static" "$want" "$pattern" \
    "$bin/snapshot-static" "$fault_url" 1 "$work/out/fault-$fault" --timeout-ms 5000
  fault_camera_stop
  fault_camera_start "$fault" stream
  # stall: a 500 ms frame watchdog, so it fires within the 2 s (the video stops after 1 s).
  run_fault "valgrind fault $fault: stream-shared 2 s" 0 "^frames=[1-9];$status" \
    "$bin/stream-shared" "$fault_url" 2 10 --timeout-ms 2000 \
    $([ "$fault" = stall ] && echo --frame-timeout-ms 500)
  fault_camera_stop
done
echo "== fault matrix under valgrind: $((SECONDS - fault_t0)) s"

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
