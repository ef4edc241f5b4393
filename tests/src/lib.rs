//! Test support for camkit.
//!
//! * [`GstServer`]: a real RTSP server (GStreamer's gst-rtsp-server, driven by
//!   `gst/rtsp_server.py`) with H.264/H.265/authenticated/audio mount points, so camkit is
//!   tested against an implementation it did not write.
//! * [`decode_jpeg_rgb`], [`mean_rgb`], [`assert_color_near`], [`smpte_bar_centers`]:
//!   check that a JPEG produced by camkit really shows the colour bars the server sent.
//! * [`SilentServer`] and [`closed_port_url`]: servers that misbehave in the two common
//!   ways (accept and never answer; refuse the connection) for timeout and error tests.
//!   (The demo camera's `faults` module covers the misbehaviour that needs a real RTSP
//!   server.)
//! * [`demo`] and [`check_color_band`]: the demo camera on a free port, and the check that a
//!   JPEG shows its colour band.
//! * [`ImpairedLink`]: a lossy, slow, delaying or reordering link between an RTSP client
//!   and a server on 127.0.0.1 (UDP datagrams and TCP streams), for the link-fault tests.
//! * [`FfmpegReader`]: ffmpeg decoding an RTSP stream, its frame count sampled, as the
//!   reference for the link-fault matrix.
//! * [`ProcStats`]: RSS, threads and open descriptors of this process, for soak tests.
//! * [`mutate`]: a fixed-seed input mutator that runs the fuzz targets on stable Rust.
//! * [`MoondreamMock`]: a Moondream API (cloud or Station flavour) on loopback that checks
//!   every request (auth, JSON fields, the picture) and answers as scripted, for tests
//!   that need no internet.
//! * [`NatsServer`]: a real `nats-server` with JetStream on loopback, for cluster mode.
//!
//! Missing system packages are reported as errors naming the `apt-get` command that installs
//! them; nothing here skips a test quietly.

mod demo;
mod ffmpeg_reader;
mod gst;
mod impair;
mod jpeg_check;
mod moondream_mock;
pub mod mutate;
mod nats;
mod proc_stats;
mod silent_server;
mod smpte;

pub use demo::{check_color_band, demo};
pub use ffmpeg_reader::FfmpegReader;
pub use gst::{GstServer, GstServerOptions, APT_PACKAGES};
pub use impair::{ImpairedLink, Impairment, LinkStats, REORDER_DISTANCE};
pub use jpeg_check::{assert_color_near, decode_jpeg_rgb, mean_rgb};
pub use moondream_mock::{
    Flavour, MoondreamMock, RecordedRequest, Reply, DETECT_BOX, MAX_SIDE as MOONDREAM_MAX_SIDE,
    POINT,
};
pub use nats::NatsServer;
pub use proc_stats::ProcStats;
pub use silent_server::{closed_port_url, SilentServer};
pub use smpte::{
    assert_smpte_bars, check_smpte, full_range, smpte_bar_centers, smpte_bar_centers_scaled,
    SMPTE_BAR_NAMES,
};
