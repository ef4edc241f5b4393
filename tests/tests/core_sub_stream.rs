//! Cameras with a sub-stream: a 1080p main stream and a 640×360 sub-stream from
//! GStreamer's RTSP server, and a one-session demo camera that refuses the second
//! session. Which stream served a picture is read from the status counters: each stream
//! counts the frames it decoded; which stream a video subscription carries, from the size
//! ffprobe reads in its fragmented MP4.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camkit::moondream::MoondreamConfig;
use camkit::{
    CameraConfig, CameraManager, CameraState, CameraStatus, ErrorKind, SnapshotOptions,
    StreamChoice, SubStreamStatus, SubscribeOptions, VideoOptions,
};
use camkit_demo_camera::faults::Faults;
use camkit_tests::{check_smpte, demo, Flavour, GstServer, MoondreamMock, Reply};

/// One server for the whole test binary: it takes a moment to start.
fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

fn sub_of(st: &CameraStatus) -> &SubStreamStatus {
    st.sub_stream
        .as_ref()
        .expect("a camera with a sub-stream reports it")
}

/// (main, sub) frames decoded.
fn decoded(cams: &CameraManager, id: &str) -> (u64, u64) {
    let st = cams.status(id).unwrap();
    (st.frames_decoded, sub_of(&st).frames_decoded)
}

/// Lets a few frames arrive undecoded (decode `onDemand`, nobody watching), so that the
/// next snapshot's catch-up decodes on the stream that serves it.
async fn frames_buffer() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// Waits (up to 15 s) until the status satisfies `f`.
async fn until(cams: &CameraManager, id: &str, what: &str, f: impl Fn(&CameraStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = cams.status(id).unwrap();
        if f(&st) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two seconds of a camera's fMP4 video from `stream`, as ffprobe reads it: (width, height).
async fn video_size(cams: &CameraManager, id: &str, stream: StreamChoice) -> (u32, u32) {
    let opts = VideoOptions {
        stream,
        ..VideoOptions::fmp4()
    };
    let mut sub = cams.subscribe_video(id, opts).unwrap();
    let mut mp4 = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(c)) = tokio::time::timeout_at(until, sub.next()).await {
        mp4.extend_from_slice(&c.data);
    }
    assert!(!mp4.is_empty(), "{id} ({stream}): no video within 2 s");
    let file =
        std::env::temp_dir().join(format!("camkit-{}-{id}-{stream}.mp4", std::process::id()));
    std::fs::write(&file, &mp4).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    std::fs::remove_file(&file).ok();
    let out = String::from_utf8_lossy(&probe.stdout);
    let (w, h) = out
        .trim()
        .split_once(',')
        .unwrap_or_else(|| panic!("ffprobe: {out} {}", String::from_utf8_lossy(&probe.stderr)));
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Video subscriptions: `stream: sub` carries the 640×360 sub-stream as the camera sent
/// it, `auto` (the default) and `main` the 1080p main stream; nothing is decoded for
/// either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_subscriptions_carry_the_stream_they_ask_for() {
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some("/high".into()),
        ..CameraConfig::from_url("vid", server().url("/h264-1080"))
    };
    let st = cams.connect(cfg).await.expect("connects");
    assert_eq!(sub_of(&st).state, CameraState::Streaming, "{st:#?}");
    let before = decoded(&cams, "vid");
    assert_eq!(
        video_size(&cams, "vid", StreamChoice::Sub).await,
        (640, 360)
    );
    assert_eq!(
        video_size(&cams, "vid", StreamChoice::Auto).await,
        (1920, 1080)
    );
    assert_eq!(
        video_size(&cams, "vid", StreamChoice::Main).await,
        (1920, 1080)
    );
    assert_eq!(decoded(&cams, "vid"), before, "video decodes nothing");
    cams.disconnect("vid").await.unwrap();
}

