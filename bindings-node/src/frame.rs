//! Frames handed to JS without copying their JPEG.
//!
//! camkit's frame cache encodes a picture once per (size, quality) and gives every reader
//! the same reference-counted [`Bytes`]. A frame's `jpeg` reaches JS as a Node `Buffer` over
//! those very bytes (a napi external buffer) that holds one reference to them, dropped by the
//! buffer's finalizer when JS garbage-collects it. So a snapshot or a subscription frame costs
//! no allocation and no copy of the JPEG's size, and the bytes live as long as the longest
//! holder: the cache, or any `Buffer` over them, which may outlive the manager and the camera.
//!
//! Runtimes that refuse external buffers (V8's sandbox, as in Electron) get a copy instead.
//!
//! The price: the memory is shared with the cache and every other reader of the same picture,
//! so JS must treat the `Buffer` as read-only (`index.d.ts` says so on `Frame.jpeg`).
//! Repeat snapshots of one picture make several external buffers over one memory block:
//! V8 allows it (only wasm memory is registered globally; the check that aborted on this,
//! nodejs/node#32463, is gone), and the binding's tests do it on every run.

use std::ffi::c_void;
use std::ptr;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, FromNapiValue, ToNapiValue};
use napi::{check_status, sys};

use crate::status::Frame;

/// A camkit frame on its way to JS, converted on the JS thread (the `Buffer` needs it).
pub struct JsFrame(pub camkit::Frame);

impl ToNapiValue for JsFrame {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let f = val.0;
        let captured_at = f.captured_at_ms() as f64;
        let jpeg = bytes_buffer(env, f.jpeg)?;
        let frame = Frame {
            // SAFETY: a Buffer just created in this call's scope, on the JS thread.
            jpeg: unsafe { Buffer::from_napi_value(env, jpeg)? },
            width: f.width,
            height: f.height,
            seq: f.seq as f64,
            captured_at,
        };
        // SAFETY: the caller's env, on the JS thread.
        unsafe { Frame::to_napi_value(env, frame) }
    }
}

/// The finalizer of a buffer over a [`Bytes`]: drops the reference the buffer held.
unsafe extern "C" fn drop_bytes(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Bytes>` leaked by `bytes_buffer` for this buffer, and napi
    // calls a buffer's finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Bytes>()) });
}

/// A Node `Buffer` over `jpeg`'s memory (a JPEG, or any other `Bytes`: video chunks too),
/// or over a copy of it where the runtime refuses external buffers (or fails to make one).
///
/// # Safety
/// `env` is the current env, on the JS thread.
pub(crate) unsafe fn bytes_buffer(
    env: sys::napi_env,
    jpeg: Bytes,
) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    if !jpeg.is_empty() {
        let len = jpeg.len();
        // Never written through on the Rust side; JS is told not to write either.
        let data = jpeg.as_ptr().cast_mut().cast::<c_void>();
        // The fallback's copy is made from this one (an atomic increment, no copy).
        let keep = jpeg.clone();
        let hint = Box::into_raw(Box::new(jpeg));
        // SAFETY: `data` is valid for `len` bytes for as long as `hint` is alive, and the
        // finalizer frees `hint` once V8 no longer uses `data`.
        let status = unsafe {
            sys::napi_create_external_buffer(
                env,
                len,
                data,
                Some(drop_bytes),
                hint.cast(),
                &mut out,
            )
        };
        if status == sys::Status::napi_ok {
            return Ok(out);
        }
        if status == sys::Status::napi_no_external_buffers_allowed {
            // Refused before anything was registered: the reference is still ours.
            // SAFETY: `hint` came from `Box::into_raw` above and nothing else owns it.
            drop(unsafe { Box::from_raw(hint) });
        }
        // Any other failure may or may not have run the finalizer already: leave `hint` to
        // napi (at worst one leaked reference) and copy from `keep`.
        return unsafe { copy_buffer(env, &keep) };
    }
    unsafe { copy_buffer(env, &jpeg) }
}

/// A Node `Buffer` holding a copy of `bytes`.
///
/// # Safety
/// `env` is the current env, on the JS thread.
unsafe fn copy_buffer(env: sys::napi_env, bytes: &[u8]) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check_status!(
        unsafe {
            sys::napi_create_buffer_copy(
                env,
                bytes.len(),
                bytes.as_ptr().cast(),
                ptr::null_mut(),
                &mut out,
            )
        },
        "cannot create a Buffer for a JPEG of {} bytes",
        bytes.len()
    )?;
    Ok(out)
}
