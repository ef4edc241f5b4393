//! `camkit_subscription`: frames of one camera delivered to a C callback on a dedicated
//! thread.
//!
//! The delivery thread waits for the next frame inside `block_on` on the manager's runtime
//! and calls the callback *outside* it, so the callback may call any camkit function
//! (snapshot, status, even `camkit_manager_free`) without deadlocking the runtime. Free
//! joins the thread: once it returns, no callback is running or will run.

use std::cell::Cell;
use std::os::raw::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use camkit::{CameraManager, SubscribeOptions};
use tokio::sync::watch;

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, arg_str, into_handle, Out};
use crate::frame::{camkit_frame, encoding};
use crate::manager::{camkit_manager, manager_arg};
use crate::sub_stream::stream_choice;

/// Called with each frame of a subscription, on the subscription's own delivery thread
/// (one thread per subscription, never the caller's thread and never two calls at once
/// for one subscription). `userdata` is the pointer given to `camkit_subscribe`. `frame`
/// is borrowed for the duration of the call: keep it with `camkit_frame_clone`, never
/// free it. A slow callback does not queue frames: the pictures that arrive meanwhile
/// are skipped and the next call gets the newest one. The callback must not unwind (no
/// C++ exception or longjmp out of it).
pub type camkit_frame_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, frame: *const camkit_frame)>;

/// Options for `camkit_subscribe`. Zero every field for the defaults.
#[repr(C)]
pub struct camkit_subscribe_options {
    /// At most this many frames per second, 0.1-60; 0 = 15.
    pub fps: f64,
    /// Scale down to at most this many pixels wide (never up), 16-16384; 0 = full size.
    pub max_width: u32,
    /// JPEG quality 1-100; 0 = the camera's `jpeg_quality`.
    pub quality: u32,
    /// Which stream serves it, a `camkit_stream_choice`; 0 = `CAMKIT_STREAM_AUTO`. The
    /// subscription looks again at least every second (a sub-stream that goes off hands
    /// over to the main stream, and back).
    pub stream: u32,
}

/// A live subscription to one camera's frames: see `camkit_subscribe`. Free it with
/// `camkit_subscription_free`.
pub struct camkit_subscription {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// Tells its delivery thread apart (see [`DELIVERING`]).
    serial: u64,
    /// Keeps the manager's runtime alive while the delivery thread blocks on it, even
    /// after `camkit_manager_free`.
    _manager: CameraManager,
}

/// Numbers subscriptions, from 1.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// On a delivery thread, the serial of its subscription; 0 elsewhere. (A thread-local
    /// rather than `thread::current().id()`: that would make std allocate a handle for the
    /// caller's thread that is never freed, which valgrind reports as possibly lost.)
    static DELIVERING: Cell<u64> = const { Cell::new(0) };
}

