//! The core crate against a real RTSP server it did not write: GStreamer's
//! gst-rtsp-server (tests/gst/rtsp_server.py), serving SMPTE colour bars in H.264 at
//! 720p and 1080p, each profile, with digest authentication, with audio (H.265:
//! core_h265.rs).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, CameraState, ErrorKind, SnapshotOptions, Transport};
use camkit_tests::{
    assert_color_near, decode_jpeg_rgb, full_range, mean_rgb, smpte_bar_centers, GstServer,
};

/// One server for the whole test binary: it takes a moment to start.
fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

fn check_smpte(jpeg: &[u8], width: u32, height: u32) {
    let (rgb, w, h) = decode_jpeg_rgb(jpeg);
    assert_eq!((w, h), (width, height));
    for (x, y, expected) in smpte_bar_centers(w, h) {
        let m = mean_rgb(&rgb, w, x - 4, y - 4, 8, 8);
        // The server sends limited ("TV") range; camkit's JPEGs are full range.
        let full = full_range(expected);
        assert_color_near(m, full, 24.0, &format!("bar at ({x},{y})"));
    }
}

async fn snapshot_of(
    path: &str,
    config: impl FnOnce(CameraConfig) -> CameraConfig,
) -> (camkit::CameraStatus, camkit::Frame) {
    let cams = CameraManager::new();
    let cfg = config(CameraConfig::from_url("gst", server().url(path)));
    let st = cams
        .connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let f = cams
        .snapshot("gst", SnapshotOptions::full())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    cams.disconnect("gst").await.unwrap();
    (st, f)
}

/// 720p H.264 High: the snapshot is 1280x720 and shows the colour bars.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_720p_snapshot_has_the_bars() {
    let (st, f) = snapshot_of("/h264-720", |c| c).await;
    assert_eq!(st.state, CameraState::Streaming);
    assert_eq!((st.width, st.height), (Some(1280), Some(720)));
    assert_eq!(st.profile.as_deref(), Some("High"));
    check_smpte(&f.jpeg, 1280, 720);
}

/// 1080p behind digest authentication, with a password full of URL specials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_1080p_with_digest_auth() {
    let s = server();
    let (st, f) = snapshot_of("/auth/h264-1080", |c| c.credentials(s.user(), s.password())).await;
    assert_eq!((st.width, st.height), (Some(1920), Some(1080)));
    check_smpte(&f.jpeg, 1920, 1080);
    assert!(!st.url.contains(s.password()));
    assert!(!serde_json::to_string(&st).unwrap().contains(s.password()));
}

/// Baseline, Main and High profiles all decode, and the status names the profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_h264_profile_decodes() {
    for (path, profile) in [
        ("/baseline", &["Baseline", "Constrained Baseline"][..]),
        ("/main", &["Main"][..]),
        ("/high", &["High"][..]),
    ] {
        let (st, f) = snapshot_of(path, |c| c).await;
        let got = st.profile.clone().unwrap_or_default();
        assert!(profile.contains(&got.as_str()), "{path}: profile {got}");
        check_smpte(&f.jpeg, 640, 360);
    }
}

/// A camera that also sends audio: the audio track is ignored, the video works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_track_is_ignored() {
    let (st, f) = snapshot_of("/av", |c| c).await;
    assert_eq!(st.codec.as_deref(), Some("h264"));
    check_smpte(&f.jpeg, 640, 360);
}

/// UDP transport works against a real server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_transport() {
    let (st, f) = snapshot_of("/baseline", |c| c.transport(Transport::Udp)).await;
    assert_eq!(st.transport, Transport::Udp);
    check_smpte(&f.jpeg, 640, 360);
}

/// Wrong password: `Unauthorized` within 2 s, and the password appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_unauthorized_fast() {
    let s = server();
    let cams = CameraManager::new();
    let start = Instant::now();
    let e = cams
        .connect(
            CameraConfig::from_url("a", s.url("/auth/h264-1080"))
                .credentials(s.user(), "wrong-hunter2"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(e.to_string().contains("username/password"), "{e}");
    assert_eq!(e.status(), Some(401), "{e:?}");
    assert_eq!(e.step(), Some(camkit::RtspStep::Describe), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    // No credentials at all: says they are needed.
    let e = cams
        .connect(CameraConfig::from_url("b", s.url("/auth/h264-1080")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains("requires a username"), "{e}");
    assert!(cams.list().is_empty(), "failed cameras are forgotten");
}

/// A path the server does not have: a protocol error that says to check the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_says_check_the_path() {
    let cams = CameraManager::new();
    let e = cams
        .connect(CameraConfig::from_url("p", server().url("/no-such-stream")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("path"), "{e}");
    assert_eq!(e.status(), Some(404), "{e:?}");
}

/// An MJPEG (RTP/JPEG) camera: its JPEGs pass through without a decode or an encode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_passes_through() {
    let cams = CameraManager::new();
    let st = cams
        .connect(CameraConfig::from_url("m", server().url("/mjpeg")))
        .await
        .unwrap();
    assert_eq!(st.codec.as_deref(), Some("jpeg"));
    let f = cams.snapshot("m", SnapshotOptions::full()).await.unwrap();
    assert_eq!((f.width, f.height), (640, 360));
    let (rgb, w, _) = decode_jpeg_rgb(&f.jpeg);
    // Passed through as the camera encoded it: limited-range bars, no expansion.
    for (x, y, expected) in smpte_bar_centers(640, 360) {
        let m = mean_rgb(&rgb, w, x - 4, y - 4, 8, 8);
        assert_color_near(m, expected, 24.0, &format!("bar at ({x},{y})"));
    }
    assert_eq!(
        cams.status("m").unwrap().jpeg_encodes,
        0,
        "no encode for MJPEG"
    );
    // A smaller size is decoded, scaled and encoded once.
    let small = cams
        .snapshot("m", SnapshotOptions::full().max_width(320))
        .await
        .unwrap();
    assert_eq!((small.width, small.height), (320, 180));
}

/// `auto` transport: TCP first; a camera that answers 461 gets UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_transport_falls_back_to_udp_on_461() {
    let cams = CameraManager::new();
    let e = cams
        .connect(CameraConfig::from_url("t", server().url("/udp-only")).transport(Transport::Tcp))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("461"), "{e}");
    assert_eq!(
        e.status(),
        Some(461),
        "the fallback decides on this, not the text"
    );
    assert_eq!(e.step(), Some(camkit::RtspStep::Setup), "{e:?}");
    let source = std::error::Error::source(&e).expect("retina's error is the source");
    assert!(
        source.to_string().lines().count() > 1,
        "retina's full context is kept: {source}"
    );
    let st = cams
        .connect(CameraConfig::from_url("a", server().url("/udp-only")).transport(Transport::Auto))
        .await
        .unwrap();
    assert_eq!(st.transport, Transport::Udp);
    let f = cams.snapshot("a", SnapshotOptions::full()).await.unwrap();
    check_smpte(&f.jpeg, 640, 360);
}
