//! Link faults: camkit reading the GStreamer server's 720p stream (`/h264-720`, H.264
//! High, 15 fps, 2 s GOP, ≈ 1.5 Mbit/s) through an [`ImpairedLink`] (delay, loss, a rate
//! cap, reordering, a blackout; see `camkit_tests::ImpairedLink` for how it differs from
//! netem), with the thresholds README.md states.
//!
//! `link_fault_matrix` (ignored; `--ignored --nocapture`) runs every fault with camkit and
//! with ffmpeg reading the same stream through the same link, and prints the table in
//! RELIABILITY.md:
//!
//! ```sh
//! cargo test -p camkit-tests --test link_faults -- --ignored --nocapture link_fault_matrix
//! ```

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camkit::{CameraConfig, CameraManager, DecodePolicy, Transport};
use camkit_tests::{FfmpegReader, GstServer, ImpairedLink, Impairment, LinkStats};

const PATH: &str = "/h264-720";
/// How long a blackout lasts.
const BLACKOUT: Duration = Duration::from_secs(10);
/// Longest wait for a first picture after connecting, or after a fault ends.
const PICTURE_LIMIT: Duration = Duration::from_secs(15);
/// Pause between a reader's first picture and the counting.
const SETTLE: Duration = Duration::from_millis(1500);
/// Frames are counted this long once the fault has ended and video is back.
const AFTER: Duration = Duration::from_secs(3);

fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

fn link() -> ImpairedLink {
    let addr = ([127, 0, 0, 1], server().port()).into();
    ImpairedLink::start(addr).expect("impaired link starts")
}

/// One row of the matrix: a fault, the transport, how long frames are counted under it.
#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    transport: Transport,
    fault: Impairment,
    /// Counting time under a steady fault; `None`: a blackout on a healthy link.
    window: Option<Duration>,
    /// How long a blackout lasts.
    blackout: Duration,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "TCP, 100 ms RTT, 0.1 % loss, 8 Mbit/s",
            transport: Transport::Tcp,
            fault: Impairment {
                loss: 0.001,
                rate_bps: Some(8_000_000),
                ..Impairment::rtt(ms(100))
            },
            window: Some(ms(5000)),
            blackout: BLACKOUT,
        },
        Case {
            name: "TCP, 300 ms RTT, 1 % loss, 1 Mbit/s (less than the stream)",
            transport: Transport::Tcp,
            fault: Impairment {
                loss: 0.01,
                rate_bps: Some(1_000_000),
                ..Impairment::rtt(ms(300))
            },
            window: Some(ms(8000)),
            blackout: BLACKOUT,
        },
        Case {
            name: "UDP, 2 % loss",
            transport: Transport::Udp,
            fault: Impairment {
                loss: 0.02,
                ..Impairment::NONE
            },
            window: Some(ms(6000)),
            blackout: BLACKOUT,
        },
        Case {
            name: "UDP, 5 % reordering",
            transport: Transport::Udp,
            fault: Impairment {
                reorder: 0.05,
                ..Impairment::NONE
            },
            window: Some(ms(6000)),
            blackout: BLACKOUT,
        },
        Case {
            name: "TCP, 10 s blackout",
            transport: Transport::Tcp,
            fault: Impairment {
                blackout: true,
                ..Impairment::NONE
            },
            window: None,
            blackout: BLACKOUT,
        },
        Case {
            name: "UDP, 10 s blackout",
            transport: Transport::Udp,
            fault: Impairment {
                blackout: true,
                ..Impairment::NONE
            },
            window: None,
            blackout: BLACKOUT,
        },
        // Shorter than the watchdog (`frameTimeoutMs`, 10 s): the session survives.
        Case {
            name: "TCP, 5 s blackout",
            transport: Transport::Tcp,
            fault: Impairment {
                blackout: true,
                ..Impairment::NONE
            },
            window: None,
            blackout: ms(5000),
        },
    ]
}

/// What a reader showed under one fault.
#[derive(Clone, Debug, Default)]
struct Reading {
    /// Pictures per second while the fault lasted.
    fps: f64,
    /// camkit: frames withheld or skipped (`framesDropped` + `partialFramesSkipped`);
    /// ffmpeg: damaged slices it decoded with concealment (pictures output anyway).
    dropped: u64,
    /// From the fault's end to the first picture after it.
    back_after: Option<Duration>,
    /// Pictures per second over [`AFTER`] once video was back.
    fps_after: f64,
    /// camkit: sessions reopened; ffmpeg: whether it is still running (1 = exited).
    reconnects: u64,
    /// What went wrong, if anything did (no picture at all, reader gone).
    failure: Option<String>,
    /// ffmpeg's first error lines.
    log: Vec<String>,
    /// What the link did.
    link: LinkStats,
}

/// A reader of the stream: camkit (a manager with one camera) or ffmpeg.
enum Reader {
    Camkit(CameraManager),
    Ffmpeg(FfmpegReader),
}

