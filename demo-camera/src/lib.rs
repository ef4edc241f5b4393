//! camkit's demo camera: a synthetic H.264 RTSP camera served on loopback.
//!
//! [`DemoCamera::start`] binds a TCP port and serves a standard RTSP 1.0 presentation with one
//! H.264 video track, RTP interleaved on the RTSP connection (`RTP/AVP/TCP`; a UDP `SETUP`
//! gets `461 Unsupported Transport`). The picture (see [`COLOR_BAND`], [`color_band_rect`])
//! has a fixed colour band, a clock and a moving box, so a client can check colours, latency
//! and motion without a real camera. `retina` and ffmpeg/ffprobe accept it.
//!
//! Pictures are rendered and encoded (openh264) on one dedicated thread, at the configured
//! frame rate, only while at least one client is playing; with no client it uses no CPU.
//!
//! For testing clients, the camera can be told to misbehave on cue and to stop again: see
//! [`faults`] ([`DemoCamera::set_faults`], [`DemoCamera::drop_connections`],
//! [`DemoCamera::set_resolution`], [`DemoCamera::set_video_paused`]).
//!
//! ```no_run
//! # async fn demo() -> camkit::Result<()> {
//! use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
//! let cam = DemoCamera::start(DemoCameraOptions { port: 0, ..Default::default() }).await?;
//! let url = cam.url(); // rtsp://127.0.0.1:PORT/demo
//! # let _ = url;
//! cam.stop().await;
//! # Ok(()) }
//! ```
#![forbid(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

mod encoder;
pub mod faults;
mod picture;
mod rtp;
mod rtsp;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use camkit::{Error, ErrorKind, Result};
use faults::{FaultState, Faults};

/// The fixed colour band: `(name, [r, g, b])` in order left to right.
///
/// Full-range 8-bit RGB. The picture is generated as full-range BT.601 (JFIF) YCbCr, so a
/// decoder's output converted with the same matrix gives these colours back (up to coding
/// loss).
pub const COLOR_BAND: [(&str, [u8; 3]); 8] = [
    ("white", [255, 255, 255]),
    ("yellow", [255, 255, 0]),
    ("cyan", [0, 255, 255]),
    ("green", [0, 255, 0]),
    ("magenta", [255, 0, 255]),
    ("red", [255, 0, 0]),
    ("blue", [0, 0, 255]),
    ("black", [0, 0, 0]),
];

/// Where colour `index`'s bar is in a picture of the given size: a rectangle `(x, y, w, h)`
/// in pixels.
///
/// The band spans the full width across the top quarter of the picture (its height rounded
/// down to a multiple of 16). Bar edges are on multiples of 16 pixels when the picture is at
/// least 256 pixels wide (so no chroma sample or transform block straddles two colours), on
/// even pixels otherwise. An `index` of 8 or more gives `(0, 0, 0, 0)`.
pub fn color_band_rect(index: usize, width: u32, height: u32) -> (u32, u32, u32, u32) {
    picture::color_band_rect(index, width, height)
}

/// How to run a [`DemoCamera`].
#[derive(Clone, PartialEq, Eq)]
pub struct DemoCameraOptions {
    /// Address to listen on. Default `127.0.0.1`.
    pub bind: IpAddr,
    /// TCP port. Default 8554; 0 picks a free port (see [`DemoCamera::port`]).
    pub port: u16,
    /// The presentation path; other paths get `404 Not Found`. Default `/demo`.
    pub path: String,
    /// Picture width in pixels: even, 64 to 3840. Default 1280.
    pub width: u32,
    /// Picture height in pixels: even, 64 to 2160. Default 720.
    pub height: u32,
    /// Frames per second, 1 to 60. Default 15.
    pub fps: u32,
    /// Target H.264 bitrate in bits per second, 10 000 to 100 000 000. Default 2 000 000.
    pub bitrate_bps: u32,
    /// Keyframe interval in frames; 0 means `2 * fps`. Default 30 (2 s at 15 fps).
    pub gop_frames: u32,
    /// When set, `DESCRIBE`, `SETUP` and `PLAY` require RTSP Basic authentication with this
    /// `(username, password)`; requests without it get `401 Unauthorized` with
    /// `WWW-Authenticate: Basic realm="camkit-demo"`. Default `None`.
    pub credentials: Option<(String, String)>,
}

