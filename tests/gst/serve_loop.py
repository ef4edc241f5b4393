"""The main loop shared by the gst-rtsp-server scripts (tests/gst/rtsp_server.py,
bench/serve_clips.py): listen, print ``READY <port>``, and serve until SIGTERM/SIGINT or
until stdin reaches EOF (the parent is gone or wants us gone)."""

import os
import signal
import sys


def load_gst(name, packages):
    """Imports GStreamer's Python bindings (Gst, GstRtsp, GstRtspServer), or exits with
    code 2 and the apt-get command that installs ``packages`` when they are missing.
    ``name`` is the calling script's name, for the message."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtsp", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtsp, GstRtspServer
    except (ImportError, ValueError) as e:  # ValueError: typelib not installed
        sys.stderr.write(
            "%s: cannot load GStreamer's Python bindings (%s).\n"
            "Run it with /usr/bin/python3 and install them with:\n"
            "  sudo apt-get install -y %s\n" % (name, e, packages)
        )
        sys.exit(2)
    return Gst, GstRtsp, GstRtspServer


def serve(server, name, port, ignore_stdin=False):
    """Attaches ``server`` (a GstRtspServer.RTSPServer set up by the caller) to the default
    main context and runs it. Returns the process exit code: 0 after a clean stop, 1 when
    it cannot listen on ``port``."""
    from gi.repository import GLib

    loop = GLib.MainLoop()

    def quit_loop(*_args):
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_loop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_loop)

    def on_stdin(fd, _condition):
        # EOF (or error) on stdin means the parent is gone or wants us gone.
        # Anything actually written is ignored.
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    if not ignore_stdin:
        GLib.unix_fd_add_full(
            GLib.PRIORITY_DEFAULT,
            sys.stdin.fileno(),
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            on_stdin,
        )

    # attach() returns 0 (after logging a GStreamer warning) when it cannot
    # bind, e.g. a fixed --port that is already taken.
    if server.attach(None) == 0:
        sys.stderr.write("%s: cannot listen on 127.0.0.1:%d\n" % (name, port))
        return 1
    # With --port 0 the kernel picked the port; only the bound socket knows it.
    print("READY %d" % server.get_bound_port(), flush=True)

    loop.run()
    return 0