/// A 1080p camera behind digest authentication whose sub-stream is a path on it: the
/// camera's credentials apply to the path. `maxWidth: 640` snapshots are decoded by the
/// sub-stream only, full-size ones and `stream: main` by the main stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_snapshots_come_from_the_sub_stream_and_full_ones_from_the_main() {
    let s = server();
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some("/auth/h264-360".into()),
        ..CameraConfig::from_url("cam", s.url("/auth/h264-1080"))
            .credentials(s.user(), s.password())
    };
    let st = cams.connect(cfg).await.expect("connects");
    assert_eq!((st.width, st.height), (Some(1920), Some(1080)));
    let sub = sub_of(&st);
    assert_eq!(sub.state, CameraState::Streaming, "{sub:#?}");
    assert_eq!((sub.width, sub.height), (Some(640), Some(360)));
    assert_eq!(sub.off, None);
    assert!(sub.url.ends_with("/auth/h264-360"), "{}", sub.url);
    let json = serde_json::to_string(&st).unwrap();
    assert!(!json.contains(s.password()), "{json}");

    frames_buffer().await;
    let before = decoded(&cams, "cam");
    let f = cams
        .snapshot("cam", SnapshotOptions::full().max_width(640))
        .await
        .unwrap();
    check_smpte("sub-stream snapshot", &f.jpeg, 640, 360);
    let after = decoded(&cams, "cam");
    assert!(
        after.1 > before.1,
        "the sub-stream decoded it: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.0, before.0,
        "the main stream decoded nothing: {before:?} -> {after:?}"
    );

    // Asked for more than the sub-stream has: `auto` takes the main stream, `sub` the
    // sub-stream at its own size.
    let f = cams
        .snapshot(
            "cam",
            SnapshotOptions::full()
                .max_width(1280)
                .stream(StreamChoice::Sub),
        )
        .await
        .unwrap();
    assert_eq!((f.width, f.height), (640, 360));
    assert_eq!(
        decoded(&cams, "cam").0,
        before.0,
        "still nothing on the main stream"
    );

    let f = cams
        .snapshot(
            "cam",
            SnapshotOptions::full()
                .max_width(640)
                .stream(StreamChoice::Main),
        )
        .await
        .unwrap();
    assert_eq!((f.width, f.height), (640, 360));
    let main_asked = decoded(&cams, "cam");
    assert!(
        main_asked.0 > before.0,
        "stream: main decodes the main stream: {main_asked:?}"
    );

    let f = cams.snapshot("cam", SnapshotOptions::full()).await.unwrap();
    check_smpte("main-stream snapshot", &f.jpeg, 1920, 1080);
    let f = cams
        .snapshot("cam", SnapshotOptions::full().max_width(1280))
        .await
        .unwrap();
    assert_eq!(
        (f.width, f.height),
        (1280, 720),
        "auto, wider than the sub-stream: main"
    );
    cams.disconnect("cam").await.unwrap();
}

/// The sub-stream on a server of its own, which is killed: the main stream serves every
/// request, including a subscription that was on the sub-stream; the status says why the
/// sub-stream is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sub_streams_server_leaves_the_main_serving() {
    let sub_server = GstServer::start().expect("a second GStreamer server starts");
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some(sub_server.url("/high")),
        frame_timeout: Duration::from_secs(2),
        backoff_max: Duration::from_secs(2),
        ..CameraConfig::from_url("cam", server().url("/h264-1080"))
    };
    let st = cams.connect(cfg).await.expect("connects");
    assert_eq!(sub_of(&st).state, CameraState::Streaming, "{st:#?}");
    let small = SubscribeOptions {
        max_width: Some(640),
        ..SubscribeOptions::fps(5.0)
    };
    let mut frames = cams.subscribe("cam", small).unwrap();
    let f = frames.next().await.unwrap().unwrap();
    assert_eq!(f.width, 640);
    let (main0, sub0) = decoded(&cams, "cam");
    assert!(sub0 > 0, "the subscription is on the sub-stream");

    drop(sub_server);
    until(&cams, "cam", "the sub-stream is off", |st| {
        sub_of(st).state != CameraState::Streaming
    })
    .await;
    let st = cams.status("cam").unwrap();
    assert_eq!(
        st.state,
        CameraState::Streaming,
        "the main stream goes on: {st:#?}"
    );
    let off = sub_of(&st)
        .off
        .clone()
        .expect("says why the sub-stream is off");
    assert!(off.contains("main stream serves"), "{off}");

    let f = cams
        .snapshot("cam", SnapshotOptions::full().max_width(640))
        .await
        .expect("the main stream serves a small snapshot");
    check_smpte("main stream, sub-stream gone", &f.jpeg, 640, 360);
    // The subscription moved to the main stream: new frames, decoded there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < 3 {
        assert!(Instant::now() < deadline, "the subscription stalled");
        let f = tokio::time::timeout(Duration::from_secs(5), frames.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(f.width, 640);
        got += 1;
    }
    let (main1, _) = decoded(&cams, "cam");
    assert!(
        main1 > main0,
        "the main stream decodes now: {main0} -> {main1}"
    );
    drop(frames);
    cams.disconnect("cam").await.unwrap();
}

