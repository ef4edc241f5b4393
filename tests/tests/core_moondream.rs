//! camkit's Moondream client and camera calls against a loopback Moondream (both flavours:
//! cloud and Moondream Station) that checks every request: the auth header, the JSON fields,
//! and that the picture is a JPEG of the camera's current picture with its long side at
//! most 768 px. No test needs the internet.

use std::time::{Duration, Instant};

use camkit::moondream::{CaptionLength, MoondreamClient, MoondreamConfig, WatchOptions};
use camkit::{CameraConfig, CameraManager, ErrorKind, Picture, SnapshotOptions};
use camkit_demo_camera::{color_band_rect, DemoCamera, DemoCameraOptions, COLOR_BAND};
use camkit_tests::{
    assert_color_near, closed_port_url, decode_jpeg_rgb, mean_rgb, Flavour, MoondreamMock, Reply,
    DETECT_BOX, POINT,
};
use futures::StreamExt;

const KEY: &str = "md-test-key-0123456789";

fn cloud_mock() -> MoondreamMock {
    MoondreamMock::start(Flavour::Cloud {
        api_key: KEY.into(),
    })
}

fn cloud(mock: &MoondreamMock) -> MoondreamConfig {
    MoondreamConfig {
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn station(mock: &MoondreamMock) -> MoondreamConfig {
    MoondreamConfig {
        timeout: Duration::from_secs(5),
        ..MoondreamConfig::station(mock.base_url())
    }
}

async fn demo(width: u32, height: u32) -> DemoCamera {
    DemoCamera::start(DemoCameraOptions {
        port: 0,
        width,
        height,
        ..Default::default()
    })
    .await
    .expect("demo camera starts")
}

/// A manager with the demo camera connected as `id`. The watchdog is relaxed so tests
/// may pause the video for a while without a reconnect.
async fn connected(cam: &DemoCamera, id: &str) -> CameraManager {
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url(id, cam.url());
    cfg.frame_timeout = Duration::from_secs(60);
    cams.connect(cfg).await.expect("connect");
    cams
}

/// The JPEG shows the demo camera's colour band at its place for that size.
fn check_color_band(jpeg: &[u8], width: u32, height: u32) {
    let (rgb, w, h) = decode_jpeg_rgb(jpeg);
    assert_eq!((w, h), (width, height), "JPEG size");
    for (i, (name, color)) in COLOR_BAND.iter().enumerate() {
        let (x, y, bw, bh) = color_band_rect(i, w, h);
        let m = mean_rgb(&rgb, w, x + bw / 4, y + bh / 4, bw / 2, bh / 2);
        assert_color_near(m, *color, 24.0, name);
    }
}

/// A flat grey JPEG of any size, for client calls that need no camera.
fn grey_jpeg(w: u32, h: u32) -> Vec<u8> {
    let (cw, ch) = Picture::chroma_dims(w, h);
    let p = Picture {
        width: w,
        height: h,
        y: vec![120; (w * h) as usize],
        u: vec![128; (cw * ch) as usize],
        v: vec![128; (cw * ch) as usize],
        full_range: true,
    };
    camkit::jpeg::encode_i420(&p, 85).unwrap().to_vec()
}

/// Query, caption, detect and point about a 1280x720 camera: each sends the camera's
/// current picture scaled to 768x432 (colour band intact), with the key and the right
/// fields, and returns typed results with the picture's seq. The scaled JPEG is encoded
/// once and shared with snapshots of that size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_calls_send_the_current_picture_scaled_to_768() {
    let cam = demo(1280, 720).await;
    let cams = connected(&cam, "door").await;
    let mock = cloud_mock();
    let vision = cams.moondream(cloud(&mock)).unwrap();

    // A still picture, so every call below answers about the same one.
    cam.set_video_paused(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let encodes_before = cams.status("door").unwrap().jpeg_encodes;

    mock.push(Reply::Answer("White.".into()));
    let q = vision
        .query("door", "What colour is the top-left bar?")
        .await
        .unwrap();
    assert_eq!(q.result.answer, "White.");
    assert_eq!(q.result.request_id.as_deref(), Some("req-1"));
    assert_eq!(
        (q.camera_id.as_str(), q.width, q.height),
        ("door", 768, 432)
    );
    assert!(q.seq >= 1 && q.captured_at_ms > 0);

    let c = vision.caption("door", CaptionLength::Short).await.unwrap();
    assert_eq!(c.result.caption, "mock answer");
    let d = vision.detect("door", "yellow bar").await.unwrap();
    let b = d.result.objects[0];
    assert_eq!((b.x_min, b.y_min, b.x_max, b.y_max), DETECT_BOX);
    let p = vision.point("door", "blue bar").await.unwrap();
    assert_eq!((p.result.points[0].x, p.result.points[0].y), POINT);
    for seq in [c.seq, d.seq, p.seq] {
        assert_eq!(seq, q.seq, "the same still picture");
    }

    let reqs = mock.requests();
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/query", "/caption", "/detect", "/point"]);
    for r in &reqs {
        assert_eq!(r.auth.as_deref(), Some(KEY));
        assert_eq!(r.size, (768, 432));
        check_color_band(&r.jpeg, 768, 432);
    }
    assert_eq!(reqs[0].body["question"], "What colour is the top-left bar?");
    assert_eq!(reqs[0].body["stream"], false);
    assert_eq!(reqs[1].body["length"], "short");
    assert_eq!(reqs[2].body["object"], "yellow bar");

    // What was sent is the frame cache's JPEG of that picture at 768 wide: a snapshot of
    // the same size gets the very same bytes, and the four calls cost one encode.
    let snap = cams
        .snapshot("door", SnapshotOptions::full().max_width(768))
        .await
        .unwrap();
    assert_eq!(snap.seq, q.seq);
    assert_eq!(&snap.jpeg[..], &reqs[0].jpeg[..]);
    assert_eq!(
        cams.status("door").unwrap().jpeg_encodes - encodes_before,
        1
    );

    // A streamed answer: several pieces, reassembled in order, about a known picture.
    mock.push(Reply::Stream(
        ["The ", "top-left ", "bar is ", "white", "."]
            .map(String::from)
            .to_vec(),
    ));
    let s = vision
        .query_stream("door", "What colour is the top-left bar?")
        .await
        .unwrap();
    assert_eq!(s.seq, q.seq);
    let pieces: Vec<String> = s.result.map(|p| p.unwrap()).collect().await;
    assert_eq!(pieces, ["The ", "top-left ", "bar is ", "white", "."]);
    assert_eq!(mock.requests()[4].body["stream"], true);

    assert_eq!(
        vision.query("nope", "?").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        vision.query("door", "  ").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

/// A portrait camera (720x1280) is sent at 432x768: the long side is the height, so the
/// width is smaller than 768. Moondream Station answers without request ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portrait_camera_fits_its_height_station_flavour() {
    let cam = demo(720, 1280).await;
    let cams = connected(&cam, "hall").await;
    let mock = MoondreamMock::start(Flavour::Station);
    let vision = cams.moondream(station(&mock)).unwrap();

    mock.push(Reply::Answer("A colour test picture.".into()));
    let c = vision.caption("hall", CaptionLength::Normal).await.unwrap();
    assert_eq!(c.result.caption, "A colour test picture.");
    assert_eq!(c.result.request_id, None);
    assert_eq!((c.width, c.height), (432, 768));
    let frame = vision.frame("hall").await.unwrap();
    assert_eq!((frame.width, frame.height), (432, 768));

    let r = &mock.requests()[0];
    assert_eq!(r.size, (432, 768));
    assert_eq!(r.body["length"], "normal");
    check_color_band(&r.jpeg, 432, 768);

    // Station's streamed caption: chunks, a stats event, then a separate completed event.
    mock.push(Reply::Stream(
        ["A ", "colour ", "test ", "picture."]
            .map(String::from)
            .to_vec(),
    ));
    let s = vision
        .caption_stream("hall", CaptionLength::Normal)
        .await
        .unwrap();
    assert_eq!(s.result.text().await.unwrap(), "A colour test picture.");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

/// Streamed answers in both flavours reassemble across HTTP chunks that split events and
/// UTF-8 characters; a picture larger than 768 px is scaled down before it is sent.
#[tokio::test]
async fn client_streams_and_scales_without_a_camera() {
    let (c, st) = (cloud_mock(), MoondreamMock::start(Flavour::Station));
    for (mock, cfg) in [(&c, cloud(&c)), (&st, station(&st))] {
        let client = MoondreamClient::new(cfg).unwrap();
        let pieces = ["Un ", "café ", "☕ ", "et ", "deux ", "croissants"].map(String::from);
        mock.push(Reply::Stream(pieces.to_vec()));
        let got: Vec<String> = client
            .query_stream(&grey_jpeg(640, 480), "Qu'y a-t-il ?")
            .await
            .unwrap()
            .map(|p| p.unwrap())
            .collect()
            .await;
        assert_eq!(got, pieces);

        // The stream of a plain Answer (split by the mock on spaces) joins back.
        mock.push(Reply::Answer("a grey picture".into()));
        let text = client
            .caption_stream(&grey_jpeg(64, 64), CaptionLength::Long)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, "a grey picture");

        let a = client
            .query(&grey_jpeg(1600, 1200), "What is it?")
            .await
            .unwrap();
        assert_eq!(a.answer, "mock answer");
        let last = mock.requests().pop().unwrap();
        assert_eq!(last.size, (768, 576), "scaled to fit 768");
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    }
}

/// A refused key is `Unauthorized`, the message says to check MOONDREAM_API_KEY, and the key
/// appears nowhere.
#[tokio::test]
async fn wrong_key_is_unauthorized_and_never_shown() {
    let mock = cloud_mock();
    let wrong = "md-wrong-key-987654321";
    let cfg = MoondreamConfig {
        api_key: Some(wrong.into()),
        ..cloud(&mock)
    };
    assert!(!format!("{cfg:?}").contains(wrong));
    let client = MoondreamClient::new(cfg).unwrap();
    assert!(!format!("{client:?}").contains(wrong));
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.message().contains("MOONDREAM_API_KEY"), "{e}");
    assert!(!e.to_string().contains(wrong) && !format!("{e:?}").contains(wrong));
    assert_eq!(mock.requests().len(), 1, "401 is not retried");
    assert_eq!(mock.requests()[0].auth.as_deref(), Some(wrong));
}

/// Moondream Station fails with `200 {"error": …}`: a `ServiceError` carrying its message,
/// for plain and streamed calls alike.
#[tokio::test]
async fn station_error_in_a_200_is_a_service_error() {
    let mock = MoondreamMock::start(Flavour::Station);
    let client = MoondreamClient::new(station(&mock)).unwrap();
    mock.push(Reply::StationError("model is still loading".into()));
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ServiceError, "{e}");
    assert!(e.message().contains("model is still loading"), "{e}");

    mock.push(Reply::StationError("out of memory".into()));
    let mut s = client.query_stream(&grey_jpeg(64, 64), "?").await.unwrap();
    let e = s.next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ServiceError, "{e}");
    assert!(e.message().contains("out of memory"), "{e}");
    assert!(s.next().await.is_none());

    mock.push(Reply::Status(400, "image too small".into()));
    let e = client.detect(&grey_jpeg(64, 64), "cat").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ServiceError, "{e}");
    assert!(e.message().contains("image too small"), "{e}");
}

