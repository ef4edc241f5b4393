//! Soak: 16 cameras (four demo cameras, four camkit cameras on each) through hundreds of
//! connect/disconnect cycles and a period of streaming with subscriptions, snapshots and
//! camera reboots. The process must end where it started: resident memory within 10 % of
//! the warmed-up baseline (glibc's allocator tuned so RSS means memory in use, see
//! `glibc::tune_for_measurement`), the allocator's bytes in use within 1 %, and exactly as
//! many threads and open file descriptors. Each reading follows a pause long enough for
//! decode threads to end and the runtime's idle blocking threads to expire.
//!
//! `soak_16_cameras` runs in the normal test command (about a minute). The long run is
//! `soak_long`, ignored by default:
//!
//! ```sh
//! CAMKIT_SOAK_ROUNDS=30 cargo test --release -p camkit-tests --test soak -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use camkit::{
    CameraConfig, CameraManager, CameraState, DecodePolicy, SnapshotOptions, SubscribeOptions,
};
use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
use camkit_tests::ProcStats;

const CAMERAS: usize = 16;
const SERVERS: usize = 4;
/// The runtime's idle blocking threads (JPEG encodes) exit after this; measurements wait
/// longer than it so the pool is empty each time.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_millis(300);
/// RSS may grow this much over the warmed-up baseline (allocator noise, caches).
const MAX_RSS_GROWTH: f64 = 0.10;
/// The allocator's bytes in use may grow this much: lazily grown tables and caches that
/// plateau (+0.35 % over 4800 cycles measured), not a per-cycle leak.
const MAX_HEAP_GROWTH: f64 = 0.01;

#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    cycles_per_camera: usize,
    stream_for: Duration,
}

fn config(i: usize, url: &str) -> CameraConfig {
    let mut cfg = CameraConfig::from_url(format!("cam{i:02}"), url);
    cfg.backoff_initial = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_millis(500);
    cfg.rtsp_timeout = Duration::from_secs(5);
    cfg.frame_timeout = Duration::from_secs(3);
    // A mix of policies, so every decode path runs.
    cfg.decode = match i % 3 {
        0 => DecodePolicy::OnDemand,
        1 => DecodePolicy::Continuous,
        _ => DecodePolicy::Keyframes,
    };
    cfg
}

/// One camera's connect/disconnect cycles; every few cycles a snapshot or a short
/// subscription uses the stream before it goes.
async fn cycle_camera(cams: CameraManager, i: usize, url: String, cycles: usize) {
    for c in 0..cycles {
        let st = cams
            .connect(config(i, &url))
            .await
            .unwrap_or_else(|e| panic!("cam{i:02} cycle {c}: connect: {e}"));
        assert_eq!(st.state, CameraState::Streaming);
        let id = st.id;
        match (i + c) % 4 {
            0 => {
                let f = cams
                    .snapshot(&id, SnapshotOptions::full().max_width(160))
                    .await
                    .unwrap_or_else(|e| panic!("{id} cycle {c}: snapshot: {e}"));
                assert_eq!(f.width, 160);
            }
            1 => {
                let mut sub = cams.subscribe(&id, SubscribeOptions::fps(30.0)).unwrap();
                for _ in 0..2 {
                    sub.next()
                        .await
                        .expect("a frame")
                        .unwrap_or_else(|e| panic!("{id} cycle {c}: frame: {e}"));
                }
            }
            _ => {}
        }
        cams.disconnect(&id)
            .await
            .unwrap_or_else(|e| panic!("{id} cycle {c}: disconnect: {e}"));
    }
}