impl Default for DemoCameraOptions {
    fn default() -> Self {
        DemoCameraOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8554,
            path: "/demo".into(),
            width: 1280,
            height: 720,
            fps: 15,
            bitrate_bps: 2_000_000,
            gop_frames: 30,
            credentials: None,
        }
    }
}

impl std::fmt::Debug for DemoCameraOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCameraOptions")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("bitrate_bps", &self.bitrate_bps)
            .field("gop_frames", &self.gop_frames)
            // Never print the password.
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .finish()
    }
}

/// Checks `opts`; returns the normalized path.
fn validate(opts: &DemoCameraOptions) -> Result<String> {
    let p = &opts.path;
    if !p.starts_with('/') {
        return Err(Error::invalid("path", format!("{p:?} must start with '/'")));
    }
    if p.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%'))
    {
        return Err(Error::invalid(
            "path",
            format!("{p:?} must not contain whitespace, control characters, '?', '#' or '%'"),
        ));
    }
    let path = {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_owned()
        } else {
            t.to_owned()
        }
    };
    check_size(opts.width, opts.height)?;
    if !(1..=60).contains(&opts.fps) {
        return Err(Error::invalid(
            "fps",
            format!("{} must be from 1 to 60", opts.fps),
        ));
    }
    if !(10_000..=100_000_000).contains(&opts.bitrate_bps) {
        return Err(Error::invalid(
            "bitrate_bps",
            format!("{} must be from 10000 to 100000000", opts.bitrate_bps),
        ));
    }
    if let Some((user, _)) = &opts.credentials {
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            return Err(Error::invalid(
                "credentials",
                "the username must be non-empty and contain no ':' or control characters",
            ));
        }
    }
    Ok(path)
}

/// Checks a picture size: even, 64 to 3840 wide, 64 to 2160 high.
fn check_size(width: u32, height: u32) -> Result<()> {
    for (field, v, max) in [("width", width, 3840), ("height", height, 2160)] {
        if !(64..=max).contains(&v) || v % 2 != 0 {
            return Err(Error::invalid(
                field,
                format!("{v} must be an even number from 64 to {max}"),
            ));
        }
    }
    Ok(())
}

/// Kernel send buffer of client connections. Bounded (instead of autotuned up to megabytes)
/// so that a client that stops reading soon blocks its session, falls behind in the queue
/// and then skips to a fresh keyframe, rather than being fed seconds of stale video later.
/// Still far more than the bandwidth-delay product of any LAN at the bitrates allowed.
const SEND_BUFFER: u32 = 64 * 1024;

/// Binds and listens; accepted sockets inherit the listener's send buffer size.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // Like `TcpListener::bind`: allow rebinding a port with connections in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    if let Err(e) = socket.set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(error = %e, "demo camera: could not bound the send buffer");
    }
    socket.bind(addr)?;
    socket.listen(128)
}

