//! fault_camera: camkit's demo camera (640x360) with one fault active, for the C examples'
//! fault section in `bindings-c/tests/run_c_tests.sh`.
//!
//! ```sh
//! cargo run -p camkit-tests --example fault_camera -- --fault 503 [--port P]
//! ```
//!
//! Prints `READY <port> <url>` (the line `examples/c/demo_camera.c` prints) once it
//! listens on 127.0.0.1, then serves until stdin reaches end of file, so a test harness
//! that dies takes it along. An example rather than a `[[bin]]`: it needs `camkit`, which
//! is only a dev-dependency of this crate (the library stays independent of it).
//!
//! Faults (`camkit_demo_camera::faults`, applied from the start):
//!
//! | name | the camera |
//! |---|---|
//! | `401`, `403`, `404`, `454`, `503` | answers DESCRIBE with that status |
//! | `play-454` | answers PLAY with `454 Session Not Found` |
//! | `garbage` | answers DESCRIBE with bytes that are not RTSP, then closes |
//! | `truncated` | sends half of DESCRIBE's answer, then closes |
//! | `close-describe` | closes the connection on DESCRIBE without an answer |
//! | `silent-describe` | never answers DESCRIBE, keeps the connection open |
//! | `mpeg4` | its SDP announces MPEG-4 Part 2 (a codec camkit does not decode) |
//! | `hangup` | closes each playing connection after 5 frames |
//! | `stall` | stops sending video 1 s after the first client starts playing (RTSP goes on) |
//! | `loss` | skips 1 RTP packet in 15 |
//! | `corrupt` | damages the slice data of 1 frame in 3 |
//! | `one-session` | accepts one RTSP session at a time (`453` to another SETUP) |
//! | `none` | nothing wrong |

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use camkit_demo_camera::faults::{AnnouncedCodec, Faults, Reply};
use camkit_demo_camera::{DemoCamera, DemoCameraOptions};

const USAGE: &str = "usage: fault_camera --fault NAME [--port P]";

/// The faults by name; `None` for an unknown name. The bool: pause the video once a
/// client has played for a second (`stall`).
fn fault(name: &str) -> Option<(Faults, bool)> {
    let describe = |reply| Faults::answer("DESCRIBE", reply);
    let f = match name {
        "none" => Faults::none(),
        "401" | "403" | "404" | "454" | "503" => describe(Reply::Status(name.parse().ok()?)),
        "play-454" => Faults::answer("PLAY", Reply::Status(454)),
        "garbage" => describe(Reply::Garbage),
        "truncated" => describe(Reply::Truncated),
        "close-describe" => describe(Reply::Close),
        "silent-describe" => describe(Reply::Silence),
        "mpeg4" => Faults {
            announce_codec: AnnouncedCodec::Mpeg4,
            ..Faults::default()
        },
        "hangup" => Faults {
            hang_up_after_frames: Some(5),
            ..Faults::default()
        },
        "stall" => return Some((Faults::none(), true)),
        "loss" => Faults {
            drop_one_packet_in: Some(15),
            ..Faults::default()
        },
        "corrupt" => Faults {
            corrupt_one_frame_in: Some(3),
            ..Faults::default()
        },
        "one-session" => Faults {
            max_sessions: Some(1),
            ..Faults::default()
        },
        _ => return None,
    };
    Some((f, false))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut name = None;
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            ("--fault", Some(v)) => name = Some(v.clone()),
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(name) = name else { return usage() };
    let Some((faults, stall)) = fault(&name) else {
        eprintln!("fault_camera: unknown fault {name:?}\n{USAGE}");
        return ExitCode::from(2);
    };

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fault_camera: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = DemoCameraOptions {
        port,
        width: 640,
        height: 360,
        ..Default::default()
    };
    let cam = match rt.block_on(DemoCamera::start(opts)) {
        Ok(cam) => Arc::new(cam),
        Err(e) => {
            eprintln!("fault_camera: {e}");
            return ExitCode::FAILURE;
        }
    };
    cam.set_faults(faults);
    if stall {
        let cam = Arc::clone(&cam);
        rt.spawn(async move {
            while cam.sessions() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            cam.set_video_paused(true);
            eprintln!("fault_camera: video paused");
        });
    }

    println!("READY {} {} fault={name}", cam.port(), cam.url());
    let _ = std::io::stdout().flush();
    // Serve until stdin closes (read errors end it too).
    let mut buf = [0u8; 256];
    while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
    // Dropping the runtime ends the server and its connections.
    drop(rt);
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
