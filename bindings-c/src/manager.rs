//! `camkit_manager`: the cameras of one application, and the blocking calls on them.

use std::ops::Deref;
use std::os::raw::c_char;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use camkit::{CameraManager, ManagerOptions};

use crate::config::{camkit_camera_config, read_config};
use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, arg_str, block_on, into_handle, outside_runtime, Out};
use crate::status::camkit_status;

/// How long `camkit_manager_free` waits for the cameras to tear their sessions down.
const FREE_TEARDOWN: Duration = Duration::from_secs(3);

/// The cameras of one application: connect, disconnect, status, snapshots and
/// subscriptions. Thread-safe: any function may be called on it from any thread at the
/// same time. Created by `camkit_manager_new`, freed by `camkit_manager_free`.
pub struct camkit_manager {
    pub(crate) cameras: CameraManager,
    /// The calls running on this manager, which `camkit_manager_free` waits for.
    calls: Mutex<Calls>,
    /// Signalled when the last running call ends while the manager is being freed.
    calls_ended: Condvar,
}

#[derive(Default)]
struct Calls {
    running: usize,
    freeing: bool,
}

/// A call running on a manager, from [`manager_arg`] to its drop: `camkit_manager_free`
/// does not release the manager while one exists.
pub(crate) struct ManagerCall<'a>(&'a camkit_manager);

impl Deref for ManagerCall<'_> {
    type Target = camkit_manager;

    fn deref(&self) -> &camkit_manager {
        self.0
    }
}

impl Drop for ManagerCall<'_> {
    fn drop(&mut self) {
        let mut calls = self.0.lock_calls();
        calls.running -= 1;
        if calls.running == 0 && calls.freeing {
            self.0.calls_ended.notify_all();
        }
    }
}

fn closed_error() -> FfiError {
    FfiError::new(
        camkit_result::CAMKIT_CLOSED,
        "the camera manager was closed (camkit_manager_close) or is being freed \
         (camkit_manager_free); create a new one",
    )
}

/// The `mgr` argument of a call on an open manager, counted as running until dropped.
/// `CAMKIT_CLOSED` once the manager is closed or being freed.
///
/// # Safety
/// `mgr` is NULL or a manager from `camkit_manager_new` whose free has not returned (the
/// conventions).
pub(crate) unsafe fn manager_arg<'a>(
    mgr: *const camkit_manager,
) -> Result<ManagerCall<'a>, FfiError> {
    // SAFETY: per this function's contract.
    let call = unsafe { manager_call(mgr) }?;
    if call.cameras.is_closed() {
        return Err(closed_error());
    }
    Ok(call)
}

/// As [`manager_arg`], but also for a closed manager (for `camkit_manager_close`).
///
/// # Safety
/// As [`manager_arg`].
unsafe fn manager_call<'a>(mgr: *const camkit_manager) -> Result<ManagerCall<'a>, FfiError> {
    // SAFETY: per this function's contract.
    let m = unsafe { arg_ref(mgr, "mgr") }?;
    let mut calls = m.lock_calls();
    if calls.freeing {
        return Err(closed_error());
    }
    calls.running += 1;
    Ok(ManagerCall(m))
}

impl camkit_manager {
    /// The call counter; nothing panics while holding it, so poisoning is ignored.
    fn lock_calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops every camera (waiting up to [`FREE_TEARDOWN`] for their sessions to end) and
    /// refuses further calls. Idempotent.
    fn close(&self) {
        let cameras = &self.cameras;
        if !cameras.is_closed() {
            let _ = block_on(cameras.runtime(), async {
                tokio::time::timeout(FREE_TEARDOWN, cameras.disconnect_all()).await
            });
        }
        cameras.close();
    }
}

/// Options for `camkit_manager_new`. Zero every field for the defaults.
#[repr(C)]
pub struct camkit_manager_options {
    /// Threads of the manager's I/O runtime (RTSP sessions, timers); 0 = 2. Decoding and
    /// JPEG encoding run on threads of their own, not these.
    pub worker_threads: u32,
}

/// Creates a manager with its own runtime threads and stores it in `*out`.
///
/// `options` may be NULL for the defaults. Free the manager with `camkit_manager_free`.
#[no_mangle]
pub unsafe extern "C" fn camkit_manager_new(
    options: *const camkit_manager_options,
    out: *mut *mut camkit_manager,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let out = unsafe { Out::new(out, "out") }?;
        // SAFETY: as above; NULL means defaults.
        let options = unsafe { options.as_ref() };
        let mut opts = ManagerOptions::default();
        if let Some(o) = options {
            if o.worker_threads > 64 {
                return Err(FfiError::invalid(
                    "worker_threads",
                    format!("{} is more than 64", o.worker_threads),
                ));
            }
            if o.worker_threads != 0 {
                opts.worker_threads = o.worker_threads as usize;
            }
        }
        // A manager created inside a tokio runtime would use that runtime; a C caller's
        // manager owns its threads, so it is created outside any runtime context.
        let cameras = outside_runtime(|| CameraManager::with_options(opts));
        out.write(into_handle(camkit_manager {
            cameras,
            calls: Mutex::default(),
            calls_ended: Condvar::new(),
        }));
        Ok(())
    })
}

