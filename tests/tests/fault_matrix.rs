//! The fault matrix: camkit against a camera that misbehaves on cue (the demo camera's
//! `faults`), one test per misbehaviour. Every test checks that
//!
//! * nothing panics, and the camera's status shows the state and `ErrorKind` the fault
//!   deserves (while the fault lasts);
//! * once the fault ends, the camera streams again within twice the maximum backoff;
//! * a second, healthy camera on the same manager keeps its frame rate meanwhile (frames
//!   through a subscription during the fault ≥ 80 % of those in as long a time before).
//!
//! `RELIABILITY.md` at the repository root lists every fault with its expected behaviour
//! and the test that checks it, including those tested elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camkit::{
    CameraConfig, CameraManager, CameraState, CameraStatus, DecodePolicy, ErrorKind,
    SnapshotOptions, SubscribeOptions,
};
use camkit_demo_camera::faults::{AnnouncedCodec, Audio, Faults, Reply};
use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
use camkit_tests::decode_jpeg_rgb;

/// Small delays keep the suite fast; recovery is checked against `2 * BACKOFF_MAX`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
const RTSP_TIMEOUT: Duration = Duration::from_millis(1000);
const FRAME_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long the healthy camera's frames are counted, before and during the fault.
const WINDOW: Duration = Duration::from_millis(1500);
/// The healthy camera must keep this share of its frame rate during the fault.
const MIN_RATE_SHARE: f64 = 0.8;
/// Longest wait for the fault to show in the status.
const DETECT_LIMIT: Duration = Duration::from_secs(6);
const W: u32 = 320;
const H: u32 = 240;

fn opts() -> DemoCameraOptions {
    DemoCameraOptions {
        port: 0,
        width: W,
        height: H,
        fps: 15,
        bitrate_bps: 500_000,
        ..Default::default()
    }
}

fn config(id: &str, url: String) -> CameraConfig {
    let mut cfg = CameraConfig::from_url(id, url);
    cfg.backoff_initial = BACKOFF_INITIAL;
    cfg.backoff_max = BACKOFF_MAX;
    cfg.rtsp_timeout = RTSP_TIMEOUT;
    cfg.frame_timeout = FRAME_TIMEOUT;
    // The faulty camera decodes every frame, so damaged video reaches the decoder.
    cfg.decode = DecodePolicy::Continuous;
    cfg
}

