//! Resident memory per camera: 8 cameras of a 1080p H.264 stream connected with nobody
//! watching (decode `onDemand`), then each subscribed at 15 fps (full size, as a WebSocket
//! client of the Express server asks), then idle again. Prints the process's RSS over its
//! baseline, per camera, at each stage. A measurement, not a check: it only fails when the
//! cameras do not stream.
//!
//! Ignored by default (about a minute, and it wants a release build):
//!
//! ```sh
//! CAMKIT_CLIP=path/to/cam1080.mp4 cargo test --release -p camkit-tests --test memory -- --ignored --nocapture
//! ```
//!
//! `CAMKIT_CLIP` is the benchmark's x264 High 1080p clip (`bench/make_clips.sh`), served by
//! `bench/serve_clips.py` with a pipeline per camera; without it the cameras share the
//! GStreamer test server's live `/h264-1080` mount. glibc's allocator is left as it is in
//! production (no tuning): the figures are what a server would see.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, SubscribeOptions};
use camkit_tests::{GstServer, ProcStats};

const CAMERAS: usize = 8;
/// Longer than camkit's grace periods (5 s after a snapshot, 2 s after a subscriber), plus
/// the 10 s of idling the measurement asks for.
const IDLE_WAIT: Duration = Duration::from_secs(16);
const STREAM_FOR: Duration = Duration::from_secs(15);

/// `bench/serve_clips.py` serving one clip at `/cam`; killed on drop.
struct ClipServer {
    child: Child,
    port: u16,
}

impl ClipServer {
    fn start(clip: &Path) -> ClipServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/serve_clips.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", "0", "--clip"])
            .arg(format!("cam={}", clip.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bench/serve_clips.py starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("serve_clips.py prints READY");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("serve_clips.py said {line:?}, not READY <port>"));
        ClipServer { child, port }
    }
}

impl Drop for ClipServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mib_per_camera(now: ProcStats, base: ProcStats) -> f64 {
    (now.rss_kib as f64 - base.rss_kib as f64) / 1024.0 / CAMERAS as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: about a minute; run with --release --ignored --nocapture"]
async fn rss_per_1080p_camera() {
    let (url, _clips, _gst) = match std::env::var_os("CAMKIT_CLIP") {
        Some(clip) => {
            let s = ClipServer::start(Path::new(&clip));
            (format!("rtsp://127.0.0.1:{}/cam", s.port), Some(s), None)
        }
        None => {
            let g = GstServer::start().expect("GStreamer RTSP server starts");
            (g.url("/h264-1080"), None, Some(g))
        }
    };
    let cams = CameraManager::new();
    let base = ProcStats::now();
    println!("baseline: {base}");
    for i in 0..CAMERAS {
        let st = cams
            .connect(CameraConfig::from_url(format!("cam{i}"), url.clone()))
            .await
            .unwrap_or_else(|e| panic!("cam{i}: {e}"));
        assert_eq!((st.width, st.height), (Some(1920), Some(1080)));
    }
    let connected = ProcStats::now();
    tokio::time::sleep(IDLE_WAIT).await;
    let idle = ProcStats::now();

    let mut tasks = Vec::new();
    for i in 0..CAMERAS {
        let mut sub = cams
            .subscribe(&format!("cam{i}"), SubscribeOptions::fps(15.0))
            .expect("subscribe");
        tasks.push(tokio::spawn(async move {
            let until = Instant::now() + STREAM_FOR;
            let (mut n, mut peak) = (0u32, 0u64);
            while Instant::now() < until {
                match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                    Ok(Some(Ok(_))) => n += 1,
                    other => panic!("cam{i}: no frame ({:?})", other.map(|o| o.map(|r| r.err()))),
                }
                peak = peak.max(ProcStats::now().rss_kib);
            }
            (n, peak)
        }));
    }
    let mut frames = 0;
    let mut peak = 0;
    for t in tasks {
        let (n, p) = t.await.expect("subscriber task");
        frames += n;
        peak = peak.max(p);
    }
    let streaming = ProcStats::now();
    tokio::time::sleep(IDLE_WAIT).await;
    let idle_again = ProcStats::now();

    let peak = ProcStats {
        rss_kib: peak,
        ..streaming
    };
    println!(
        "{CAMERAS} cameras 1080p, RSS over the baseline per camera (MiB): \
         connected {:.1}, idle {:.1}, streaming at 15 fps {:.1} (peak {:.1}; {frames} frames \
         in {} s), idle again {:.1}",
        mib_per_camera(connected, base),
        mib_per_camera(idle, base),
        mib_per_camera(streaming, base),
        mib_per_camera(peak, base),
        STREAM_FOR.as_secs(),
        mib_per_camera(idle_again, base),
    );
    println!("process RSS: idle {idle}; streaming {streaming}; idle again {idle_again}");
    // 15 fps × 15 s × 8 cameras is 1800 frames; on a loaded 2-core machine fewer arrive.
    assert!(
        frames > 8 * 15 * 5,
        "only {frames} frames: the cameras did not stream"
    );
    cams.close();
}
