//! Moondream-sized snapshots (768 px, `stream: sub`, as camkit's Moondream takes them) of a
//! 1080p camera with a 640×360 sub-stream, against the same camera without one: this
//! process's CPU per snapshot (every thread: RTSP, decode, JPEG), both in one run, the
//! streams from GStreamer's RTSP server (its encoding is another process, not counted).
//!
//!   cargo run --release -p camkit-tests --example sub_stream_bench -- [SECS] [INTERVAL_MS]
//!
//! Each camera is connected alone (decode `onDemand`), left 7 s (past its decode grace),
//! then asked for a snapshot every interval (default 1000 ms) for SECS (default 20).
//! Prints one JSON object. `bench/sub_stream.js` measures the same through the Node binding.

use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, SnapshotOptions, StreamChoice};
use camkit_tests::GstServer;

/// utime + stime of this process in ms (clock ticks of 10 ms).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    let rest = &stat[stat.rfind(") ").expect("stat format") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 * 10.0
}

async fn measure(cfg: CameraConfig, secs: u64, interval: Duration) -> serde_json::Value {
    let cams = CameraManager::new();
    let id = cfg.id.clone();
    cams.connect(cfg).await.expect("connects");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let st0 = cams.status(&id).unwrap();
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    let mut n = 0u32;
    let mut width = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let f = cams
            .snapshot(
                &id,
                SnapshotOptions::full()
                    .max_width(768)
                    .stream(StreamChoice::Sub),
            )
            .await
            .expect("snapshot");
        width = f.width;
        n += 1;
        tokio::time::sleep_until((t0 + interval * n).into()).await;
    }
    let cpu = cpu_ms() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let st1 = cams.status(&id).unwrap();
    cams.disconnect(&id).await.unwrap();
    let sub_decoded = match (&st0.sub_stream, &st1.sub_stream) {
        (Some(a), Some(b)) => b.frames_decoded - a.frames_decoded,
        _ => 0,
    };
    serde_json::json!({
        "snapshots": n,
        "width": width,
        "cpu_ms_per_snapshot": (cpu / n as f64 * 100.0).round() / 100.0,
        "cpu_pct": (cpu / 10.0 / wall * 10.0).round() / 10.0,
        "main_frames_decoded": st1.frames_decoded - st0.frames_decoded,
        "sub_frames_decoded": sub_decoded,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map_or(20, |s| s.parse().expect("SECS"));
    let interval = Duration::from_millis(
        args.next()
            .map_or(1000, |s| s.parse().expect("INTERVAL_MS")),
    );
    let gst = GstServer::start().expect("GStreamer RTSP server starts");
    let url = gst.url("/h264-1080");
    let main_only = measure(CameraConfig::from_url("main-only", &url), secs, interval).await;
    let with_sub = measure(
        CameraConfig {
            sub_stream: Some("/high".into()),
            ..CameraConfig::from_url("with-sub", &url)
        },
        secs,
        interval,
    )
    .await;
    let ratio = main_only["cpu_ms_per_snapshot"].as_f64().unwrap()
        / with_sub["cpu_ms_per_snapshot"].as_f64().unwrap();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "secs": secs,
            "interval_ms": interval.as_millis() as u64,
            "main_only": main_only,
            "with_sub_stream": with_sub,
            "cpu_ratio_main_over_sub": (ratio * 100.0).round() / 100.0,
        }))
        .unwrap()
    );
}