/// A camera that serves one session: the sub-stream's SETUP gets 453. The camera
/// connects and serves everything from its main stream; the status says the camera
/// refused the second session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_session_camera_keeps_working_on_its_main_stream() {
    let cam = demo(640, 360).await;
    cam.set_faults(Faults {
        max_sessions: Some(1),
        ..Faults::default()
    });
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some(format!("{}?sub", cam.url())),
        ..CameraConfig::from_url("one", cam.url())
    };
    let st = cams.connect(cfg).await.expect("the main stream connects");
    assert_eq!(st.state, CameraState::Streaming);
    until(&cams, "one", "the sub-stream was refused", |st| {
        sub_of(st).last_error.is_some()
    })
    .await;
    let st = cams.status("one").unwrap();
    let sub = sub_of(&st);
    assert_ne!(sub.state, CameraState::Streaming, "{sub:#?}");
    let err = sub.last_error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err:?}");
    assert!(err.message.contains("453"), "{}", err.message);
    let off = sub.off.as_deref().unwrap();
    assert!(off.contains("refused a second session"), "{off}");
    assert!(st.last_error.is_none(), "the main stream is fine: {st:#?}");

    frames_buffer().await;
    let before = cams.status("one").unwrap().frames_decoded;
    let f = cams
        .snapshot("one", SnapshotOptions::full().max_width(320))
        .await
        .expect("served by the main stream");
    assert_eq!((f.width, f.height), (320, 180));
    assert!(cams.status("one").unwrap().frames_decoded > before);
    // Asking for the sub-stream explicitly is served by the main stream too, a snapshot
    // and video (the sub-stream never streamed: video from it would never come).
    cams.snapshot("one", SnapshotOptions::full().stream(StreamChoice::Sub))
        .await
        .expect("served by the main stream");
    assert_eq!(
        video_size(&cams, "one", StreamChoice::Sub).await,
        (640, 360)
    );
    cams.disconnect("one").await.unwrap();
    cam.stop().await;
}

/// On-demand per stream: a camera nobody asks decodes nothing on either stream after
/// connect; a sub-stream subscriber makes only the sub-stream decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_stream_asked_decodes() {
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some("/high".into()),
        ..CameraConfig::from_url("lazy", server().url("/h264-720"))
    };
    cams.connect(cfg).await.expect("connects");
    until(&cams, "lazy", "the sub-stream streams", |st| {
        sub_of(st).state == CameraState::Streaming
    })
    .await;
    let opts = SubscribeOptions {
        max_width: Some(320),
        ..SubscribeOptions::fps(15.0)
    };
    let mut frames = cams.subscribe("lazy", opts).unwrap();
    frames.next().await.unwrap().unwrap();
    let before = decoded(&cams, "lazy");
    for _ in 0..10 {
        let f = frames.next().await.unwrap().unwrap();
        assert_eq!(f.width, 320);
    }
    let after = decoded(&cams, "lazy");
    assert!(
        after.1 >= before.1 + 10,
        "the sub-stream decodes every frame: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.0, before.0,
        "the main stream stays idle: {before:?} -> {after:?}"
    );
    drop(frames);
    cams.disconnect("lazy").await.unwrap();
}

/// A bad sub-stream is an input error naming `subStream`, before anything connects; one
/// with credentials of its own never shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sub_streams_name_the_field_and_hide_passwords() {
    let cams = CameraManager::new();
    for bad in ["stream2", "http://h/x", "rtsp://u:hunter2@bad host/x"] {
        let cfg = CameraConfig {
            sub_stream: Some(bad.into()),
            ..CameraConfig::from_url("bad", server().url("/h264-720"))
        };
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let e = cams.connect(cfg).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.field(), Some("subStream"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    assert!(cams.list().is_empty());
}

/// Moondream takes its pictures from the sub-stream: the 640×360 sub-stream's picture is
/// sent (not the 1080p main stream's scaled to 768), and only the sub-stream decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moondream_uses_the_sub_stream() {
    let cams = CameraManager::new();
    let cfg = CameraConfig {
        sub_stream: Some("/high".into()),
        ..CameraConfig::from_url("md", server().url("/h264-1080"))
    };
    let st = cams.connect(cfg).await.expect("connects");
    assert_eq!(sub_of(&st).state, CameraState::Streaming, "{st:#?}");
    let mock = MoondreamMock::start(Flavour::Station);
    let vision = cams
        .moondream(MoondreamConfig {
            timeout: Duration::from_secs(5),
            ..MoondreamConfig::station(mock.base_url())
        })
        .unwrap();
    frames_buffer().await;
    let before = decoded(&cams, "md");
    mock.push(Reply::Answer("Bars.".into()));
    let q = vision.query("md", "What is shown?").await.unwrap();
    assert_eq!((q.width, q.height), (640, 360));
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    check_smpte("picture sent to Moondream", &reqs[0].jpeg, 640, 360);
    let after = decoded(&cams, "md");
    assert!(
        after.1 > before.1,
        "the sub-stream decoded it: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.0, before.0,
        "the main stream decoded nothing: {before:?} -> {after:?}"
    );
    cams.disconnect("md").await.unwrap();
}
