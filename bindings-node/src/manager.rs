//! `CameraManager`: the cameras of one application, as a JS class.

use std::sync::Arc;

use camkit::{Error, ErrorKind};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;
use parking_lot::Mutex;

use crate::config::{CameraConfig, ManagerOptions, SnapshotOptions, SubscribeOptions};
use crate::error::{convert, reject};
use crate::frame::JsFrame;
use crate::promise;
use crate::status::CameraStatus;
use crate::subscription::{gate, EventListener, Stopper, Subscription};

/// The cameras of one application: connect, disconnect, status, snapshots, subscriptions.
///
/// Camera work runs on a tokio runtime, never on the JS thread: the async methods return
/// promises, and frames and events reach their callbacks through thread-safe functions that
/// do not keep the event loop alive. Errors are `Error`s with a stable `code`
/// (`'UNAUTHORIZED'`, `'UNREACHABLE'`, `'TIMEOUT'`, `'NOT_FOUND'`, `'INVALID_INPUT'`,
/// `'CLOSED'` …) and a message that says what to do.
///
/// `close()` stops every camera; so does garbage collection of the manager, so keep a
/// reference to it for as long as its cameras should run (a `Cluster` joined with it keeps
/// them running too: see [`ManagerHold`]).
#[napi]
pub struct CameraManager {
    inner: camkit::CameraManager,
    hold: Arc<ManagerHold>,
}

/// What keeps a JS `CameraManager`'s cameras running: the manager object and every
/// `Cluster` joined with it hold one, and garbage collection of the last holder closes the
/// camkit manager and ends its event listeners. So an app that keeps only its `Cluster`
/// still serves its cameras. `close()` closes at once, whoever still holds it.
pub(crate) struct ManagerHold {
    manager: camkit::CameraManager,
    /// Event listeners, ended by `close()` (camera subscriptions end by themselves, with
    /// a last `CLOSED` call, when their camera stops).
    listeners: Arc<Mutex<Vec<Stopper>>>,
}

impl ManagerHold {
    fn close(&self) {
        self.manager.close();
        for h in self.listeners.lock().drain(..) {
            h.stop();
        }
    }
}

impl Drop for ManagerHold {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the camera manager is closed; create a new one",
    )
}

pub(crate) fn is_nullish(v: &Unknown<'_>) -> bool {
    matches!(v.get_type(), Ok(ValueType::Undefined | ValueType::Null))
}

