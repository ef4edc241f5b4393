//! Connects to one camera and writes its current picture as a JPEG.
//!
//! ```text
//! cargo run -p camkit --example snapshot -- rtsp://user:pass@192.168.1.20/stream1 out.jpg
//! ```
use std::process::ExitCode;

use camkit::{CameraConfig, CameraManager, SnapshotOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: snapshot RTSP_URL OUT.jpg");
        return ExitCode::from(2);
    };
    let cameras = CameraManager::new();
    let result = async {
        let status = cameras.connect(CameraConfig::from_url("cam", &url)).await?;
        let frame = cameras.snapshot("cam", SnapshotOptions::full()).await?;
        Ok::<_, camkit::Error>((status, frame))
    }
    .await;
    match result {
        Ok((status, frame)) => {
            if let Err(e) = std::fs::write(&out, &frame.jpeg) {
                eprintln!("snapshot: cannot write {out}: {e}");
                return ExitCode::FAILURE;
            }
            let (w, h, n) = (frame.width, frame.height, frame.jpeg.len());
            println!("{out}: {w}x{h} JPEG, {n} bytes, codec {:?}", status.codec);
            ExitCode::SUCCESS
        }
        // camkit's messages never contain the password.
        Err(e) => {
            eprintln!("snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
