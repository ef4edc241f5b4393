//! What JS gets back: camera status, state-change events, frames.
//!
//! Counters and times are plain numbers (exact up to 2^53); times are milliseconds since
//! the Unix epoch, ready for `new Date(ms)`.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// How RTP packets travel from the camera.
#[napi(string_enum = "lowercase")]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection: works through NAT and firewalls.
    Tcp,
    /// Separate UDP ports: lower latency on a clean LAN.
    Udp,
    /// TCP, then UDP when the camera answers 461 Unsupported Transport.
    Auto,
}

impl From<camkit::Transport> for Transport {
    fn from(t: camkit::Transport) -> Self {
        match t {
            camkit::Transport::Tcp => Transport::Tcp,
            camkit::Transport::Udp => Transport::Udp,
            camkit::Transport::Auto => Transport::Auto,
        }
    }
}

/// When a camera's video is decoded.
#[napi(string_enum = "camelCase")]
pub enum DecodePolicy {
    /// Decode only when asked: a snapshot decodes the frames since the last keyframe, a
    /// subscriber switches the camera to continuous decoding while it lasts.
    OnDemand,
    /// Decode every frame as it arrives: lowest snapshot latency, highest CPU.
    Continuous,
    /// Decode keyframes only: a picture every GOP (1–4 s) for almost no CPU.
    Keyframes,
}

impl From<camkit::DecodePolicy> for DecodePolicy {
    fn from(d: camkit::DecodePolicy) -> Self {
        match d {
            camkit::DecodePolicy::OnDemand => DecodePolicy::OnDemand,
            camkit::DecodePolicy::Continuous => DecodePolicy::Continuous,
            camkit::DecodePolicy::Keyframes => DecodePolicy::Keyframes,
        }
    }
}

/// Which H.264 decoder a camera uses (`'auto'`: libavcodec when the system has it,
/// else OpenH264). Parsed by camkit from the config's string.
#[napi(string_enum = "lowercase")]
pub enum Decoder {
    /// libavcodec when it can be loaded (FFmpeg 4–7 installed), else OpenH264.
    Auto,
    /// OpenH264, built in: always available.
    Openh264,
    /// The system's libavcodec, about twice as fast; connect fails when it is missing.
    Libavcodec,
}

/// Which of a camera's streams serves a snapshot or subscription (see the config's
/// `subStream`).
#[napi(string_enum = "lowercase")]
pub enum StreamChoice {
    /// The sub-stream when it streams and `maxWidth` is at most its width, else the main.
    Auto,
    /// Always the main stream.
    Main,
    /// The sub-stream whenever it streams; the main stream when there is none or it is off.
    Sub,
}

/// Where a camera is in its life.
#[napi(string_enum = "lowercase")]
pub enum CameraState {
    /// First attempt to open the stream is under way.
    Connecting,
    /// Video is arriving.
    Streaming,
    /// The stream failed; waiting for the backoff or retrying.
    Reconnecting,
    /// Disconnected (or the manager closed). Final.
    Stopped,
}

impl From<camkit::CameraState> for CameraState {
    fn from(s: camkit::CameraState) -> Self {
        match s {
            camkit::CameraState::Connecting => CameraState::Connecting,
            camkit::CameraState::Streaming => CameraState::Streaming,
            camkit::CameraState::Reconnecting => CameraState::Reconnecting,
            camkit::CameraState::Stopped => CameraState::Stopped,
        }
    }
}

/// The last error a camera met.
#[napi(object, object_from_js = false)]
pub struct LastError {
    /// camkit's stable code, as on thrown errors (`'UNAUTHORIZED'`, `'TIMEOUT'` …).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// When, in ms since the Unix epoch.
    pub at_ms: f64,
}

impl From<camkit::LastError> for LastError {
    fn from(e: camkit::LastError) -> Self {
        LastError {
            code: e.kind.code().to_owned(),
            message: e.message,
            at_ms: e.at_ms as f64,
        }
    }
}

/// A point-in-time view of one camera.
#[napi(object, object_from_js = false)]
pub struct CameraStatus {
    /// The camera id.
    pub id: String,
    /// Lifecycle state.
    pub state: CameraState,
    /// The camera URL, without credentials.
    pub url: String,
    /// The transport in use (`tcp`/`udp`), or the configured one before connecting.
    pub transport: Transport,
    /// The decode policy.
    pub decode: DecodePolicy,
    /// The decoder in use: `'openh264'`, or `'libavcodec'` with its version
    /// (`'libavcodec 59.37.100'`).
    pub decoder: String,
    /// Video codec (`'h264'`, `'h265'`, `'jpeg'`), once known.
    pub codec: Option<String>,
    /// H.264 profile (`'Baseline'`, `'Main'`, `'High'` …) or H.265 profile (`'Main'`,
    /// `'Main 10'` …), once known.
    pub profile: Option<String>,
    /// Picture width in pixels, once known.
    pub width: Option<u32>,
    /// Picture height in pixels, once known.
    pub height: Option<u32>,
    /// Frames per second received, over the last few seconds.
    pub fps: f64,
    /// Bits per second received, over the last few seconds.
    pub bitrate_bps: f64,
    /// Compressed frames received since connect.
    pub frames_received: f64,
    /// Frames decoded to pictures.
    pub frames_decoded: f64,
    /// Frames dropped (decoder behind, corrupt data, lost packets).
    pub frames_dropped: f64,
    /// Frames skipped because part of them never arrived (stream joined mid-frame, lost
    /// packets, data that could not be depacketized); the session goes on.
    pub partial_frames_skipped: f64,
    /// Times the stream was reopened after a failure.
    pub reconnects: f64,
    /// When the current stream started, in ms since the Unix epoch.
    pub connected_since_ms: Option<f64>,
    /// When the last frame arrived, in ms since the Unix epoch.
    pub last_frame_ms: Option<f64>,
    /// JPEG encodes made from this camera's pictures (each picture and size at most once).
    pub jpeg_encodes: f64,
    /// Total time without video in ms since the camera first streamed (broken streams,
    /// reconnects, frames skipped after damage), including the current stretch.
    pub video_lost_ms: f64,
    /// Since when the camera has had no video (ms since the Unix epoch); absent while
    /// video flows.
    pub video_lost_since_ms: Option<f64>,
    /// The latest picture is stale: served while the camera has no video (reconnecting).
    pub picture_stale: bool,
    /// Age of the latest picture in ms, once there is one.
    pub picture_age_ms: Option<f64>,
    /// The most recent error, kept after recovery for diagnosis.
    pub last_error: Option<LastError>,
    /// The sub-stream, when the config has one; everything above is the main stream's.
    pub sub_stream: Option<SubStreamStatus>,
}

