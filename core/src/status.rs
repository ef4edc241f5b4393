//! What a camera is doing: its state, stream facts, counters and last error.
//!
//! The camera's tasks write a `StatusCell` (crate-private); callers read a [`CameraStatus`]
//! snapshot of it (serde, camelCase). The URL in a status never carries credentials.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::{DecodePolicy, Transport};
use crate::decode::DecoderBackend;
use crate::error::{Error, ErrorKind};
use crate::util::epoch_ms;

/// Where a camera is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CameraState {
    /// First attempt to open the stream is under way.
    Connecting,
    /// Video is arriving.
    Streaming,
    /// The stream failed; waiting for the backoff or retrying.
    Reconnecting,
    /// Disconnected by the caller (or the manager closed). Final.
    Stopped,
}

impl CameraState {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Reconnecting => "reconnecting",
            CameraState::Stopped => "stopped",
        }
    }
}

/// The last error a camera met, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// Stable kind.
    pub kind: ErrorKind,
    /// Stable string code (same as `kind`, as JS sees it).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A point-in-time view of one camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraStatus {
    /// The camera id.
    pub id: String,
    /// Lifecycle state.
    pub state: CameraState,
    /// The camera URL without credentials.
    pub url: String,
    /// The transport in use (`tcp`/`udp`), or the configured one before connecting.
    pub transport: Transport,
    /// The decode policy.
    pub decode: DecodePolicy,
    /// The decoder in use: `openh264`, or `libavcodec` with its version
    /// (`libavcodec 59.37.100`).
    pub decoder: String,
    /// Video codec (`h264`, `h265`, `jpeg`), once known.
    pub codec: Option<String>,
    /// H.264 profile (`Baseline`, `Main`, `High` …) or H.265 profile (`Main`, `Main 10` …),
    /// once known.
    pub profile: Option<String>,
    /// Picture width, once known.
    pub width: Option<u32>,
    /// Picture height, once known.
    pub height: Option<u32>,
    /// Frames per second received, over the last few seconds.
    pub fps: f64,
    /// Bits per second received, over the last few seconds.
    pub bitrate_bps: f64,
    /// Compressed frames received since connect.
    pub frames_received: u64,
    /// Frames decoded to pictures.
    pub frames_decoded: u64,
    /// Frames dropped (decoder behind, corrupt data, lost packets), including the whole
    /// frames withheld after a partial one until the next keyframe.
    pub frames_dropped: u64,
    /// Frames skipped because part of them never arrived: the stream was joined in the
    /// middle of a frame, packets were lost, or the camera sent data retina could not
    /// depacketize. The session goes on; decoding resumes at the next keyframe.
    pub partial_frames_skipped: u64,
    /// Times the stream was reopened after a failure.
    pub reconnects: u64,
    /// When the current stream started, in ms since the Unix epoch.
    pub connected_since_ms: Option<u64>,
    /// When the last frame arrived, in ms since the Unix epoch.
    pub last_frame_ms: Option<u64>,
    /// JPEG encodes made from this camera's pictures (each picture and size at most once),
    /// including the one full-size encode an idle camera makes when it releases its raw
    /// picture and no full-size JPEG of it was made yet.
    pub jpeg_encodes: u64,
    /// Total time without video, in ms, since the camera first streamed: every stretch
    /// from the stream breaking (or frames being skipped after damage) until pictures
    /// flow again, including the current one.
    pub video_lost_ms: u64,
    /// Since when the camera has had no video, in ms since the Unix epoch; `None` while
    /// video flows (and before the camera first streamed).
    pub video_lost_since_ms: Option<u64>,
    /// The latest picture is stale: it is served (snapshots, `latestPicture`) while the
    /// camera has no video, e.g. while it reconnects.
    pub picture_stale: bool,
    /// Age of the latest picture in ms (from when it was captured), once there is one.
    pub picture_age_ms: Option<u64>,
    /// The most recent error, kept after recovery for diagnosis.
    pub last_error: Option<LastError>,
    /// The sub-stream, when the config has one; everything above is the main stream's.
    pub sub_stream: Option<SubStreamStatus>,
}

