//! [`FfmpegReader`]: ffmpeg reading an RTSP stream and decoding every frame (`-f null`),
//! with its frame count sampled over time: the reference the link-fault matrix compares
//! camkit with.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A running `ffmpeg -rtsp_transport T -i URL -an -fps_mode passthrough -f null -`, reporting its decoded-frame
/// count ten times a second (`-progress`, `-stats_period 0.1`). Dropping it kills ffmpeg.
pub struct FfmpegReader {
    child: Child,
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    concealed: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for FfmpegReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfmpegReader")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl FfmpegReader {
    /// Starts ffmpeg on `url` with `transport` (`tcp` or `udp`).
    pub fn start(url: &str, transport: &str) -> io::Result<FfmpegReader> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
            .args(["-rtsp_transport", transport, "-i", url])
            // Every decoded picture counted once: no frame-rate conversion.
            .args([
                "-an",
                "-fps_mode",
                "passthrough",
                "-f",
                "null",
                "-progress",
                "pipe:1",
                "-stats_period",
                "0.1",
                "-",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run ffmpeg ({e}); apt-get install ffmpeg"),
                )
            })?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let concealed = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        {
            let samples = samples.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(n) = line.strip_prefix("frame=") {
                        if let Ok(n) = n.trim().parse::<u64>() {
                            samples
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((Instant::now(), n));
                        }
                    }
                }
            });
        }
        {
            let concealed = concealed.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                // libavcodec logs "error while decoding MB x y" for each damaged slice of
                // a picture it outputs anyway (concealed, smeared), at error level.
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if line.contains("error while decoding MB") || line.contains("concealing") {
                        concealed.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() < 40 {
                        log.push(line);
                    }
                }
            });
        }
        Ok(FfmpegReader {
            child,
            samples,
            concealed,
            log,
        })
    }

    /// Frames decoded so far (the last count ffmpeg reported).
    pub fn frames(&self) -> u64 {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map_or(0, |s| s.1)
    }

    /// When ffmpeg first reported more frames than it had at `since` (a count taken after
    /// `since`), if it has.
    pub fn first_frame_after(&self, since: Instant) -> Option<Instant> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let base = samples
            .iter()
            .take_while(|s| s.0 <= since)
            .last()
            .map_or(0, |s| s.1);
        samples
            .iter()
            .find(|s| s.0 > since && s.1 > base)
            .map(|s| s.0)
    }

    /// Damaged slices libavcodec reported so far (each in a picture ffmpeg output anyway,
    /// with the damage concealed; a picture can have several).
    pub fn decode_errors(&self) -> u64 {
        self.concealed.load(Ordering::Relaxed)
    }

    /// ffmpeg's first error lines.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether ffmpeg is still running (it does not reconnect: an ended input ends it).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for FfmpegReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
