#!/usr/bin/env bash
# The end-to-end benchmark: camkit's Express server against the seed design (Express +
# Python/OpenCV) and ffmpeg, on the same camera-like streams served by GStreamer, in one run.
#
#   bash bench/run.sh --kit DIR [--quick] [--out DIR] [--wait-quiet MIN] [--criterion]
#
#   --kit DIR         the benchmark kit: harness/bench.js and seed-reference/ (default
#                     ../shared/bench next to the repository, when it is there). It is copied
#                     into the output folder (it may be read-only) and set up there.
#   --quick           a few seconds per measurement: checks that everything runs, the
#                     figures mean little.
#   --out DIR         cache and results (default ./target/bench): clips, a Python venv for
#                     the seed, npm installs of the kit, logs, results-<date>.json.
#   --wait-quiet MIN  first wait, up to MIN minutes, until no compiler (rustc, cc1plus, napi
#                     build) runs on the machine; the load is recorded either way.
#   --criterion       also run `cargo bench --target <host> -p camkit --bench pipeline -- decode_per_frame`
#                     (H.264 and H.265; otherwise its last results under target/criterion
#                     are quoted, if any).
#   --no-browser      leave out the joins in Chromium (step 5b).
#
# What it does:
#  1. System packages (ffmpeg, GStreamer, PyGObject): installed with apt-get when root,
#     otherwise the `sudo apt-get install` line is printed.
#  2. Clips: bench/make_clips.sh (720p15 2 Mb/s Main, 1080p15 4 Mb/s High, 2 s GOP; the same
#     pictures in H.265), cached.
#  3. bench/serve_clips.py serves them over RTSP (gst-rtsp-server, no re-encoding).
#  4. Builds the Node module in release (scripts/ensure-native.js) and loads a private copy
#     of it (NAPI_RS_NATIVE_LIBRARY_PATH), so a rebuild during the run cannot swap it.
#  5. The kit's harness against camkit's Express server, then against the seed, each
#     freshly started: 1 camera 720p with 4 WebSocket clients, 8 cameras 1080p with 8.
# 5b. Live video (bench/video.js, issue 13): camkit's Express server with 8 cameras 1080p
#     and one fMP4 viewer (video.mp4) per camera: CPU, RSS, bytes per viewer, frames
#     decoded, segment delay; the JPEG WebSocket path's bytes at the same camera; then 10
#     joins of a camera in Chromium, video against the JPEG fallback.
#  6. ffmpeg (`ffmpeg -threads 1 -rtsp_transport tcp -i URL -f image2pipe -c:v mjpeg -q:v 5 -`),
#     1 and 8 processes on the 1080p stream, 1 on the 720p stream; and ffmpeg decoding alone
#     (`-f null -`) on each, for the decoder's cost per frame.
#  7. camkit in-process (bench/measure.js throughput): continuous decode, then decode + full
#     size JPEG of every frame: frames per CPU-second, against ffmpeg's; at 1080p also with
#     the built-in OpenH264 decoder instead of the default (libavcodec where it loads);
#     decode alone of the H.265 clips (libavcodec), beside ffmpeg's.
#  7b. camkit in-process (bench/sub_stream.js): Moondream-sized snapshots (768 px, one a
#     second) of a 1080p camera with a 640x360 sub-stream against the same camera without
#     one: CPU per snapshot, both in the same run (its own GStreamer server, live x264).
#  7c. camkit in-process (tests/examples/cluster_bench.rs, nats-server with JetStream): 32
#     idle cameras standalone against the same 32 on a one-node cluster (CPU, NATS traffic),
#     then a second node: snapshot latency local against forwarded (p50/p99), and forwarded
#     snapshots back to back through the non-owner.
#  8. camkit's Express server with 0, 1, 8, 32 cameras nobody watches: CPU, RSS, time to
#     first frame, onDemand snapshots of cameras nobody watched.
#  9. Prints the table (markdown) and writes everything to OUT/results-<date>.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

