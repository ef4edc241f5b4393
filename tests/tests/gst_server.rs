//! Checks that the GStreamer RTSP test server serves what camkit's tests rely on, using
//! retina (camkit's RTSP client library) directly, and that the helper servers misbehave as
//! advertised. If these fail, camkit's own integration tests cannot be trusted.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camkit_tests::{assert_smpte_bars, closed_port_url, GstServer, GstServerOptions, SilentServer};
use futures::StreamExt;
use retina::client::{Credentials, Described, PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParameters};
use url::Url;

/// Upper bound for one describe/play/receive exchange. The GOP is 2 s, so the first key
/// frame arrives within ~2 s of PLAY; the rest is slack for a loaded 2-core machine.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// One server for the whole test binary: starting Python + GStreamer costs about a second,
/// and shared mounts mean parallel tests just share encoders.
fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().unwrap_or_else(|e| panic!("{e}")))
}

fn creds(server: &GstServer) -> Credentials {
    Credentials {
        username: server.user().to_owned(),
        password: server.password().to_owned(),
    }
}

async fn describe(
    url: &str,
    creds: Option<Credentials>,
) -> Result<Session<Described>, retina::Error> {
    let url = Url::parse(url).expect("valid url");
    Session::describe(url, SessionOptions::default().creds(creds)).await
}

fn stream_index(session: &Session<Described>, media: &str) -> usize {
    session
        .streams()
        .iter()
        .position(|s| s.media() == media)
        .unwrap_or_else(|| panic!("no {media} stream in {:?}", session.streams()))
}

fn video_params(session: &Session<Described>, i: usize) -> VideoParameters {
    match session.streams()[i].parameters() {
        Some(ParametersRef::Video(v)) => v.clone(),
        other => panic!("stream {i} has no video parameters after DESCRIBE: {other:?}"),
    }
}

/// What PLAY delivered.
#[derive(Debug, Default)]
struct Received {
    video_frames: usize,
    key_frames: usize,
    audio_frames: usize,
    /// Video parameters as known after the first frame (H.265 may only have them then).
    video_params: Option<VideoParameters>,
}

/// Sets up `streams` (indexes), plays, and collects items until `done` says so.
async fn play_until(
    mut session: Session<Described>,
    streams: &[usize],
    done: impl Fn(&Received) -> bool,
) -> Received {
    for &i in streams {
        session
            .setup(i, SetupOptions::default().frame_format(FrameFormat::SIMPLE))
            .await
            .expect("SETUP");
    }
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .expect("PLAY")
        .demuxed()
        .expect("demuxed");
    let mut got = Received::default();
    while !done(&got) {
        let item = demuxed
            .next()
            .await
            .expect("stream ended early")
            .expect("stream error");
        match item {
            CodecItem::VideoFrame(f) => {
                // FrameFormat::SIMPLE promises Annex B: every frame starts with a start code.
                assert!(
                    f.data().starts_with(&[0, 0, 0, 1]) || f.data().starts_with(&[0, 0, 1]),
                    "video frame is not Annex B: {:02x?}",
                    &f.data()[..f.data().len().min(8)]
                );
                got.video_frames += 1;
                got.key_frames += usize::from(f.is_random_access_point());
                if got.video_params.is_none() {
                    if let Some(ParametersRef::Video(v)) =
                        demuxed.streams()[f.stream_id()].parameters()
                    {
                        got.video_params = Some(v.clone());
                    }
                }
            }
            CodecItem::AudioFrame(_) => got.audio_frames += 1,
            _ => {}
        }
    }
    got
}

async fn with_timeout<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(EXCHANGE_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {EXCHANGE_TIMEOUT:?}"))
}

/// DESCRIBE + PLAY of an H.264 mount: dimensions, profile, and a key frame plus a few more.
async fn check_h264(url: &str, creds: Option<Credentials>, dims: (u32, u32), profile_idc: u8) {
    let session = describe(url, creds).await.expect("DESCRIBE");
    let v = stream_index(&session, "video");
    assert_eq!(session.streams()[v].encoding_name(), "h264");
    let params = video_params(&session, v);
    assert_eq!(params.pixel_dimensions(), dims, "{url}");
    let codec = params.rfc6381_codec();
    assert_eq!(
        codec.get(..7).map(str::to_ascii_uppercase),
        Some(format!("AVC1.{profile_idc:02X}")),
        "{url}: rfc6381 codec {codec}"
    );
    let got = play_until(session, &[v], |r| r.key_frames >= 1 && r.video_frames >= 5).await;
    assert!(got.video_frames >= 5);
}

