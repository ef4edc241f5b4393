//! The core crate against its built-in demo camera: connect, snapshot pictures checked
//! pixel by pixel, the frame cache, subscriptions, events, disconnect and reconnect.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use camkit::{
    CameraConfig, CameraManager, CameraState, DecodePolicy, ErrorKind, SnapshotOptions,
    SubscribeOptions,
};
use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
use camkit_tests::{check_color_band, demo};

/// The picture a snapshot returns is the camera's picture: its size, and the colour band
/// at its known place, survive RTSP, H.264 decode and JPEG encode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_shows_the_demo_picture() {
    let cam = demo(640, 360).await;
    let cams = CameraManager::new();
    let st = cams
        .connect(CameraConfig::from_url("demo", cam.url()))
        .await
        .expect("connect");
    assert_eq!(st.state, CameraState::Streaming);
    assert_eq!(st.codec.as_deref(), Some("h264"));
    assert_eq!((st.width, st.height), (Some(640), Some(360)));
    assert!(!st.url.contains('@'));

    let f = cams
        .snapshot("demo", SnapshotOptions::full())
        .await
        .unwrap();
    assert!(f.seq >= 1);
    check_color_band(&f.jpeg, 640, 360);

    let small = cams
        .snapshot("demo", SnapshotOptions::full().max_width(320).quality(60))
        .await
        .unwrap();
    assert_eq!((small.width, small.height), (320, 180));
    check_color_band(&small.jpeg, 320, 180);
    assert!(small.jpeg.len() < f.jpeg.len());

    // The picture moves: a later snapshot is a newer, different picture.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = cams
        .snapshot("demo", SnapshotOptions::full())
        .await
        .unwrap();
    assert!(later.seq > f.seq, "{} > {}", later.seq, f.seq);
    assert_ne!(later.jpeg, f.jpeg);
    assert!(later.captured_at > f.captured_at);

    cams.disconnect("demo").await.unwrap();
    assert_eq!(cams.status("demo").unwrap_err().kind(), ErrorKind::NotFound);
}

/// Many readers of the same picture cost one JPEG encode, and share the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_snapshots_share_one_encode_per_picture() {
    let cam = demo(640, 360).await;
    let cams = CameraManager::new();
    // Continuous: an idle onDemand camera releases its picture with a full-size encode of
    // its own (core_idle.rs), which would count here.
    cams.connect(CameraConfig::from_url("c", cam.url()).decode(DecodePolicy::Continuous))
        .await
        .unwrap();
    let before = cams.status("c").unwrap().jpeg_encodes;
    let snaps = futures::future::join_all(
        (0..16).map(|_| cams.snapshot("c", SnapshotOptions::full().max_width(480))),
    )
    .await;
    let frames: Vec<_> = snaps.into_iter().map(|r| r.unwrap()).collect();
    let seqs: HashSet<u64> = frames.iter().map(|f| f.seq).collect();
    let encodes = cams.status("c").unwrap().jpeg_encodes - before;
    // Plus at most one: when the snapshots met two pictures in a row, the next picture is
    // encoded ahead for readers that keep up with the camera (frame_cache.rs).
    assert!(
        encodes == seqs.len() as u64 || encodes == seqs.len() as u64 + 1,
        "one encode per distinct picture: {encodes} encodes, pictures {seqs:?}"
    );
    assert!(
        seqs.len() < 16,
        "snapshots at the same moment share pictures"
    );
    for f in &frames {
        let same = frames.iter().find(|g| g.seq == f.seq).unwrap();
        assert_eq!(f.jpeg.as_ptr(), same.jpeg.as_ptr(), "shared, not copied");
    }
}