/// A redirect is reported, not followed: the key travels in Moondream's own header, which
/// HTTP clients carry along to wherever a redirect points.
#[tokio::test]
async fn redirect_is_not_followed() {
    let mock = cloud_mock();
    let client = MoondreamClient::new(cloud(&mock)).unwrap();
    mock.push(Reply::Redirect(format!("{}/query", mock.base_url())));
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ServiceError, "{e}");
    assert!(e.message().contains("redirected to http://"), "{e}");
    assert_eq!(mock.requests().len(), 1, "not followed");
}

/// `429` with `Retry-After: 1`, then success: the client waits the second the service asked
/// for, then answers.
#[tokio::test]
async fn rate_limited_once_waits_retry_after_then_answers() {
    let mock = cloud_mock();
    let client = MoondreamClient::new(cloud(&mock)).unwrap();
    mock.push(Reply::TooManyRequests(Some("1".into())));
    mock.push(Reply::Answer("ok".into()));
    let t0 = Instant::now();
    let a = client.query(&grey_jpeg(64, 64), "?").await.unwrap();
    assert_eq!(a.answer, "ok");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    // A 503 without Retry-After is retried after a short backoff.
    mock.push(Reply::Status(503, "busy".into()));
    let a = client.query(&grey_jpeg(64, 64), "?").await.unwrap();
    assert_eq!(a.answer, "mock answer");
    assert_eq!(mock.requests().len(), 4);
}

