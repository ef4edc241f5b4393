//! Cluster subscriptions on a node that does not own the camera, against a real
//! nats-server (JetStream) and the GStreamer RTSP server: two nodes in this process, each
//! with its own `CameraManager`; a camera owned by one, watched from the other.
//!
//! - frames through the non-owner: the size asked for (`maxWidth` reaches the owner),
//!   increasing `seq`, and the owner decodes only while someone watches (decode
//!   `onDemand`);
//! - video through the non-owner: an init segment with the codec string, then media
//!   segments starting at a keyframe, which ffprobe reads as 640×360 H.264;
//! - on demand, seen on the wire (a plain NATS client subscribed to the feed subjects):
//!   the owner stops publishing as soon as the subscription is dropped, and a feed nobody
//!   renews stops within the feed TTL;
//! - video of an MJPEG camera through a non-owner is refused with `UnsupportedCodec`
//!   (eagerly, and at the first `next()` of a deferred subscription), its frames are not;
//! - the owner leaves: the watcher's frame and video subscriptions follow the camera to
//!   its new owner (the watcher itself, the only node left), video with a new init
//!   segment; removing the camera from the cluster ends them;
//! - lease health (`Cluster::stats`): the owner's claims and renewals count up with no
//!   failure, its leave counts as a release, and the new owner's claim is counted.
//!
//!   cargo test -p camkit-tests --features cluster --test cluster_feed
//!
//! About 20 s, most of it waiting for the feed TTL (5 s) and the move.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camkit::cluster::{Cluster, ClusterOptions, FEED_TTL};
use camkit::{
    CameraConfig, CameraManager, DecodePolicy, SubscribeOptions, VideoChunkKind, VideoOptions,
};
use camkit_tests::{GstServer, NatsServer};
use futures::StreamExt;

const KEY: &str = "cluster-feed-test-key-0123456789";
const PREFIX: &str = "feedtest";
const CAM: &str = "feed-cam";
/// Bound of every wait for something that normally takes a second or two.
const WAIT: Duration = Duration::from_secs(15);

fn options(nats: &NatsServer, node: &str) -> ClusterOptions {
    ClusterOptions {
        prefix: PREFIX.into(),
        ..ClusterOptions::new(nats.url(), node, KEY)
    }
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Feed messages (`<prefix>.feed.<node>.<sid>`, not the renewals) seen by a plain NATS
/// client: subject and arrival time.
type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

async fn watch_feeds(nats: &NatsServer) -> Seen {
    let client = async_nats::connect(nats.url()).await.expect("NATS client");
    let mut sub = client
        .subscribe(format!("{PREFIX}.feed.>"))
        .await
        .expect("subscribe");
    client.flush().await.unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    tokio::spawn(async move {
        let _client = client;
        while let Some(m) = sub.next().await {
            if m.subject.split('.').count() == 4 {
                s.lock()
                    .unwrap()
                    .push((m.subject.to_string(), Instant::now()));
            }
        }
    });
    seen
}

fn last_on(seen: &Seen, subject: &str) -> Option<Instant> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| s == subject)
        .map(|(_, t)| *t)
        .max()
}

