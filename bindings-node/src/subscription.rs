//! Frame subscriptions and event listeners: runtime tasks calling JS through thread-safe
//! functions.
//!
//! Both callbacks are weak thread-safe functions: they never keep the event loop alive.
//!
//! A subscription has at most one frame in flight: the task asks camkit for the next frame
//! only once the JS callback has returned from the previous one. camkit's subscription is
//! latest-wins, so a callback slower than the frame rate gets the newest picture each time
//! and never a backlog, and frames never pile up in the JS queue. It also keeps a slow
//! callback from starving the event loop: Node dispatches up to 1000 queued thread-safe
//! calls in one go, so a producer that kept the queue full would hold the JS thread there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use camkit::{Error, ErrorKind, EventStream};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::Status;
use napi_derive::napi;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::error::{to_napi, Code};
use crate::status::{CameraEvent, Frame};

/// Frames waiting for the JS thread, per subscription (see the module doc: one in flight).
const FRAME_QUEUE: usize = 1;
/// Events waiting for the JS thread, per listener. Events are rare; a listener this far
/// behind loses the newest ones (and a warning is logged).
const EVENT_QUEUE: usize = 64;

/// `callback(err, frame)`: error-first, weak, bounded.
pub type FrameCallback =
    ThreadsafeFunction<Frame, UnknownReturnValue, Frame, Code, true, true, FRAME_QUEUE>;
/// `callback(event)`: weak, bounded.
pub type EventCallback = ThreadsafeFunction<
    CameraEvent,
    UnknownReturnValue,
    CameraEvent,
    Status,
    false,
    true,
    EVENT_QUEUE,
>;

#[derive(Default)]
struct Counters {
    active: AtomicBool,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

/// A live frame subscription, returned by `CameraManager.subscribe()`.
#[napi]
pub struct Subscription {
    camera_id: String,
    task: AbortHandle,
    counters: Arc<Counters>,
}

impl Subscription {
    /// Starts delivering `sub`'s frames to `callback` from a task on `runtime`.
    pub fn start(
        runtime: &Handle,
        camera_id: String,
        mut sub: camkit::Subscription,
        callback: FrameCallback,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        counters.active.store(true, Ordering::Release);
        let c = Arc::clone(&counters);
        let id = camera_id.clone();
        let task = runtime.spawn(async move {
            while let Some(item) = sub.next().await {
                let value = item.map(Frame::from).map_err(|e| to_napi(&e));
                let (returned, js_returned) = oneshot::channel::<()>();
                let status = callback.call_with_return_value(
                    value,
                    ThreadsafeFunctionCallMode::NonBlocking,
                    move |result, _env| {
                        let _ = returned.send(());
                        // An exception thrown by the callback goes on to `uncaughtException`,
                        // as it would from any other callback.
                        result.map(drop)
                    },
                );
                match status {
                    Status::Ok => {}
                    Status::QueueFull => {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // The JS environment is going away.
                    _ => return c.active.store(false, Ordering::Release),
                }
                // An error here means the call was dropped unrun: the environment is gone.
                if js_returned.await.is_err() {
                    return c.active.store(false, Ordering::Release);
                }
                c.delivered.fetch_add(1, Ordering::Relaxed);
            }
            c.active.store(false, Ordering::Release);
            drop(sub);
            let end = Error::new(
                ErrorKind::Closed,
                format!(
                    "camera {id:?} was disconnected or its manager closed; the subscription has ended"
                ),
            );
            // The last word must not be lost to a full queue: retry for a while.
            for _ in 0..100 {
                match callback.call(Err(to_napi(&end)), ThreadsafeFunctionCallMode::NonBlocking) {
                    Status::QueueFull => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => break,
                }
            }
        });
        Subscription {
            camera_id,
            task: task.abort_handle(),
            counters,
        }
    }
}

#[napi]
impl Subscription {
    /// Stops the deliveries; no callback runs after this returns except one already
    /// queued. Idempotent.
    #[napi]
    pub fn unsubscribe(&self) {
        self.task.abort();
        self.counters.active.store(false, Ordering::Release);
    }

    /// The camera this subscription follows.
    #[napi(getter)]
    pub fn camera_id(&self) -> String {
        self.camera_id.clone()
    }

    /// Whether frames are still being delivered (false after `unsubscribe()`, or once the
    /// camera is disconnected or the manager closed).
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.counters.active.load(Ordering::Acquire) && !self.task.is_finished()
    }

    /// Frames handed to the callback.
    #[napi(getter)]
    pub fn delivered(&self) -> f64 {
        self.counters.delivered.load(Ordering::Relaxed) as f64
    }

    /// Frames not delivered because the JS queue was full (normally 0: pictures that
    /// arrive while the callback is busy are skipped before they are encoded).
    #[napi(getter)]
    pub fn dropped(&self) -> f64 {
        self.counters.dropped.load(Ordering::Relaxed) as f64
    }
}

/// A state-change listener, returned by `CameraManager.onEvent()`.
#[napi]
pub struct EventListener {
    task: AbortHandle,
}

impl EventListener {
    /// Starts delivering `events` to `callback` from a task on `runtime`.
    pub fn start(runtime: &Handle, mut events: EventStream, callback: EventCallback) -> Self {
        let task = runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                match callback.call(event.into(), ThreadsafeFunctionCallMode::NonBlocking) {
                    Status::Ok => {}
                    Status::QueueFull => {
                        tracing::warn!("camkit event listener is behind; an event was dropped")
                    }
                    _ => return,
                }
            }
        });
        EventListener {
            task: task.abort_handle(),
        }
    }

    pub(crate) fn abort_handle(&self) -> AbortHandle {
        self.task.clone()
    }
}

#[napi]
impl EventListener {
    /// Stops the deliveries. Idempotent.
    #[napi]
    pub fn remove(&self) {
        self.task.abort();
    }
}