/// All cameras streaming for `d`: half with a subscription, the rest snapshotted now and
/// then; each demo camera reboots (drops every client) once in the middle.
async fn stream_all(cams: &CameraManager, servers: &[DemoCamera], d: Duration) {
    let connects = (0..CAMERAS).map(|i| cams.connect(config(i, &servers[i % SERVERS].url())));
    for r in futures::future::join_all(connects).await {
        r.expect("connect for streaming");
    }
    let start = Instant::now();
    let mut readers = Vec::new();
    for i in (0..CAMERAS).step_by(2) {
        let mut sub = cams
            .subscribe(&format!("cam{i:02}"), SubscribeOptions::fps(5.0))
            .unwrap();
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < d {
                // Errors and waits while a camera reboots are fine; the counts below check
                // that frames came overall.
                let next = tokio::time::timeout(Duration::from_secs(2), sub.next()).await;
                if let Ok(Some(Ok(_))) = next {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut rebooted = false;
    while start.elapsed() < d {
        for i in (1..CAMERAS).step_by(2) {
            let _ = cams
                .snapshot(&format!("cam{i:02}"), SnapshotOptions::full())
                .await;
        }
        if !rebooted && start.elapsed() > d / 2 {
            rebooted = true;
            for s in servers {
                s.drop_connections();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for r in readers {
        let n = r.await.unwrap();
        // 5 fps asked; a reboot and the start cost some.
        assert!(
            n as f64 >= d.as_secs_f64() * 2.0,
            "a subscriber got only {n} frames in {d:?}"
        );
    }
    // Every camera came back from the reboot.
    let deadline = Instant::now() + Duration::from_secs(10);
    for st in cams.list() {
        while cams.status(&st.id).unwrap().state != CameraState::Streaming {
            assert!(Instant::now() < deadline, "{} did not come back", st.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    cams.disconnect_all().await.unwrap();
    assert!(cams.list().is_empty());
}

/// glibc's allocator, as the soak measures it (Debian/Ubuntu; elsewhere these are no-ops).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
        fn mallinfo2() -> MallInfo2;
        fn mallopt(param: i32, value: i32) -> i32;
    }

    /// glibc's `struct mallinfo2` (glibc ≥ 2.33); only two fields are read, all are
    /// declared for the layout.
    #[repr(C)]
    #[allow(dead_code)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    /// `mallopt` parameters: allocations at least this big are mmapped (and unmapped on
    /// free); the most arenas glibc creates.
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;

    /// Makes RSS follow the memory in use, so a 10 % limit measures camkit, not glibc:
    ///
    /// * the mmap threshold stays at glibc's initial 128 KiB. By default glibc raises it
    ///   each time a large block is freed, after which decoder frame buffers (hundreds of
    ///   KiB, made and freed on every connect) come from arenas that keep the memory once
    ///   freed: RSS shows the allocator's high-water mark, +27 to +37 % in this test with
    ///   no byte leaked;
    /// * one arena: with one per thread (decode threads come and go with cameras), the
    ///   fragmentation of each arena makes RSS wander by ±10 % from one reading to the
    ///   next; with one, by ±1 %.
    pub fn tune_for_measurement() {
        // SAFETY: sets allocator parameters before the work starts; no memory is touched.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 128 * 1024);
            mallopt(M_ARENA_MAX, 1);
        }
    }

    /// Returns the free pages of every arena to the system.
    pub fn trim() {
        // SAFETY: malloc_trim has no preconditions; it only releases free pages.
        unsafe {
            malloc_trim(0);
        }
    }

    /// KiB allocated and not freed (heap chunks in use plus mmapped blocks): what grows,
    /// exactly, when something leaks.
    pub fn heap_in_use_kib() -> Option<u64> {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let m = unsafe { mallinfo2() };
        Some(((m.uordblks + m.hblkhd) / 1024) as u64)
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn tune_for_measurement() {}
    pub fn trim() {}
    pub fn heap_in_use_kib() -> Option<u64> {
        None
    }
}

/// A measurement: the process's resources and the allocator's bytes in use.
#[derive(Clone, Copy)]
struct Reading {
    proc: ProcStats,
    heap_kib: Option<u64>,
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.proc)?;
        if let Some(h) = self.heap_kib {
            write!(f, ", heap in use {:.2} MiB", h as f64 / 1024.0)?;
        }
        Ok(())
    }
}

/// Waits until threads and fds are back to `baseline` (decode threads exit and idle
/// blocking threads expire a moment after the cameras go), or `limit` passes, then reads.
/// Free heap pages are handed back to the system first, so RSS counts memory in use.
async fn settle(baseline: Option<Reading>, limit: Duration) -> Reading {
    tokio::time::sleep(BLOCKING_KEEP_ALIVE * 3).await;
    let start = Instant::now();
    loop {
        glibc::trim();
        let proc = ProcStats::now();
        let done = match baseline {
            Some(b) => proc.threads <= b.proc.threads && proc.fds <= b.proc.fds,
            None => true,
        };
        if done || start.elapsed() > limit {
            return Reading {
                proc,
                heap_kib: glibc::heap_in_use_kib(),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn soak(plan: Plan) {
    glibc::tune_for_measurement();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t0 = Instant::now();
        let mut servers = Vec::new();
        for _ in 0..SERVERS {
            servers.push(
                DemoCamera::start(DemoCameraOptions {
                    port: 0,
                    width: 320,
                    height: 240,
                    fps: 10,
                    bitrate_bps: 300_000,
                    gop_frames: 20,
                    ..Default::default()
                })
                .await
                .expect("demo camera"),
            );
        }
        let cams = CameraManager::new();
        let urls: Vec<String> = (0..CAMERAS).map(|i| servers[i % SERVERS].url()).collect();

        // One round of cycles and streaming, as many times as asked.
        let round = |n: usize| {
            let (cams, servers, urls) = (&cams, &servers, &urls);
            async move {
                let t = Instant::now();
                let work = (0..CAMERAS).map(|i| {
                    cycle_camera(cams.clone(), i, urls[i].clone(), plan.cycles_per_camera)
                });
                futures::future::join_all(work).await;
                let cycled = t.elapsed();
                stream_all(cams, servers, plan.stream_for).await;
                eprintln!(
                    "soak round {n}: {} connect/disconnect cycles in {cycled:?}, streamed {:?}",
                    CAMERAS * plan.cycles_per_camera,
                    plan.stream_for
                );
            }
        };

        // Warm-up: one round, so what is created once and kept (allocator arenas and
        // their fragmentation, retina, tokio and libjpeg-turbo state) is in the baseline.
        round(0).await;
        let baseline = settle(None, Duration::ZERO).await;
        eprintln!("soak baseline: {baseline} (after {:?})", t0.elapsed());

        let mut cycles = CAMERAS * plan.cycles_per_camera;
        for n in 1..=plan.rounds {
            round(n).await;
            cycles += CAMERAS * plan.cycles_per_camera;
            let now = settle(Some(baseline), Duration::from_secs(5)).await;
            eprintln!("  after round {n}: {now}");
        }

        let end = settle(Some(baseline), Duration::from_secs(10)).await;
        eprintln!(
            "soak end: {end} after {cycles} cycles, {} rounds (and the warm-up), {:?}",
            plan.rounds,
            t0.elapsed()
        );
        assert_eq!(
            end.proc.threads,
            baseline.proc.threads,
            "threads: {baseline} -> {end}; now: {:?}",
            ProcStats::thread_names()
        );
        assert_eq!(
            end.proc.fds,
            baseline.proc.fds,
            "file descriptors: {baseline} -> {end}; now: {:?}",
            ProcStats::fd_targets()
        );
        let growth = end.proc.rss_kib as f64 / baseline.proc.rss_kib as f64 - 1.0;
        assert!(
            growth <= MAX_RSS_GROWTH,
            "RSS grew {:.1} %: {baseline} -> {end}",
            growth * 100.0
        );
        if let (Some(b), Some(e)) = (baseline.heap_kib, end.heap_kib) {
            let growth = e as f64 / b as f64 - 1.0;
            assert!(
                growth <= MAX_HEAP_GROWTH,
                "heap in use grew {:.2} %: {baseline} -> {end}",
                growth * 100.0
            );
        }
        for s in servers {
            s.stop().await;
        }
    });
}

/// 16 cameras, a warm-up round and then 480 connect/disconnect cycles and 3 × 6 s of
/// streaming with a camera reboot each: threads and descriptors back to the baseline, RSS
/// within 10 % and the allocator's bytes in use within 1 % of it.
#[test]
fn soak_16_cameras() {
    soak(Plan {
        rounds: 3,
        cycles_per_camera: 10,
        stream_for: Duration::from_secs(6),
    });
}

/// The long run: `CAMKIT_SOAK_ROUNDS` rounds (default 30, about 15 minutes) of the same.
#[test]
#[ignore = "long run (minutes): cargo test --release -p camkit-tests --test soak -- --ignored"]
fn soak_long() {
    let rounds = std::env::var("CAMKIT_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let stream_secs = std::env::var("CAMKIT_SOAK_STREAM_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    soak(Plan {
        rounds,
        cycles_per_camera: 10,
        stream_for: Duration::from_secs(stream_secs),
    });
}
