#!/usr/bin/python3
"""A real RTSP server for camkit's tests, built on GStreamer's gst-rtsp-server.

camkit ships its own synthetic "demo camera"; testing the RTSP client only
against a server written by the same people would let shared misreadings of the
RFCs slip through.  gst-rtsp-server is an independent, widely deployed
implementation, so it is what the integration tests talk to.

Run it with the *system* Python (``/usr/bin/python3``): the PyGObject bindings
(``gi``) come from Debian packages and are not visible to pyenv/venv Pythons.

    /usr/bin/python3 rtsp_server.py --port 0 [--user U] [--password P]
        [--cameras N] [--log-sessions FILE]

Prints exactly one line ``READY <port>`` on stdout once it is listening on
127.0.0.1, then serves until SIGTERM/SIGINT or until its stdin is closed.  The
stdin rule means a parent that dies without cleaning up (panic, SIGKILL) still
takes the server down with it: the pipe closes when the parent goes away.  So
keep stdin open (a pipe or a terminal); with stdin at /dev/null, as for a
background job of a script, it would exit at once: pass --ignore-stdin there.

Debian packages needed:
    gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
    gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-tools

Mount points (all 15 fps, 2 s GOP, SMPTE colour bars):
    /h264-720        1280x720  H.264 High
    /h264-1080       1920x1080 H.264 High
    /baseline        640x360   H.264 Baseline  (rfc6381 avc1.42....)
    /main            640x360   H.264 Main      (avc1.4D....)
    /high            640x360   H.264 High      (avc1.64....)
    /h265            640x360   H.265 Main
    /h265-720        1280x720  H.265 Main, no B-frames, open GOP (CRA keyframes)
    /h265-1080       1920x1080 H.265 Main, no B-frames, open GOP
    /h265-720-bframes  1280x720  H.265 Main, 2 B-frames, open GOP (RASL pictures
                               after each CRA), parameter sets in the stream too
    /h265-1080-bframes 1920x1080 H.265 Main, 2 B-frames, open GOP, parameter sets
                               in the SDP only
    /h265-main10     640x360   H.265 Main 10 (10-bit samples)
    /auth/h264-1080  as /h264-1080, DIGEST authentication required
    /auth/h264-360   as /high, DIGEST authentication required (the sub-stream
                     of a camera whose main stream is /auth/h264-1080)
    /av              640x360   H.264 + AAC audio (a camera with a microphone)
    /mjpeg           640x360   RTP/JPEG (MJPEG camera)
    /udp-only        640x360   H.264 Baseline, RTP over UDP only (TCP SETUP gets 461)
    /bframes         640x360   H.264 High with 2 B-frames, SPS/PPS only in the SDP
    /shared-file     640x360   H.264 from an mp4 file, one pipeline shared by all
                               clients, seeked back to the start by every PLAY
                               (only with --shared-file; the clip is made at start)
    /cam/0 .. /cam/N-1  320x180 H.264 Baseline at 10 fps, DIGEST authentication
                     required (only with --cameras N): many small cameras at once,
                     as a cluster test needs, cheap enough for 2 cores

Session accounting (--log-sessions FILE): one line per RTSP session that starts or
stops playing a mount, flushed at once, so a test can tell whether a camera was
ever open twice:

    <unix time, s> open /cam/3 <sessions of /cam/3 now playing>
    <unix time, s> close /cam/3 <sessions of /cam/3 now playing>

A session opens with its PLAY (answered 200) and closes with its TEARDOWN or when
its client's connection closes (a client killed by SIGKILL: the kernel closes it).

Factories are shared (one encoder per mount however many clients) and, as
gst-rtsp-server does by default, a mount's pipeline only exists while at least
one client holds it: an idle server uses no CPU, which matters on small CI
machines where 1080p encoding would otherwise run all the time.

SMPTE colour bars (``videotestsrc pattern=smpte``)
--------------------------------------------------
The top two thirds of the picture (rows 0 .. 2*h/3) hold seven vertical bars of
equal width; bar i spans columns i*w/7 .. (i+1)*w/7.  Sample the centre of a
bar, x = (2*i+1)*w/14, y = h/3, averaging a small rectangle to wash out
compression noise; the edges between bars are blurred by chroma subsampling.

videotestsrc draws 100% bars in *limited-range* Y'CbCr. The table below is
what a JPEG made straight from the decoded planes shows (no range expansion);
camkit expands limited range to full range before encoding, so its snapshots
show (v - 16) * 255 / 219 of these values.

    bar       640x360 (BT.601)   1280x720 / 1920x1080 (BT.709)
    white     (235, 235, 235)    (235, 235, 235)
    yellow    (235, 235,  11)    (233, 249,  20)
    cyan      ( 12, 235, 237)    ( 30, 255, 234)
    green     ( 13, 237,  13)    ( 29, 255,  20)
    magenta   (237,  12, 237)    (221,   0, 230)
    red       (238,  14,  13)    (220,   0,  16)
    blue      ( 15,  14, 239)    ( 17,   0, 230)

Bar centres (y = h/3): 640x360 -> x = 45, 137, 228, 320, 411, 502, 594, y = 120;
1280x720 -> x = 91, 274, 457, 640, 822, 1005, 1188, y = 240;
1920x1080 -> x = 137, 411, 685, 960, 1234, 1508, 1782, y = 360.

The same table lives in tests/src/smpte.rs (``smpte_bar_centers``) and is
re-measured against live streams by tests/tests/gst_server.rs.
"""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time