/// `429` on every attempt: `RateLimited` after 1 + max_retries requests; a `Retry-After`
/// longer than camkit waits fails at once.
#[tokio::test]
async fn rate_limited_forever_gives_up_after_max_retries() {
    let mock = cloud_mock();
    let client = MoondreamClient::new(cloud(&mock)).unwrap();
    mock.set_default(Reply::TooManyRequests(Some("0".into())));
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.message().contains("after 3 attempts"), "{e}");
    assert_eq!(mock.requests().len(), 3);

    mock.set_default(Reply::TooManyRequests(Some("3600".into())));
    let t0 = Instant::now();
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.message().contains("3600"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests().len(), 4);
}

/// A service that accepts the request and never answers: `Timeout` at the configured limit,
/// not retried. A port nobody listens on: `Unreachable`.
#[tokio::test]
async fn silent_service_times_out_and_closed_port_is_unreachable() {
    let mock = cloud_mock();
    mock.set_default(Reply::Hang);
    let client = MoondreamClient::new(MoondreamConfig {
        timeout: Duration::from_secs(1),
        ..cloud(&mock)
    })
    .unwrap();
    let t0 = Instant::now();
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        took >= Duration::from_millis(990) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(mock.requests().len(), 1);

    let closed = closed_port_url()
        .replace("rtsp://", "http://")
        .replace("/x", "/v1");
    let client = MoondreamClient::new(MoondreamConfig::station(closed)).unwrap();
    let e = client.query(&grey_jpeg(64, 64), "?").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
}

