//! Watching a camera: one question asked at an interval, reporting only answers that change.
//!
//! Each tick takes the camera's latest picture and compares it with the picture last sent
//! (same picture, or a mean luma difference at most `change_threshold`: skipped, no call).
//! Otherwise the picture is sent, and the answer is compared with the previous one after
//! normalising (trimmed, trailing full stops dropped, whitespace collapsed, case ignored):
//! only a different answer becomes an event. Comparing with the last picture *sent*, not the
//! last one seen, lets a slow drift add up until it counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::client::MoondreamClient;
use super::source::Target;
use crate::error::{Error, ErrorKind, Result};
use crate::picture::LumaSummary;
use crate::util::epoch_ms;

/// Events kept for a consumer that is slow to read; while full, the watch waits (and makes
/// no calls) instead of dropping answers.
const EVENT_QUEUE: usize = 16;

/// How a watch asks.
///
/// Deserializes from camelCase JSON with the interval in milliseconds
/// (`{"everyMs":5000,"onlyWhenChanged":true,"changeThreshold":1.0}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct WatchOptions {
    /// Ask this often: 100 ms – 24 h, default 5 s. A call that takes longer delays the
    /// next tick rather than piling calls up.
    #[serde(rename = "everyMs", with = "super::millis")]
    pub every: Duration,
    /// Skip the call when the picture has not changed enough since the last picture sent.
    /// Default `true`.
    pub only_when_changed: bool,
    /// The change that counts: the mean absolute difference of luma samples (0–255, on a
    /// grid of every 8th pixel) between this picture and the last one sent. A picture is
    /// sent when its change is above this. 0 sends every new picture; default 1.0, above
    /// the compression flicker of a still scene but low enough that a person crossing part
    /// of the view counts (a moving scene scores 3–8; [`WatchStats::last_change`] shows the
    /// scores of a camera, to tune this). Pictures of a different size always count as
    /// changed.
    pub change_threshold: f64,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            every: Duration::from_secs(5),
            only_when_changed: true,
            change_threshold: 1.0,
        }
    }
}

impl WatchOptions {
    /// Every `every`, with the default change detection.
    pub fn every(every: Duration) -> Self {
        WatchOptions {
            every,
            ..Default::default()
        }
    }

    /// Checks the fields; the message names the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        if !(Duration::from_millis(100)..=Duration::from_secs(86_400)).contains(&self.every) {
            return Err(Error::invalid(
                "everyMs",
                format!("{} is not between 100 and 86400000", self.every.as_millis()),
            ));
        }
        if !self.change_threshold.is_finite() || !(0.0..=255.0).contains(&self.change_threshold) {
            return Err(Error::invalid(
                "changeThreshold",
                "must be a number from 0 to 255",
            ));
        }
        Ok(())
    }
}

/// An answer that differs from the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchEvent {
    /// The camera watched.
    pub camera_id: String,
    /// The question asked.
    pub question: String,
    /// The new answer, as Moondream gave it.
    pub answer: String,
    /// The answer before it (`None` for the first answer of the watch).
    pub previous_answer: Option<String>,
    /// The sequence number of the picture answered about.
    pub seq: u64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at_ms: u64,
    /// When the answer arrived, in ms since the Unix epoch.
    pub at_ms: u64,
}

/// What a watch has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStats {
    /// Calls made to Moondream (successful or not; retries inside a call not counted).
    pub asked: u64,
    /// Ticks skipped because the picture had not changed enough.
    pub skipped_unchanged: u64,
    /// Ticks skipped because the camera had no picture (reconnecting).
    pub skipped_no_picture: u64,
    /// Ticks that failed (reported on the event stream).
    pub errors: u64,
    /// Events emitted (answers that changed).
    pub events: u64,
    /// The change score of the last picture compared (see
    /// [`WatchOptions::change_threshold`]), for tuning it.
    pub last_change: Option<f64>,
}

#[derive(Default)]
struct Counters {
    asked: AtomicU64,
    skipped_unchanged: AtomicU64,
    skipped_no_picture: AtomicU64,
    errors: AtomicU64,
    events: AtomicU64,
    /// `f64` bits; NaN when nothing was compared yet.
    last_change: AtomicU64,
}