import serve_loop  # noqa: E402 (beside this script)

Gst, GstRtsp, GstRtspServer = serve_loop.load_gst(
    "rtsp_server.py",
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad "
    "gstreamer1.0-libav gstreamer1.0-tools",
)

FPS = 15
# 2 s GOP: a client that joins mid-stream waits at most 2 s for a key frame,
# which bounds how long every test has to wait for its first decodable frame.
GOP = 2 * FPS


def video_source(width, height, fmt="I420"):
    """Live SMPTE bars; is-live so the source is paced at real time (no CPU
    spinning) and timestamps look like a camera's.

    Colorimetry is spelled out rather than left to GStreamer's size-based
    default (which is what it picks today: BT.709 above 576 lines) because
    the expected bar colours in the tests depend on it."""
    colorimetry = "bt709" if height > 576 else "bt601"
    return (
        "videotestsrc pattern=smpte is-live=true "
        "! video/x-raw,format=%s,width=%d,height=%d,framerate=%d/1,"
        "colorimetry=%s" % (fmt, width, height, FPS, colorimetry)
    )


# x264 writes the *smallest* profile_idc that covers the tools it used, and
# ultrafast turns off CABAC and 8x8 transforms, so every stream would claim
# Constrained Baseline whatever the caps ask for.  Re-enable the tool that
# defines each profile so the SPS really says Main (77) or High (100).
PROFILE_TOOLS = {
    "baseline": "",
    "main": "cabac=true",
    "high": "cabac=true dct8x8=true",
}


def h264(width, height, profile, kbps):
    # ultrafast + zerolatency: the CI machine has 2 cores shared with the
    # tests themselves; zerolatency also disables B-frames and lookahead so
    # frames leave the encoder immediately.
    return (
        "%s ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%d "
        "bitrate=%d %s ! video/x-h264,profile=%s "
        "! rtph264pay name=pay0 pt=96 config-interval=1"
        % (video_source(width, height), GOP, kbps, PROFILE_TOOLS[profile],
           profile)
    )


def h264_bframes(width, height, kbps):
    # A camera with B-frames (many sell "H.264 High" with them on): no
    # zerolatency (it turns B-frames off), fixed B-frame pattern, and the
    # parameter sets in the SDP only (config-interval 0, rtph264pay's default),
    # as such cameras send them.  The decoder holds pictures back for
    # reordering (max_num_reorder_frames 2 in the SPS).
    return (
        "%s ! x264enc speed-preset=ultrafast bframes=2 b-adapt=false "
        "key-int-max=%d bitrate=%d %s ! video/x-h264,profile=high "
        "! rtph264pay name=pay0 pt=96"
        % (video_source(width, height), GOP, kbps, PROFILE_TOOLS["high"])
    )


