//! Frame subscriptions: the newest picture at no more than a requested rate.
//!
//! Latest wins: a subscription holds no queue. When its consumer is slow, the pictures
//! that arrived meanwhile are skipped and the next call returns the newest one. While a
//! subscription lives, its camera decodes every frame (see `decode_worker`).
//!
//! A camera with a sub-stream serves a subscription from the stream its options pick
//! (see [`StreamChoice`](crate::StreamChoice)), looked at again at least every second: a
//! subscription on the sub-stream moves to the main stream when the sub-stream stops and
//! back when it returns. Only the stream serving it decodes for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::camera::Camera;
use crate::error::Result;
use crate::frame::{Frame, SnapshotOptions, SubscribeOptions};
use crate::status::CameraState;

/// How often a subscription on a camera with a sub-stream looks again at which stream
/// should serve it, while it waits for a picture.
const REPICK_EVERY: Duration = Duration::from_secs(1);

/// A live subscription to one camera's frames. Dropping it unsubscribes.
pub struct Subscription {
    /// The camera (its main stream).
    main: Arc<Camera>,
    /// The stream serving the subscription now: `main` or its sub-stream.
    camera: Arc<Camera>,
    seq: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    encoding: SnapshotOptions,
    interval: Duration,
    next_at: Instant,
    last_seq: u64,
}

impl Subscription {
    pub(crate) fn new(main: Arc<Camera>, opts: SubscribeOptions) -> Self {
        let encoding = opts.encoding();
        let camera = main.pick(encoding.max_width, encoding.stream);
        let seq = camera.subscribe();
        let stop = main.stop_watch();
        Subscription {
            main,
            encoding,
            interval: Duration::from_secs_f64(1.0 / opts.fps),
            next_at: Instant::now(),
            last_seq: 0,
            seq,
            stop,
            camera,
        }
    }

    /// The camera this subscription follows.
    pub fn camera_id(&self) -> &str {
        self.main.id()
    }

    /// Moves the subscription to the stream its options pick now, when that is another
    /// one; returns whether it moved. Sequence numbers count per stream: the next frame is
    /// the new stream's newest.
    fn repick(&mut self) -> bool {
        let picked = self
            .main
            .pick(self.encoding.max_width, self.encoding.stream);
        if Arc::ptr_eq(&picked, &self.camera) {
            return false;
        }
        self.seq = picked.subscribe();
        let old = std::mem::replace(&mut self.camera, picked);
        old.unsubscribe();
        self.last_seq = 0;
        true
    }

    /// The next frame: newer than the last one returned, no sooner than 1/fps after it.
    ///
    /// Waits while the camera reconnects. Returns `None` once the camera is disconnected
    /// or the manager closed; `Some(Err(_))` when a picture could not be encoded (the
    /// subscription stays usable).
    pub async fn next(&mut self) -> Option<Result<Frame>> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            // Rate limit first: what arrives while we wait is simply newer.
            tokio::select! {
                // A twentieth of an interval early: timer jitter must not make a frame that
                // arrives on time wait for the next one.
                _ = tokio::time::sleep_until(self.next_at - self.interval / 20) => {}
                _ = self.stop.wait_for(|s| *s) => return None,
            }
            self.repick();
            // Wait for a picture newer than the last one.
            loop {
                let current = *self.seq.borrow_and_update();
                if current > self.last_seq {
                    break;
                }
                let has_sub = self.main.has_sub();
                let ended = tokio::select! {
                    r = self.seq.changed() => r.is_err(),
                    _ = self.stop.wait_for(|s| *s) => return None,
                    // The stream serving it may have stopped, or the sub-stream come back.
                    _ = tokio::time::sleep(REPICK_EVERY), if has_sub => false,
                };
                if !self.repick() && ended {
                    return None;
                }
            }
            let Some(pic) = self.camera.cached_picture() else {
                continue;
            };
            if pic.seq <= self.last_seq {
                continue;
            }
            self.last_seq = pic.seq;
            // Deadlines follow each other at exactly 1/fps, so a camera sending at the
            // asked rate is delivered at that rate with no drift; a consumer more than one
            // interval late starts a new schedule rather than being owed a burst.
            let now = Instant::now();
            let base = if self.next_at + self.interval < now {
                now
            } else {
                self.next_at
            };
            self.next_at = base + self.interval;
            return Some(self.camera.encode(pic, self.encoding).await);
        }
    }

    /// The camera's state now (its main stream's).
    pub fn state(&self) -> CameraState {
        self.main.state()
    }

    /// Turns the subscription into a `futures::Stream` of frames.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Frame>> + Send {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|f| (f, s)) })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.camera.unsubscribe();
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("camera", &self.main.id())
            .field("interval", &self.interval)
            .finish()
    }
}
