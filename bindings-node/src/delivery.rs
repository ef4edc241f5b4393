//! Handing values from camkit's tasks to JS callbacks, one call in flight at a time.
//!
//! Subscriptions, watches and streamed answers all call JS through a bounded thread-safe
//! function and wait until the callback has returned before they produce the next value:
//! camkit's sources are latest-wins (or ordered pieces), so a slow callback never meets a
//! backlog, and the JS queue never holds more than one call (Node dispatches up to 1000
//! queued calls in one go, which would starve the event loop). [`call_and_wait`] is that
//! step; [`call_err`] queues an error-first callback's error, retrying while the queue is
//! full so that the last word (`CLOSED` after the camera went away) is not lost.

use std::time::Duration;

use napi::bindgen_prelude::{FromNapiValue, JsValuesTupleIntoVec};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use tokio::sync::oneshot;

use crate::error::{to_napi, Code};

/// How long [`call_err`] retries while the queue is full.
const ERROR_RETRY: Duration = Duration::from_secs(2);
const ERROR_RETRY_STEP: Duration = Duration::from_millis(20);

/// What happened to one call.
pub enum Call<R> {
    /// The callback ran and returned this.
    Returned(R),
    /// The callback threw this. For a callback whose exceptions go on to
    /// `uncaughtException` (see [`Deliver::send`]), never.
    Threw(napi::Error),
    /// The queue was full: the call was not made.
    Full,
    /// The JS environment is going away: the call was not made, or dropped unrun.
    Gone,
}

/// A thread-safe function called with an `A`, told when the JS callback has returned.
///
/// Implemented for both kinds napi-rs has: error-first functions (`CalleeHandled`, called
/// with `Ok(value)`; an exception the callback throws goes on to `uncaughtException`, as
/// from any other callback) and plain ones (called with the value; what the callback
/// returns or throws is handed back).
pub trait Deliver<A> {
    /// What the callback returns.
    type Return;

    /// Queues one call; `done` runs on the JS thread once the callback has returned.
    fn send(&self, value: A, done: impl FnOnce(napi::Result<Self::Return>) + 'static) -> Status;
}

impl<T, R, Args, E, const WEAK: bool, const QUEUE: usize> Deliver<T>
    for ThreadsafeFunction<T, R, Args, E, true, WEAK, QUEUE>
where
    T: 'static,
    R: FromNapiValue + 'static,
    Args: 'static + JsValuesTupleIntoVec,
    E: AsRef<str> + From<Status>,
{
    type Return = ();

    fn send(&self, value: T, done: impl FnOnce(napi::Result<()>) + 'static) -> Status {
        self.call_with_return_value(
            Ok(value),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |result, _env| {
                done(Ok(()));
                // An exception thrown by the callback goes on to `uncaughtException`.
                result.map(drop)
            },
        )
    }
}

impl<T, R, Args, E, const WEAK: bool, const QUEUE: usize> Deliver<T>
    for ThreadsafeFunction<T, R, Args, E, false, WEAK, QUEUE>
where
    T: 'static,
    R: FromNapiValue + 'static,
    Args: 'static + JsValuesTupleIntoVec,
    E: AsRef<str> + From<Status>,
{
    type Return = R;

    fn send(&self, value: T, done: impl FnOnce(napi::Result<R>) + 'static) -> Status {
        self.call_with_return_value(
            value,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |result, _env| {
                done(result);
                Ok(())
            },
        )
    }
}

/// Hands `value` to the callback and waits until it has returned.
pub async fn call_and_wait<A, F: Deliver<A>>(f: &F, value: A) -> Call<F::Return>
where
    F::Return: 'static,
{
    let (tx, rx) = oneshot::channel();
    match f.send(value, move |r| {
        let _ = tx.send(r);
    }) {
        Status::Ok => {}
        Status::QueueFull => return Call::Full,
        _ => return Call::Gone,
    }
    match rx.await {
        Ok(Ok(r)) => Call::Returned(r),
        Ok(Err(thrown)) => Call::Threw(thrown),
        // Dropped unrun: the environment is gone.
        Err(_) => Call::Gone,
    }
}

/// Queues `callback(err)` of an error-first callback, without waiting for it to return
/// (napi-rs runs no return-value callback after an error argument). While the queue is
/// full (the previous call has not run yet) it retries for up to 2 s, then gives up with a
/// warning. False when the JS environment is going away.
pub async fn call_err<T, R, Args, const WEAK: bool, const QUEUE: usize>(
    callback: &ThreadsafeFunction<T, R, Args, Code, true, WEAK, QUEUE>,
    e: &camkit::Error,
) -> bool
where
    T: 'static,
    R: FromNapiValue + 'static,
    Args: 'static + JsValuesTupleIntoVec,
{
    let deadline = tokio::time::Instant::now() + ERROR_RETRY;
    loop {
        match callback.call(Err(to_napi(e)), ThreadsafeFunctionCallMode::NonBlocking) {
            Status::QueueFull if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(ERROR_RETRY_STEP).await
            }
            Status::QueueFull => {
                tracing::warn!(error = %e, "a camkit callback is behind; an error was dropped");
                return true;
            }
            status => return status == Status::Ok,
        }
    }
}