/// A subscription delivers at no more than the asked rate; a slow consumer gets the
/// newest picture, not a backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_limits_rate_and_latest_wins() {
    let cam = demo(320, 240).await;
    let cams = CameraManager::new();
    cams.connect(CameraConfig::from_url("s", cam.url()))
        .await
        .unwrap();

    let mut sub = cams.subscribe("s", SubscribeOptions::fps(5.0)).unwrap();
    let start = Instant::now();
    let mut seqs = vec![];
    while start.elapsed() < Duration::from_secs(2) {
        let f = sub.next().await.unwrap().unwrap();
        assert_eq!((f.width, f.height), (320, 240));
        seqs.push(f.seq);
    }
    // 5 fps for 2 s from a 15 fps camera: about 10 frames, strictly newer each time.
    assert!(
        (8..=12).contains(&seqs.len()),
        "{} frames: {seqs:?}",
        seqs.len()
    );
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");

    // A slow consumer: asks 15 fps, reads every 500 ms. Each frame is the newest.
    let mut fast = cams.subscribe("s", SubscribeOptions::fps(15.0)).unwrap();
    let mut last = fast.next().await.unwrap().unwrap().seq;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let f = fast.next().await.unwrap().unwrap();
        assert!(f.seq >= last + 4, "skipped ahead: {} after {last}", f.seq);
        let age = f.captured_at.elapsed().unwrap_or_default();
        assert!(age < Duration::from_millis(300), "stale frame, {age:?} old");
        last = f.seq;
    }

    // Subscribing decodes every frame; the status shows it.
    let st = cams.status("s").unwrap();
    assert!(st.frames_decoded > 20, "{st:?}");
    assert!(st.fps > 10.0, "measured fps {}", st.fps);
    drop(sub);
    drop(fast);

    // Disconnect ends subscriptions.
    let mut sub = cams.subscribe("s", SubscribeOptions::fps(2.0)).unwrap();
    cams.disconnect("s").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(r) = sub.next().await {
            r.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "subscription ended with the camera");
}

/// With nobody watching, an on-demand camera decodes nothing; a snapshot decodes what
/// it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_decodes_only_when_asked() {
    let cam = demo(320, 240).await;
    let cams = CameraManager::new();
    let cfg = CameraConfig::from_url("od", cam.url()).decode(DecodePolicy::OnDemand);
    cams.connect(cfg).await.unwrap();
    let a = cams.status("od").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = cams.status("od").unwrap();
    assert!(b.frames_received >= a.frames_received + 15, "{a:?} {b:?}");
    assert_eq!(
        b.frames_decoded, a.frames_decoded,
        "decoded with nobody watching"
    );
    let f = cams.snapshot("od", SnapshotOptions::full()).await.unwrap();
    check_color_band(&f.jpeg, 320, 240);
    let c = cams.status("od").unwrap();
    assert!(c.frames_decoded > b.frames_decoded);

    // Continuous decodes every frame with nobody watching.
    cams.set_decode_policy("od", DecodePolicy::Continuous)
        .unwrap();
    let d = cams.status("od").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let e = cams.status("od").unwrap();
    assert!(e.frames_decoded >= d.frames_decoded + 10, "{d:?} {e:?}");
    assert_eq!(e.decode, DecodePolicy::Continuous);
}