QUICK=0
KIT=""
OUT=""
WAIT_QUIET=0
CRITERION=0
BROWSER=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --kit) KIT=${2:?--kit needs a folder}; shift ;;
        --out) OUT=${2:?--out needs a folder}; shift ;;
        --wait-quiet) WAIT_QUIET=${2:?--wait-quiet needs minutes}; shift ;;
        --criterion) CRITERION=1 ;;
        --no-browser) BROWSER=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$KIT" ] && [ -d "$ROOT/../shared/bench/harness" ]; then KIT="$ROOT/../shared/bench"; fi
if [ -z "$KIT" ] || [ ! -f "$KIT/harness/bench.js" ] || [ ! -d "$KIT/seed-reference" ]; then
    echo "run.sh: give the benchmark kit with --kit DIR (a folder with harness/bench.js and seed-reference/)" >&2
    exit 2
fi
KIT=$(cd "$KIT" && pwd)
OUT=${OUT:-$ROOT/target/bench}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN="$OUT/run-$STAMP"
mkdir -p "$RUN/data" "$RUN/logs"

if [ "$QUICK" = 1 ]; then
    HSECS=3; ISECS=3; TSECS=4; FSECS=4; COUNTS=1,4; ONDEMAND=3; TTFF=2; SETTLE=6; HCAMS=2; JOINS=2
else
    HSECS=15; ISECS=20; TSECS=20; FSECS=20; COUNTS=1,8,32; ONDEMAND=16; TTFF=8; SETTLE=8; HCAMS=8; JOINS=10
fi

say() { printf '\n==== %s ====\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Processes started here are stopped here, by pid.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ -n "${MONITOR_PID:-}" ]; then kill "$MONITOR_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one started process (and its children: the seed's Python) and waits for it.
stop() {
    local pid=$1
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
}

# waits until FILE has a line matching REGEX (up to SECS), prints the first match
wait_for_line() {
    local file=$1 regex=$2 secs=$3 pid=$4
    for _ in $(seq $((secs * 10))); do
        if grep -Eq "$regex" "$file" 2>/dev/null; then grep -Eo "$regex" "$file" | head -1; return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "run.sh: no line matching /$regex/ in $file:" >&2
    tail -20 "$file" >&2
    return 1
}

free_port() {
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# ---------------------------------------------------------------------------------------
# 1. System packages

SYSTEM_PYTHON=/usr/bin/python3
has_cmd() { command -v "$1" >/dev/null 2>&1; }
has_gst_element() { has_cmd gst-inspect-1.0 && gst-inspect-1.0 --exists "$1" >/dev/null 2>&1; }
has_rtsp_server_bindings() {
    [ -x "$SYSTEM_PYTHON" ] && "$SYSTEM_PYTHON" -c '
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtsp, GstRtspServer
Gst.init(None)
GstRtspServer.RTSPServer()
' >/dev/null 2>&1
}
has_libx264() { has_cmd ffmpeg && [[ "$(ffmpeg -hide_banner -encoders 2>/dev/null)" == *libx264* ]]; }
has_libx265() { has_cmd ffmpeg && [[ "$(ffmpeg -hide_banner -encoders 2>/dev/null)" == *libx265* ]]; }
has_venv() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }

MISSING=()
need() {
    local pkgs=()
    while [ "$1" != "--" ]; do pkgs+=("$1"); shift; done
    shift
    if ! "$@"; then MISSING+=("${pkgs[@]}"); fi
}
check_system_packages() {
    MISSING=()
    need ffmpeg -- has_cmd ffmpeg
    need ffmpeg -- has_libx264
    need ffmpeg -- has_libx265
    need gstreamer1.0-tools -- has_cmd gst-inspect-1.0
    need python3 -- test -x "$SYSTEM_PYTHON"
    need python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp -- has_rtsp_server_bindings
    need gstreamer1.0-plugins-base -- has_gst_element filesrc
    need gstreamer1.0-plugins-good -- has_gst_element qtdemux
    need gstreamer1.0-plugins-good -- has_gst_element rtph264pay
    need gstreamer1.0-plugins-bad -- has_gst_element h264parse
    need gstreamer1.0-plugins-good -- has_gst_element rtph265pay
    need gstreamer1.0-plugins-bad -- has_gst_element h265parse
    if [ "$BROWSER" = 1 ]; then need chromium -- has_cmd chromium; fi
    need python3-venv -- has_venv
    need procps -- has_cmd pkill
    need nats-server -- has_cmd nats-server
    if [ ${#MISSING[@]} -gt 0 ]; then
        mapfile -t MISSING < <(printf '%s\n' "${MISSING[@]}" | awk '!seen[$0]++')
    fi
}
say "System packages"
for tool in node npm cargo; do
    has_cmd "$tool" || { echo "run.sh: $tool is missing (Node 20 with npm, and Rust, are needed)" >&2; exit 1; }
done
check_system_packages
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "Missing: ${MISSING[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "Install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${MISSING[*]}" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
    check_system_packages
    if [ ${#MISSING[@]} -gt 0 ]; then echo "Still missing: ${MISSING[*]}" >&2; exit 1; fi
fi
echo "all present" >&2

# ---------------------------------------------------------------------------------------
# 2. Clips, the kit, the seed's Python, the Node module

say "Clips"
bash bench/make_clips.sh "$OUT/clips" >&2
ls -l "$OUT/clips" >&2

say "Benchmark kit (copied to $OUT/kit)"
mkdir -p "$OUT/kit"
cp -R "$KIT/." "$OUT/kit/"
chmod -R u+w "$OUT/kit"
if [ ! -d "$OUT/kit/harness/node_modules/ws" ]; then (cd "$OUT/kit/harness" && npm install --no-audit --no-fund >&2); fi
if [ ! -d "$OUT/kit/seed-reference/express/node_modules/express" ]; then (cd "$OUT/kit/seed-reference/express" && npm install --no-audit --no-fund >&2); fi
VENV="$OUT/venv"
if ! "$VENV/bin/python" -c 'import cv2, fastapi, uvicorn, websockets' >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet opencv-python-headless fastapi uvicorn websockets >&2
fi
"$VENV/bin/python" -c 'import cv2; print("seed: OpenCV", cv2.__version__)' >&2

say "Node module (release)"
node scripts/ensure-native.js >&2
NATIVE=$(ls bindings-node/camkit.*.node | head -1)
cp "$NATIVE" "$OUT/camkit.node"
export NAPI_RS_NATIVE_LIBRARY_PATH="$OUT/camkit.node"

# ---------------------------------------------------------------------------------------
# Load: wait for a quiet machine if asked, and record what else runs during the run.

compilers_running() { pgrep -x rustc >/dev/null || pgrep -x cc1plus >/dev/null || pgrep -x cc1 >/dev/null || pgrep -f 'napi build' >/dev/null; }
if [ "$WAIT_QUIET" -gt 0 ]; then
    say "Waiting up to $WAIT_QUIET min for no compiler to run"
    waited=0
    while compilers_running && [ $waited -lt $((WAIT_QUIET * 60)) ]; do sleep 30; waited=$((waited + 30)); done
    echo "waited ${waited}s; compilers running now: $(compilers_running && echo yes || echo no)" >&2
fi
# One line every 5 s: time, 1-min load, whether a compiler ran.
(
    while true; do
        printf '%s %s %s\n' "$(date +%s)" "$(cut -d' ' -f1 /proc/loadavg)" "$(compilers_running && echo 1 || echo 0)"
        sleep 5
    done
) > "$RUN/logs/load.txt" &
MONITOR_PID=$!

# ---------------------------------------------------------------------------------------
# 3. The RTSP server

say "RTSP server (GStreamer)"
# stdin from a pipe that stays open while this script runs: the server exits with us.
exec {SERVER_STDIN}< <(while kill -0 $$ 2>/dev/null; do sleep 5; done)
"$SYSTEM_PYTHON" bench/serve_clips.py --port 0 --clip "cam720=$OUT/clips/cam720.mp4" --clip "cam1080=$OUT/clips/cam1080.mp4" \
    --hevc-clip "hevc720=$OUT/clips/hevc720.mp4" --hevc-clip "hevc1080=$OUT/clips/hevc1080.mp4" \
    <&"$SERVER_STDIN" > "$RUN/logs/rtsp.log" 2>&1 &
RTSP_PID=$!
PIDS+=("$RTSP_PID")
RTSP_PORT=$(wait_for_line "$RUN/logs/rtsp.log" 'READY [0-9]+' 15 "$RTSP_PID" | awk '{print $2}')
R720="rtsp://127.0.0.1:$RTSP_PORT/cam720"
R1080="rtsp://127.0.0.1:$RTSP_PORT/cam1080"
H720="rtsp://127.0.0.1:$RTSP_PORT/hevc720"
H1080="rtsp://127.0.0.1:$RTSP_PORT/hevc1080"
echo "serving $R720, $R1080, $H720 and $H1080" >&2

# ---------------------------------------------------------------------------------------
# Servers

CAMKIT_PID=""
CAMKIT_BASE=""
start_camkit() {
    local log="$RUN/logs/camkit-$1.log"
    env -u CAMKIT_CAMERAS -u CAMKIT_CAMERAS_FILE PORT=0 HOST=127.0.0.1 CAMKIT_DEMO=0 \
        node examples/express-server/server.js > "$log" 2>&1 &
    CAMKIT_PID=$!
    PIDS+=("$CAMKIT_PID")
    CAMKIT_BASE=$(wait_for_line "$log" 'listening on http://127\.0\.0\.1:[0-9]+' 60 "$CAMKIT_PID" | sed 's/^listening on //')
}
SEED_PID=""
SEED_BASE=""
start_seed() {
    local log="$RUN/logs/seed-$1.log" port pyport
    port=$(free_port)
    pyport=$(free_port)
    while [ "$pyport" = "$port" ]; do pyport=$(free_port); done
    (cd "$OUT/kit/seed-reference/express" && PORT=$port PY_PORT=$pyport PYTHON="$VENV/bin/python" exec node server.js) > "$log" 2>&1 &
    SEED_PID=$!
    PIDS+=("$SEED_PID")
    wait_for_line "$log" 'seed baseline ready' 90 "$SEED_PID" > /dev/null
    SEED_BASE="http://127.0.0.1:$port"
}

harness() { # name base pid rtsp cams clients
    local name=$1
    echo "harness: $name ($5 cameras, $6 clients, ${HSECS}s per phase)" >&2
    node "$OUT/kit/harness/bench.js" --base "$2" --pids "$3" --rtsp "$4" --cams "$5" --clients "$6" --fps 15 --secs "$HSECS" \
        > "$RUN/data/$name.json" 2> "$RUN/logs/harness-$name.err"
    cat "$RUN/data/$name.json" >&2
}

# ---------------------------------------------------------------------------------------
# 5. The harness: camkit, then the seed

say "Harness against camkit's Express server"
start_camkit h720
harness camkit-720p-1cam "$CAMKIT_BASE" "$CAMKIT_PID" "$R720" 1 4
stop "$CAMKIT_PID"
start_camkit h1080
harness camkit-1080p-8cam "$CAMKIT_BASE" "$CAMKIT_PID" "$R1080" "$HCAMS" 8
stop "$CAMKIT_PID"

say "Live video: $HCAMS cameras 1080p, one fMP4 viewer each; then joins in Chromium"
start_camkit video
node bench/video.js viewers --base "$CAMKIT_BASE" --pid "$CAMKIT_PID" --rtsp "$R1080" --cams "$HCAMS" --secs "$HSECS" \
    > "$RUN/data/camkit-video-1080p-8cam.json"
cat "$RUN/data/camkit-video-1080p-8cam.json" >&2
if [ "$BROWSER" = 1 ]; then
    node bench/video.js joins --base "$CAMKIT_BASE" --rtsp "$R1080" --n "$JOINS" > "$RUN/data/camkit-video-joins.json"
    node -e 'console.log(JSON.stringify(require(process.argv[1]).summary))' "$RUN/data/camkit-video-joins.json" >&2
fi
stop "$CAMKIT_PID"

say "Harness against the seed (Express + Python/OpenCV)"
start_seed h720
harness seed-720p-1cam "$SEED_BASE" "$SEED_PID" "$R720" 1 4
stop "$SEED_PID"
start_seed h1080
harness seed-1080p-8cam "$SEED_BASE" "$SEED_PID" "$R1080" "$HCAMS" 8
stop "$SEED_PID"

# ---------------------------------------------------------------------------------------
# 6. ffmpeg

say "ffmpeg: 1 and 8 processes on the 1080p stream, 1 on the 720p stream, decode alone on each"
node bench/measure.js ffmpeg --rtsp "$R1080" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-1080p-1.json"
cat "$RUN/data/ffmpeg-1080p-1.json" >&2
node bench/measure.js ffmpeg --rtsp "$R1080" --n "$HCAMS" --secs "$FSECS" > "$RUN/data/ffmpeg-1080p-8.json"
cat "$RUN/data/ffmpeg-1080p-8.json" >&2
node bench/measure.js ffmpeg --rtsp "$R720" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-720p-1.json"
cat "$RUN/data/ffmpeg-720p-1.json" >&2
# The decoder alone (-f null): what decoding costs ffmpeg, next to camkit's decode-only figure.
node bench/measure.js ffmpeg --null --rtsp "$R1080" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-null-1080p-1.json"
cat "$RUN/data/ffmpeg-null-1080p-1.json" >&2
node bench/measure.js ffmpeg --null --rtsp "$R720" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-null-720p-1.json"
cat "$RUN/data/ffmpeg-null-720p-1.json" >&2
node bench/measure.js ffmpeg --null --rtsp "$H1080" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-null-hevc1080p-1.json"
cat "$RUN/data/ffmpeg-null-hevc1080p-1.json" >&2
node bench/measure.js ffmpeg --null --rtsp "$H720" --n 1 --secs "$FSECS" > "$RUN/data/ffmpeg-null-hevc720p-1.json"
cat "$RUN/data/ffmpeg-null-hevc720p-1.json" >&2

# ---------------------------------------------------------------------------------------
# 7. camkit in-process: continuous decode (+ JPEG)

say "camkit in-process: continuous decode, then decode + full-size JPEG (1080p, 720p)"
node bench/measure.js throughput --rtsp "$R1080" --secs "$TSECS" > "$RUN/data/camkit-throughput-1080p.json"
cat "$RUN/data/camkit-throughput-1080p.json" >&2
node bench/measure.js throughput --rtsp "$R720" --secs "$TSECS" > "$RUN/data/camkit-throughput-720p.json"
cat "$RUN/data/camkit-throughput-720p.json" >&2
# The built-in decoder for comparison (what runs where libavcodec cannot be loaded).
node bench/measure.js throughput --rtsp "$R1080" --secs "$TSECS" --decoder openh264 > "$RUN/data/camkit-throughput-1080p-openh264.json"
cat "$RUN/data/camkit-throughput-1080p-openh264.json" >&2
# H.265 (libavcodec): decode alone, and decode + full-size JPEG.
node bench/measure.js throughput --rtsp "$H1080" --secs "$TSECS" > "$RUN/data/camkit-throughput-hevc1080p.json"
cat "$RUN/data/camkit-throughput-hevc1080p.json" >&2
node bench/measure.js throughput --rtsp "$H720" --secs "$TSECS" > "$RUN/data/camkit-throughput-hevc720p.json"
cat "$RUN/data/camkit-throughput-hevc720p.json" >&2

say "camkit: Moondream-sized snapshots, 1080p camera with and without a 360p sub-stream"
node bench/sub_stream.js --secs "$TSECS" > "$RUN/data/camkit-sub-stream.json"
cat "$RUN/data/camkit-sub-stream.json" >&2

say "camkit: cluster mode (32 idle cameras standalone vs one-node cluster; local vs forwarded snapshots)"
nice cargo build --release -p camkit-tests --example cluster_bench --features cluster >&2
"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/cluster_bench" "$ISECS" "$([ "$QUICK" = 1 ] && echo 50 || echo 300)" \
    > "$RUN/data/camkit-cluster.json"
cat "$RUN/data/camkit-cluster.json" >&2

# ---------------------------------------------------------------------------------------
# 8. camkit: cameras nobody watches

say "camkit's Express server: cameras nobody watches ($COUNTS)"
start_camkit idle
node bench/measure.js idle --base "$CAMKIT_BASE" --pid "$CAMKIT_PID" --rtsp "$R1080" \
    --counts "$COUNTS" --secs "$ISECS" \
    --ondemand "$ONDEMAND" --ttff "$TTFF" --settle "$SETTLE" > "$RUN/data/camkit-idle-1080p.json"
stop "$CAMKIT_PID"
node -e 'const d=require(process.argv[1]); for (const k of ["baseline","levels","ttff_ms","connect_ms","ondemand"]) if (d[k]) { const v={...d[k]}; delete v.samples; console.log(k, JSON.stringify(v)) }' \
    "$RUN/data/camkit-idle-1080p.json" >&2

# ---------------------------------------------------------------------------------------
# Criterion's decode figure (optional)

if [ "$CRITERION" = 1 ]; then
    # For the host triple, as the Node module's release build: the two share dependencies.
    TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
    say "cargo bench --target $TRIPLE -p camkit --bench pipeline -- decode_per_frame"
    nice cargo bench --target "$TRIPLE" -p camkit --bench pipeline -- decode_per_frame >&2
fi
# Every decode case's mean per frame (one GOP of 30 frames per iteration), from criterion's
# own estimates.
node -e '
const fs = require("fs"); const path = require("path"); const root = process.argv[1]; const out = { ms_per_frame: {}, measured_at: {} };
for (const group of ["h264_decode_per_frame", "h265_decode_per_frame"]) {
  let backends = []; try { backends = fs.readdirSync(path.join(root, group)) } catch {}
  for (const b of backends) {
    let cases = []; try { cases = fs.readdirSync(path.join(root, group, b)) } catch {}
    for (const c of cases) {
      const f = path.join(root, group, b, c, "new", "estimates.json");
      try { out.ms_per_frame[`${group}/${b}/${c}`] = +(JSON.parse(fs.readFileSync(f)).mean.point_estimate / 1e6 / 30).toFixed(3); out.measured_at[`${group}/${b}/${c}`] = fs.statSync(f).mtime.toISOString() } catch {}
    }
  }
}
if (Object.keys(out.ms_per_frame).length) console.log(JSON.stringify(out))' "${CARGO_TARGET_DIR:-$ROOT/target}/criterion" > "$RUN/data/criterion.json"
[ -s "$RUN/data/criterion.json" ] || rm -f "$RUN/data/criterion.json"

# ---------------------------------------------------------------------------------------
# 9. Report

kill "$MONITOR_PID" 2>/dev/null || true
MONITOR_PID=""
node - "$RUN/logs/load.txt" "$QUICK" "$STAMP" > "$RUN/data/meta.json" <<'EOF'
const fs = require('fs'); const os = require('os'); const { execSync } = require('child_process')
const [loadFile, quick, stamp] = process.argv.slice(2)
const sh = (c) => { try { return execSync(c, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { return null } }
const samples = fs.readFileSync(loadFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number))
const loads = samples.map((s) => s[1])
console.log(JSON.stringify({
  date: stamp,
  quick: quick === '1',
  nproc: os.cpus().length,
  cpu_model: (/model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8')) || [])[1] || null,
  kernel: os.release(),
  memory_gb: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  ffmpeg: (sh('ffmpeg -version') || '').split('\n')[0],
  gstreamer: (sh('gst-inspect-1.0 --version') || '').split('\n')[1] || null,
  git: sh('git rev-parse --short HEAD') + (sh('git status --porcelain') ? ' (with uncommitted changes)' : ''),
  load_1min: { samples: loads.length, mean: +(loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length)).toFixed(2), max: Math.max(...loads) },
  compilers_running_fraction: +(samples.filter((s) => s[2] === 1).length / Math.max(1, samples.length)).toFixed(2)
}))
EOF

RESULTS="$OUT/results-$STAMP.json"
say "Results ($RESULTS)"
node bench/measure.js report --dir "$RUN/data" --out "$RESULTS" | tee "$RUN/table.md"
node -e 'const m=require(process.argv[1]).meta; console.log(`\n${m.nproc} cores, ${m.cpu_model}, kernel ${m.kernel}; load (1 min) mean ${m.load_1min.mean}, max ${m.load_1min.max}; a compiler was running in ${Math.round(m.compilers_running_fraction*100)}% of the samples${m.quick ? "; --quick: these figures mean little" : ""}`)' "$RESULTS"