/// Closes the manager without freeing it: disconnects every camera (waiting up to 3 s for
/// their RTSP sessions to be torn down), ends its subscriptions' callbacks, and makes every
/// later call on it fail with `CAMKIT_CLOSED`. Calls running on other threads return soon
/// (a blocked `camkit_connect` with `CAMKIT_CLOSED`). Idempotent; the manager must still be
/// freed with `camkit_manager_free`.
///
/// The way to shut down while other threads may still call the manager: close it, let
/// those threads see `CAMKIT_CLOSED` and finish, then free it.
#[no_mangle]
pub unsafe extern "C" fn camkit_manager_close(mgr: *const camkit_manager) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let m = unsafe { manager_call(mgr) }?;
        m.close();
        Ok(())
    })
}

/// Closes the manager (as `camkit_manager_close`) and frees it. NULL is a no-op.
///
/// Calls already running on the manager in other threads (a `camkit_connect` waiting for a
/// camera, a snapshot) are not cut off from under them: they return soon, with
/// `CAMKIT_CLOSED` or their result, and this function waits for them before it releases
/// the manager. No call may *start* on the manager once this function has been called:
/// the handle is gone (use `camkit_manager_close` first when other threads may still call).
///
/// Subscriptions may still be live: their cameras stop, so their callbacks stop soon, but
/// each must still be freed with `camkit_subscription_free`; the manager's runtime threads
/// end when the last of them is freed. Frames and statuses stay valid until freed. May be
/// called from a subscription callback.
#[no_mangle]
pub unsafe extern "C" fn camkit_manager_free(mgr: *mut camkit_manager) {
    ffi_boundary!(value, {
        if mgr.is_null() {
            return;
        }
        {
            // SAFETY: non-NULL, from camkit_manager_new, not freed yet (the conventions).
            let m = unsafe { &*mgr };
            m.lock_calls().freeing = true;
            m.close();
            let mut calls = m.lock_calls();
            while calls.running > 0 {
                calls = m
                    .calls_ended
                    .wait(calls)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        // SAFETY: from camkit_manager_new, and this is its one free (the conventions); no
        // call is running on it any more, and none may start.
        let m = unsafe { Box::from_raw(mgr) };
        // Dropping the last CameraManager clone (subscriptions hold clones) shuts the
        // runtime down.
        drop(m);
    })
}

/// Connects a camera and waits for its first picture, blocking the calling thread.
///
/// The wait is bounded by the config's timeouts (each RTSP step by `rtsp_timeout_ms`, the
/// first video by `frame_timeout_ms`, the whole call by `connect_timeout_ms`). On success, when `out` is not NULL, stores the
/// camera's status in `*out` (free it with `camkit_status_free`). On failure the camera is
/// forgotten, unless `config->persistent`: then it stays, retrying in the background, the
/// call succeeds and the status says `CAMKIT_CAMERA_STATE_RECONNECTING` with the error.
///
/// Failures: `CAMKIT_INVALID_INPUT` (the message names the field), `CAMKIT_ALREADY_EXISTS`,
/// `CAMKIT_UNAUTHORIZED`, `CAMKIT_UNREACHABLE`, `CAMKIT_TIMEOUT`, `CAMKIT_PROTOCOL`,
/// `CAMKIT_UNSUPPORTED_CODEC`, `CAMKIT_CLOSED`. Several threads may connect different
/// cameras at the same time.
#[no_mangle]
pub unsafe extern "C" fn camkit_connect(
    mgr: *const camkit_manager,
    config: *const camkit_camera_config,
    out: *mut *mut camkit_status,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let m = unsafe { manager_arg(mgr) }?;
        // SAFETY: as above; `out` is nullable.
        let out = unsafe { Out::optional(out) };
        // SAFETY: as above.
        let config = unsafe { read_config(config) }?;
        // camkit bounds the whole call (the config's connect_timeout_ms), so a C caller's
        // thread never hangs here.
        let cameras = &m.cameras;
        let status = block_on(cameras.runtime(), cameras.connect(config))?;
        if let Some(out) = out {
            out.write(into_handle(camkit_status::new(status)));
        }
        Ok(())
    })
}

/// Disconnects a camera: its RTSP session is torn down (waiting up to about 2 s), its
/// subscriptions end (their callbacks stop; they must still be freed), and its id is free
/// for a new `camkit_connect`. `CAMKIT_NOT_FOUND` when no camera has that id.
#[no_mangle]
pub unsafe extern "C" fn camkit_disconnect(
    mgr: *const camkit_manager,
    id: *const c_char,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let m = unsafe { manager_arg(mgr) }?;
        // SAFETY: as above.
        let id = unsafe { arg_str(id, "id") }?;
        let cameras = &m.cameras;
        block_on(cameras.runtime(), cameras.disconnect(id))?;
        Ok(())
    })
}

/// Disconnects every camera of the manager, as `camkit_disconnect` does for one.
#[no_mangle]
pub unsafe extern "C" fn camkit_disconnect_all(mgr: *const camkit_manager) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let m = unsafe { manager_arg(mgr) }?;
        let cameras = &m.cameras;
        block_on(cameras.runtime(), cameras.disconnect_all())?;
        Ok(())
    })
}
