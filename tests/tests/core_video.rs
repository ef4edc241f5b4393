//! Live video without decoding against gst-rtsp-server (tests/gst/rtsp_server.py): the
//! fragmented MP4 camkit makes from a High-profile stream with B-frames is read by
//! ffprobe and decoded by ffmpeg, clients camkit did not write; a camera watched only
//! through video decodes nothing; a joiner gets a picture at once.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, DecodePolicy, VideoChunkKind, VideoOptions};
use camkit_tests::GstServer;

fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

async fn connect(cams: &CameraManager, path: &str) {
    let mut cfg = CameraConfig::from_url("v", server().url(path));
    cfg.decode = DecodePolicy::OnDemand;
    cams.connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
}

/// Collects `secs` seconds of the camera's fMP4 into one byte stream, as an HTTP client
/// of `video.mp4` receives it.
async fn record(cams: &CameraManager, secs: f64) -> (Vec<u8>, String) {
    let mut sub = cams.subscribe_video("v", VideoOptions::fmp4()).unwrap();
    let mut out = Vec::new();
    let mut mime = String::new();
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    while let Ok(Some(c)) = tokio::time::timeout_at(until, sub.next()).await {
        if c.kind == VideoChunkKind::Init {
            mime = c.mime_type();
        }
        out.extend_from_slice(&c.data);
    }
    (out, mime)
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("camkit-{}-{name}", std::process::id()));
    std::fs::write(&p, data).unwrap();
    p
}

/// x264 with B-frames (decode order I P B B, presentation I B B P): ffprobe names codec,
/// profile and size; ffmpeg decodes every frame without an error, in presentation order
/// one frame interval apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_the_b_frame_stream_in_order() {
    let cams = CameraManager::new();
    connect(&cams, "/high-bframes").await;
    let (mp4, mime) = record(&cams, 4.0).await;
    cams.disconnect("v").await.unwrap();
    assert!(mime.starts_with("video/mp4; codecs=\"avc1.64"), "{mime}");
    let file = temp_file("bframes.mp4", &mp4);

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=codec_name,profile,width,height",
            "-of",
            "default=nw=1",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let info = String::from_utf8_lossy(&probe.stdout);
    for want in ["codec_name=h264", "profile=High", "width=640", "height=360"] {
        assert!(
            info.lines().any(|l| l == want),
            "ffprobe: want {want} in {info}"
        );
    }

    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=pts,pict_type", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let errors = String::from_utf8_lossy(&frames.stderr);
    assert!(
        frames.status.success() && errors.trim().is_empty(),
        "decode errors: {errors}"
    );
    let list: Vec<(i64, String)> = String::from_utf8_lossy(&frames.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, kind) = l.split_once(',')?;
            Some((pts.parse().ok()?, kind.trim().to_owned()))
        })
        .collect();
    assert!(
        list.len() >= 40,
        "{} frames decoded from 4 s at 15 fps",
        list.len()
    );
    assert!(list.iter().any(|f| f.1 == "B"), "the stream has B-frames");
    if std::env::var_os("CAMKIT_KEEP_VIDEO").is_some() {
        let _ = std::fs::copy(&file, std::env::temp_dir().join("camkit-video-kept.mp4"));
    }
    // The recording stops mid-GOP: the B-frames shown before the last P-frame were not
    // received yet, so the last few frames may have a gap.
    for w in list[..list.len() - 3].windows(2) {
        // 15 fps on a 90 kHz timescale.
        assert_eq!(w[1].0 - w[0].0, 6000, "presentation order, no gap: {:?}", w);
    }
    let _ = std::fs::remove_file(file);
}

/// An on-demand camera watched only through video decodes no frame, and a new viewer's
/// first chunks are the init segment and the current GOP's keyframe, without waiting for
/// the next keyframe (the server's GOP is 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_viewers_cost_no_decode_and_join_at_once() {
    let cams = CameraManager::new();
    connect(&cams, "/high").await;
    // Past connect's first picture and its decode grace.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let decoded = cams.status("v").unwrap().frames_decoded;
    let started = Instant::now();
    let mut sub = cams.subscribe_video("v", VideoOptions::fmp4()).unwrap();
    let init = sub.next().await.unwrap();
    let key = sub.next().await.unwrap();
    assert_eq!(init.kind, VideoChunkKind::Init);
    assert!(key.keyframe && key.kind == VideoChunkKind::Segment);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "joined after {:?}",
        started.elapsed()
    );
    let mut raw = cams.subscribe_video("v", VideoOptions::annex_b()).unwrap();
    let first = raw.next().await.unwrap();
    assert!(
        first.keyframe && first.data.starts_with(&[0, 0, 0, 1])
            || first.data.starts_with(&[0, 0, 1])
    );
    let mut n = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(_)) = tokio::time::timeout_at(until, sub.next()).await {
        n += 1;
    }
    assert!(n >= 20, "{n} segments in 2 s at 15 fps");
    assert_eq!(
        cams.status("v").unwrap().frames_decoded,
        decoded,
        "video viewers made the camera decode"
    );
    // Disconnecting ends the stream.
    cams.disconnect("v").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while sub.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the video stream ends with the camera");
}
