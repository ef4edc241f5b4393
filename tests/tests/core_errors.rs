//! Cameras that are not there: closed ports, servers that never answer, many at once.

use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, CameraState, ErrorKind};
use camkit_tests::{closed_port_url, SilentServer};

/// Nothing listens on the port: `Unreachable`, quickly, with advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_unreachable() {
    let cams = CameraManager::new();
    let e = cams
        .connect(CameraConfig::from_url("closed", closed_port_url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    assert_eq!(e.step(), Some(camkit::RtspStep::Describe), "{e:?}");
    assert_eq!(e.status(), None, "no server answered");
    let source = std::error::Error::source(&e).expect("retina's error is the source");
    assert!(source.to_string().contains("refused"), "{source}");
    assert!(cams.list().is_empty());
}

/// A server that accepts the connection and never answers: `Timeout` at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_at_the_limit() {
    let silent = SilentServer::start();
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url("silent", silent.url());
    cfg.rtsp_timeout = Duration::from_millis(800);
    let start = Instant::now();
    let e = cams.connect(cfg).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("DESCRIBE"), "{e}");
    assert_eq!(e.step(), Some(camkit::RtspStep::Describe), "{e:?}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

/// The connect bound holds for all the steps together: a server that never answers, with
/// a long limit per RTSP step, fails at `connect_timeout` with `Timeout` and leaves no
/// camera; a persistent camera stays, still connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_bound_fires_before_the_step_limit() {
    let silent = SilentServer::start();
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url("silent", silent.url());
    cfg.rtsp_timeout = Duration::from_secs(30);
    cfg.connect_timeout = Some(Duration::from_millis(400));
    let start = Instant::now();
    let e = cams.connect(cfg.clone()).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("connectTimeoutMs"), "{e}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        cams.list().is_empty(),
        "a timed-out connect leaves no camera"
    );

    cfg.persistent = true;
    let st = cams.connect(cfg).await.unwrap();
    assert_eq!(st.state, CameraState::Connecting);
    assert_eq!(cams.list().len(), 1);
    cams.close();
}

/// Eight cameras connect concurrently: against servers that never answer, eight
/// connects with a 1 s limit end together, not one after another (which takes 8 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_run_concurrently() {
    let silent = SilentServer::start();
    let cams = CameraManager::new();
    let start = Instant::now();
    let results = futures::future::join_all((0..8).map(|i| {
        let mut cfg = CameraConfig::from_url(format!("cam{i}"), silent.url());
        cfg.rtsp_timeout = Duration::from_secs(1);
        cams.connect(cfg)
    }))
    .await;
    let took = start.elapsed();
    for r in results {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    }
    assert!(took < Duration::from_secs(4), "8 connects took {took:?}");
}

/// A persistent camera stays, retrying, when its first attempt fails; its status says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_camera_keeps_retrying() {
    let cams = CameraManager::new();
    let mut cfg = CameraConfig::from_url("p", closed_port_url());
    cfg.persistent = true;
    cfg.backoff_initial = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_millis(200);
    let st = cams
        .connect(cfg)
        .await
        .expect("a persistent camera is kept");
    assert_eq!(st.state, CameraState::Reconnecting);
    assert_eq!(st.last_error.as_ref().unwrap().kind, ErrorKind::Unreachable);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(cams.status("p").unwrap().reconnects >= 2);
    cams.disconnect("p").await.unwrap();
}