/// The caller's `userdata`, handed to the delivery thread.
struct Userdata(*mut c_void);
// SAFETY: camkit never dereferences it; the caller chose to have it used on the delivery
// thread (documented on camkit_subscribe).
unsafe impl Send for Userdata {}
impl Userdata {
    /// The caller's pointer, for the callback.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Subscribes to camera `id`'s frames: `callback(userdata, frame)` is called with the
/// newest picture as JPEG at no more than `options->fps` frames per second, on a
/// dedicated delivery thread that camkit starts for this subscription. `options` may be
/// NULL for the defaults. `userdata` is passed through untouched; whatever it points to
/// is used from the delivery thread, so it must be safe to use there.
///
/// While a subscription lives its camera decodes every frame. Callbacks stop when the
/// camera is disconnected or the manager freed; the subscription must still be freed.
/// Stores the subscription in `*out` (free it with `camkit_subscription_free`).
/// `CAMKIT_NOT_FOUND` for an unknown id, `CAMKIT_INVALID_INPUT` for bad options.
#[no_mangle]
pub unsafe extern "C" fn camkit_subscribe(
    mgr: *const camkit_manager,
    id: *const c_char,
    options: *const camkit_subscribe_options,
    callback: camkit_frame_callback,
    userdata: *mut c_void,
    out: *mut *mut camkit_subscription,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options` nullable).
        let (m, id, options, out) = unsafe {
            (
                manager_arg(mgr)?,
                arg_str(id, "id")?,
                options.as_ref(),
                Out::new(out, "out")?,
            )
        };
        let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
        let mut opts = SubscribeOptions::default();
        if let Some(o) = options {
            if o.fps != 0.0 {
                opts.fps = o.fps;
            }
            let enc = encoding(o.max_width, o.quality)?;
            opts.max_width = enc.max_width;
            opts.quality = enc.quality;
            opts.stream = stream_choice(o.stream)?;
        }
        let sub = m.cameras.subscribe(id, opts)?;
        let handle = m.cameras.runtime().clone();
        let (stop, stopped) = watch::channel(false);
        let userdata = Userdata(userdata);
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("camkit-sub".into())
            .spawn(move || {
                DELIVERING.with(|d| d.set(serial));
                deliver(handle, sub, stopped, callback, userdata)
            })
            .map_err(|e| {
                FfiError::new(
                    camkit_result::CAMKIT_INTERNAL,
                    format!("cannot start the subscription's delivery thread: {e}"),
                )
            })?;
        out.write(into_handle(camkit_subscription {
            stop,
            serial,
            thread: Some(thread),
            _manager: m.cameras.clone(),
        }));
        Ok(())
    })
}

type Callback = unsafe extern "C" fn(userdata: *mut c_void, frame: *const camkit_frame);

/// The delivery thread: waits for a frame inside `block_on`, calls back outside it.
fn deliver(
    handle: tokio::runtime::Handle,
    mut sub: camkit::Subscription,
    mut stopped: watch::Receiver<bool>,
    callback: Callback,
    userdata: Userdata,
) {
    loop {
        let next = handle.block_on(async {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|s| *s) => None,
                n = sub.next() => n,
            }
        });
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                // An encode failure: the subscription stays usable.
                tracing::debug!(camera = sub.camera_id(), error = %e, "frame skipped");
                continue;
            }
        };
        if *stopped.borrow() {
            break;
        }
        let frame = camkit_frame { frame };
        // SAFETY: the caller's callback and userdata (camkit_subscribe's contract);
        // `frame` lives until the call returns.
        unsafe { callback(userdata.get(), &frame) };
    }
}

/// Asks the subscription to stop without waiting: no callback starts after the one that
/// may be running now returns. Callable from any thread, including from inside its own
/// callback (the way for a callback to end its subscription). The subscription must still
/// be freed with `camkit_subscription_free`.
#[no_mangle]
pub unsafe extern "C" fn camkit_subscription_stop(
    sub: *const camkit_subscription,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's handle (the conventions).
        let s = unsafe { arg_ref(sub, "sub") }?;
        s.stop.send_replace(true);
        Ok(())
    })
}

/// Stops the subscription, waits for a callback that is running to return, and frees it.
/// Once this returns, no callback of this subscription runs or will run: `userdata` may
/// be released. NULL is a no-op (`CAMKIT_OK`).
///
/// Must not be called from inside this subscription's own callback: that would wait for
/// itself, so it returns `CAMKIT_WOULD_DEADLOCK` and frees nothing (call
/// `camkit_subscription_stop` there, and free from another thread). From another
/// subscription's callback it is allowed, and blocks that callback until this one's
/// current callback returns.
#[no_mangle]
pub unsafe extern "C" fn camkit_subscription_free(sub: *mut camkit_subscription) -> camkit_result {
    ffi_boundary!(result, {
        if sub.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL, a live handle (the conventions).
        let s = unsafe { &*sub };
        if DELIVERING.with(Cell::get) == s.serial {
            return Err(FfiError::new(
                camkit_result::CAMKIT_WOULD_DEADLOCK,
                "camkit_subscription_free was called from inside the subscription's own \
                 callback, which it would wait for; call camkit_subscription_stop there and \
                 free the subscription from another thread",
            ));
        }
        // SAFETY: a live handle from camkit_subscribe, and this is its one free.
        let mut s = unsafe { Box::from_raw(sub) };
        s.stop.send_replace(true);
        if let Some(t) = s.thread.take() {
            // An Err means the delivery thread panicked: it has ended all the same.
            let _ = t.join();
        }
        Ok(())
    })
}