def h265(width, height, kbps):
    return (
        "%s ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=%d "
        "bitrate=%d ! video/x-h265,profile=main "
        "! rtph265pay name=pay0 pt=96 config-interval=1"
        % (video_source(width, height), GOP, kbps)
    )


def h265_hd(width, height, kbps, bframes=False, sdp_only=False, main10=False):
    # x265 as cameras use it: ultrafast (the CI machine has 2 cores), open GOPs
    # (x265's default: every keyframe after the first is a CRA, not an IDR;
    # with B-frames RASL pictures follow each CRA).  Without B-frames
    # zerolatency (no lookahead); with them no zerolatency, which would turn
    # them off.  config-interval -1 repeats VPS/SPS/PPS before every keyframe;
    # 0 leaves them in the SDP (and x265's first keyframe) only.
    tune = "" if bframes else "tune=zerolatency"
    options = "bframes=2" if bframes else ""
    fmt, profile = ("I420_10LE", "main-10") if main10 else ("I420", "main")
    return (
        "%s ! x265enc %s speed-preset=ultrafast key-int-max=%d bitrate=%d "
        'option-string="%s" ! video/x-h265,profile=%s '
        "! rtph265pay name=pay0 pt=96 config-interval=%d"
        % (video_source(width, height, fmt), tune, GOP, kbps, options, profile,
           0 if sdp_only else -1)
    )


def aac_audio():
    # AAC is what most IP cameras with a microphone send; retina parses its
    # fmtp config, so the audio stream is exercised, not just listed.
    return (
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 "
        "! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 "
        "! avenc_aac bitrate=32000 ! rtpmp4gpay name=pay1 pt=97"
    )


HD = {
    "/h264-720": h264(1280, 720, "high", 1500),
    "/h264-1080": h264(1920, 1080, "high", 2500),
}
MOUNTS = dict(HD)
MOUNTS.update(
    {
        "/baseline": h264(640, 360, "baseline", 600),
        "/main": h264(640, 360, "main", 600),
        "/high": h264(640, 360, "high", 600),
        "/h265": h265(640, 360, 600),
        "/h265-720": h265_hd(1280, 720, 1200),
        "/h265-1080": h265_hd(1920, 1080, 2000),
        "/h265-720-bframes": h265_hd(1280, 720, 1200, bframes=True),
        "/h265-1080-bframes": h265_hd(1920, 1080, 2000, bframes=True,
                                      sdp_only=True),
        "/h265-main10": h265_hd(640, 360, 600, main10=True),
        # A sub-stream of another shape than the main streams (4:3 beside 16:9), as
        # some cameras send: a picture's size alone tells which stream it came from.
        "/sub-4x3": h264(640, 480, "high", 600),
        "/bframes": h264_bframes(640, 360, 600),
        "/av": "%s %s" % (h264(640, 360, "high", 600), aac_audio()),
        # High profile with B-frames (decode order differs from presentation order),
        # as many cameras' "quality" presets send: no zerolatency tune, which would
        # turn B-frames off.
        "/high-bframes": "%s ! x264enc speed-preset=ultrafast key-int-max=%d "
        "bframes=2 b-adapt=false bitrate=600 %s ! video/x-h264,profile=high "
        "! rtph264pay name=pay0 pt=96 config-interval=1"
        % (video_source(640, 360), GOP, PROFILE_TOOLS["high"]),
        # RTP/JPEG (RFC 2435), as older and cheaper cameras send: passed through
        # by camkit without decoding.
        "/mjpeg": "%s ! jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26"
        % video_source(640, 360),
    }
)
# Cameras that refuse RTP over TCP (answer 461 to an interleaved SETUP), so a
# client's "auto" transport must fall back to UDP.
UDP_ONLY_MOUNTS = {"/udp-only": h264(640, 360, "baseline", 600)}
# A camera's sub-stream beside its 1080p main stream, behind the same credentials.
AUTH_MOUNTS = {
    "/auth/h264-1080": HD["/h264-1080"],
    "/auth/h264-360": h264(640, 360, "high", 600),
}