/// A camera's sub-stream: its own session, decoder, counters and errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubStreamStatus {
    /// Its state (`streaming` while it serves requests).
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
    pub frames_received: u64,
    /// Frames decoded to pictures (the main stream's `framesDecoded` does not count them).
    pub frames_decoded: u64,
    /// Frames dropped.
    pub frames_dropped: u64,
    /// Times it was reopened after a failure.
    pub reconnects: u64,
    /// JPEG encodes made from its pictures.
    pub jpeg_encodes: u64,
    /// Why it serves nothing now, while it is not streaming: e.g. the camera refused a
    /// second session. Requests then go to the main stream. `None` while it streams.
    pub off: Option<String>,
    /// Its most recent error.
    pub last_error: Option<LastError>,
}

impl SubStreamStatus {
    /// The sub-stream's part of a status, from the sub-stream's own status; `refused` when
    /// its last failure was the camera refusing another session (RTSP 453 or 503).
    pub(crate) fn from_status(s: CameraStatus, refused: bool) -> Self {
        let off = match (s.state, &s.last_error) {
            (CameraState::Streaming, _) => None,
            (_, Some(e)) if refused => Some(format!(
                "the camera refused a second session ({}); the main stream serves every request, and camkit keeps retrying it (backoff up to backoffMaxMs)",
                e.message
            )),
            (_, Some(e)) => Some(format!(
                "{}; the main stream serves every request until it is back",
                e.message
            )),
            (state, None) => Some(format!(
                "the sub-stream is {}; the main stream serves every request meanwhile",
                state.as_str()
            )),
        };
        SubStreamStatus {
            state: s.state,
            url: s.url,
            codec: s.codec,
            width: s.width,
            height: s.height,
            fps: s.fps,
            frames_received: s.frames_received,
            frames_decoded: s.frames_decoded,
            frames_dropped: s.frames_dropped,
            reconnects: s.reconnects,
            jpeg_encodes: s.jpeg_encodes,
            off,
            last_error: s.last_error,
        }
    }
}

/// Stream facts learnt after DESCRIBE.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamInfo {
    pub codec: Option<String>,
    pub profile: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub transport: Option<Transport>,
}

struct Mutable {
    state: CameraState,
    info: StreamInfo,
    connected_since: Option<SystemTime>,
    last_error: Option<LastError>,
    rate: RateWindow,
    gap: VideoGap,
}

/// Time without video, after the camera first streamed.
#[derive(Default)]
struct VideoGap {
    had_video: bool,
    /// The current stretch without video.
    since: Option<(Instant, SystemTime)>,
    /// The stretches that ended.
    closed: Duration,
}

/// The shared, written-by-the-camera status of one camera.
pub(crate) struct StatusCell {
    id: String,
    url: String,
    transport: Transport,
    decode: Mutex<DecodePolicy>,
    decoder_name: String,
    inner: Mutex<Mutable>,
    pub frames_received: AtomicU64,
    pub frames_decoded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub partial_frames_skipped: AtomicU64,
    pub reconnects: AtomicU64,
    /// Written by the frame cache as it encodes.
    pub jpeg_encodes: Arc<AtomicU64>,
    last_frame_ms: AtomicU64,
    /// The last error was a refused session (see [`refused_session`](Self::refused_session)).
    refused: std::sync::atomic::AtomicBool,
}

impl StatusCell {
    pub fn new(
        id: &str,
        url: &str,
        transport: Transport,
        decode: DecodePolicy,
        decoder: DecoderBackend,
    ) -> Self {
        StatusCell {
            id: id.to_owned(),
            url: url.to_owned(),
            transport,
            decode: Mutex::new(decode),
            decoder_name: decoder.name(),
            inner: Mutex::new(Mutable {
                state: CameraState::Connecting,
                info: StreamInfo::default(),
                connected_since: None,
                last_error: None,
                rate: RateWindow::default(),
                gap: VideoGap::default(),
            }),
            frames_received: AtomicU64::new(0),
            frames_decoded: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            partial_frames_skipped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            jpeg_encodes: Arc::default(),
            last_frame_ms: AtomicU64::new(0),
            refused: Default::default(),
        }
    }

    pub fn state(&self) -> CameraState {
        self.inner.lock().state
    }