/// Events tell the state changes; the camera comes back after the server restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_camera_comes_back() {
    let cam = demo(320, 240).await;
    let port = cam.port();
    let url = cam.url();
    let cams = CameraManager::new();
    let mut events = cams.events();
    let mut cfg = CameraConfig::from_url("r", url);
    cfg.backoff_initial = Duration::from_millis(200);
    cfg.backoff_max = Duration::from_millis(800);
    cfg.frame_timeout = Duration::from_secs(2);
    cams.connect(cfg).await.unwrap();
    let ev = events.recv().await.unwrap();
    assert_eq!(
        (ev.camera_id.as_str(), ev.state),
        ("r", CameraState::Connecting)
    );
    let ev = events.recv().await.unwrap();
    assert_eq!(
        (ev.camera_id.as_str(), ev.state),
        ("r", CameraState::Streaming)
    );

    // The camera drops off the network.
    cam.stop().await;
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("reconnecting event")
        .unwrap();
    assert_eq!(ev.state, CameraState::Reconnecting);
    let err = ev.error.expect("reason given");
    assert!(
        matches!(err.kind, ErrorKind::Unreachable | ErrorKind::Timeout),
        "{err:?}"
    );
    // The last picture stays served, marked stale in the status.
    let f = cams
        .snapshot("r", SnapshotOptions::full())
        .await
        .expect("the last picture while reconnecting");
    assert_eq!((f.width, f.height), (320, 240));
    let st = cams.status("r").unwrap();
    assert!(
        st.picture_stale && st.video_lost_since_ms.is_some(),
        "{st:#?}"
    );

    // It comes back on the same port.
    let cam = DemoCamera::start(DemoCameraOptions {
        port,
        width: 320,
        height: 240,
        ..Default::default()
    })
    .await
    .unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = events.recv().await.unwrap();
            if ev.state == CameraState::Streaming {
                return ev;
            }
        }
    })
    .await
    .expect("streaming again");
    assert_eq!(back.camera_id, "r");
    let st = cams.status("r").unwrap();
    assert!(st.reconnects >= 1, "{st:?}");
    assert!(st.last_error.is_some());
    cams.snapshot("r", SnapshotOptions::full()).await.unwrap();

    cams.disconnect("r").await.unwrap();
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.state, CameraState::Stopped);
    // The session was torn down at the camera.
    let deadline = Instant::now() + Duration::from_secs(3);
    while cam.sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cam.sessions(), 0);
}

/// Ids are unique; a disconnected id can be used again; a closed manager says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_close() {
    let cam = demo(320, 240).await;
    let cams = CameraManager::new();
    cams.connect(CameraConfig::from_url("x", cam.url()))
        .await
        .unwrap();
    let e = cams
        .connect(CameraConfig::from_url("x", cam.url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(cams.list().len(), 1);
    cams.disconnect("x").await.unwrap();
    assert_eq!(
        cams.disconnect("x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    cams.connect(CameraConfig::from_url("x", cam.url()))
        .await
        .unwrap();
    cams.connect(CameraConfig::from_url("y", cam.url()))
        .await
        .unwrap();
    let ids: Vec<String> = cams.list().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["x", "y"]);
    let mut events = cams.events();
    cams.close();
    // The event stream ends with the manager (after anything already queued).
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "event stream ends on close");
    assert_eq!(
        cams.snapshot("x", SnapshotOptions::full())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        cams.connect(CameraConfig::from_url("z", cam.url()))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while cam.sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cam.sessions(), 0, "close tears every session down");
}

/// Bad input is an `InvalidInput` error naming the field, never a panic.
#[tokio::test]
async fn bad_input_names_the_field() {
    let cams = CameraManager::new();
    let e = cams
        .connect(CameraConfig::from_host("c", "1.2.3.4/x@evil"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().starts_with("host"), "{e}");
    assert_eq!(e.field(), Some("host"));
    let e = cams
        .snapshot("c", SnapshotOptions::full().quality(0))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("quality"), "{e}");
    assert_eq!(e.field(), Some("quality"));
    let e = cams
        .subscribe("c", SubscribeOptions::fps(-1.0))
        .unwrap_err();
    assert!(e.message().starts_with("fps"), "{e}");
    assert_eq!(e.field(), Some("fps"));
    let e = cams.status("a\nb").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.field(), Some("id"));
}

