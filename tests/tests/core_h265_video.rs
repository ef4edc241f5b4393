//! H.265 video passthrough against GStreamer's RTSP server (x265 as cameras encode it: open
//! GOPs with CRA keyframes, with and without B-frames, 720p and 1080p): the fragmented MP4
//! camkit makes has an `hvc1` track that ffprobe reads with the stream's codec, profile and
//! size, and that ffmpeg decodes without one error; the codec string is the RFC 6381 one
//! for the stream's SPS. An MJPEG camera refuses video subscriptions, saying why.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use camkit::{CameraConfig, CameraManager, DecodePolicy, ErrorKind, VideoChunkKind, VideoOptions};
use camkit_tests::GstServer;

/// One test at a time: x265 at 1080p costs most of a core, and the CI machine has two.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

/// `path`'s fMP4 as one byte stream (what an HTTP client of `video.mp4` receives) from
/// the first keyframe to a few frames past the second (the next GOP: a CRA keyframe), its
/// MIME type, and how many media segments came. Counted in frames, not seconds: x265 at
/// 1080p on a loaded 2-core machine runs slower than the stream's 15 fps.
async fn record(path: &str) -> (Vec<u8>, String, usize) {
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url("v", server().url(path));
    // Passthrough only: the camera decodes nothing while only video is watched.
    cfg.decode = DecodePolicy::OnDemand;
    // x265 starting a 1080p pipeline for the PLAY on a loaded 2-core machine.
    cfg.rtsp_timeout = Duration::from_secs(15);
    cams.connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut sub = cams.subscribe_video("v", VideoOptions::fmp4()).unwrap();
    let (mut out, mut mime, mut inits) = (Vec::new(), String::new(), 0);
    let (mut segments, mut keyframes, mut since_key) = (0, 0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while keyframes < 2 || since_key < 8 {
        let c = tokio::time::timeout_at(until, sub.next())
            .await
            .unwrap_or_else(|_| {
                panic!("{path}: {segments} segments, {keyframes} keyframes in 30 s")
            })
            .expect("subscription open");
        match c.kind {
            VideoChunkKind::Init => {
                mime = c.mime_type();
                inits += 1;
            }
            _ => {
                segments += 1;
                since_key += 1;
                if c.keyframe {
                    keyframes += 1;
                    since_key = 0;
                }
            }
        }
        out.extend_from_slice(&c.data);
    }
    assert_eq!(inits, 1, "{path}: one init segment for one session");
    let st = cams.status("v").unwrap();
    assert_eq!(st.last_error, None, "{path}");
    drop(sub);
    cams.close();
    (out, mime, segments)
}

/// ffprobe's `key=value` lines for the file's video stream.
fn probe(file: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=codec_name,codec_tag_string,profile,width,height",
            "-of",
            "default=nw=1",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Records `path`, then checks it as a client camkit did not write reads it.
async fn passthrough(path: &str, w: u32, h: u32) {
    let (mp4, mime, segments) = record(path).await;
    // x265 Main, progressive: profile 1, compatibility 6, level 93 (720p) or 120 (1080p).
    let level = if h == 720 { "L93" } else { "L120" };
    assert!(
        mime.starts_with(&format!("video/mp4; codecs=\"hvc1.1.6.{level}")),
        "{path}: {mime}"
    );
    // A 2 s GOP (30 frames, fewer where RASL pictures were left out), a CRA marked as a
    // sync sample, 8 more.
    assert!(segments >= 30, "{path}: {segments} segments");
    let file = std::env::temp_dir().join(format!(
        "camkit-{}-{}.mp4",
        std::process::id(),
        path.trim_start_matches('/')
    ));
    std::fs::write(&file, &mp4).unwrap();
    let info = probe(&file);
    for want in [
        "codec_name=hevc".to_owned(),
        "codec_tag_string=hvc1".to_owned(),
        "profile=Main".to_owned(),
        format!("width={w}"),
        format!("height={h}"),
    ] {
        assert!(
            info.lines().any(|l| l == want),
            "{path}: ffprobe: want {want} in {info}"
        );
    }
    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    let errors = String::from_utf8_lossy(&decode.stderr);
    assert!(
        decode.status.success() && errors.trim().is_empty(),
        "{path}: ffmpeg reported: {errors}"
    );
    let frames = String::from_utf8_lossy(&decode.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    // Every segment is a picture (a joiner's undecodable RASL pictures were left out).
    assert_eq!(
        frames, segments,
        "{path}: frames decoded of the segments sent"
    );
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_720p_video_is_read_by_ffprobe_and_ffmpeg() {
    let _one = ONE_AT_A_TIME.lock().await;
    passthrough("/h265-720", 1280, 720).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_1080p_video_is_read_by_ffprobe_and_ffmpeg() {
    let _one = ONE_AT_A_TIME.lock().await;
    passthrough("/h265-1080", 1920, 1080).await;
}

/// B-frames and RASL pictures after each CRA: composition offsets, and the leading
/// pictures a joiner cannot decode left out of its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_720p_b_frame_video_is_read_by_ffprobe_and_ffmpeg() {
    let _one = ONE_AT_A_TIME.lock().await;
    passthrough("/h265-720-bframes", 1280, 720).await;
}

/// B-frames, parameter sets only in the SDP: camkit puts them before each keyframe and
/// into `hvcC`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_1080p_b_frame_sdp_only_video_is_read_by_ffprobe_and_ffmpeg() {
    let _one = ONE_AT_A_TIME.lock().await;
    passthrough("/h265-1080-bframes", 1920, 1080).await;
}

/// MJPEG over RTSP cannot go into the video stream: subscribing says so, naming the codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_camera_refuses_video_subscriptions_clearly() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cams = CameraManager::new();
    cams.connect(CameraConfig::from_url("m", server().url("/mjpeg")))
        .await
        .unwrap();
    let e = cams.subscribe_video("m", VideoOptions::fmp4()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedCodec, "{e}");
    assert!(e.message().contains("MJPEG"), "{e}");
    cams.close();
}
