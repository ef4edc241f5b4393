//! Cluster mode's costs, in one run against a real nats-server (JetStream, its own port and
//! store) and GStreamer's RTSP server (its encoding is another process, not counted):
//!
//! 1. **Idle overhead**: 32 cameras nobody watches (decode `onDemand`) on one
//!    `CameraManager` standalone, then the same 32 on a one-node cluster: this process's
//!    CPU (every thread) over SECS each, and the NATS traffic of the cluster phase (the
//!    server's `/varz` counters: messages and bytes in and out, per second).
//! 2. **Snapshot latency**: a second node joins (its own manager, in this process); for a
//!    camera owned by the first node, N snapshots (640×360 JPEG) asked of the owner (local)
//!    and N asked of the second node (forwarded through NATS request-reply), alternating:
//!    p50 / p99 / mean in ms.
//! 3. **Through a non-owner**: forwarded snapshots one after another for SECS/2 from the
//!    second node: pictures per second and MB/s (the rate a poller gets).
//! 4. **Subscriptions**: for SECS/2, a frame subscription (30 fps asked, so the camera's
//!    rate) on the owner and one on the second node at the same time: frames per second
//!    each, and their delay from capture to the subscriber (p50 / p99 ms, one clock: both
//!    nodes are this process); then the same for video (fMP4): chunks and MB per second
//!    each. The NATS server's bytes out per second during each.
//!
//!   cargo run --release -p camkit-tests --example cluster_bench --features cluster -- [SECS] [N]
//!
//! SECS defaults to 20, N to 300. Needs `nats-server` (Debian package) in PATH or
//! /usr/sbin. Prints one JSON object; BENCHMARKS.md quotes it.

use std::time::{Duration, Instant};

use camkit::cluster::{Cluster, ClusterOptions};
use camkit::cluster::{ClusterSubscription, ClusterVideoSubscription};
use camkit::{CameraConfig, CameraManager, SnapshotOptions, SubscribeOptions, VideoOptions};
use camkit_tests::{GstServer, NatsServer};

const CAMERAS: usize = 32;
const KEY: &str = "cluster-bench-key-0123456789abcdef";

/// utime + stime of this process in ms (clock ticks of 10 ms).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    let rest = &stat[stat.rfind(") ").expect("stat format") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 * 10.0
}

fn configs(url: &str) -> Vec<CameraConfig> {
    (0..CAMERAS)
        .map(|i| CameraConfig::from_url(format!("cam{i:02}"), url))
        .collect()
}

/// CPU % of this process over `secs`, and the wall time.
async fn cpu_pct(secs: u64) -> f64 {
    let (c0, t0) = (cpu_ms(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let pct = (cpu_ms() - c0) / 10.0 / t0.elapsed().as_secs_f64();
    (pct * 10.0).round() / 10.0
}

fn counters(v: &serde_json::Value) -> [f64; 4] {
    ["in_msgs", "out_msgs", "in_bytes", "out_bytes"].map(|k| v[k].as_f64().unwrap_or(0.0))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] * 100.0).round() / 100.0
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    serde_json::json!({
        "n": ms.len(),
        "p50_ms": pct(&ms, 0.50),
        "p99_ms": pct(&ms, 0.99),
        "mean_ms": (mean * 100.0).round() / 100.0,
    })
}

/// Frames for `secs`: count, and each frame's delay from capture in ms.
async fn frames_for(mut sub: ClusterSubscription, secs: f64) -> (u64, Vec<f64>) {
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let (mut n, mut delays) = (0, Vec::new());
    while let Ok(Some(f)) = tokio::time::timeout_at(end, sub.next()).await {
        if let Ok(f) = f {
            n += 1;
            let d = std::time::SystemTime::now()
                .duration_since(f.captured_at)
                .unwrap_or_default();
            delays.push(d.as_secs_f64() * 1e3);
        }
    }
    (n, delays)
}

/// Video for `secs`: chunks and bytes.
async fn video_for(mut sub: ClusterVideoSubscription, secs: f64) -> (u64, usize) {
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let (mut n, mut bytes) = (0, 0);
    while let Ok(Some(c)) = tokio::time::timeout_at(end, sub.next()).await {
        n += 1;
        bytes += c.data.len();
    }
    (n, bytes)
}