/// Controls a running watch: dropping it (or [`stop`](Self::stop)) ends the watch.
pub struct WatchHandle {
    camera_id: String,
    question: String,
    stop: watch::Sender<bool>,
    counters: Arc<Counters>,
    running: Arc<AtomicBool>,
}

impl WatchHandle {
    /// Ends the watch: no further calls; the events end (an answer under way is abandoned).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the watch still runs (it also ends when the camera is disconnected or an
    /// error it cannot get past occurs).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// What the watch has done so far.
    pub fn stats(&self) -> WatchStats {
        let c = &self.counters;
        let last = f64::from_bits(c.last_change.load(Ordering::Relaxed));
        WatchStats {
            asked: c.asked.load(Ordering::Relaxed),
            skipped_unchanged: c.skipped_unchanged.load(Ordering::Relaxed),
            skipped_no_picture: c.skipped_no_picture.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            last_change: (!last.is_nan()).then_some(last),
        }
    }

    /// The camera watched.
    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    /// The question asked.
    pub fn question(&self) -> &str {
        &self.question
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle")
            .field("camera", &self.camera_id)
            .field("running", &self.is_running())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The answers of a watch that changed, in order.
///
/// An `Err` item is a tick that failed (rate limited, service error, timeout …): the watch
/// goes on at the next tick. After `Unauthorized`, `InvalidInput`, `NotFound` or `Closed` it
/// ends instead, since asking again cannot help. Ticks while the camera has no picture
/// (reconnecting) are skipped silently ([`WatchStats::skipped_no_picture`]). Ends (`None`)
/// when the watch stops.
pub struct WatchEvents {
    rx: mpsc::Receiver<Result<WatchEvent>>,
}

impl WatchEvents {
    /// The next event, `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchEvent>> {
        self.rx.recv().await
    }
}

impl Stream for WatchEvents {
    type Item = Result<WatchEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl std::fmt::Debug for WatchEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchEvents")
    }
}

