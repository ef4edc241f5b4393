//! Camera operations as JS promises, without blocking the JS thread.
//!
//! The operation runs as a task on the camera manager's tokio runtime; napi-rs' future-to-
//! promise bridge (the machinery behind `#[napi] async fn`) waits for it and settles the
//! promise on the JS thread, where `map` turns the result into JS values and a camkit error
//! becomes a rejection with `err.code` (see [`crate::error`]).

use std::future::Future;

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::Env;
use tokio::runtime::Handle;

use crate::error::{internal, reject};

/// Runs `op` on `runtime` and returns a promise of `map(result)`.
pub fn spawn<'env, T, V, F, M>(
    env: &'env Env,
    runtime: &Handle,
    op: F,
    map: M,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    F: Future<Output = camkit::Result<T>> + Send + 'static,
    M: FnOnce(&Env, T) -> napi::Result<V> + 'static,
{
    let task = runtime.spawn(op);
    env.spawn_future_with_callback(
        async move { Ok(task.await) },
        move |env, joined| match joined {
            Ok(Ok(value)) => map(env, value),
            Ok(Err(e)) => Err(reject(env, &e)),
            Err(join) if join.is_cancelled() => Err(reject(
                env,
                &camkit::Error::new(
                    camkit::ErrorKind::Closed,
                    "the operation was cancelled because the runtime is shutting down",
                ),
            )),
            Err(join) => Err(reject(
                env,
                &internal(format!("a camkit task failed: {join}")),
            )),
        },
    )
}

/// A promise rejected with `e` (bad input found before any work started).
pub fn rejected<'env, V: ToNapiValue + 'static>(
    env: &'env Env,
    runtime: &Handle,
    e: camkit::Error,
) -> napi::Result<PromiseRaw<'env, V>> {
    spawn(
        env,
        runtime,
        async move { Err::<std::convert::Infallible, _>(e) },
        |_, never| match never {},
    )
}