/// A running demo camera.
///
/// Created by [`DemoCamera::start`]; runs until [`DemoCamera::stop`] or drop.
pub struct DemoCamera {
    local_addr: SocketAddr,
    path: String,
    encoder: Arc<encoder::EncoderShared>,
    faults: Arc<FaultState>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    encoder_thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DemoCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCamera")
            .field("url", &self.url())
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl DemoCamera {
    /// Binds the port, starts the encoder thread and serves RTSP on the current tokio runtime.
    ///
    /// Errors: [`ErrorKind::InvalidInput`] for unacceptable options (the message names the
    /// field) or an address that cannot be bound (port in use, address not local, privileged
    /// port; the message names the address and port); [`ErrorKind::Internal`] when no tokio
    /// runtime is running, the encoder thread cannot start or the encoder fails.
    pub async fn start(opts: DemoCameraOptions) -> Result<DemoCamera> {
        let queue_frames = (opts.fps as usize * 2).max(16);
        Self::start_with_queue(opts, queue_frames).await
    }

    /// [`DemoCamera::start`] with an explicit per-client queue depth, in access units.
    pub(crate) async fn start_with_queue(
        opts: DemoCameraOptions,
        queue_frames: usize,
    ) -> Result<DemoCamera> {
        let path = validate(&opts)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "demo camera: must be started from within a tokio runtime",
            )
        })?;
        let addr = SocketAddr::new(opts.bind, opts.port);
        let listener = listen(addr).map_err(|e| {
            use std::io::ErrorKind as Io;
            let kind = match e.kind() {
                Io::AddrInUse | Io::AddrNotAvailable | Io::PermissionDenied => {
                    ErrorKind::InvalidInput
                }
                _ => ErrorKind::Internal,
            };
            let hint = match e.kind() {
                Io::AddrInUse => {
                    "; the port is already in use: choose another port, or 0 for any free port"
                }
                Io::AddrNotAvailable => "; that address is not on this machine",
                Io::PermissionDenied => "; ports below 1024 need privileges: choose another port",
                _ => "",
            };
            Error::new(
                kind,
                format!("demo camera: cannot listen on {addr}: {e}{hint}"),
            )
        })?;
        let local_addr = listener.local_addr().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("demo camera: listening socket has no address: {e}"),
            )
        })?;
        let gop_frames = if opts.gop_frames == 0 {
            opts.fps * 2
        } else {
            opts.gop_frames
        };
        let enc = encoder::spawn(encoder::EncoderSettings {
            width: opts.width,
            height: opts.height,
            fps: opts.fps,
            bitrate_bps: opts.bitrate_bps,
            gop_frames,
            queue_frames,
        })
        .await?;
        let faults = Arc::new(FaultState::new());
        let cfg = Arc::new(rtsp::ServerConfig {
            base_path: path.clone(),
            credentials: opts.credentials.clone(),
            fps: opts.fps,
            bitrate_bps: opts.bitrate_bps,
            encoder: Arc::clone(&enc.shared),
            faults: Arc::clone(&faults),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = runtime.spawn(rtsp::serve(listener, cfg, shutdown_rx));
        let cam = DemoCamera {
            local_addr,
            path,
            encoder: enc.shared,
            faults,
            shutdown,
            server: Some(server),
            encoder_thread: Some(enc.thread),
        };
        tracing::info!(
            url = %cam.url(),
            width = opts.width,
            height = opts.height,
            fps = opts.fps,
            auth = opts.credentials.is_some(),
            "demo camera started"
        );
        Ok(cam)
    }

    /// The camera's URL, `rtsp://127.0.0.1:PORT/demo`, without credentials.
    ///
    /// When bound to an unspecified address (`0.0.0.0` / `::`), the URL uses the loopback
    /// address of the same family.
    pub fn url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("rtsp://{}{}", SocketAddr::new(ip, self.port()), self.path)
    }

    /// The TCP port listened on (the one picked when [`DemoCameraOptions::port`] was 0).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The number of clients currently playing.
    pub fn sessions(&self) -> usize {
        self.encoder.playing()
    }

    /// Fault injection: stop sending video while the RTSP side keeps answering requests
    /// and keepalives, as a stalled camera does; `false` resumes at a fresh keyframe.
    /// Clients' frame watchdogs are what notice.
    pub fn set_video_paused(&self, paused: bool) {
        self.encoder.set_video_paused(paused);
    }

    /// Fault injection (for testing): misbehave as `faults` says, from the next request or
    /// frame of every connection on, until replaced or [cleared](Self::clear_faults). See
    /// [`faults`].
    pub fn set_faults(&self, faults: Faults) {
        tracing::info!(url = %self.url(), ?faults, "demo camera: faults set");
        self.faults.set(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.get()
    }

    /// Ends every fault set with [`set_faults`](Self::set_faults): the camera behaves again.
    /// (A paused video stays paused; see [`set_video_paused`](Self::set_video_paused).)
    pub fn clear_faults(&self) {
        self.set_faults(Faults::none());
    }

    /// Fault injection (for testing): closes every client connection now, mid-stream or
    /// not, as a camera that reboots or drops its clients does. The camera keeps listening.
    pub fn drop_connections(&self) {
        tracing::info!(url = %self.url(), "demo camera: dropping every connection");
        self.faults.hang_up_all();
    }

    /// Fault injection (for testing): restarts the encoder at another picture size, as a
    /// camera whose settings were changed does. Playing clients get an IDR with new SPS/PPS
    /// in-band; later `DESCRIBE`s describe the new size.
    ///
    /// Errors: [`ErrorKind::InvalidInput`] for a size [`DemoCameraOptions`] would refuse.
    pub fn set_resolution(&self, width: u32, height: u32) -> Result<()> {
        check_size(width, height)?;
        tracing::info!(url = %self.url(), width, height, "demo camera: new resolution");
        self.encoder.resize(width, height);
        Ok(())
    }

    /// Pictures encoded so far (one at startup, then one per frame interval while someone
    /// plays).
    pub(crate) fn frames_encoded(&self) -> u64 {
        self.encoder.frames_encoded()
    }

    /// Stops serving: closes the listener and every client connection, and stops the
    /// encoder thread, waiting for all of them to finish.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.encoder.stop();
        if let Some(thread) = self.encoder_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!(
            url = %self.url(),
            frames_encoded = self.frames_encoded(),
            "demo camera stopped"
        );
    }
}