/// Starts the watch task on `rt`.
pub(crate) fn start(
    cam: Target,
    client: MoondreamClient,
    question: String,
    opts: WatchOptions,
    rt: &tokio::runtime::Handle,
) -> (WatchHandle, WatchEvents) {
    let (stop, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let counters = Arc::new(Counters {
        last_change: AtomicU64::new(f64::NAN.to_bits()),
        ..Default::default()
    });
    let running = Arc::new(AtomicBool::new(true));
    let handle = WatchHandle {
        camera_id: cam.camera_id().to_owned(),
        question: question.clone(),
        stop,
        counters: counters.clone(),
        running: running.clone(),
    };
    let task = Watcher {
        cam,
        client,
        question,
        opts,
        counters,
        last_sent: None,
        last_answer: None,
    };
    rt.spawn(async move {
        task.run(stop_rx, &tx).await;
        // Before the events end (the sender goes after this): a reader that saw the end
        // sees the watch stopped.
        running.store(false, Ordering::Release);
        drop(tx);
    });
    (handle, WatchEvents { rx })
}

/// The picture last sent, kept to compare the next one with.
struct Sent {
    seq: u64,
    /// Its luma, when the watch compares pictures (`only_when_changed`).
    luma: Option<LumaSummary>,
}

enum Step {
    Unchanged,
    Answered {
        sent: Sent,
        frame: crate::Frame,
        answer: String,
    },
}

struct Watcher {
    cam: Target,
    client: MoondreamClient,
    question: String,
    opts: WatchOptions,
    counters: Arc<Counters>,
    last_sent: Option<Sent>,
    last_answer: Option<String>,
}

impl Watcher {
    async fn run(mut self, mut stop: watch::Receiver<bool>, tx: &mpsc::Sender<Result<WatchEvent>>) {
        let cam = self.cam.clone();
        let cam_stopped = cam.stopped();
        tokio::pin!(cam_stopped);
        let mut ticker = tokio::time::interval(self.opts.every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // Stopping abandons a call under way: `wait_for` also returns when the handle
            // is gone.
            let step = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                _ = &mut cam_stopped => break,
                r = async {
                    ticker.tick().await;
                    self.step().await
                } => r,
            };
            let item = match step {
                Ok(Step::Unchanged) => {
                    self.counters
                        .skipped_unchanged
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(Step::Answered {
                    sent,
                    frame,
                    answer,
                }) => {
                    self.last_sent = Some(sent);
                    let changed = self
                        .last_answer
                        .as_deref()
                        .is_none_or(|prev| normalise(prev) != normalise(&answer));
                    let previous = self.last_answer.replace(answer.clone());
                    if !changed {
                        continue;
                    }
                    self.counters.events.fetch_add(1, Ordering::Relaxed);
                    Ok(WatchEvent {
                        camera_id: self.cam.camera_id().to_owned(),
                        question: self.question.clone(),
                        answer,
                        previous_answer: previous,
                        seq: frame.seq,
                        captured_at_ms: frame.captured_at_ms(),
                        at_ms: epoch_ms(SystemTime::now()),
                    })
                }
                Err(e) if e.kind() == ErrorKind::NoFrame => {
                    self.counters
                        .skipped_no_picture
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(camera = %self.cam.camera_id(), error = %e, "watch: tick failed");
                    Err(e.for_camera(self.cam.camera_id()))
                }
            };
            if let Ok(ev) = &item {
                self.cam.on_answer(ev).await;
            }
            let fatal = item.as_ref().err().is_some_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::Unauthorized
                        | ErrorKind::InvalidInput
                        | ErrorKind::NotFound
                        | ErrorKind::Closed
                )
            });
            let sent = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                r = tx.send(item) => r.is_ok(),
            };
            if !sent || fatal {
                break;
            }
        }
        tracing::debug!(camera = %self.cam.camera_id(), "watch ends");
    }

    /// One tick: the latest picture, skipped or sent.
    async fn step(&self) -> Result<Step> {
        let side = self.client.config().max_image_side;
        let pic = self.cam.latest(side).await?;
        let mut luma = None;
        if self.opts.only_when_changed {
            if let Some(last) = &self.last_sent {
                let change = if last.seq == pic.seq() {
                    0.0
                } else {
                    let now = pic.luma().await?;
                    // A picture of another size (or not decodable) counts as changed.
                    let change = match &last.luma {
                        Some(a) => a.change(&now).unwrap_or(f64::INFINITY),
                        None => f64::INFINITY,
                    };
                    luma = Some(now);
                    change
                };
                self.counters
                    .last_change
                    .store(change.to_bits(), Ordering::Relaxed);
                if change <= self.opts.change_threshold {
                    return Ok(Step::Unchanged);
                }
            } else {
                luma = Some(pic.luma().await?);
            }
        }
        let seq = pic.seq();
        let frame = pic.fitted(side).await?;
        self.counters.asked.fetch_add(1, Ordering::Relaxed);
        let a = self.client.query(&frame.jpeg, &self.question).await?;
        Ok(Step::Answered {
            sent: Sent { seq, luma },
            frame,
            answer: a.answer,
        })
    }
}

/// The form in which answers are compared: "Yes." and " yes" are the same answer.
fn normalise(s: &str) -> String {
    s.trim()
        .trim_end_matches('.')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_compare_normalised() {
        assert_eq!(normalise("  Yes. "), normalise("yes"));
        assert_eq!(normalise("Two  people\n"), normalise("two people."));
        assert_ne!(normalise("yes"), normalise("no"));
    }

    #[test]
    fn options_validate_naming_fields() {
        assert!(WatchOptions::default().validate().is_ok());
        let e = WatchOptions::every(Duration::from_millis(10))
            .validate()
            .unwrap_err();
        assert!(e.message().starts_with("everyMs"), "{e}");
        let mut o = WatchOptions {
            change_threshold: f64::NAN,
            ..Default::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .message()
            .starts_with("changeThreshold"));
        o.change_threshold = -1.0;
        assert!(o.validate().is_err());
        let o: WatchOptions =
            serde_json::from_str(r#"{"everyMs":1500,"onlyWhenChanged":false}"#).unwrap();
        assert_eq!(o.every, Duration::from_millis(1500));
        assert!(!o.only_when_changed);
        assert_eq!(o.change_threshold, 1.0);
    }
}