#[napi]
impl CameraManager {
    /// A manager whose cameras run on the module's shared runtime (or a runtime of its
    /// own, with `options.workerThreads`).
    #[napi(
        constructor,
        ts_args_type = "options?: ManagerOptions | undefined | null"
    )]
    pub fn new(env: &Env, options: Option<Unknown>) -> napi::Result<Self> {
        let options: ManagerOptions = match options {
            Some(o) if !is_nullish(&o) => convert(o, "options").map_err(|e| reject(env, &e))?,
            _ => ManagerOptions::default(),
        };
        let inner = match options.worker_threads {
            Some(0) => {
                return Err(reject(
                    env,
                    &Error::invalid("workerThreads", "must be at least 1"),
                ))
            }
            // Created outside any runtime context, so camkit builds a runtime of its own.
            Some(n) => camkit::CameraManager::with_options(camkit::ManagerOptions {
                worker_threads: n as usize,
            }),
            None => camkit::CameraManager::with_runtime(crate::module_runtime()),
        };
        let hold = Arc::new(ManagerHold {
            manager: inner.clone(),
            listeners: Arc::default(),
        });
        Ok(CameraManager { inner, hold })
    }

    /// Connects a camera and waits for its first picture; resolves to its status.
    ///
    /// Rejects with `INVALID_INPUT` (the message names the field), `ALREADY_EXISTS`,
    /// `UNAUTHORIZED`, `UNREACHABLE`, `TIMEOUT`, `PROTOCOL`, `UNSUPPORTED_CODEC` … On
    /// failure the camera is forgotten, unless `config.persistent`: then it stays, retries
    /// in the background, and the failure is in its status' `lastError`.
    #[napi(
        ts_args_type = "config: CameraConfig",
        ts_return_type = "Promise<CameraStatus>"
    )]
    pub fn connect<'env>(
        &self,
        env: &'env Env,
        config: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, CameraStatus>> {
        let rt = self.inner.runtime().clone();
        let config = match convert::<CameraConfig>(config, "config").and_then(|c| c.into_core()) {
            Ok(c) => c,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        let inner = self.inner.clone();
        promise::spawn(
            env,
            &rt,
            async move { inner.connect(config).await },
            |_, s| Ok(s.into()),
        )
    }

    /// Disconnects a camera: its session is torn down, its subscriptions end, its id is
    /// free again. Rejects with `NOT_FOUND` for an unknown id.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        promise::spawn(
            env,
            self.inner.runtime(),
            async move { inner.disconnect(&id).await },
            |_, ()| Ok(()),
        )
    }

    /// Disconnects every camera.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect_all<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        promise::spawn(
            env,
            self.inner.runtime(),
            async move { inner.disconnect_all().await },
            |_, ()| Ok(()),
        )
    }

    /// The status of one camera (`NOT_FOUND` for an unknown id).
    #[napi]
    pub fn status(&self, env: &Env, id: String) -> napi::Result<CameraStatus> {
        self.inner
            .status(&id)
            .map(Into::into)
            .map_err(|e| reject(env, &e))
    }

    /// The status of every camera, sorted by id.
    #[napi]
    pub fn list(&self, env: &Env) -> napi::Result<Vec<CameraStatus>> {
        if self.inner.is_closed() {
            return Err(reject(env, &closed()));
        }
        Ok(self.inner.list().into_iter().map(Into::into).collect())
    }

    /// The latest picture of a camera as JPEG, optionally scaled down (`maxWidth`) or at
    /// another quality. Rejects with `NOT_FOUND`, `NO_FRAME` (no picture yet) …
    #[napi(
        ts_args_type = "id: string, options?: SnapshotOptions | undefined | null",
        ts_return_type = "Promise<Frame>"
    )]
    pub fn snapshot<'env>(
        &self,
        env: &'env Env,
        id: String,
        options: Option<Unknown<'env>>,
    ) -> napi::Result<PromiseRaw<'env, JsFrame>> {
        let rt = self.inner.runtime().clone();
        let options: SnapshotOptions = match options {
            Some(o) if !is_nullish(&o) => match convert(o, "options") {
                Ok(o) => o,
                Err(e) => return promise::rejected(env, &rt, e),
            },
            _ => SnapshotOptions::default(),
        };
        let inner = self.inner.clone();
        promise::spawn(
            env,
            &rt,
            async move { inner.snapshot(&id, options.into_core()?).await },
            |_, f| Ok(JsFrame(f)),
        )
    }

    /// Calls `callback(null, frame)` with the camera's newest picture, at most `fps` times
    /// a second, until `unsubscribe()`.
    ///
    /// A slow callback skips pictures rather than queueing them. When the camera is
    /// disconnected or the manager closed, the callback gets one last call with an error
    /// whose code is `'CLOSED'`. Dropping the returned object does not unsubscribe.
    #[napi(
        ts_args_type = "id: string, options: SubscribeOptions, callback: (err: Error | null, frame: Frame) => void"
    )]
    pub fn subscribe(
        &self,
        env: &Env,
        id: String,
        options: Unknown,
        callback: Unknown,
    ) -> napi::Result<Subscription> {
        let options: SubscribeOptions = convert(options, "options").map_err(|e| reject(env, &e))?;
        let callback = function_arg(callback).map_err(|e| reject(env, &e))?;
        let sub = options
            .into_core()
            .and_then(|o| self.inner.subscribe(&id, o))
            .map_err(|e| reject(env, &e))?;
        let callback = gate(env, callback).map_err(|e| reject(env, &e))?;
        Ok(Subscription::start(self.inner.runtime(), id, sub, callback))
    }

    /// Calls `callback(event)` on every state change of any camera of this manager, until
    /// `remove()` or `close()`.
    #[napi(ts_args_type = "callback: (event: CameraEvent) => void")]
    pub fn on_event(&self, env: &Env, callback: Unknown) -> napi::Result<EventListener> {
        if self.inner.is_closed() {
            return Err(reject(env, &closed()));
        }
        let callback = function_arg(callback).map_err(|e| reject(env, &e))?;
        let callback = gate(env, callback).map_err(|e| reject(env, &e))?;
        let listener = EventListener::start(self.inner.runtime(), self.inner.events(), callback);
        let mut listeners = self.hold.listeners.lock();
        listeners.retain(|h| !h.is_finished());
        listeners.push(listener.stopper());
        Ok(listener)
    }

    /// Changes a camera's decode policy at run time.
    #[napi(ts_args_type = "id: string, policy: DecodePolicy")]
    pub fn set_decode_policy(&self, env: &Env, id: String, policy: String) -> napi::Result<()> {
        let policy = policy.parse().map_err(|e| reject(env, &e))?;
        self.inner
            .set_decode_policy(&id, policy)
            .map_err(|e| reject(env, &e))
    }

    /// Stops every camera and ends every subscription and event listener; later calls fail
    /// with `'CLOSED'`. No event callback runs after this returns; each subscription gets
    /// its last call, with `'CLOSED'`, soon after. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.hold.close();
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl CameraManager {
    /// The camkit manager behind this object, for methods defined in other modules.
    pub(crate) fn core(&self) -> &camkit::CameraManager {
        &self.inner
    }

    /// A holder keeping this manager's cameras running after the JS object is collected.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn hold(&self) -> Arc<ManagerHold> {
        self.hold.clone()
    }
}
// Garbage collection of the manager drops its `hold`; the last holder's drop stops its
// cameras, even while in-flight calls still hold the camkit manager.

pub(crate) fn function_arg(v: Unknown<'_>) -> camkit::Result<Unknown<'_>> {
    match v.get_type() {
        Ok(ValueType::Function) => Ok(v),
        _ => Err(Error::invalid("callback", "must be a function")),
    }
}