#[tokio::test]
async fn h264_720p_high() {
    let s = server();
    with_timeout(
        "/h264-720",
        check_h264(&s.url("/h264-720"), None, (1280, 720), 0x64),
    )
    .await;
}

#[tokio::test]
async fn h264_1080p_high() {
    let s = server();
    with_timeout(
        "/h264-1080",
        check_h264(&s.url("/h264-1080"), None, (1920, 1080), 0x64),
    )
    .await;
}

#[tokio::test]
async fn h264_profiles() {
    let s = server();
    for (path, idc) in [("/baseline", 0x42), ("/main", 0x4D), ("/high", 0x64)] {
        // DESCRIBE alone: the profile is in the SDP's sprop-parameter-sets.
        let session = with_timeout(path, describe(&s.url(path), None))
            .await
            .expect(path);
        let v = stream_index(&session, "video");
        let params = video_params(&session, v);
        assert_eq!(params.pixel_dimensions(), (640, 360), "{path}");
        let codec = params.rfc6381_codec().to_ascii_uppercase();
        assert!(
            codec.starts_with(&format!("AVC1.{idc:02X}")),
            "{path}: rfc6381 codec {codec}, expected profile_idc {idc:02X}"
        );
    }
}

#[tokio::test]
async fn h265() {
    let s = server();
    let session = with_timeout("/h265", describe(&s.url("/h265"), None))
        .await
        .expect("DESCRIBE");
    let v = stream_index(&session, "video");
    assert_eq!(session.streams()[v].encoding_name(), "h265");
    let got = with_timeout(
        "/h265 play",
        play_until(session, &[v], |r| r.key_frames >= 1 && r.video_frames >= 3),
    )
    .await;
    let params = got
        .video_params
        .expect("H.265 parameters after the first frame");
    assert_eq!(params.pixel_dimensions(), (640, 360));
    assert!(
        params.rfc6381_codec().starts_with("hvc1."),
        "{}",
        params.rfc6381_codec()
    );
}

#[tokio::test]
async fn auth_requires_digest_credentials() {
    let s = server();
    let url = s.url("/auth/h264-1080");

    let err = with_timeout("no creds", describe(&url, None))
        .await
        .err()
        .expect("DESCRIBE without credentials must fail");
    assert_eq!(err.status_code(), Some(401), "{err}");

    let wrong = Credentials {
        username: s.user().to_owned(),
        password: "not the password".to_owned(),
    };
    let err = with_timeout("wrong creds", describe(&url, Some(wrong)))
        .await
        .err()
        .expect("DESCRIBE with a wrong password must fail");
    assert_eq!(err.status_code(), Some(401), "{err}");

    with_timeout(
        "right creds",
        check_h264(&url, Some(creds(s)), (1920, 1080), 0x64),
    )
    .await;
}

#[tokio::test]
async fn audio_and_video() {
    let s = server();
    let session = with_timeout("/av", describe(&s.url("/av"), None))
        .await
        .expect("DESCRIBE");
    let v = stream_index(&session, "video");
    let a = stream_index(&session, "audio");
    assert_eq!(session.streams()[v].encoding_name(), "h264");
    assert_eq!(session.streams()[a].encoding_name(), "mpeg4-generic");
    assert_eq!(session.streams()[a].clock_rate_hz(), 16000);
    assert!(
        matches!(
            session.streams()[a].parameters(),
            Some(ParametersRef::Audio(_))
        ),
        "AAC config not parsed: {:?}",
        session.streams()[a]
    );
    let got = with_timeout(
        "/av play",
        play_until(session, &[v, a], |r| {
            r.video_frames >= 3 && r.audio_frames >= 3
        }),
    )
    .await;
    assert!(got.audio_frames >= 3 && got.video_frames >= 3, "{got:?}");
}

