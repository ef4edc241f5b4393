#!/usr/bin/env bash
# Camera-like H.264 clips for the benchmarks: the benchmark kit's make-clips.sh (ffmpeg's
# testsrc2 with sensor-like temporal noise, x264 veryfast, CBR, no B-frames, 10 minutes by
# looping a 40 s clip), with one change: -sc_threshold 0, so the GOP really is 2 s. Without
# it x264's scene-cut detection, triggered by the noise, puts a keyframe every 0.5-0.8 s,
# which no IP camera does and which would flatter every on-demand figure.
# Also the same pictures in H.265 (x265 Main, same rates and GOP, no B-frames; a 20 s clip
# looped, x265 being slow to encode), for the H.265 decode figures.
#
#   bench/make_clips.sh OUTDIR        (needs ffmpeg with libx264 and libx265)
#
# Existing clips are kept: delete OUTDIR to make them again.
set -euo pipefail
out=${1:?usage: make_clips.sh OUTDIR}
mkdir -p "$out"
cd "$out"
clip() { # name size rate profile kbps
    [ -s "$1.mp4" ] && return
    echo "making $1.mp4 ($2 at $3 fps, $5 kb/s, GOP $(($3 * 2)))" >&2
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=$2:rate=$3,noise=alls=10:allf=t+u" -t 40 \
        -c:v libx264 -preset veryfast -profile:v "$4" -bf 0 -g $(($3 * 2)) -keyint_min $(($3 * 2)) \
        -sc_threshold 0 -b:v "$5k" -maxrate "$5k" -bufsize "$5k" -pix_fmt yuv420p "$1.h264"
    ffmpeg -v error -y -r "$3" -f h264 -i "$1.h264" -c copy "$1.40s.mp4"
    ffmpeg -v error -y -stream_loop 14 -i "$1.40s.mp4" -c copy "$1.tmp.mp4"
    rm -f "$1.40s.mp4" "$1.h264"
    mv "$1.tmp.mp4" "$1.mp4"
}
hevc_clip() { # name size rate kbps
    [ -s "$1.mp4" ] && return
    echo "making $1.mp4 ($2 at $3 fps, H.265, $4 kb/s, GOP $(($3 * 2)))" >&2
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=$2:rate=$3,noise=alls=10:allf=t+u" -t 20 \
        -c:v libx265 -preset veryfast -profile:v main -pix_fmt yuv420p \
        -x265-params "bframes=0:keyint=$(($3 * 2)):min-keyint=$(($3 * 2)):scenecut=0:log-level=error" \
        -b:v "$4k" -maxrate "$4k" -bufsize "$4k" "$1.hevc"
    ffmpeg -v error -y -r "$3" -f hevc -i "$1.hevc" -c copy -tag:v hvc1 "$1.20s.mp4"
    ffmpeg -v error -y -stream_loop 29 -i "$1.20s.mp4" -c copy -tag:v hvc1 "$1.tmp.mp4"
    rm -f "$1.20s.mp4" "$1.hevc"
    mv "$1.tmp.mp4" "$1.mp4"
}
clip cam720 1280x720 15 main 2000
clip cam1080 1920x1080 15 high 4000
hevc_clip hevc720 1280x720 15 2000
hevc_clip hevc1080 1920x1080 15 4000