impl Reader {
    async fn start(kind: &str, url: String, transport: Transport) -> Result<Reader, String> {
        if kind == "ffmpeg" {
            let t = if transport == Transport::Udp {
                "udp"
            } else {
                "tcp"
            };
            return FfmpegReader::start(&url, t)
                .map(Reader::Ffmpeg)
                .map_err(|e| e.to_string());
        }
        let cams = CameraManager::new();
        let cfg = CameraConfig::from_url("cam", url)
            .transport(transport)
            .decode(DecodePolicy::Continuous);
        cams.connect(cfg).await.map_err(|e| e.to_string())?;
        Ok(Reader::Camkit(cams))
    }

    /// (pictures decoded, frames dropped, reconnects).
    fn counts(&mut self) -> (u64, u64, u64) {
        match self {
            Reader::Camkit(cams) => {
                let st = cams.status("cam").expect("camera known");
                (
                    st.frames_decoded,
                    st.frames_dropped + st.partial_frames_skipped,
                    st.reconnects,
                )
            }
            Reader::Ffmpeg(f) => {
                let exited = u64::from(!f.running());
                (f.frames(), f.decode_errors(), exited)
            }
        }
    }

    /// Waits until more than `than` pictures were decoded; returns when (or `None`).
    async fn wait_picture(&mut self, than: u64, limit: Duration) -> Option<Instant> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.counts().0 > than {
                return Some(Instant::now());
            }
            tokio::time::sleep(ms(10)).await;
        }
        None
    }
}

/// Runs `case` with one reader on a fresh link; never panics (a failure is a reading).
async fn measure(kind: &str, case: &Case) -> Reading {
    let link = link();
    let mut r = Reading::default();
    if case.window.is_some() {
        link.set(case.fault);
    }
    let mut reader = match Reader::start(kind, link.url(PATH), case.transport).await {
        Ok(reader) => reader,
        Err(e) => {
            r.failure = Some(format!("connect failed: {e}"));
            return r;
        }
    };
    if reader.wait_picture(0, PICTURE_LIMIT).await.is_none() {
        r.failure = Some("no picture under the fault".into());
        return r;
    }
    // ffmpeg outputs what it read while probing the stream in a burst: count from after.
    tokio::time::sleep(SETTLE).await;
    let window = case.window.unwrap_or(case.blackout);
    if case.window.is_none() {
        tokio::time::sleep(ms(1500)).await;
        link.set(case.fault);
    }
    let (f0, d0, r0) = reader.counts();
    tokio::time::sleep(window).await;
    let (f1, _, _) = reader.counts();
    link.set(Impairment::NONE);
    let ended = Instant::now();
    r.fps = (f1 - f0) as f64 / window.as_secs_f64();
    match reader.wait_picture(f1, PICTURE_LIMIT).await {
        Some(at) => {
            r.back_after = Some(at - ended);
            let (a, _, _) = reader.counts();
            tokio::time::sleep(AFTER).await;
            r.fps_after = (reader.counts().0 - a) as f64 / AFTER.as_secs_f64();
        }
        None => {
            r.failure = Some(format!(
                "no picture within {PICTURE_LIMIT:?} of the fault's end"
            ))
        }
    }
    let (_, d2, r2) = reader.counts();
    r.dropped = d2 - d0;
    r.reconnects = r2 - r0;
    r.link = link.stats();
    match &reader {
        Reader::Camkit(cams) => cams.close(),
        Reader::Ffmpeg(f) => r.log = f.log(),
    }
    r
}

