//! Frame subscriptions and event listeners: runtime tasks calling JS through thread-safe
//! functions.
//!
//! Both callbacks are weak thread-safe functions: they never keep the event loop alive.
//!
//! A subscription has at most one frame in flight ([`crate::delivery`]): the task asks
//! camkit for the next frame only once the JS callback has returned from the previous one. camkit's subscription is
//! latest-wins, so a callback slower than the frame rate gets the newest picture each time
//! and never a backlog, and frames never pile up in the JS queue. It also keeps a slow
//! callback from starving the event loop: Node dispatches up to 1000 queued thread-safe
//! calls in one go, so a producer that kept the queue full would hold the JS thread there.
//!
//! The same `Subscription` class serves `CameraManager.subscribe()` and
//! `Cluster.subscribe()`: only where the frames come from differs ([`FrameSource`]).
//!
//! `unsubscribe()` and `remove()` are final: no callback runs once they have returned, not
//! even a call already waiting in the thread-safe function's queue. The thread-safe function
//! does not call the user's callback directly but a small native function ([`gate`]) that
//! checks, on the JS thread, a flag those methods set on the JS thread, and calls the
//! user's callback only while it is open. (Aborting the task alone cannot recall a queued
//! call.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use camkit::{Error, ErrorKind, EventStream};
use napi::bindgen_prelude::{
    FromNapiValue, Function, FunctionCallContext, JsValuesTupleIntoVec, TypeName, Unknown,
};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{sys, Env, JsValue, Status};
use napi_derive::napi;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::delivery::{call_and_wait, call_err, Call};
use crate::error::Code;
use crate::frame::JsFrame;
use crate::status::CameraEvent;

/// Frames waiting for the JS thread, per subscription (see the module doc: one in flight).
const FRAME_QUEUE: usize = 1;
/// Events waiting for the JS thread, per listener. Events are rare; a listener this far
/// behind loses the newest ones (and a warning is logged).
const EVENT_QUEUE: usize = 64;

/// `callback(err, frame)`: error-first, weak, bounded.
pub type FrameCallback =
    ThreadsafeFunction<JsFrame, UnknownReturnValue, JsFrame, Code, true, true, FRAME_QUEUE>;
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

/// Closed by `unsubscribe()` / `remove()` on the JS thread; read by [`gate`]'s function on
/// the JS thread before each call of the user's callback.
pub type Gate = Arc<AtomicBool>;

/// Arguments of a call, passed on unchanged from the gate function to the user's callback.
struct RawArgs(Vec<sys::napi_value>);

impl JsValuesTupleIntoVec for RawArgs {
    fn into_vec(self, _env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        Ok(self.0)
    }
}

/// Wraps the user's JS function `callback` in a native function that calls it, with the
/// same arguments, only while the returned [`Gate`] is open, and makes the thread-safe
/// function `C` from that wrapper. An exception thrown by the callback passes through.
///
/// The wrapper holds the callback by reference; both are released when the thread-safe
/// function is (the wrapper's finalizer drops the reference, on the JS thread).
pub fn gate<C: FromNapiValue + TypeName>(
    env: &Env,
    callback: Unknown<'_>,
) -> camkit::Result<(C, Gate)> {
    let closed = Gate::default();
    let wrapped = (|| -> napi::Result<C> {
        // SAFETY: a live handle of this call's scope, on the JS thread; the caller checked
        // that it is a function.
        let user = unsafe {
            Function::<RawArgs, UnknownReturnValue>::from_napi_value(env.raw(), callback.raw())
        }?
        .create_ref()?;
        let flag = Arc::clone(&closed);
        let wrapper = env.create_function_from_closure::<RawArgs, (), _>(
            "camkitCallback",
            move |ctx: FunctionCallContext| {
                if flag.load(Ordering::Acquire) {
                    return Ok(());
                }
                let args = ctx
                    .arguments::<Unknown>()?
                    .iter()
                    .map(|a| a.raw())
                    .collect();
                user.borrow_back(ctx.env)?.call(RawArgs(args))?;
                Ok(())
            },
        )?;
        // SAFETY: the wrapper was just created in this scope, on the JS thread.
        unsafe { C::from_napi_value(env.raw(), wrapper.raw()) }
    })();
    let callback = wrapped.map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("callback: cannot prepare it for calls from camkit's threads: {e}"),
        )
    })?;
    Ok((callback, closed))
}

/// Where a subscription's frames come from: this process's cameras, or a camera of the
/// cluster wherever it runs.
pub enum FrameSource {
    Local(camkit::Subscription),
    #[cfg(feature = "cluster")]
    Cluster(Box<camkit::cluster::ClusterSubscription>),
}