/// A manager with a healthy camera (counted through a subscription) and a faulty one.
struct Rig {
    cams: CameraManager,
    healthy_cam: DemoCamera,
    faulty_cam: DemoCamera,
    healthy_frames: Arc<AtomicU64>,
    counter: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start() -> Rig {
        let healthy_cam = DemoCamera::start(opts())
            .await
            .expect("healthy demo camera");
        let faulty_cam = DemoCamera::start(opts()).await.expect("faulty demo camera");
        let cams = CameraManager::new();
        cams.connect(config("healthy", healthy_cam.url()))
            .await
            .expect("healthy camera connects");
        cams.connect(config("faulty", faulty_cam.url()))
            .await
            .expect("faulty camera connects before its fault");
        let healthy_frames = Arc::new(AtomicU64::new(0));
        let mut sub = cams
            .subscribe("healthy", SubscribeOptions::fps(30.0))
            .unwrap();
        let counter = {
            let n = healthy_frames.clone();
            tokio::spawn(async move {
                while let Some(f) = sub.next().await {
                    f.expect("healthy camera's frame encodes");
                    n.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let rig = Rig {
            cams,
            healthy_cam,
            faulty_cam,
            healthy_frames,
            counter,
        };
        // Let the subscription reach its pace before anything is counted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig
    }

    fn status(&self, id: &str) -> CameraStatus {
        self.cams.status(id).expect("camera still known")
    }

    /// Healthy frames counted over `WINDOW` from now.
    async fn healthy_count(&self) -> u64 {
        let a = self.healthy_frames.load(Ordering::Relaxed);
        tokio::time::sleep(WINDOW).await;
        self.healthy_frames.load(Ordering::Relaxed) - a
    }

    /// Waits until camera `id` reconnects after an error of `kind` whose message contains
    /// `says` (which tells the fault's own error from the one of the hang-up that may have
    /// started it); returns that status.
    async fn wait_for_error(&self, id: &str, kind: ErrorKind, says: &str) -> CameraStatus {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let st = self.status(id);
            if let Some(e) = &st.last_error {
                if seen.last() != Some(e) {
                    seen.push(e.clone());
                }
                if st.state == CameraState::Reconnecting
                    && e.kind == kind
                    && e.message.contains(says)
                {
                    return st;
                }
            }
            assert!(
                start.elapsed() < DETECT_LIMIT,
                "{id}: no {kind:?} error saying {says:?} within {DETECT_LIMIT:?}; errors seen: {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until camera `id` records a new failure (the attempt under way when this was
    /// called has failed), so the fault can end between attempts: the next attempt then
    /// comes after at most one backoff delay. Without this, an attempt that started while
    /// the fault lasted (a `DESCRIBE` nobody answers, a session with no video) would still
    /// have to time out after the fault ended.
    async fn wait_for_next_failure(&self, id: &str) {
        let before = self.status(id).last_error.map(|e| e.at_ms);
        let start = Instant::now();
        loop {
            let st = self.status(id);
            let at = st.last_error.as_ref().map(|e| e.at_ms);
            if at != before && st.state == CameraState::Reconnecting {
                return;
            }
            assert!(
                start.elapsed() < DETECT_LIMIT,
                "{id}: no new failure within {DETECT_LIMIT:?}; status {st:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until camera `id` streams; returns how long that took.
    async fn time_to_streaming(&self, id: &str) -> Duration {
        let start = Instant::now();
        loop {
            let st = self.status(id);
            if st.state == CameraState::Streaming {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{id} never streamed again: {st:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A snapshot of camera `id` that decodes, at the given size.
    async fn check_picture(&self, id: &str, width: u32, height: u32) {
        let f = self
            .cams
            .snapshot(id, SnapshotOptions::full())
            .await
            .unwrap_or_else(|e| panic!("{id}: snapshot after recovery: {e}"));
        let (_, w, h) = decode_jpeg_rgb(&f.jpeg);
        assert_eq!((w, h), (width, height), "{id}: snapshot size");
    }

    async fn finish(self) {
        self.cams.disconnect_all().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.counter).await;
        self.healthy_cam.stop().await;
        self.faulty_cam.stop().await;
    }
}

fn assert_rate_kept(before: u64, during: u64, what: &str) {
    assert!(
        before > 0,
        "{what}: the healthy camera sent nothing before the fault"
    );
    let share = during as f64 / before as f64;
    assert!(
        share >= MIN_RATE_SHARE,
        "{what}: the healthy camera fell from {before} to {during} frames per {WINDOW:?} ({:.0} %)",
        share * 100.0
    );
}

fn assert_recovered_in_time(took: Duration, what: &str) {
    let limit = BACKOFF_MAX * 2;
    assert!(
        took <= limit,
        "{what}: streaming again after {took:?}, more than 2 x the maximum backoff ({limit:?})"
    );
}

/// How a fault is switched on and off.
struct Fault {
    name: &'static str,
    on: Box<dyn Fn(&DemoCamera) + Send + Sync>,
    off: Box<dyn Fn(&DemoCamera) + Send + Sync>,
    /// Also hang up on the clients when the fault starts, so that a fault of the
    /// connection's first steps (`DESCRIBE` …) meets the reconnecting camera.
    reconnect: bool,
    /// A piece of the error message the fault must cause.
    says: &'static str,
    /// The camera streams for a moment between failures while the fault lasts.
    flaps: bool,
}

impl Fault {
    fn faults(name: &'static str, f: Faults, reconnect: bool, says: &'static str) -> Fault {
        Fault {
            name,
            says,
            on: Box::new(move |c| c.set_faults(f.clone())),
            off: Box::new(|c| c.clear_faults()),
            reconnect,
            flaps: false,
        }
    }

    fn describe(name: &'static str, reply: Reply, says: &'static str) -> Fault {
        Fault::faults(name, Faults::answer("DESCRIBE", reply), true, says)
    }
}

/// A fault that stops the stream: the camera reconnects with `kind` while it lasts, then
/// streams again within `2 * BACKOFF_MAX` of its end; the healthy camera is unaffected.
async fn stream_stopping_fault(fault: Fault, kind: ErrorKind) {
    let rig = Rig::start().await;
    let before = rig.healthy_count().await;
    let reconnects = rig.status("faulty").reconnects;

    (fault.on)(&rig.faulty_cam);
    if fault.reconnect {
        rig.faulty_cam.drop_connections();
    }
    let (during, st) = tokio::join!(
        rig.healthy_count(),
        rig.wait_for_error("faulty", kind, fault.says)
    );
    let err = st.last_error.expect("an error is shown");
    assert!(!err.message.is_empty(), "{}: empty message", fault.name);
    assert_eq!(err.code, kind.code());
    if !fault.flaps {
        // While it reconnects the last good picture is served, and the status says it is
        // stale, how old, and why (the error).
        let snap = rig
            .cams
            .snapshot("faulty", SnapshotOptions::full())
            .await
            .unwrap_or_else(|e| panic!("{}: the last picture: {e}", fault.name));
        assert_eq!((snap.width, snap.height), (W, H), "{}", fault.name);
        let st = rig.status("faulty");
        assert!(st.picture_stale, "{}: {st:#?}", fault.name);
        assert!(st.picture_age_ms.is_some(), "{}: {st:#?}", fault.name);
        assert!(st.video_lost_since_ms.is_some(), "{}: {st:#?}", fault.name);
        assert!(
            st.last_error
                .as_ref()
                .is_some_and(|e| e.message.contains(fault.says)),
            "{}: {st:#?}",
            fault.name
        );
        assert_ne!(
            rig.status("faulty").state,
            CameraState::Streaming,
            "{}: still failing at the end of the window",
            fault.name
        );
    }

    rig.wait_for_next_failure("faulty").await;
    (fault.off)(&rig.faulty_cam);
    let took = rig.time_to_streaming("faulty").await;
    assert_recovered_in_time(took, fault.name);
    rig.check_picture("faulty", W, H).await;
    // And it holds: no further reconnect.
    let st = rig.status("faulty");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = rig.status("faulty");
    assert_eq!(
        later.state,
        CameraState::Streaming,
        "{}: {later:#?}",
        fault.name
    );
    assert_eq!(
        later.reconnects, st.reconnects,
        "{}: {later:#?}",
        fault.name
    );
    assert!(st.reconnects > reconnects, "{}: {st:#?}", fault.name);
    assert_eq!(
        st.last_error.map(|e| e.kind),
        Some(kind),
        "kept for diagnosis"
    );
    assert_eq!(rig.status("healthy").reconnects, 0);
    assert_rate_kept(before, during, fault.name);
    eprintln!(
        "{}: {kind:?} \"{}\"; healthy {before} -> {during} frames/{WINDOW:?}; back in {took:?}",
        fault.name, err.message
    );
    rig.finish().await;
}

/// A fault the stream survives: the camera stays `Streaming` (no reconnect) while it
/// lasts and still delivers pictures afterwards; the healthy camera is unaffected.
/// `check` runs at the end of the fault window with the faulty camera's status.
async fn survivable_fault(fault: Fault, check: impl Fn(&CameraStatus, &CameraStatus)) {
    let rig = Rig::start().await;
    let before = rig.healthy_count().await;
    let st0 = rig.status("faulty");

    (fault.on)(&rig.faulty_cam);
    let watch = async {
        let start = Instant::now();
        while start.elapsed() < WINDOW {
            let st = rig.status("faulty");
            assert_eq!(
                st.state,
                CameraState::Streaming,
                "{}: the stream must survive: {st:#?}",
                fault.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (during, ()) = tokio::join!(rig.healthy_count(), watch);
    let st1 = rig.status("faulty");
    assert_eq!(st1.reconnects, st0.reconnects, "{}: {st1:#?}", fault.name);
    assert!(
        st1.frames_received > st0.frames_received + 10,
        "{}: video kept coming: {st1:#?}",
        fault.name
    );
    check(&st0, &st1);

    (fault.off)(&rig.faulty_cam);
    let took = rig.time_to_streaming("faulty").await;
    assert_recovered_in_time(took, fault.name);
    // Pictures come (a fresh keyframe at the latest) once the fault ended.
    let deadline = Instant::now() + BACKOFF_MAX * 2 + Duration::from_secs(3);
    let decoded = st1.frames_decoded;
    while rig.status("faulty").frames_decoded < decoded + 5 {
        assert!(
            Instant::now() < deadline,
            "{}: no pictures after the fault: {:#?}",
            fault.name,
            rig.status("faulty")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.check_picture("faulty", W, H).await;
    assert_rate_kept(before, during, fault.name);
    eprintln!(
        "{}: streaming throughout; dropped {} -> {}, decoded {} -> {}; healthy {before} -> {during} frames/{WINDOW:?}",
        fault.name, st0.frames_dropped, st1.frames_dropped, st0.frames_decoded, st1.frames_decoded
    );
    rig.finish().await;
}

// ---- The connection's first steps fail ---------------------------------------------------

/// A camera that answers `401 Unauthorized` to DESCRIBE (credentials changed on the camera,
/// or a firmware that lost them): `Unauthorized`, retried only at the maximum backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_401_is_unauthorized() {
    stream_stopping_fault(
        Fault::describe("401", Reply::Status(401), "401 Unauthorized to DESCRIBE"),
        ErrorKind::Unauthorized,
    )
    .await;
}

/// A camera that answers `403 Forbidden` to DESCRIBE (user without the right to view):
/// `Unauthorized`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_403_is_unauthorized() {
    stream_stopping_fault(
        Fault::describe("403", Reply::Status(403), "403 Forbidden to DESCRIBE"),
        ErrorKind::Unauthorized,
    )
    .await;
}

/// A camera that answers `404 Not Found` to DESCRIBE (stream path renamed by a firmware
/// update or a profile change): `Protocol`, with advice to check the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_404_is_protocol() {
    stream_stopping_fault(
        Fault::describe("404", Reply::Status(404), "404 Not Found to DESCRIBE"),
        ErrorKind::Protocol,
    )
    .await;
}

/// A camera that answers `454 Session Not Found` to DESCRIBE (a confused server that lost
/// its session table after a restart): `Protocol`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_454_is_protocol() {
    stream_stopping_fault(
        Fault::describe(
            "454",
            Reply::Status(454),
            "454 Session Not Found to DESCRIBE",
        ),
        ErrorKind::Protocol,
    )
    .await;
}

/// A camera that answers `503 Service Unavailable` to DESCRIBE (overloaded, booting, or at
/// its client limit): `Unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_503_is_unreachable() {
    stream_stopping_fault(
        Fault::describe(
            "503",
            Reply::Status(503),
            "503 Service Unavailable to DESCRIBE",
        ),
        ErrorKind::Unreachable,
    )
    .await;
}

/// Something that is not RTSP answers on the camera's port (another service took it, a
/// wrong port forward): `Protocol`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_response_is_protocol() {
    stream_stopping_fault(
        Fault::describe(
            "garbage",
            Reply::Garbage,
            "could not follow during DESCRIBE",
        ),
        ErrorKind::Protocol,
    )
    .await;
}

/// A camera that sends half a response head to DESCRIBE and closes the connection (a
/// crashing RTSP server): `Protocol`, as retina reports an incomplete RTSP message (the
/// answer itself is broken, not just the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_response_is_protocol() {
    stream_stopping_fault(
        Fault::describe("truncated", Reply::Truncated, "Incomplete RTSP message"),
        ErrorKind::Protocol,
    )
    .await;
}

/// A camera that accepts the connection and closes it on DESCRIBE without a word (a server
/// out of resources): `Unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_on_describe_is_unreachable() {
    stream_stopping_fault(
        Fault::describe("closed on DESCRIBE", Reply::Close, "lost during DESCRIBE"),
        ErrorKind::Unreachable,
    )
    .await;
}

/// A camera whose RTSP server accepts connections and reads requests but never answers
/// DESCRIBE (a hung firmware): `Timeout` after `rtspTimeoutMs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_describe_times_out() {
    stream_stopping_fault(
        Fault::describe("silent DESCRIBE", Reply::Silence, "no answer to DESCRIBE"),
        ErrorKind::Timeout,
    )
    .await;
}

/// A camera that announces a codec camkit does not decode in its SDP (MPEG-4 Part 2, as
/// older cameras send): refused at DESCRIBE with `UnsupportedCodec` naming the codec;
/// retried only at the maximum backoff, and streaming again once the camera is back on H.264.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codec_is_unsupported_codec() {
    stream_stopping_fault(
        Fault::faults(
            "MPEG-4",
            Faults {
                announce_codec: AnnouncedCodec::Mpeg4,
                ..Faults::default()
            },
            true,
            "MP4V-ES",
        ),
        ErrorKind::UnsupportedCodec,
    )
    .await;
}

/// A camera that answers `454 Session Not Found` to PLAY (it dropped the session between
/// SETUP and PLAY): `Protocol`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_454_is_protocol() {
    stream_stopping_fault(
        Fault::faults(
            "454 to PLAY",
            Faults::answer("PLAY", Reply::Status(454)),
            true,
            "454 Session Not Found to PLAY",
        ),
        ErrorKind::Protocol,
    )
    .await;
}

// ---- The stream fails --------------------------------------------------------------------

/// A camera that closes the TCP connection mid-stream, again and again (each client is
/// dropped after 5 frames, as a camera with a crashing streamer does): `Unreachable`, and
/// streaming that holds once the camera stops doing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_up_mid_stream_is_unreachable() {
    let mut fault = Fault::faults(
        "hang-up",
        Faults {
            hang_up_after_frames: Some(5),
            ..Faults::default()
        },
        false,
        "",
    );
    fault.flaps = true;
    stream_stopping_fault(fault, ErrorKind::Unreachable).await;
}

/// A camera that keeps its RTSP session alive (answers keepalives) but stops sending RTP:
/// the frame watchdog reconnects it with `Timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_video_times_out() {
    stream_stopping_fault(
        Fault {
            name: "stalled video",
            on: Box::new(|c| c.set_video_paused(true)),
            off: Box::new(|c| c.set_video_paused(false)),
            reconnect: false,
            says: "no video",
            flaps: false,
        },
        ErrorKind::Timeout,
    )
    .await;
}

/// A camera that serves one client at a time: a second client's SETUP gets `453 Not
/// Enough Bandwidth` (`Unreachable`, the camera is busy) until the first client leaves;
/// then the second streams within twice the maximum backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_client_of_a_single_session_camera_is_unreachable() {
    let rig = Rig::start().await;
    rig.faulty_cam.set_faults(Faults {
        max_sessions: Some(1),
        ..Faults::default()
    });
    let before = rig.healthy_count().await;
    let mut cfg = config("second", rig.faulty_cam.url());
    cfg.persistent = true;
    let st = rig
        .cams
        .connect(cfg)
        .await
        .expect("a persistent camera is kept");
    assert_eq!(st.state, CameraState::Reconnecting, "{st:#?}");
    let err = st.last_error.expect("why it waits");
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err:?}");
    assert!(err.message.contains("453"), "{}", err.message);
    let (during, _) = tokio::join!(
        rig.healthy_count(),
        rig.wait_for_error("second", ErrorKind::Unreachable, "453")
    );
    assert_eq!(rig.status("faulty").state, CameraState::Streaming);

    // The first client leaves (TEARDOWN frees the camera's only session).
    rig.wait_for_next_failure("second").await;
    rig.cams.disconnect("faulty").await.unwrap();
    let took = rig.time_to_streaming("second").await;
    assert_recovered_in_time(took, "single session");
    rig.check_picture("second", W, H).await;
    assert_rate_kept(before, during, "single session");
    eprintln!("single session: {}; back in {took:?}", err.message);
    rig.finish().await;
}

/// A camera that reboots: every connection dropped at once. `Unreachable` for a moment,
/// then streaming again (the fault ends as it happens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_reconnects() {
    let rig = Rig::start().await;
    let before = rig.healthy_count().await;
    let mut events = rig.cams.events();
    rig.faulty_cam.drop_connections();
    let start = Instant::now();
    let ev = loop {
        let ev = tokio::time::timeout(DETECT_LIMIT, events.recv())
            .await
            .expect("an event")
            .unwrap();
        if ev.camera_id == "faulty" {
            break ev;
        }
    };
    assert_eq!(ev.state, CameraState::Reconnecting);
    assert_eq!(ev.error.map(|e| e.kind), Some(ErrorKind::Unreachable));
    let (during, took) = tokio::join!(rig.healthy_count(), async {
        rig.time_to_streaming("faulty").await;
        start.elapsed()
    });
    assert_recovered_in_time(took, "dropped connection");
    rig.check_picture("faulty", W, H).await;
    assert_rate_kept(before, during, "dropped connection");
    rig.finish().await;
}

// ---- The stream survives -----------------------------------------------------------------

/// A camera on a lossy link: one RTP packet in 15 never arrives (the sequence numbers
/// skip). The session stays up; frames with holes are dropped or concealed; clean
/// pictures after the loss stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_keeps_streaming() {
    survivable_fault(
        Fault::faults(
            "packet loss",
            Faults {
                drop_one_packet_in: Some(15),
                ..Faults::default()
            },
            false,
            "",
        ),
        |_, _| {},
    )
    .await;
}