fn row(case: &Case, kind: &str, r: &Reading) -> String {
    let back = r
        .back_after
        .map_or("—".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
    let tail = match kind {
        "camkit" => format!("{} reconnects", r.reconnects),
        _ if r.reconnects > 0 => "exited".to_owned(),
        _ => "running".to_owned(),
    };
    format!(
        "| {} | {kind} | {:.1} | {} | {back} | {:.1} | {tail}{} |",
        case.name,
        r.fps,
        r.dropped,
        r.fps_after,
        r.failure
            .as_deref()
            .map(|f| format!("; {f}"))
            .unwrap_or_default(),
    )
}

/// The whole matrix, camkit and ffmpeg one after the other on the same fault (≈ 4 min).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: the link-fault table of RELIABILITY.md (--ignored --nocapture)"]
async fn link_fault_matrix() {
    let mut rows = vec![
        "| link fault | reader | fps during the fault (of 15) | frames dropped | first picture after the fault ends | fps after | session |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    let only = std::env::var("LINK_FAULT_CASE").unwrap_or_default();
    for case in cases().into_iter().filter(|c| c.name.starts_with(&only)) {
        for kind in ["camkit", "ffmpeg"] {
            let r = measure(kind, &case).await;
            let line = row(&case, kind, &r);
            eprintln!("{line}");
            for l in &r.log {
                eprintln!("    ffmpeg: {l}");
            }
            rows.push(line);
        }
    }
    println!("\n{}\n", rows.join("\n"));
}

fn case(name_starts: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name.starts_with(name_starts))
        .expect("case listed")
}

/// Runs `case` with camkit and checks what README.md promises for it.
async fn check(name: &str, min_fps: f64, max_back: Duration, max_reconnects: u64) -> Reading {
    let c = case(name);
    let r = measure("camkit", &c).await;
    eprintln!("{}", row(&c, "camkit", &r));
    assert!(r.failure.is_none(), "{}: {r:?}", c.name);
    // The link really was impaired (and the UDP case really ran over the relay's UDP).
    let l = r.link;
    match c.transport {
        Transport::Udp => assert!(l.udp_forwarded > 100, "{}: {l:?}", c.name),
        _ => assert!(l.tcp_bytes > 100_000, "{}: {l:?}", c.name),
    }
    if c.transport == Transport::Udp && (c.fault.loss > 0.0 || c.fault.blackout) {
        assert!(l.udp_dropped > 0, "{}: {l:?}", c.name);
    }
    if c.fault.reorder > 0.0 {
        assert!(l.udp_reordered > 0, "{}: {l:?}", c.name);
    }
    assert!(
        r.fps >= min_fps,
        "{}: {:.1} fps < {min_fps}: {r:?}",
        c.name,
        r.fps
    );
    let back = r.back_after.expect("back");
    assert!(
        back <= max_back,
        "{}: picture back after {back:?} > {max_back:?}: {r:?}",
        c.name
    );
    // Nothing stuck: once the fault is over, the full frame rate again.
    assert!(
        r.fps_after >= MIN_FPS_AFTER,
        "{}: {:.1} fps after the fault: {r:?}",
        c.name,
        r.fps_after
    );
    assert!(
        r.reconnects <= max_reconnects,
        "{}: {} reconnects: {r:?}",
        c.name,
        r.reconnects
    );
    r
}

/// Frame rate once a fault is over (of 15): recovered, not limping.
const MIN_FPS_AFTER: f64 = 13.0;

/// README: a 1.5 Mbit/s 720p stream over TCP with 100 ms RTT, 0.1 % loss and an 8 Mbit/s
/// cap keeps ≥ 14 of 15 fps, without a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_100ms_rtt_and_loss_keeps_the_frame_rate() {
    check("TCP, 100 ms", 14.0, ms(500), 0).await;
}

/// README: with 300 ms RTT, 1 % loss and less capacity than the stream needs, pictures
/// keep coming (no stall, no reconnect), no fewer than ffmpeg shows through the same
/// link at the same time, and the full rate is back once the link is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_under_capacity_degrades_no_worse_than_ffmpeg() {
    let c = case("TCP, 300 ms");
    let (camkit, ffmpeg) = tokio::join!(
        check("TCP, 300 ms", MIN_FPS_UNDER_CAPACITY, ms(1000), 0),
        measure("ffmpeg", &c)
    );
    eprintln!("{}", row(&c, "ffmpeg", &ffmpeg));
    assert!(ffmpeg.failure.is_none(), "ffmpeg: {ffmpeg:?}");
    assert!(
        camkit.fps >= ffmpeg.fps - 1.0,
        "camkit {:.1} fps, ffmpeg {:.1} fps through the same link",
        camkit.fps,
        ffmpeg.fps
    );
}

/// README: UDP with 2 % loss streams on (damaged frames withheld up to the next
/// keyframe), and clean pictures are back within a GOP of the loss ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_loss_streams_on() {
    check("UDP, 2 %", MIN_FPS_UDP_LOSS, ms(2500), 0).await;
}

/// README: UDP with 5 % reordering: as loss for camkit (retina drops late packets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_reordering_streams_on() {
    check("UDP, 5 %", MIN_FPS_UDP_REORDER, ms(2500), 0).await;
}

/// README: after a 10 s blackout (100 % loss) over TCP, the picture is back within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_blackout_recovers() {
    check("TCP, 10 s blackout", 0.0, BLACKOUT_BACK, 1).await;
}

/// 1 Mbit/s carries about 10 of the 1.5 Mbit/s stream's 15 fps; camkit must deliver most
/// of that (measured 9.2–9.9, ffmpeg 9.8).
const MIN_FPS_UNDER_CAPACITY: f64 = 8.0;
/// Over lossy UDP camkit shows the frames from each intact keyframe to the next loss
/// (measured 1.0–3.2 fps at 2 % loss, 0.2–0.8 at 5 % reordering); a 6 s window can hold no
/// intact keyframe at all (p ≈ 0.3³ at 2 %), so the test asserts no rate, only that the
/// session goes on and clean video is back within a GOP.
const MIN_FPS_UDP_LOSS: f64 = 0.0;
const MIN_FPS_UDP_REORDER: f64 = 0.0;
/// The issue's target (measured 0.11–0.15 s over TCP, 0.32 s over UDP).
const BLACKOUT_BACK: Duration = Duration::from_secs(2);