impl FrameSource {
    async fn next(&mut self) -> Option<camkit::Result<camkit::Frame>> {
        match self {
            FrameSource::Local(s) => s.next().await,
            #[cfg(feature = "cluster")]
            FrameSource::Cluster(s) => s.next().await,
        }
    }

    /// The final error's message, once `next` returned `None`.
    fn ended(&self, id: &str) -> String {
        match self {
            FrameSource::Local(_) => format!(
                "camera {id:?} was disconnected or its manager closed; the subscription has ended"
            ),
            #[cfg(feature = "cluster")]
            FrameSource::Cluster(_) => format!(
                "camera {id:?} was disconnected from the cluster or this node left it; the subscription has ended"
            ),
        }
    }
}

impl From<camkit::Subscription> for FrameSource {
    fn from(s: camkit::Subscription) -> Self {
        FrameSource::Local(s)
    }
}

#[derive(Default)]
struct Counters {
    active: AtomicBool,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

/// A live frame subscription, returned by `CameraManager.subscribe()` and
/// `Cluster.subscribe()`.
#[napi]
pub struct Subscription {
    camera_id: String,
    task: AbortHandle,
    counters: Arc<Counters>,
    gate: Gate,
}

impl Subscription {
    /// Starts delivering `sub`'s frames to `callback` (made by [`gate`], with its `gate`)
    /// from a task on `runtime`.
    pub fn start(
        runtime: &Handle,
        camera_id: String,
        sub: impl Into<FrameSource>,
        (callback, gate): (FrameCallback, Gate),
    ) -> Self {
        let mut sub = sub.into();
        let counters = Arc::new(Counters::default());
        counters.active.store(true, Ordering::Release);
        let c = Arc::clone(&counters);
        let id = camera_id.clone();
        let task = runtime.spawn(async move {
            while let Some(item) = sub.next().await {
                let call = match item {
                    Ok(frame) => call_and_wait(&callback, JsFrame(frame)).await,
                    // A picture that could not be encoded: the subscription goes on.
                    Err(e) if call_err(&callback, &e).await => continue,
                    Err(_) => Call::Gone,
                };
                match call {
                    Call::Returned(()) | Call::Threw(_) => {
                        c.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Call::Full => {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    // The JS environment is going away.
                    Call::Gone => return c.active.store(false, Ordering::Release),
                }
            }
            c.active.store(false, Ordering::Release);
            let end = Error::new(ErrorKind::Closed, sub.ended(&id));
            drop(sub);
            // The last word must not be lost to a full queue.
            call_err(&callback, &end).await;
        });
        Subscription {
            camera_id,
            task: task.abort_handle(),
            counters,
            gate,
        }
    }
}

#[napi]
impl Subscription {
    /// Stops the deliveries: no callback runs after this returns, not even one already
    /// queued (nor the final `CLOSED` one). Idempotent.
    #[napi]
    pub fn unsubscribe(&self) {
        self.gate.store(true, Ordering::Release);
        self.task.abort();
        self.counters.active.store(false, Ordering::Release);
    }

    /// The camera this subscription follows.
    #[napi(getter)]
    pub fn camera_id(&self) -> String {
        self.camera_id.clone()
    }

    /// Whether frames are still being delivered (false after `unsubscribe()`, or once the
    /// camera is disconnected or the manager closed; for a cluster's subscription, once
    /// the camera left the cluster or the node left it).
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
    stopper: Stopper,
}

/// Ends an event listener: its task, and (through its gate) calls already queued.
#[derive(Clone)]
pub struct Stopper {
    task: AbortHandle,
    gate: Gate,
}

impl Stopper {
    /// Stops the listener. Call on the JS thread: the gate is read there.
    pub fn stop(&self) {
        self.gate.store(true, Ordering::Release);
        self.task.abort();
    }

    /// Whether the listener has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl EventListener {
    /// Starts delivering `events` to `callback` (made by [`gate`], with its `gate`) from a
    /// task on `runtime`.
    pub fn start(
        runtime: &Handle,
        mut events: EventStream,
        (callback, gate): (EventCallback, Gate),
    ) -> Self {
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
            stopper: Stopper {
                task: task.abort_handle(),
                gate,
            },
        }
    }

    /// What ends this listener (for the manager's `close()`).
    pub(crate) fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }
}

#[napi]
impl EventListener {
    /// Stops the deliveries: no callback runs after this returns, not even one already
    /// queued. Idempotent.
    #[napi]
    pub fn remove(&self) {
        self.stopper.stop();
    }
}