impl Drop for DemoCamera {
    /// Signals the server, its connections and the encoder thread to stop, without waiting.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            // Aborting drops the task's connection set, which aborts every connection.
            server.abort();
        }
        self.encoder.stop();
    }
}

/// Parses `data` as what a client sends a demo camera and answers every request in it, as
/// a connection does but without a socket or an encoder: the request fuzzer's entry point
/// (`fuzz/`). The first byte picks the faults in force. Returns what the connection would
/// have sent, one entry per answer. Never panics, whatever the input.
#[doc(hidden)]
pub fn fuzz_rtsp_requests(data: &[u8]) -> Vec<Vec<u8>> {
    rtsp::fuzz_requests(data)
}

/// `count` access units of the demo picture at `width`x`height`, Annex B with 4-byte start
/// codes, the first an IDR with SPS/PPS: real H.264 for decoder tests and fuzz corpora.
#[doc(hidden)]
pub fn sample_access_units(width: u32, height: u32, count: usize) -> Result<Vec<Vec<u8>>> {
    check_size(width, height)?;
    encoder::sample_access_units(width, height, count)
}

/// Splits an Annex B byte stream into access units (ITU-T H.264 7.4.1.2.3): a new one
/// starts at an access unit delimiter, SEI, SPS or PPS after a slice, or at a slice whose
/// `first_mb_in_slice` is 0 after a slice. Bytes before the first start code and NAL
/// units after the last slice are left out. For decoder tests and benchmarks that feed
/// camkit's decoders an encoder's Annex B output (e.g. ffmpeg's `-f h264`).
#[doc(hidden)]
pub fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            let start = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_slice = false;
    for (k, &(start, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |s| s.0);
        let Some(&header) = stream.get(payload) else {
            continue;
        };
        let nal_type = header & 0x1f;
        let is_slice = matches!(nal_type, 1 | 5);
        let first_mb_zero = stream.get(payload + 1).is_some_and(|b| b & 0x80 != 0);
        let starts_au = match nal_type {
            6..=9 => has_slice,
            1 | 5 => has_slice && first_mb_zero,
            _ => false,
        };
        if starts_au {
            aus.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&stream[start..end]);
        has_slice |= is_slice;
    }
    if has_slice {
        aus.push(current);
    }
    aus
}