    /// Sets the state; returns whether it changed.
    pub fn set_state(&self, state: CameraState) -> bool {
        let mut g = self.inner.lock();
        let changed = g.state != state;
        g.state = state;
        match state {
            CameraState::Streaming if changed => g.connected_since = Some(SystemTime::now()),
            CameraState::Streaming => {}
            _ => {
                g.connected_since = None;
                g.rate = RateWindow::default();
            }
        }
        changed
    }

    pub fn set_info(&self, info: StreamInfo) {
        self.inner.lock().info = info;
    }

    /// New stream parameters mid-stream: keeps the transport in use.
    pub fn update_params(&self, mut info: StreamInfo) {
        let mut g = self.inner.lock();
        info.transport = g.info.transport;
        g.info = info;
    }

    pub fn set_resolution(&self, width: u32, height: u32) {
        let mut g = self.inner.lock();
        g.info.width = Some(width);
        g.info.height = Some(height);
    }

    pub fn set_decode(&self, d: DecodePolicy) {
        *self.decode.lock() = d;
    }

    pub fn set_error(&self, e: &Error) {
        self.refused
            .store(matches!(e.status(), Some(453 | 503)), Ordering::Relaxed);
        self.inner.lock().last_error = Some(LastError {
            kind: e.kind(),
            code: e.kind().code().to_owned(),
            message: e.message().to_owned(),
            at_ms: epoch_ms(SystemTime::now()),
        });
    }

    pub fn last_error(&self) -> Option<LastError> {
        self.inner.lock().last_error.clone()
    }

    /// Video stopped flowing (the stream broke, or frames are skipped after damage).
    /// Nothing before the camera first streamed counts.
    pub fn video_lost(&self) {
        let mut g = self.inner.lock();
        if g.gap.had_video && g.gap.since.is_none() {
            g.gap.since = Some((Instant::now(), SystemTime::now()));
        }
    }

    /// A frame went on to the decoder: video flows.
    pub fn video_flows(&self) {
        let mut g = self.inner.lock();
        g.gap.had_video = true;
        if let Some((t, _)) = g.gap.since.take() {
            g.gap.closed += t.elapsed();
        }
    }