# Roles carried by tokens: every connection gets ANON unless it authenticated.
ROLE_ANON = "anonymous"
ROLE_USER = "user"


def make_clip(directory, seconds=10):
    """Encodes an mp4 clip of the colour bars (camera-like: High profile, 2 s
    GOP) for /shared-file, and returns its path.  Made at start so the
    repository holds no media; 640x360 takes well under a second."""
    path = os.path.join(directory, "bars.mp4")
    pipeline = Gst.parse_launch(
        "videotestsrc pattern=smpte num-buffers=%d "
        "! video/x-raw,format=I420,width=640,height=360,framerate=%d/1,"
        "colorimetry=bt601 "
        "! x264enc speed-preset=ultrafast key-int-max=%d bitrate=600 %s "
        "! video/x-h264,profile=high ! h264parse ! mp4mux "
        '! filesink location="%s"'
        % (seconds * FPS, FPS, GOP, PROFILE_TOOLS["high"], path)
    )
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise RuntimeError("cannot encode the /shared-file clip: %s"
                           % (msg.parse_error()[0].message if msg else "timeout"))
    return path


def shared_file(path):
    # A file played by one pipeline for every client (shared factory, not
    # live): gst-rtsp-server answers each PLAY by seeking that pipeline back to
    # the start, so a client's first RTP packets need not carry the sequence
    # number its RTP-Info announced, as with cameras whose encoder restarts.
    return (
        'filesrc location="%s" ! qtdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1" % path
    )


def small_camera():
    # The many-cameras mounts: 320x180 at 10 fps, Baseline, 2 s GOP, ~150 kbit/s. A
    # dozen of them cost a fraction of a core with ultrafast.
    return (
        "videotestsrc pattern=smpte is-live=true "
        "! video/x-raw,format=I420,width=320,height=180,framerate=10/1,colorimetry=bt601 "
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=20 bitrate=150 "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
    )


class SessionLog:
    """Counts the sessions playing each mount and writes every change to a file (see
    "Session accounting" above). Keyed by RTSP client (one TCP connection) and mount:
    camkit opens one connection per camera session."""

    def __init__(self, path):
        self.out = open(path, "a", buffering=1)
        self.playing = {}  # mount -> set of connection numbers
        self.by_client = {}  # connection number -> set of mounts

    def _write(self, event, mount):
        self.out.write("%.3f %s %s %d\n" % (time.time(), event, mount,
                                              len(self.playing.get(mount, ()))))

    def opened(self, client, mount):
        mounts = self.by_client.setdefault(client, set())
        if mount in mounts:
            return
        mounts.add(mount)
        self.playing.setdefault(mount, set()).add(client)
        self._write("open", mount)

    def closed(self, client, mount=None):
        mounts = self.by_client.get(client, set())
        for m in sorted(mounts) if mount is None else [mount]:
            if m in mounts:
                mounts.discard(m)
                self.playing[m].discard(client)
                self._write("close", m)
        if not mounts:
            self.by_client.pop(client, None)

    def attach(self, server):
        def mount_of(ctx):
            # The request line's URI; the mount is its path without the stream suffix
            # SETUP adds (/stream=0) or the slash of an aggregate control URL.
            _res, _method, uri, _version = ctx.request.parse_request()
            path = GstRtsp.RTSPUrl.parse(uri)[1].abspath
            return path.split("/stream=")[0].rstrip("/")

        clients = iter(range(1, 1 << 62))

        def on_client(_server, client):
            # A number of our own per connection: Python wrappers of GObjects are not
            # stable identities across signal emissions.
            key = next(clients)
            client.connect("play-request",
                           lambda _c, ctx: self.opened(key, mount_of(ctx)))
            client.connect("teardown-request",
                           lambda _c, ctx: self.closed(key, mount_of(ctx)))
            client.connect("closed", lambda _c: self.closed(key))

        server.connect("client-connected", on_client)