/// A camera's sub-stream: its own session, decoder, counters and errors.
#[napi(object, object_from_js = false)]
pub struct SubStreamStatus {
    /// Its state (`'streaming'` while it serves requests).
    pub state: CameraState,
    /// Its URL, without credentials.
    pub url: String,
    /// Video codec, once known.
    pub codec: Option<String>,
    /// Picture width, once known.
    pub width: Option<u32>,
    /// Picture height, once known.
    pub height: Option<u32>,
    /// Frames per second received, over the last few seconds.
    pub fps: f64,
    /// Compressed frames received.
    pub frames_received: f64,
    /// Frames decoded to pictures (the main stream's `framesDecoded` does not count them).
    pub frames_decoded: f64,
    /// Frames dropped.
    pub frames_dropped: f64,
    /// Times it was reopened after a failure.
    pub reconnects: f64,
    /// JPEG encodes made from its pictures.
    pub jpeg_encodes: f64,
    /// Why it serves nothing now (e.g. the camera refused a second session); requests
    /// then go to the main stream. Absent while it streams.
    pub off: Option<String>,
    /// Its most recent error.
    pub last_error: Option<LastError>,
}

impl From<camkit::SubStreamStatus> for SubStreamStatus {
    fn from(s: camkit::SubStreamStatus) -> Self {
        SubStreamStatus {
            state: s.state.into(),
            url: s.url,
            codec: s.codec,
            width: s.width,
            height: s.height,
            fps: s.fps,
            frames_received: s.frames_received as f64,
            frames_decoded: s.frames_decoded as f64,
            frames_dropped: s.frames_dropped as f64,
            reconnects: s.reconnects as f64,
            jpeg_encodes: s.jpeg_encodes as f64,
            off: s.off,
            last_error: s.last_error.map(Into::into),
        }
    }
}

impl From<camkit::CameraStatus> for CameraStatus {
    fn from(s: camkit::CameraStatus) -> Self {
        CameraStatus {
            id: s.id,
            state: s.state.into(),
            url: s.url,
            transport: s.transport.into(),
            decode: s.decode.into(),
            decoder: s.decoder,
            codec: s.codec,
            profile: s.profile,
            width: s.width,
            height: s.height,
            fps: s.fps,
            bitrate_bps: s.bitrate_bps,
            frames_received: s.frames_received as f64,
            frames_decoded: s.frames_decoded as f64,
            frames_dropped: s.frames_dropped as f64,
            partial_frames_skipped: s.partial_frames_skipped as f64,
            reconnects: s.reconnects as f64,
            connected_since_ms: s.connected_since_ms.map(|v| v as f64),
            last_frame_ms: s.last_frame_ms.map(|v| v as f64),
            jpeg_encodes: s.jpeg_encodes as f64,
            video_lost_ms: s.video_lost_ms as f64,
            video_lost_since_ms: s.video_lost_since_ms.map(|v| v as f64),
            picture_stale: s.picture_stale,
            picture_age_ms: s.picture_age_ms.map(|v| v as f64),
            last_error: s.last_error.map(Into::into),
            sub_stream: s.sub_stream.map(Into::into),
        }
    }
}

/// A camera changed state.
#[napi(object, object_from_js = false)]
pub struct CameraEvent {
    /// The camera.
    pub camera_id: String,
    /// Its new state.
    pub state: CameraState,
    /// The error that caused it (for `'reconnecting'`, and a failed first attempt).
    pub error: Option<LastError>,
    /// When, in ms since the Unix epoch.
    pub at_ms: f64,
}

impl From<camkit::CameraEvent> for CameraEvent {
    fn from(e: camkit::CameraEvent) -> Self {
        CameraEvent {
            camera_id: e.camera_id,
            state: e.state.into(),
            error: e.error.map(Into::into),
            at_ms: e.at_ms as f64,
        }
    }
}

/// A JPEG picture of one camera at one moment.
#[napi(object, object_from_js = false)]
pub struct Frame {
    /// The JPEG file bytes: a Buffer over camkit's cached JPEG, shared with every other
    /// reader of this picture (no copy is made). Read-only: never write into it; for bytes
    /// of your own, copy it (`Buffer.from(frame.jpeg)`). Keeping it is fine, even after
    /// `close()`.
    pub jpeg: Buffer,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// The camera's picture sequence number (1 for the first picture, increasing).
    pub seq: f64,
    /// When camkit received the frame's data from the camera, in ms since the Unix epoch.
    pub captured_at: f64,
}
