//! An `OnDemand` camera nobody watches releases its decoder and raw picture once its
//! decode grace lapses (the memory of an idle camera); what it serves afterwards must be
//! as right as before. Against gst-rtsp-server's SMPTE bars, which the server sends in
//! limited ("TV") range as most cameras do, so every picture also goes through camkit's
//! range expansion.

use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, SnapshotOptions, SubscribeOptions};
use camkit_tests::{
    assert_color_near, decode_jpeg_rgb, full_range, mean_rgb, smpte_bar_centers_scaled, GstServer,
};

const GRACE: Duration = Duration::from_millis(300);

/// The bars of a JPEG of the 720p stream (full size or scaled), in full range.
fn check_bars(jpeg: &[u8], what: &str) {
    let (rgb, w, h) = decode_jpeg_rgb(jpeg);
    let (hw, hh) = ((w / 112).max(1), (h / 48).max(1));
    for (x, y, expected) in smpte_bar_centers_scaled(w, h, 720) {
        let m = mean_rgb(&rgb, w, x - hw, y - hh, 2 * hw, 2 * hh);
        assert_color_near(
            m,
            full_range(expected),
            24.0,
            &format!("{what}: bar at ({x},{y})"),
        );
    }
}

/// Waits until the camera has made `n` JPEG encodes: with nobody asking, only a release
/// encodes (the full-size JPEG a released picture is kept as, when none was made).
async fn wait_for_encodes(cams: &CameraManager, n: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let made = cams.status("idle").unwrap().jpeg_encodes;
        if made >= n {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: {made} JPEG encodes after 10 s, want {n}: the picture was not released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Snapshots, a subscription's first frame and scaled encodes stay correct across
/// releases: a snapshot after a release decodes the GOP again from its keyframe, and a
/// new subscriber first gets the released picture, encoded from its JPEG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_camera_serves_correct_pictures() {
    let server = GstServer::start().expect("GStreamer RTSP server starts");
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url("idle", server.url("/h264-720"));
    cfg.decode_grace = GRACE;
    cams.connect(cfg).await.expect("connect");
    // The picture decoded at connect is released at once (nobody asked for it): the
    // release encodes it full size, the only encode nobody asked for.
    wait_for_encodes(&cams, 1, "after connect").await;

    // A snapshot of the released camera: the decoder is made again, the GOP decoded.
    let first = cams
        .snapshot("idle", SnapshotOptions::full().max_width(640))
        .await
        .expect("snapshot after the release");
    assert_eq!((first.width, first.height), (640, 360));
    check_bars(&first.jpeg, "640-wide snapshot after the first release");
    let made = cams.status("idle").unwrap().jpeg_encodes;
    // Released again once the grace lapses: no full-size JPEG was made, so one is now.
    wait_for_encodes(&cams, made + 1, "after the snapshot's grace").await;

    // A new subscriber first gets the latest picture, the released one: made from its
    // JPEG, at a size nobody asked for before.
    let mut sub = cams
        .subscribe(
            "idle",
            SubscribeOptions {
                max_width: Some(320),
                quality: Some(70),
                ..SubscribeOptions::fps(15.0)
            },
        )
        .expect("subscribe");
    let f = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a frame within 10 s")
        .expect("subscription open")
        .expect("frame");
    // (The grace decoded a few pictures after the snapshot's: the released one is newer.)
    assert!(f.seq > first.seq);
    assert_eq!((f.width, f.height), (320, 180));
    check_bars(&f.jpeg, "released picture, 320 wide");
    // Then live pictures, decoded again.
    let g = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a second frame within 10 s")
        .expect("subscription open")
        .expect("frame");
    assert!(g.seq > f.seq);
    check_bars(&g.jpeg, "live picture after the release, 320 wide");
    drop(sub);

    // Past the grace again: a full-size snapshot decodes from the keyframe once more.
    tokio::time::sleep(GRACE * 4).await;
    let full = cams
        .snapshot("idle", SnapshotOptions::full())
        .await
        .expect("full-size snapshot after the release");
    assert_eq!((full.width, full.height), (1280, 720));
    assert!(full.seq > g.seq);
    check_bars(&full.jpeg, "full-size snapshot after the release");
    cams.close();
}
