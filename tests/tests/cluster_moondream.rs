//! Moondream through a cluster (`Cluster::moondream`), asked on the node that does not own
//! the camera: two nodes on a real nats-server, the demo camera, the loopback Moondream
//! (tests/src/moondream_mock.rs) checking every request. The picture Moondream gets is the
//! owner's (the demo camera's colour band), fitted as a local call fits it: 1280x720 to
//! 768x432, and a portrait 720x1280 to 432x768; a watch through the non-owner answers
//! about it and ends with `NOT_FOUND` once the camera is removed from the cluster.
//!
//!   cargo test -p camkit-tests --features cluster --test cluster_moondream

use std::time::{Duration, Instant};

use camkit::cluster::{Cluster, ClusterOptions};
use camkit::moondream::{MoondreamConfig, WatchOptions};
use camkit::{CameraConfig, CameraManager, ErrorKind, SnapshotOptions};
use camkit_tests::{check_color_band, demo, Flavour, MoondreamMock, NatsServer, Reply};

const KEY: &str = "cluster-moondream-test-key-0123";
const MD_KEY: &str = "md-test-key-0123456789";
const WAIT: Duration = Duration::from_secs(15);

fn options(nats: &NatsServer, node: &str) -> ClusterOptions {
    ClusterOptions {
        prefix: "mdtest".into(),
        ..ClusterOptions::new(nats.url(), node, KEY)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_asks_moondream_about_the_owners_picture() {
    let nats = NatsServer::start().expect("nats-server starts");
    let (wide, tall) = (demo(1280, 720).await, demo(720, 1280).await);
    let mock = MoondreamMock::start(Flavour::Cloud {
        api_key: MD_KEY.into(),
    });
    let md = MoondreamConfig {
        base_url: mock.base_url(),
        api_key: Some(MD_KEY.into()),
        timeout: Duration::from_secs(5),
        ..Default::default()
    };

    let mgrs = [CameraManager::new(), CameraManager::new()];
    let mut nodes = Vec::new();
    for (i, m) in mgrs.iter().enumerate() {
        let node = Cluster::join(m.clone(), options(&nats, &format!("md-{i}")))
            .await
            .expect("joins");
        nodes.push(node);
    }
    let t0 = Instant::now();
    while nodes.iter().any(|n| n.view().nodes.len() < 2) {
        assert!(t0.elapsed() < WAIT, "the nodes did not see each other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for (id, cam, fitted) in [("wide", &wide, (768, 432)), ("tall", &tall, (432, 768))] {
        nodes[0]
            .connect(CameraConfig::from_url(id, cam.url()))
            .await
            .expect("connects");
        let owner = mgrs
            .iter()
            .position(|m| m.list().iter().any(|s| s.id == id))
            .expect("a node runs it");
        let asker = &nodes[1 - owner];
        assert!(
            mgrs[1 - owner].status(id).is_err(),
            "the asking node does not run {id}"
        );
        // A still picture, so the answer and the owner's snapshot are about the same one.
        cam.set_video_paused(true);
        tokio::time::sleep(Duration::from_millis(300)).await;

        let vision = asker
            .moondream(md.clone())
            .expect("Moondream through the cluster");
        mock.push(Reply::Answer("White.".into()));
        let q = vision
            .query(id, "What colour is the top-left bar?")
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(q.result.answer, "White.");
        assert_eq!(
            (q.camera_id.as_str(), q.width, q.height),
            (id, fitted.0, fitted.1)
        );
        let req = mock.requests().pop().expect("the mock was asked");
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
        assert_eq!(req.size, fitted, "{id}: fitted to 768 on its long side");
        check_color_band(&req.jpeg, fitted.0, fitted.1);
        let on_owner = mgrs[owner]
            .snapshot(id, SnapshotOptions::full())
            .await
            .unwrap();
        assert_eq!(q.seq, on_owner.seq, "{id}: the owner's current picture");
        cam.set_video_paused(false);
    }

    // A watch through the non-owner: its first answer, then the end once the camera leaves.
    let owner = mgrs.iter().position(|m| m.status("wide").is_ok()).unwrap();
    let vision = nodes[1 - owner].moondream(md.clone()).unwrap();
    let unknown = vision
        .watch("no-such-cam", "Anyone?", WatchOptions::default())
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
    mock.set_default(Reply::Answer("Yes.".into()));
    // Another process following watches on NATS, without camkit.
    let tap = async_nats::connect(nats.url())
        .await
        .expect("a raw NATS client");
    let mut published = tap
        .subscribe("mdtest.events.watch.>")
        .await
        .expect("subscribes");
    tap.flush().await.unwrap();
    let (handle, mut events) = vision
        .watch(
            "wide",
            "Is there a colour band?",
            WatchOptions::every(Duration::from_millis(200)),
        )
        .unwrap();
    let first = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("a first answer")
        .expect("the watch runs")
        .expect("an answer, not an error");
    assert_eq!(first.answer, "Yes.");
    assert!(first.previous_answer.is_none());
    let msg = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut published))
        .await
        .expect("the answer is published on NATS")
        .expect("the tap runs");
    // `wide`, base64url without padding.
    assert_eq!(msg.subject.as_str(), "mdtest.events.watch.d2lkZQ");
    let body: serde_json::Value = serde_json::from_slice(&msg.payload).expect("JSON");
    assert_eq!(body["cameraId"], "wide");
    assert_eq!(body["question"], "Is there a colour band?");
    assert_eq!(body["answer"], "Yes.");
    assert_eq!(body["seq"], first.seq);
    assert_eq!(body["node"], format!("md-{}", 1 - owner));
    let req = mock.requests().pop().unwrap();
    assert_eq!(req.size, (768, 432));
    check_color_band(&req.jpeg, 768, 432);
    nodes[0].disconnect("wide").await.expect("disconnects");
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match events.next().await {
                Some(Ok(_)) => continue,
                other => break other,
            }
        }
    })
    .await
    .expect("the watch ends");
    match end {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        other => panic!("want NOT_FOUND, got {other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, events.next())
        .await
        .unwrap()
        .is_none());
    assert!(!handle.is_running());
    for n in &nodes {
        n.leave().await;
    }
}