fn per_s(n: f64, wall: f64) -> f64 {
    (n / wall * 10.0).round() / 10.0
}

fn options(nats: &NatsServer, node: &str) -> ClusterOptions {
    ClusterOptions {
        prefix: "bench".into(),
        ..ClusterOptions::new(nats.url(), node, KEY)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map_or(20, |s| s.parse().expect("SECS"));
    let n: usize = args.next().map_or(300, |s| s.parse().expect("N"));
    let nats = NatsServer::start().expect("nats-server starts");
    let gst = GstServer::start().expect("GStreamer RTSP server starts");
    // One shared 640x360 H.264 pipeline for every client (gst-rtsp-server shared factory).
    let url = gst.url("/high");
    let settle = Duration::from_secs(8);

    // 1a. Standalone.
    let standalone = CameraManager::new();
    for cfg in configs(&url) {
        standalone.connect(cfg).await.expect("connects");
    }
    tokio::time::sleep(settle).await;
    let standalone_cpu = cpu_pct(secs).await;
    standalone.disconnect_all().await.unwrap();
    drop(standalone);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1b. The same cameras in a one-node cluster.
    let mgr_a = CameraManager::new();
    let a = Cluster::join(mgr_a.clone(), options(&nats, "node-a"))
        .await
        .expect("joins");
    for cfg in configs(&url) {
        a.connect(cfg).await.expect("connects through the cluster");
    }
    tokio::time::sleep(settle).await;
    let v0 = counters(&nats.varz().expect("varz"));
    let t0 = Instant::now();
    let cluster_cpu = cpu_pct(secs).await;
    let v1 = counters(&nats.varz().expect("varz"));
    let wall = t0.elapsed().as_secs_f64();
    let rate = |i: usize| ((v1[i] - v0[i]) / wall).round();
    let traffic = serde_json::json!({
        "in_msgs_per_s": rate(0),
        "out_msgs_per_s": rate(1),
        "in_bytes_per_s": rate(2),
        "out_bytes_per_s": rate(3),
    });
    assert_eq!(
        mgr_a.list().len(),
        CAMERAS,
        "every camera runs on the one node"
    );

    // 2. A second node; a camera node-a keeps.
    let mgr_b = CameraManager::new();
    let b = Cluster::join(mgr_b.clone(), options(&nats, "node-b"))
        .await
        .expect("second node joins");
    // Rendezvous moves about half of the cameras to node-b: node-a stops them, node-b
    // claims their leases and starts them. Wait until all run again (up to 60 s).
    let t_move = Instant::now();
    while mgr_b.list().is_empty()
        || mgr_a.list().len() + mgr_b.list().len() < CAMERAS
        || mgr_b
            .list()
            .iter()
            .any(|s| s.state != camkit::CameraState::Streaming)
    {
        assert!(
            t_move.elapsed() < Duration::from_secs(60),
            "cameras did not settle on two nodes: {:?}",
            b.view()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rebalance_s = t_move.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_a: Vec<String> = mgr_a.list().into_iter().map(|s| s.id).collect();
    let on_b = mgr_b.list().len();
    let id = on_a.first().expect("node-a keeps some cameras").clone();
    let opts = SnapshotOptions::full();
    for _ in 0..10 {
        a.snapshot(&id, opts).await.expect("warm-up local");
        b.snapshot(&id, opts).await.expect("warm-up forwarded");
    }
    let (mut local, mut forwarded) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut jpeg_bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let f = a.snapshot(&id, opts).await.expect("local snapshot");
        local.push(t.elapsed().as_secs_f64() * 1e3);
        jpeg_bytes = f.jpeg.len();
        let t = Instant::now();
        b.snapshot(&id, opts).await.expect("forwarded snapshot");
        forwarded.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (local, forwarded) = (summary(local), summary(forwarded));

    // 3. Forwarded snapshots back to back through the non-owner.
    let t0 = Instant::now();
    let (mut pics, mut bytes) = (0u64, 0usize);
    let mut last_seq = 0;
    let mut new_pictures = 0u64;
    while t0.elapsed() < Duration::from_secs((secs / 2).max(1)) {
        let f = b.snapshot(&id, opts).await.expect("forwarded");
        pics += 1;
        bytes += f.jpeg.len();
        if f.seq != last_seq {
            new_pictures += 1;
            last_seq = f.seq;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let camera_fps = mgr_a.status(&id).map(|s| s.fps).unwrap_or(0.0);

    // 4. Subscriptions on the owner and through the non-owner, at the same time.
    let phase = (secs as f64 / 2.0).max(1.0);
    let out_bytes = || {
        nats.varz().expect("varz")["out_bytes"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let fps30 = SubscribeOptions::fps(30.0);
    let (sa, sb) = (
        a.subscribe(&id, fps30).await.expect("local subscription"),
        b.subscribe(&id, fps30)
            .await
            .expect("subscription through the non-owner"),
    );
    let (o0, t0) = (out_bytes(), Instant::now());
    let ((fa, da), (fb, db)) = tokio::join!(frames_for(sa, phase), frames_for(sb, phase));
    let frames_wall = t0.elapsed().as_secs_f64();
    let frames_nats = (out_bytes() - o0) / frames_wall;
    let (va, vb) = (
        a.subscribe_video(&id, VideoOptions::default())
            .await
            .expect("local video"),
        b.subscribe_video(&id, VideoOptions::default())
            .await
            .expect("video through the non-owner"),
    );
    let (o0, t0) = (out_bytes(), Instant::now());
    let ((ca, ba), (cb, bb)) = tokio::join!(video_for(va, phase), video_for(vb, phase));
    let video_wall = t0.elapsed().as_secs_f64();
    let video_nats = (out_bytes() - o0) / video_wall;

    b.leave().await;
    a.leave().await;
    let ratio = cluster_cpu / standalone_cpu;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "cameras": CAMERAS,
            "secs": secs,
            "stream": "640x360 H.264 (GStreamer /high, one shared pipeline), decode onDemand",
            "idle": {
                "standalone_cpu_pct": standalone_cpu,
                "one_node_cluster_cpu_pct": cluster_cpu,
                "cluster_over_standalone": (ratio * 100.0).round() / 100.0,
                "cluster_extra_cpu_pct": ((cluster_cpu - standalone_cpu) * 10.0).round() / 10.0,
                "nats": traffic,
            },
            "two_nodes": {
                "on_node_a": on_a.len(),
                "on_node_b": on_b,
                "rebalance_s": (rebalance_s * 10.0).round() / 10.0,
            },
            "snapshot_latency": {
                "camera": id,
                "jpeg_bytes": jpeg_bytes,
                "local": local,
                "forwarded": forwarded,
            },
            "through_non_owner": {
                "kind": "forwarded snapshots back to back",
                "pictures_per_s": (pics as f64 / wall * 10.0).round() / 10.0,
                "new_pictures_per_s": (new_pictures as f64 / wall * 10.0).round() / 10.0,
                "mb_per_s": (bytes as f64 / wall / 1e6 * 100.0).round() / 100.0,
                "camera_fps": (camera_fps * 10.0).round() / 10.0,
            },
            "subscriptions": {
                "secs": phase,
                "frames_local": { "fps": per_s(fa as f64, frames_wall), "delay": summary(da) },
                "frames_through_non_owner": { "fps": per_s(fb as f64, frames_wall), "delay": summary(db) },
                "frames_nats_out_kb_per_s": (frames_nats / 1e3).round(),
                "video_local": {
                    "chunks_per_s": per_s(ca as f64, video_wall),
                    "mb_per_s": (ba as f64 / video_wall / 1e6 * 1000.0).round() / 1000.0,
                },
                "video_through_non_owner": {
                    "chunks_per_s": per_s(cb as f64, video_wall),
                    "mb_per_s": (bb as f64 / video_wall / 1e6 * 1000.0).round() / 1000.0,
                },
                "video_nats_out_kb_per_s": (video_nats / 1e3).round(),
            },
        }))
        .unwrap()
    );
}