def make_factory(launch, protected, udp_only=False):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( %s )" % launch)
    if udp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    # One pipeline per mount, shared by all clients: cheaper, and it is how
    # cameras behave (every client sees the same encoder output).
    factory.set_shared(True)
    # Once an RTSPAuth is installed, a factory without permissions refuses
    # everybody, so list explicitly who may do what.  gst-rtsp-server answers
    # a failed "access" check with 404 (hiding the mount) and a failed
    # "construct" check with 401 + WWW-Authenticate; a camera asks for
    # credentials, so anonymous users may *access* a protected mount but not
    # *construct* it.
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role(ROLE_USER, "media.factory.access", True)
    perms.add_permission_for_role(ROLE_USER, "media.factory.construct", True)
    perms.add_permission_for_role(ROLE_ANON, "media.factory.access", True)
    perms.add_permission_for_role(ROLE_ANON, "media.factory.construct",
                                  not protected)
    factory.set_permissions(perms)
    return factory


def make_auth(user, password):
    auth = GstRtspServer.RTSPAuth()
    # DIGEST only: it is what real cameras ask for, and it makes the client
    # hash the password (the special characters in the default must survive).
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)

    anon = GstRtspServer.RTSPToken()
    anon.set_string("media.factory.role", ROLE_ANON)
    auth.set_default_token(anon)

    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE_USER)
    auth.add_digest(user, password, token)
    return auth


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--user", default="camkit")
    parser.add_argument("--password", default="s3cr@t:pass/word")
    parser.add_argument("--shared-file", action="store_true",
                        help="also serve /shared-file (encodes a clip at start)")
    parser.add_argument("--cameras", type=int, default=0, metavar="N",
                        help="also serve /cam/0 .. /cam/N-1 (small, password protected)")
    parser.add_argument("--log-sessions", metavar="FILE",
                        help="append a line to FILE whenever a session starts or "
                        "stops playing a mount")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="do not exit when stdin closes (manual runs)")
    args = parser.parse_args()

    Gst.init(None)
    missing = [
        e
        for e in ("videotestsrc", "x264enc", "x265enc", "rtph264pay",
                  "rtph265pay", "avenc_aac", "rtpmp4gpay", "audiotestsrc")
        if Gst.ElementFactory.find(e) is None
    ]
    if missing:
        sys.stderr.write(
            "rtsp_server.py: GStreamer elements missing: %s. Install with:\n"
            "  sudo apt-get install -y gstreamer1.0-plugins-base "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
            "gstreamer1.0-plugins-bad gstreamer1.0-libav\n" % ", ".join(missing)
        )
        return 2

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.set_auth(make_auth(args.user, args.password))

    mounts = server.get_mount_points()
    for path, launch in MOUNTS.items():
        mounts.add_factory(path, make_factory(launch, protected=False))
    for path, launch in AUTH_MOUNTS.items():
        mounts.add_factory(path, make_factory(launch, protected=True))
    for path, launch in UDP_ONLY_MOUNTS.items():
        mounts.add_factory(path, make_factory(launch, protected=False, udp_only=True))
    for i in range(args.cameras):
        mounts.add_factory("/cam/%d" % i, make_factory(small_camera(), protected=True))
    if args.log_sessions:
        SessionLog(args.log_sessions).attach(server)
    if args.shared_file:
        clip_dir = tempfile.mkdtemp(prefix="camkit-gst-")
        atexit.register(shutil.rmtree, clip_dir, True)
        mounts.add_factory("/shared-file",
                           make_factory(shared_file(make_clip(clip_dir)),
                                        protected=False))

    return serve_loop.serve(server, "rtsp_server.py", args.port, args.ignore_stdin)


if __name__ == "__main__":
    sys.exit(main())
