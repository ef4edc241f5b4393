#!/usr/bin/python3
"""Serves camera-like H.264 clips over RTSP with GStreamer's gst-rtsp-server, for the benchmarks.

    /usr/bin/python3 bench/serve_clips.py --port 0 --clip cam720=clips/cam720.mp4 --clip cam1080=clips/cam1080.mp4

Prints exactly one line ``READY <port>`` once it listens on 127.0.0.1, then serves until
SIGTERM/SIGINT or until its stdin closes (so it dies with its parent; pass --ignore-stdin to
run it by hand in the background).

Each ``--clip NAME=FILE.mp4`` is served at ``/NAME`` with the pipeline
``filesrc ! qtdemux ! h264parse ! rtph264pay config-interval=1`` (each ``--hevc-clip``
the same with ``h265parse ! rtph265pay``; no re-encoding: the server
costs little CPU, which matters on a 2-core machine where it runs next to what is measured).

Every RTSP session gets a pipeline of its own (the factory is not shared), so N clients are
N independent cameras: each stream starts at a keyframe, each at its own GOP phase. A shared
factory does not model a camera with several clients here: gst-rtsp-server answers a PLAY
with a Range by seeking the (non-live) shared pipeline back to 0, for every client, and
clients sharing one pipeline get their keyframes in lockstep, so a benchmark that connects
cameras one after another would measure the GOP length N times.

Playback loops: when a clip ends, the demuxer is sent back to the start with a
non-flushing seek, so running time and RTP timestamps continue and clients see no
discontinuity. The mp4 files are played at real time (the server's sinks sync to the clock).

Needs the Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
gstreamer1.0-plugins-base gstreamer1.0-plugins-good (qtdemux, rtph264pay) and
gstreamer1.0-plugins-bad (h264parse); run it with /usr/bin/python3 (the gi bindings
come from Debian and are invisible to a pyenv/venv python).
"""

import argparse
import os
import sys
import threading

# The main loop (READY line, stdin watch, signals) and the bindings' import are the test
# server's: tests/gst/serve_loop.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gst"))
import serve_loop  # noqa: E402

Gst, GstRtsp, GstRtspServer = serve_loop.load_gst(
    "serve_clips.py",
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad",
)


def launch_line(path, codec="h264"):
    # GStreamer's launch syntax quotes with double quotes; the path comes from our own script.
    return (
        '( filesrc location="%s" ! qtdemux name=demux demux.video_0 '
        "! %sparse name=parse ! rtp%spay name=pay0 pt=96 config-interval=1 )" % (path, codec, codec)
    )


def loop_on_eos(media):
    """Replays the clip from its start instead of ending the stream.

    The classic gapless loop: play with *segment* seeks, so that qtdemux ends each pass
    with SEGMENT_DONE instead of EOS; on SEGMENT_DONE a non-flushing segment seek back to
    0 starts the next pass, whose segment continues the running time (and with it the RTP
    timestamps) where the last one ended. No seek here flushes: a flush resets the running
    time under gst-rtsp-server's feet (stalls, or a session that never starts). The first
    segment seek is made as soon as the pipeline has prerolled, from a thread of its own:
    qtdemux applies it once the streaming thread moves on (at PLAY), having sent at most
    the prerolled frame, so the client sees the clip's first frame twice.
    """
    parse = media.get_element().get_by_name("parse")
    sinkpad = parse.get_static_pad("sink")

    def seek():
        demux_src = sinkpad.get_peer()
        if demux_src is not None:
            demux_src.send_event(
                Gst.Event.new_seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT,
                                   Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
            )

    def on_downstream(_pad, info):
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.SEGMENT_DONE:
            # Not from the streaming thread: the seek waits for that thread to pause.
            threading.Thread(target=seek, daemon=True).start()
        return Gst.PadProbeReturn.OK

    def on_upstream(pad, info):
        # A seek that gst-rtsp-server itself makes (a PLAY with a Range) keeps the flag.
        event = info.get_event()
        if event is None or event.type != Gst.EventType.SEEK:
            return Gst.PadProbeReturn.OK
        rate, fmt, flags, start_type, start, stop_type, stop = event.parse_seek()
        if flags & Gst.SeekFlags.SEGMENT or fmt != Gst.Format.TIME:
            return Gst.PadProbeReturn.OK
        demux_src = pad.get_peer()
        if demux_src is not None:
            demux_src.send_event(Gst.Event.new_seek(rate, fmt, flags | Gst.SeekFlags.SEGMENT,
                                                    start_type, start, stop_type, stop))
        # DROP answers TRUE to the sender: the seek was made, with the flag added.
        return Gst.PadProbeReturn.DROP

    sinkpad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_downstream)
    sinkpad.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, on_upstream)
    media.connect("prepared", lambda _m: threading.Thread(target=seek, daemon=True).start())


def make_factory(path, codec):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(path, codec))
    factory.set_shared(False)
    factory.connect("media-configure", lambda _f, media: loop_on_eos(media))
    return factory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--clip", action="append", default=[], metavar="NAME=FILE",
                        help="serve FILE (an H.264 mp4) at /NAME")
    parser.add_argument("--hevc-clip", action="append", default=[], metavar="NAME=FILE",
                        help="serve FILE (an H.265 mp4) at /NAME")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="do not exit when stdin closes (manual runs)")
    args = parser.parse_args()
    if not args.clip and not args.hevc_clip:
        parser.error("give at least one --clip NAME=FILE")

    Gst.init(None)
    needed = ["filesrc", "qtdemux", "h264parse", "rtph264pay"]
    if args.hevc_clip:
        needed += ["h265parse", "rtph265pay"]
    missing = [e for e in needed if Gst.ElementFactory.find(e) is None]
    if missing:
        sys.stderr.write("serve_clips.py: GStreamer elements missing: %s\n" % ", ".join(missing))
        return 2

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec, codec in [(c, "h264") for c in args.clip] + [(c, "h265") for c in args.hevc_clip]:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name:
            parser.error("--clip wants NAME=FILE, got %r" % spec)
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            parser.error("--clip %s: no such file" % spec)
        mounts.add_factory("/" + name, make_factory(path, codec))

    return serve_loop.serve(server, "serve_clips.py", args.port, args.ignore_stdin)


if __name__ == "__main__":
    sys.exit(main())