/// A camera that keeps its RTSP session (answers keepalives) but stops sending video:
/// the frame watchdog reconnects it, with a `Timeout` that says so, and it streams again
/// once video resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_reconnects_a_stalled_camera() {
    let cam = demo(320, 240).await;
    let cams = CameraManager::new();
    let mut events = cams.events();
    let mut cfg = CameraConfig::from_url("w", cam.url());
    cfg.frame_timeout = Duration::from_secs(1);
    cfg.backoff_initial = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_millis(300);
    cams.connect(cfg).await.unwrap();
    assert_eq!(events.recv().await.unwrap().state, CameraState::Connecting);
    assert_eq!(events.recv().await.unwrap().state, CameraState::Streaming);

    cam.set_video_paused(true);
    let ev = tokio::time::timeout(Duration::from_secs(4), events.recv())
        .await
        .expect("the watchdog fires")
        .unwrap();
    assert_eq!(ev.state, CameraState::Reconnecting);
    let err = ev.error.unwrap();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("no video"), "{}", err.message);

    cam.set_video_paused(false);
    let back = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            if events.recv().await.unwrap().state == CameraState::Streaming {
                break;
            }
        }
    })
    .await;
    assert!(back.is_ok(), "streaming again after video resumed");
    assert!(cams.status("w").unwrap().reconnects >= 1);
}

/// The read-only picture API shows the picture a snapshot would: its sequence number,
/// size and colours; its JPEG comes from the frame cache (asking twice is one encode);
/// `stopped` resolves when the camera is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_picture_reads_the_cached_picture() {
    let cam = demo(640, 360).await;
    let cams = CameraManager::new();
    cams.connect(CameraConfig::from_url("demo", cam.url()))
        .await
        .expect("connect");
    let pictures = cams.pictures("demo").unwrap();
    let pic = pictures.latest().await.unwrap();
    assert!(pic.seq() >= 1);
    assert_eq!(pic.dimensions(), (640, 360));
    assert!(pic.captured_at_ms() > 0);
    let luma = pic.luma().await.unwrap();
    assert_eq!(
        (luma.width, luma.height, luma.samples.len()),
        (640, 360, 80 * 45)
    );
    assert_eq!(luma.change(&luma), Some(0.0));
    let encodes = cams.status("demo").unwrap().jpeg_encodes;
    let f = pic.jpeg(SnapshotOptions::full()).await.unwrap();
    let again = pic.jpeg(SnapshotOptions::full()).await.unwrap();
    assert_eq!(f.seq, pic.seq());
    assert_eq!(f.jpeg.as_ptr(), again.jpeg.as_ptr());
    assert_eq!(cams.status("demo").unwrap().jpeg_encodes, encodes + 1);
    check_color_band(&f.jpeg, 640, 360);
    let e = pic
        .jpeg(SnapshotOptions::full().quality(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        cams.latest_picture("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    cams.disconnect("demo").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), pictures.stopped())
        .await
        .expect("stopped resolves after disconnect");
}

/// A camera whose stream is joined mid-frame (the demo camera's `start_mid_frame`: the
/// first RTP packet after PLAY continues a fragmented NAL unit of a keyframe). retina
/// refuses that packet; the session goes on: the partial frame is skipped and counted,
/// decoding starts at the next keyframe, and every connect in a row gets a correct
/// picture without a reconnect. (gst-rtsp-server cannot show this: it holds a new client
/// until a keyframe's first packet.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_joined_mid_frame_skips_to_the_next_keyframe() {
    let cam = DemoCamera::start(DemoCameraOptions {
        port: 0,
        width: 320,
        height: 240,
        ..Default::default()
    })
    .await
    .expect("demo camera starts");
    cam.set_faults(camkit_demo_camera::faults::Faults {
        start_mid_frame: true,
        ..Default::default()
    });
    let cams = CameraManager::new();
    for i in 0..4 {
        let id = format!("j{i}");
        let st = cams
            .connect(CameraConfig::from_url(&id, cam.url()))
            .await
            .unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        assert_eq!(st.state, CameraState::Streaming, "connect #{i}");
        let f = cams
            .snapshot(&id, SnapshotOptions::full())
            .await
            .unwrap_or_else(|e| panic!("snapshot #{i}: {e}"));
        check_color_band(&f.jpeg, 320, 240);
        let st = cams.status(&id).unwrap();
        assert_eq!(st.reconnects, 0, "connect #{i}: {st:#?}");
        assert!(st.partial_frames_skipped >= 1, "connect #{i}: {st:#?}");
        cams.disconnect(&id).await.unwrap();
    }
    cams.close();
}