    /// Records one received compressed frame of `bytes` bytes.
    pub fn on_frame(&self, bytes: usize) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms
            .store(epoch_ms(SystemTime::now()), Ordering::Relaxed);
        self.inner.lock().rate.push(Instant::now(), bytes);
    }

    pub fn snapshot(&self) -> CameraStatus {
        let g = self.inner.lock();
        let (fps, bps) = g.rate.rates(Instant::now());
        let last_frame = self.last_frame_ms.load(Ordering::Relaxed);
        CameraStatus {
            id: self.id.clone(),
            state: g.state,
            url: self.url.clone(),
            transport: g.info.transport.unwrap_or(self.transport),
            decode: *self.decode.lock(),
            decoder: self.decoder_name.clone(),
            codec: g.info.codec.clone(),
            profile: g.info.profile.clone(),
            width: g.info.width,
            height: g.info.height,
            fps,
            bitrate_bps: bps,
            frames_received: self.frames_received.load(Ordering::Relaxed),
            frames_decoded: self.frames_decoded.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            partial_frames_skipped: self.partial_frames_skipped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            connected_since_ms: g.connected_since.map(epoch_ms),
            last_frame_ms: (last_frame != 0).then_some(last_frame),
            jpeg_encodes: self.jpeg_encodes.load(Ordering::Relaxed),
            video_lost_ms: (g.gap.closed + g.gap.since.map_or(Duration::ZERO, |(t, _)| t.elapsed()))
                .as_millis() as u64,
            video_lost_since_ms: g.gap.since.map(|(_, at)| epoch_ms(at)),
            // The camera fills these in from its frame cache.
            picture_stale: false,
            picture_age_ms: None,
            last_error: g.last_error.clone(),
            sub_stream: None,
        }
    }

    /// The picture width, once known.
    pub fn width(&self) -> Option<u32> {
        self.inner.lock().info.width
    }

    /// Whether the last error was the camera refusing another session (RTSP 453 Not
    /// Enough Bandwidth or 503 Service Unavailable, what one-session cameras answer).
    pub fn refused_session(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Frame arrivals over the last few seconds, for fps and bitrate.
///
/// A ring of (time, bytes); cost is O(1) per frame and bounded memory.
#[derive(Default)]
struct RateWindow {
    samples: std::collections::VecDeque<(Instant, usize)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);
const RATE_MAX_SAMPLES: usize = 512;

impl RateWindow {
    fn push(&mut self, now: Instant, bytes: usize) {
        self.samples.push_back((now, bytes));
        self.trim(now);
        if self.samples.len() > RATE_MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    fn trim(&mut self, now: Instant) {
        while let Some((t, _)) = self.samples.front() {
            if now.duration_since(*t) > RATE_WINDOW {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn rates(&self, now: Instant) -> (f64, f64) {
        let recent: Vec<_> = self
            .samples
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW)
            .collect();
        if recent.len() < 2 {
            return (0.0, 0.0);
        }
        let first = recent[0].0;
        let span = now.duration_since(first).as_secs_f64().max(0.001);
        // n frames observed over `span`: intervals are n-1 between first and last, but
        // measuring to `now` makes a stalled stream decay toward 0 fps.
        let fps = (recent.len() - 1) as f64 / span;
        let bytes: usize = recent.iter().skip(1).map(|(_, b)| *b).sum();
        let fps = (fps * 10.0).round() / 10.0;
        (fps, (bytes as f64 * 8.0 / span).round())
    }
}

/// Names an H.264 profile from an RFC 6381 codec string such as `avc1.64001F`.
pub(crate) fn h264_profile_name(rfc6381: &str) -> Option<String> {
    let hex = rfc6381.strip_prefix("avc1.")?;
    let idc = u8::from_str_radix(hex.get(0..2)?, 16).ok()?;
    let constraints = u8::from_str_radix(hex.get(2..4)?, 16).ok()?;
    Some(
        match idc {
            66 if constraints & 0x40 != 0 => "Constrained Baseline",
            66 => "Baseline",
            77 => "Main",
            88 => "Extended",
            100 => "High",
            110 => "High 10",
            122 => "High 4:2:2",
            244 => "High 4:4:4",
            _ => return Some(format!("profile_idc {idc}")),
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_rfc6381() {
        assert_eq!(
            h264_profile_name("avc1.42C01E").as_deref(),
            Some("Constrained Baseline")
        );
        assert_eq!(
            h264_profile_name("avc1.42001E").as_deref(),
            Some("Baseline")
        );
        assert_eq!(h264_profile_name("avc1.4D401F").as_deref(), Some("Main"));
        assert_eq!(h264_profile_name("avc1.640028").as_deref(), Some("High"));
        assert_eq!(h264_profile_name("hvc1.1"), None);
    }

    #[test]
    fn rate_window_measures_fps_and_bitrate() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        for i in 0..31 {
            w.push(t0 + Duration::from_millis(i * 100), 1000);
        }
        let (fps, bps) = w.rates(t0 + Duration::from_millis(3000));
        assert!((fps - 10.0).abs() < 0.2, "{fps}");
        assert!((bps - 80_000.0).abs() < 2000.0, "{bps}");
        // A stalled stream decays.
        let (fps, _) = w.rates(t0 + Duration::from_millis(20_000));
        assert_eq!(fps, 0.0);
    }

    #[test]
    fn status_serializes_camel_case_without_secrets() {
        let c = StatusCell::new(
            "a",
            "rtsp://h:554/x",
            Transport::Auto,
            DecodePolicy::OnDemand,
            DecoderBackend::OpenH264,
        );
        c.set_error(&Error::new(ErrorKind::Unauthorized, "camera answered 401"));
        let j = serde_json::to_value(c.snapshot()).unwrap();
        assert_eq!(j["state"], "connecting");
        assert_eq!(j["lastError"]["code"], "UNAUTHORIZED");
        assert_eq!(j["lastError"]["kind"], "unauthorized");
        assert!(j.get("framesReceived").is_some());
        assert_eq!(j["decode"], "onDemand");
        assert_eq!(j["decoder"], "openh264");
    }
}