/// A watch reports only answers that change (normalised: "Yes" and "yes." are the same),
/// with the previous answer, and ends when its handle is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_emits_only_changed_answers() {
    let cam = demo(640, 360).await;
    let cams = connected(&cam, "gate").await;
    let mock = cloud_mock();
    let vision = cams.moondream(cloud(&mock)).unwrap();
    for a in ["Yes", "yes.", "No", " no ", "Maybe"] {
        mock.push(Reply::Answer(a.into()));
    }
    mock.set_default(Reply::Answer("Maybe".into()));
    let opts = WatchOptions {
        every: Duration::from_millis(200),
        only_when_changed: false,
        ..Default::default()
    };
    let (handle, mut events) = vision.watch("gate", "Is the gate open?", opts).unwrap();
    let mut got = vec![];
    while got.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
            .expect("watch running")
            .expect("no error");
        got.push(ev);
    }
    let pairs: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|e| (e.answer.as_str(), e.previous_answer.as_deref()))
        .collect();
    assert_eq!(
        pairs,
        [("Yes", None), ("No", Some("yes.")), ("Maybe", Some(" no "))]
    );
    for e in &got {
        assert_eq!(
            (e.camera_id.as_str(), e.question.as_str()),
            ("gate", "Is the gate open?")
        );
        assert!(e.seq >= 1 && e.at_ms >= e.captured_at_ms);
    }
    assert!(
        got.windows(2).all(|w| w[1].seq > w[0].seq),
        "newer pictures"
    );
    let stats = handle.stats();
    assert!(stats.asked >= 5, "{stats:?}");
    assert_eq!((stats.events, stats.skipped_unchanged), (3, 0), "{stats:?}");

    // Same answer again and again: no more events.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(handle.stats().asked >= 7);
    assert_eq!(handle.stats().events, 3);

    drop(handle);
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = events.next().await {
            ev.expect("no error");
        }
    })
    .await;
    assert!(end.is_ok(), "events end once the handle is dropped");
    // A call already on the wire when the watch ended may still reach the mock; let it
    // land, then no new call may start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = mock.requests().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mock.requests().len(),
        asked,
        "no calls after the watch ended"
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

/// While the picture does not change (video paused: the same picture stays the latest), the
/// watch asks once and then skips every tick without a call; once the video moves again it
/// asks again. Disconnecting the camera ends the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_skips_unchanged_pictures() {
    let cam = demo(640, 360).await;
    let cams = connected(&cam, "yard").await;
    let mock = cloud_mock();
    let vision = cams.moondream(cloud(&mock)).unwrap();
    cam.set_video_paused(true);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let opts = WatchOptions {
        every: Duration::from_millis(150),
        only_when_changed: true,
        change_threshold: 0.5,
    };
    let (handle, mut events) = vision.watch("yard", "Anyone there?", opts).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.answer, "mock answer");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stats = handle.stats();
    assert_eq!(stats.asked, 1, "{stats:?}");
    assert!(stats.skipped_unchanged >= 5, "{stats:?}");
    assert_eq!(stats.last_change, Some(0.0), "{stats:?}");
    assert_eq!(mock.requests().len(), 1);

    // The picture moves again: the watch asks again (the answer is the same, so no event).
    cam.set_video_paused(false);
    let t0 = Instant::now();
    while handle.stats().asked < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{:?}",
            handle.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = handle.stats();
    assert!(stats.last_change.unwrap() > 0.5, "{stats:?}");
    assert_eq!(stats.events, 1, "{stats:?}");

    cams.disconnect("yard").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the watch ends with its camera");
    assert!(end.is_none(), "{end:?}");
    let t0 = Instant::now();
    while handle.is_running() {
        assert!(t0.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