fn subjects(seen: &Seen) -> Vec<String> {
    let mut v: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn ffprobe(mp4: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("camkit-cluster-feed-{}.mp4", std::process::id()));
    std::fs::write(&path, mp4).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "default=nw=1",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    let _ = std::fs::remove_file(&path);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffprobe: {errors}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_watches_a_camera_and_follows_it() {
    let nats = NatsServer::start().expect("nats-server starts");
    let gst = GstServer::start().expect("GStreamer RTSP server starts");
    let seen = watch_feeds(&nats).await;

    let (mgr_a, mgr_b) = (CameraManager::new(), CameraManager::new());
    let a = Cluster::join(mgr_a.clone(), options(&nats, "node-a"))
        .await
        .expect("node-a joins");
    let b = Cluster::join(mgr_b.clone(), options(&nats, "node-b"))
        .await
        .expect("node-b joins");
    // Both live in both views, so the camera is placed once (no move right after).
    until("both nodes to see each other", || {
        a.view().nodes.len() == 2 && b.view().nodes.len() == 2
    })
    .await;
    let mut cfg = CameraConfig::from_url(CAM, gst.url("/high"));
    cfg.decode = DecodePolicy::OnDemand;
    a.connect(cfg).await.expect("the camera connects");
    let on_a = mgr_a.list().iter().any(|s| s.id == CAM);
    let (owner, owner_mgr, watcher, watcher_mgr) = if on_a {
        (&a, &mgr_a, &b, &mgr_b)
    } else {
        (&b, &mgr_b, &a, &mgr_a)
    };
    assert!(
        watcher_mgr.list().is_empty(),
        "one node runs the camera: {:?}",
        a.view()
    );
    let (owner_id, watcher_id) = (owner.node_id().to_owned(), watcher.node_id().to_owned());

    // An unknown camera is refused at once, through a non-owner too.
    let e = watcher
        .subscribe_deferred("no-such-cam", SubscribeOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), camkit::ErrorKind::NotFound, "{e}");

    // --- Frames through the non-owner --------------------------------------------------
    let decoded_before = owner_mgr.status(CAM).unwrap().frames_decoded;
    let mut frames = watcher
        .subscribe(
            CAM,
            SubscribeOptions {
                fps: 10.0,
                max_width: Some(320),
                ..SubscribeOptions::default()
            },
        )
        .await
        .expect("subscribes through the non-owner");
    assert_eq!(frames.serving_node(), Some(owner_id.as_str()));
    let mut last_seq = 0;
    for i in 0..8 {
        let f = tokio::time::timeout(WAIT, frames.next())
            .await
            .unwrap_or_else(|_| panic!("frame {i} within {WAIT:?}"))
            .expect("the subscription goes on")
            .expect("a frame, not an error");
        assert_eq!(
            (f.width, f.height),
            (320, 180),
            "maxWidth reached the owner"
        );
        assert!(f.jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
        assert!(f.seq > last_seq, "seq {} after {last_seq}", f.seq);
        last_seq = f.seq;
    }
    let decoded_during = owner_mgr.status(CAM).unwrap().frames_decoded;
    assert!(
        decoded_during > decoded_before,
        "the owner decodes for a remote watcher ({decoded_before} -> {decoded_during})"
    );
    // The feed's subject, as the plain client saw it: this subscription's only.
    let frame_subject = subjects(&seen)
        .into_iter()
        .find(|s| s.starts_with(&format!("{PREFIX}.feed.{watcher_id}.")))
        .expect("the plain client saw the feed");
    assert!(!frame_subject.contains(CAM), "no camera id in a subject");
    drop(frames);
    let dropped_at = Instant::now();

    // --- A feed nobody renews (a subscriber that vanished): asked by hand ---------------
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let raw_subject = format!("{PREFIX}.feed.ghost.0123456789abcdef0123456789abcdef");
    let request = serde_json::json!({
        "id": CAM, "subject": raw_subject, "kind": "frames", "fps": 5.0,
    });
    let reply = raw
        .request(
            format!("{PREFIX}.node.{owner_id}.feed"),
            request.to_string().into(),
        )
        .await
        .expect("the owner answers a feed request");
    assert!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Camkit-Error"))
            .is_none(),
        "the owner accepted the feed: {:?}",
        String::from_utf8_lossy(&reply.payload)
    );
    let asked_at = Instant::now();

    // --- Video through the non-owner (while the unrenewed feed runs out) ---------------
    let mut video = watcher
        .subscribe_video(CAM, VideoOptions::default())
        .await
        .expect("video through the non-owner");
    let first = tokio::time::timeout(WAIT, video.next())
        .await
        .expect("a chunk")
        .expect("the video goes on");
    assert_eq!(first.kind, VideoChunkKind::Init, "init segment first");
    assert!(first.codec.starts_with("avc1.64"), "codec {}", first.codec);
    let mut mp4 = first.data.to_vec();
    let mut segments = 0;
    while segments < 30 {
        let c = tokio::time::timeout(WAIT, video.next())
            .await
            .expect("a chunk")
            .expect("the video goes on");
        assert_eq!(c.kind, VideoChunkKind::Segment);
        if segments == 0 {
            assert!(c.keyframe, "the first media segment is a keyframe");
        }
        assert_eq!(c.codec, first.codec);
        mp4.extend_from_slice(&c.data);
        segments += 1;
    }
    let info = ffprobe(&mp4);
    for want in [
        "codec_name=h264",
        "width=640",
        "height=360",
        "nb_read_frames=30",
    ] {
        assert!(
            info.lines().any(|l| l == want),
            "ffprobe: want {want} in {info}"
        );
    }

    // On demand: nothing on the dropped subscription's subject after its stop (the
    // owner may have had one item on its way)...
    let last = last_on(&seen, &frame_subject).expect("frames were seen");
    assert!(
        last < dropped_at + Duration::from_millis(500),
        "the owner went on publishing {:?} after the drop",
        last.saturating_duration_since(dropped_at)
    );
    // ... and the unrenewed feed ran out after the TTL, not before, and not much later.
    let t_end = asked_at + FEED_TTL + Duration::from_secs(2);
    tokio::time::sleep_until(t_end.into()).await;
    let last = last_on(&seen, &raw_subject).expect("the unrenewed feed was published");
    let ran = last.saturating_duration_since(asked_at);
    assert!(
        ran > FEED_TTL - Duration::from_secs(1) && ran < FEED_TTL + Duration::from_secs(1),
        "an unrenewed feed ran {ran:?} (TTL {FEED_TTL:?})"
    );
    drop(raw);
    println!("unrenewed feed ran {ran:?}");

    // --- Video of an MJPEG camera through a non-owner: refused by its owner ------------
    watcher
        .connect(CameraConfig::from_url("mjpeg-cam", gst.url("/mjpeg")))
        .await
        .expect("the MJPEG camera connects");
    let asker = if owner_mgr.list().iter().any(|s| s.id == "mjpeg-cam") {
        watcher
    } else {
        owner
    };
    let e = asker
        .subscribe_video("mjpeg-cam", VideoOptions::default())
        .await
        .expect_err("no video from an MJPEG camera");
    assert_eq!(e.kind(), camkit::ErrorKind::UnsupportedCodec, "{e}");
    // Deferred (as the Node binding opens it): the first next() ends it, saying why.
    let mut deferred = asker
        .subscribe_video_deferred("mjpeg-cam", VideoOptions::default())
        .expect("known camera, valid options");
    let next = tokio::time::timeout(WAIT, deferred.next())
        .await
        .expect("ends");
    assert!(next.is_none());
    let e = deferred.end_error().expect("the reason");
    assert_eq!(e.kind(), camkit::ErrorKind::UnsupportedCodec, "{e}");
    // Its frames are fine through the same node.
    let mut mjpeg_frames = asker
        .subscribe("mjpeg-cam", SubscribeOptions::fps(5.0))
        .await
        .unwrap();
    let f = tokio::time::timeout(WAIT, mjpeg_frames.next())
        .await
        .expect("an MJPEG frame")
        .unwrap()
        .unwrap();
    assert!(f.jpeg.starts_with(&[0xff, 0xd8]));
    drop(mjpeg_frames);
    watcher.disconnect("mjpeg-cam").await.unwrap();

    // --- The owner leaves: the subscriptions follow the camera -------------------------
    let mut frames = watcher
        .subscribe(CAM, SubscribeOptions::fps(10.0))
        .await
        .expect("subscribes again");
    tokio::time::timeout(WAIT, frames.next())
        .await
        .expect("a frame before the move")
        .unwrap()
        .unwrap();
    // Lease health so far: the owner claimed the camera and renewed it every heartbeat
    // (about 1 s; over 7 s have passed since the connect), and nothing failed.
    let st = owner.stats();
    assert!(st.lease_claims >= 1, "{st:?}");
    assert!(st.lease_renewals >= 3, "{st:?}");
    assert_eq!(
        (st.lease_renewal_failures, st.leases_lost, st.fenced_stops),
        (0, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.nats_reconnects, 0, "{st:?}");
    assert!(owner.view().stats.lease_renewals >= st.lease_renewals);
    let claims_before = watcher.stats().lease_claims;
    let left_at = Instant::now();
    owner.leave().await;
    let st = owner.stats();
    assert!(st.leases_released >= 1, "leave() gave the lease up: {st:?}");
    assert_eq!((st.leases_lost, st.fenced_stops), (0, 0), "{st:?}");
    let moved = loop {
        assert!(
            left_at.elapsed() < WAIT,
            "no frame from the new owner: {:?}",
            watcher.view()
        );
        let f = tokio::time::timeout(WAIT, frames.next())
            .await
            .expect("frames go on through the move")
            .expect("the subscription goes on");
        if frames.serving_node() == Some(watcher_id.as_str()) {
            break f.expect("a frame");
        }
    };
    println!(
        "first frame from the new owner {:?} after leave()",
        left_at.elapsed()
    );
    assert_eq!((moved.width, moved.height), (640, 360));
    assert!(
        watcher_mgr.list().iter().any(|s| s.id == CAM),
        "the watcher runs the camera now"
    );
    assert!(owner_mgr.list().is_empty(), "the node that left stopped it");
    assert!(
        watcher.stats().lease_claims > claims_before,
        "the new owner claimed the lease: {:?}",
        watcher.stats()
    );
    // The video subscription, untouched meanwhile, goes on from the new owner with a new
    // init segment (its queue may still hold the old owner's last segments).
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < WAIT, "no init segment from the new owner");
        let c = tokio::time::timeout(WAIT, video.next())
            .await
            .expect("a chunk")
            .expect("the video goes on through the move");
        if c.kind == VideoChunkKind::Init && video.serving_node() == Some(watcher_id.as_str()) {
            break;
        }
    }
    let c = tokio::time::timeout(WAIT, video.next())
        .await
        .expect("a chunk")
        .unwrap();
    assert!(c.kind == VideoChunkKind::Segment && c.keyframe);

    // Removed from the cluster: both subscriptions end.
    watcher.disconnect(CAM).await.expect("disconnects");
    let end = tokio::time::timeout(WAIT, async {
        while frames.next().await.is_some() {}
        while video.next().await.is_some() {}
    })
    .await;
    assert!(
        end.is_ok(),
        "the subscriptions end when the camera is removed"
    );
    assert!(video.end_error().is_none(), "{:?}", video.end_error());
    watcher.leave().await;
}
