//! `moondream.watch()`: a question asked at an interval, answers that change handed to an
//! error-first callback through a weak thread-safe function, one call in flight.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use camkit::moondream::WatchHandle;
use camkit::{Error, ErrorKind};
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi_derive::napi;
use tokio::runtime::Handle;

use super::types::{WatchEvent, WatchStats};
use crate::delivery::{call_and_wait, call_err, Call};
use crate::error::Code;
use crate::subscription::Gate;

/// Watch events waiting for the JS thread (one in flight: see the module doc).
const WATCH_QUEUE: usize = 1;

/// `callback(err, event)` of a watch: error-first, weak, bounded.
pub(super) type WatchCallback =
    ThreadsafeFunction<WatchEvent, UnknownReturnValue, WatchEvent, Code, true, true, WATCH_QUEUE>;

/// A running watch, from `moondream.watch()`.
#[napi]
pub struct Watch {
    handle: Arc<WatchHandle>,
    /// Closed by `stop()`: no callback runs after that, not even one already queued.
    stopped: Gate,
}

impl Watch {
    /// Starts delivering `events` to `callback` (made by [`gate`](crate::subscription::gate),
    /// with its gate) from a
    /// task on `runtime`. The task holds the handle too, so the watch runs on when this
    /// object is garbage-collected.
    pub(super) fn start(
        runtime: &Handle,
        handle: WatchHandle,
        mut events: camkit::moondream::WatchEvents,
        (callback, stopped): (WatchCallback, Gate),
    ) -> Self {
        let handle = Arc::new(handle);
        let (task_handle, task_stopped) = (Arc::clone(&handle), Arc::clone(&stopped));
        runtime.spawn(async move {
            // Whether the last item was an error that ends the watch (it then needs no
            // `CLOSED` after it).
            let mut ended_by_error = false;
            while let Some(item) = events.next().await {
                if task_stopped.load(Ordering::Acquire) {
                    return;
                }
                ended_by_error = item.as_ref().err().is_some_and(|e| {
                    matches!(
                        e.kind(),
                        ErrorKind::Unauthorized
                            | ErrorKind::InvalidInput
                            | ErrorKind::NotFound
                            | ErrorKind::Closed
                    )
                });
                let delivered = match item {
                    Ok(event) => matches!(
                        call_and_wait(&callback, event.into()).await,
                        Call::Returned(())
                    ),
                    Err(e) => call_err(&callback, &e).await,
                };
                if !delivered {
                    // The JS environment is going away.
                    task_handle.stop();
                    return;
                }
            }
            if task_stopped.load(Ordering::Acquire) || ended_by_error {
                return;
            }
            let end = Error::new(
                ErrorKind::Closed,
                format!(
                    "camera {:?} was disconnected or its manager closed; the watch has ended",
                    task_handle.camera_id()
                ),
            );
            call_err(&callback, &end).await;
        });
        Watch { handle, stopped }
    }
}

#[napi]
impl Watch {
    /// Stops the watch: no further calls to Moondream, and no callback runs after this
    /// returns, not even one already queued. Idempotent.
    #[napi]
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.handle.stop();
    }

    /// Whether the watch still runs (false after `stop()`, once the camera is gone, or
    /// after an error it cannot get past).
    #[napi(getter)]
    pub fn running(&self) -> bool {
        !self.stopped.load(Ordering::Acquire) && self.handle.is_running()
    }

    /// The camera watched.
    #[napi(getter)]
    pub fn camera_id(&self) -> String {
        self.handle.camera_id().to_owned()
    }

    /// The question asked.
    #[napi(getter)]
    pub fn question(&self) -> String {
        self.handle.question().to_owned()
    }

    /// What the watch has done so far.
    #[napi(getter)]
    pub fn stats(&self) -> WatchStats {
        let s = self.handle.stats();
        WatchStats {
            asked: s.asked as f64,
            skipped_unchanged: s.skipped_unchanged as f64,
            skipped_no_picture: s.skipped_no_picture as f64,
            errors: s.errors as f64,
            events: s.events as f64,
            last_change: s.last_change,
        }
    }
}