/// Takes one frame with GStreamer's own client and decoder, writes the decoded I420 planes
/// into a JPEG unconverted (as camkit does), and returns the JPEG.
fn gst_snapshot(url: &str, h265: bool) -> Vec<u8> {
    let (depay, dec) = if h265 {
        ("rtph265depay", "avdec_h265")
    } else {
        ("rtph264depay", "avdec_h264")
    };
    let dir = std::env::temp_dir().join(format!("camkit-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{}.jpg", url.rsplit('/').next().unwrap()));
    let pipeline = format!(
        "rtspsrc location={url} protocols=tcp ! {depay} ! {dec} output-corrupt=false \
         ! video/x-raw,format=I420 ! jpegenc quality=95 snapshot=true \
         ! filesink location={}",
        out.display()
    );
    let mut child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .spawn()
        .expect("run gst-launch-1.0 (apt-get install gstreamer1.0-tools)");
    let deadline = Instant::now() + EXCHANGE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gst-launch-1.0 took longer than {EXCHANGE_TIMEOUT:?}: {pipeline}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // `jpegenc snapshot=true` ends the pipeline after the first picture; rtspsrc's PAUSE
    // on the way out can then race the server's end of the connection ("Could not send
    // message (Received end-of-file)") and make gst-launch exit 1 although the picture was
    // written whole. What this checks is the picture: a complete JPEG (ending with its EOI
    // marker) is the reference however the teardown went; anything less is a failure.
    let jpeg = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let complete =
        jpeg.len() > 4 && jpeg.starts_with(&[0xff, 0xd8]) && jpeg.ends_with(&[0xff, 0xd9]);
    assert!(
        complete,
        "gst-launch-1.0 gave no complete JPEG ({status}, {} bytes): {pipeline}",
        jpeg.len()
    );
    jpeg
}

/// The colour table in `smpte.rs` must describe what the server really sends, for the
/// BT.601 (360p) and BT.709 (1080p) sources; tolerance is tight because this is the oracle.
#[test]
fn smpte_table_matches_live_frames() {
    let s = server();
    for (path, h265, height) in [
        ("/high", false, 360),
        ("/h264-1080", false, 1080),
        ("/h265", true, 360),
    ] {
        let jpeg = gst_snapshot(&s.url(path), h265);
        let (_, w, h) = camkit_tests::decode_jpeg_rgb(&jpeg);
        assert_eq!(h, height, "{path}: {w}x{h}");
        assert_smpte_bars(&jpeg, height, 6.0, path);
    }
}

#[tokio::test]
async fn custom_credentials_and_clean_shutdown() {
    let opts = GstServerOptions {
        user: "admin".to_owned(),
        password: "p@ss w:rd/%?#".to_owned(),
        ..Default::default()
    };
    let s = GstServer::start_with(opts.clone()).expect("start server");
    assert_eq!((s.user(), s.password()), ("admin", "p@ss w:rd/%?#"));
    let with_creds = s.url_with_credentials("/auth/h264-1080");
    assert!(
        with_creds.starts_with(&format!(
            "rtsp://admin:p%40ss%20w%3Ard%2F%25%3F%23@127.0.0.1:{}/",
            s.port()
        )),
        "{with_creds}"
    );
    let c = Credentials {
        username: opts.user,
        password: opts.password,
    };
    let session = with_timeout("custom creds", describe(&s.url("/auth/h264-1080"), Some(c)))
        .await
        .expect("DESCRIBE with custom credentials");
    assert_eq!(
        session.streams()[stream_index(&session, "video")].encoding_name(),
        "h264"
    );
    drop(session);

    let port = s.port();
    drop(s);
    let refused = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        refused.is_err(),
        "server still listening on {port} after drop"
    );
}

#[tokio::test]
async fn silent_server_never_answers() {
    let silent = SilentServer::start();
    let r = tokio::time::timeout(Duration::from_millis(1500), describe(&silent.url(), None)).await;
    assert!(
        r.is_err(),
        "DESCRIBE to a silent server returned: {:?}",
        r.map(|r| r.map(|_| ()))
    );
    assert_eq!(silent.accepted(), 1);
}

#[tokio::test]
async fn closed_port_fails_fast() {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), describe(&closed_port_url(), None))
        .await
        .expect("connection refused should be reported promptly");
    assert!(r.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}