/// A camera that sends damaged slice data in one frame out of three (bit errors past the
/// RTP layer, as a faulty encoder or memory produces). The decoder survives; the session
/// stays up; clean pictures once the damage stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_slices_keep_streaming() {
    survivable_fault(
        Fault::faults(
            "corrupt slices",
            Faults {
                corrupt_one_frame_in: Some(3),
                ..Faults::default()
            },
            false,
            "",
        ),
        |_, _| {},
    )
    .await;
}

/// A camera whose resolution is changed while it streams (encoder restarted at another
/// size; new SPS/PPS in-band, which retina reports as new parameters): the status and the
/// pictures take the new size without a reconnect, and go back when it is changed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_change_mid_stream() {
    let (w2, h2) = (480, 272);
    let rig = Rig::start().await;
    let before = rig.healthy_count().await;
    let reconnects = rig.status("faulty").reconnects;
    rig.faulty_cam.set_resolution(w2, h2).unwrap();
    let resized = async {
        let start = Instant::now();
        loop {
            let st = rig.status("faulty");
            assert_eq!(st.state, CameraState::Streaming, "{st:#?}");
            if st.width == Some(w2) && st.height == Some(h2) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < DETECT_LIMIT,
                "size never changed: {st:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (during, took) = tokio::join!(rig.healthy_count(), resized);
    rig.check_picture("faulty", w2, h2).await;
    rig.faulty_cam.set_resolution(W, H).unwrap();
    let start = Instant::now();
    while rig.status("faulty").width != Some(W) {
        assert!(start.elapsed() < BACKOFF_MAX * 2, "size never changed back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rig.check_picture("faulty", W, H).await;
    let st = rig.status("faulty");
    assert_eq!(st.reconnects, reconnects, "no reconnect: {st:#?}");
    assert_eq!(st.state, CameraState::Streaming);
    assert_rate_kept(before, during, "resolution change");
    eprintln!("resolution change: new size in status after {took:?}");
    rig.finish().await;
}

/// A camera that describes an audio track (PCMU) before its video, and sends audio
/// packets on channels camkit never set up (as some cameras do): the audio is ignored, the
/// video (stream 1, not 0) plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_plays_the_video() {
    for audio in [Audio::Announce, Audio::AnnounceAndSend] {
        let rig = Rig::start().await;
        let before = rig.healthy_count().await;
        rig.faulty_cam.set_faults(Faults {
            audio,
            ..Faults::default()
        });
        // The new SDP only reaches a new session.
        rig.faulty_cam.drop_connections();
        let (during, ()) = tokio::join!(rig.healthy_count(), async {
            rig.wait_for_error("faulty", ErrorKind::Unreachable, "")
                .await;
            let took = rig.time_to_streaming("faulty").await;
            assert_recovered_in_time(took, "audio + video");
        });
        let st0 = rig.status("faulty");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let st1 = rig.status("faulty");
        assert_eq!(st1.state, CameraState::Streaming, "{audio:?}: {st1:#?}");
        assert_eq!(st1.reconnects, st0.reconnects, "{audio:?}: {st1:#?}");
        assert!(st1.frames_received > st0.frames_received + 5, "{st1:#?}");
        assert_eq!(st1.codec.as_deref(), Some("h264"));
        rig.check_picture("faulty", W, H).await;
        assert_rate_kept(before, during, "audio + video");
        rig.finish().await;
    }
}
