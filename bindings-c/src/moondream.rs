//! Moondream (visual reasoning) about a camera's current picture: a `camkit_moondream`
//! handle (`camkit_moondream_new` / `_free`) holding one HTTP client, and the blocking
//! calls `camkit_moondream_query`, `_caption`, `_detect` and `_point` on it.
//!
//! The C types and the exported functions are here, in every build, so that the header is
//! the same whether or not libcamkit is built with the cargo feature `moondream`; the work
//! is in [`imp`]: `live.rs` with the feature, `absent.rs` (every call fails with
//! `CAMKIT_UNSUPPORTED`) without it.

use std::mem::{offset_of, size_of};
use std::os::raw::c_char;

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, arg_str, cstring, free_handle, into_handle, Out};
use crate::manager::{camkit_manager, manager_arg};

#[cfg(not(feature = "moondream"))]
mod absent;
#[cfg(feature = "moondream")]
mod live;
#[cfg(not(feature = "moondream"))]
use absent as imp;
#[cfg(feature = "moondream")]
use live as imp;

/// How long a caption should be: the `length` argument of `camkit_moondream_caption`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_caption_length {
    /// A few sentences (the default).
    CAMKIT_CAPTION_NORMAL = 0,
    /// One short sentence.
    CAMKIT_CAPTION_SHORT = 1,
    /// A detailed description.
    CAMKIT_CAPTION_LONG = 2,
}

/// Where Moondream is and how to talk to it. Fill it with `camkit_moondream_options_init`
/// (or zero it: every zero is a default). Strings are only read during the call (NULL and
/// `""` mean "not given").
///
/// Without `base_url` the Moondream cloud (`https://api.moondream.ai/v1`) is used, which
/// needs `api_key` or the `MOONDREAM_API_KEY` environment variable; a Moondream Station
/// (`"http://localhost:2020/v1"`) needs no key.
#[repr(C)]
pub struct camkit_moondream_options {
    /// The API's base URL up to and including `/v1`; NULL = the cloud.
    pub base_url: *const c_char,
    /// The cloud API key, sent as `X-Moondream-Auth`; NULL = `MOONDREAM_API_KEY`. Never
    /// shown in any message.
    pub api_key: *const c_char,
    /// Limit for one attempt (connect, send, receive the answer) in ms, 100-600000;
    /// 0 = 30000.
    pub timeout_ms: u32,
    /// Retries after 429 Too Many Requests and 500/502/503/504, 1-10; 0 = 2 (see
    /// `no_retries`).
    pub max_retries: u32,
    /// Pictures are sent with their long side scaled down to at most this, 64-4096;
    /// 0 = 768.
    pub max_image_side: u32,
    /// Never retry (`max_retries` is then ignored).
    pub no_retries: bool,
}

/// `camkit_moondream_options` read without trusting the caller's bool byte (see
/// `RawCameraConfig` in config.rs). Same layout, checked at compile time.
#[repr(C)]
pub(crate) struct RawOptions {
    pub base_url: *const c_char,
    pub api_key: *const c_char,
    pub timeout_ms: u32,
    pub max_retries: u32,
    pub max_image_side: u32,
    pub no_retries: u8,
}

const _: () = {
    assert!(size_of::<RawOptions>() == size_of::<camkit_moondream_options>());
    assert!(offset_of!(RawOptions, base_url) == offset_of!(camkit_moondream_options, base_url));
    assert!(offset_of!(RawOptions, api_key) == offset_of!(camkit_moondream_options, api_key));
    assert!(offset_of!(RawOptions, timeout_ms) == offset_of!(camkit_moondream_options, timeout_ms));
    assert!(
        offset_of!(RawOptions, max_retries) == offset_of!(camkit_moondream_options, max_retries)
    );
    assert!(
        offset_of!(RawOptions, max_image_side)
            == offset_of!(camkit_moondream_options, max_image_side)
    );
    assert!(offset_of!(RawOptions, no_retries) == offset_of!(camkit_moondream_options, no_retries));
};

/// One object found by `camkit_moondream_detect`: its bounding box, each coordinate a
/// fraction of the picture's width or height (0 = left/top, 1 = right/bottom).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct camkit_detection {
    /// Left edge, 0-1.
    pub x_min: f64,
    /// Top edge, 0-1.
    pub y_min: f64,
    /// Right edge, 0-1.
    pub x_max: f64,
    /// Bottom edge, 0-1.
    pub y_max: f64,
}

/// One point found by `camkit_moondream_point`: fractions of the picture's width and
/// height (0 = left/top, 1 = right/bottom).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct camkit_point {
    /// 0 = left edge, 1 = right edge.
    pub x: f64,
    /// 0 = top edge, 1 = bottom edge.
    pub y: f64,
}

/// Moondream for the cameras of one manager: one HTTP client (its connections, TLS
/// sessions and settings) shared by every call made through this handle. Thread-safe: any
/// number of threads may call through it at once. Created by `camkit_moondream_new`, freed
/// by `camkit_moondream_free`.
///
/// The handle keeps what it needs of its manager, so it may be freed before or after the
/// manager; once the manager is closed (`camkit_manager_close` or `_free`), calls through
/// the handle fail with `CAMKIT_CLOSED`, and a call waiting for Moondream ends with it.
pub struct camkit_moondream {
    inner: imp::Moondream,
}

/// Fills `options` with the defaults: NULL strings (the cloud, the key from
/// `MOONDREAM_API_KEY`), `timeout_ms` 30000, `max_retries` 2, `max_image_side` 768,
/// `no_retries` false. `CAMKIT_NULL_ARGUMENT` when `options` is NULL;
/// `CAMKIT_UNSUPPORTED` in a libcamkit built without Moondream.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_options_init(
    options: *mut camkit_moondream_options,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let out = unsafe { Out::new(options, "options") }?;
        out.write(imp::default_options()?);
        Ok(())
    })
}

/// Makes a Moondream handle for the cameras of `mgr` and stores it in `*out` (free it with
/// `camkit_moondream_free`). `options` may be NULL for the defaults (the cloud, with the
/// key from `MOONDREAM_API_KEY`); its strings are copied.
///
/// Failures: `CAMKIT_INVALID_INPUT` naming the field (`base_url`, `api_key` (never shown),
/// `timeout_ms`, `max_retries`, `max_image_side`; the cloud without a key),
/// `CAMKIT_CLOSED` (the manager is closed), `CAMKIT_UNSUPPORTED` (libcamkit was built
/// without the cargo feature `moondream`).
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_new(
    mgr: *const camkit_manager,
    options: *const camkit_moondream_options,
    out: *mut *mut camkit_moondream,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options` nullable).
        let (m, out) = unsafe { (manager_arg(mgr)?, Out::new(out, "out")?) };
        // SAFETY: as above; `RawOptions` has the same layout.
        let options = unsafe { options.cast::<RawOptions>().as_ref() };
        // SAFETY: the options' strings, per the conventions.
        let inner = unsafe { imp::Moondream::new(&m.cameras, options) }?;
        out.write(into_handle(camkit_moondream { inner }));
        Ok(())
    })
}

/// Frees a Moondream handle. NULL is a no-op. No call may be running through it (join the
/// threads that use it first).
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_free(md: *mut camkit_moondream) {
    // SAFETY: the caller's handle, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_handle(md) } })
}

/// The `md` argument of a call.
///
/// # Safety
/// `md` is NULL or a live handle from `camkit_moondream_new`.
unsafe fn md_arg<'a>(md: *const camkit_moondream) -> Result<&'a imp::Moondream, FfiError> {
    // SAFETY: per this function's contract.
    Ok(&unsafe { arg_ref(md, "md") }?.inner)
}

/// Hands a text answer to C: `*out` (free with `camkit_string_free`) and `*out_len`.
fn give_text(text: &str, out: Out<*mut c_char>, out_len: Option<Out<usize>>) {
    let s = cstring(text);
    if let Some(o) = out_len {
        o.write(s.as_bytes().len());
    }
    out.write(s.into_raw());
}

/// Hands an array to C: `*out` (NULL when empty) and `*out_count`.
fn give_array<T>(items: Vec<T>, out: Out<*mut T>, out_count: Out<usize>) {
    out_count.write(items.len());
    if items.is_empty() {
        out.write(std::ptr::null_mut());
    } else {
        out.write(Box::into_raw(items.into_boxed_slice()).cast::<T>());
    }
}

/// Frees an array made by [`give_array`]; NULL is a no-op.
///
/// # Safety
/// `array` is NULL or came from `give_array::<T>` with `count` items and was not freed.
unsafe fn free_array<T>(array: *mut T, count: usize) {
    if !array.is_null() {
        // SAFETY: per this function's contract: a boxed slice of exactly `count` items.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(array, count)) });
    }
}

/// Asks Moondream a question about camera `camera_id`'s current picture, blocking the
/// calling thread, and stores the answer in `*out_answer` (NUL-terminated UTF-8; free it
/// with `camkit_string_free`) and its length without the NUL in `*out_len` (`out_len` may
/// be NULL).
///
/// The picture sent is the camera's latest, scaled so its long side is at most
/// `max_image_side`. The call goes through the handle's HTTP client (reusing its
/// connections). The wait is bounded by `timeout_ms` per attempt, the retries and their
/// waits.
///
/// Failures: `CAMKIT_NOT_FOUND` (no such camera), `CAMKIT_NO_FRAME` (no picture yet),
/// `CAMKIT_UNAUTHORIZED` (the key was refused: check `MOONDREAM_API_KEY`),
/// `CAMKIT_RATE_LIMITED` (429 after the retries), `CAMKIT_SERVICE_ERROR` (Moondream's own
/// message), `CAMKIT_TIMEOUT`, `CAMKIT_UNREACHABLE`, `CAMKIT_INVALID_INPUT` (naming the
/// field: `question` ...), `CAMKIT_CLOSED` (the manager was closed). The key never appears
/// in a message.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_query(
    md: *const camkit_moondream,
    camera_id: *const c_char,
    question: *const c_char,
    out_answer: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`out_len` nullable).
        let (md, id, question, out, out_len) = unsafe {
            (
                md_arg(md)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(question, "question")?,
                Out::new(out_answer, "out_answer")?,
                Out::optional(out_len),
            )
        };
        give_text(&md.query(id, question)?, out, out_len);
        Ok(())
    })
}

/// Captions camera `camera_id`'s current picture, as `camkit_moondream_query` asks: the
/// caption goes to `*out_caption` (free it with `camkit_string_free`) and its length to
/// `*out_len` (may be NULL). `length` is a `camkit_caption_length`; any other value gives
/// `CAMKIT_INVALID_INPUT`.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_caption(
    md: *const camkit_moondream,
    camera_id: *const c_char,
    length: u32,
    out_caption: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`out_len` nullable).
        let (md, id, out, out_len) = unsafe {
            (
                md_arg(md)?,
                arg_str(camera_id, "camera_id")?,
                Out::new(out_caption, "out_caption")?,
                Out::optional(out_len),
            )
        };
        use camkit_caption_length::*;
        let length = match length {
            n if n == CAMKIT_CAPTION_NORMAL as u32 => CAMKIT_CAPTION_NORMAL,
            n if n == CAMKIT_CAPTION_SHORT as u32 => CAMKIT_CAPTION_SHORT,
            n if n == CAMKIT_CAPTION_LONG as u32 => CAMKIT_CAPTION_LONG,
            n => {
                return Err(FfiError::invalid(
                    "length",
                    format!("{n} is not a camkit_caption_length (0 normal, 1 short, 2 long)"),
                ))
            }
        };
        give_text(&md.caption(id, length)?, out, out_len);
        Ok(())
    })
}

/// Finds `object` ("person", "red car" ...) in camera `camera_id`'s current picture, as
/// `camkit_moondream_query` asks: the bounding boxes go to `*out_array` (free it with
/// `camkit_detections_free(array, count)`) and their number to `*out_count`. No object
/// found is a success with `*out_array` NULL and `*out_count` 0.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_detect(
    md: *const camkit_moondream,
    camera_id: *const c_char,
    object: *const c_char,
    out_array: *mut *mut camkit_detection,
    out_count: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (md, id, object, out, out_count) = unsafe {
            (
                md_arg(md)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(object, "object")?,
                Out::new(out_array, "out_array")?,
                Out::new(out_count, "out_count")?,
            )
        };
        give_array(md.detect(id, object)?, out, out_count);
        Ok(())
    })
}

/// Frees the array of `camkit_moondream_detect`, passing the count it gave. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_detections_free(array: *mut camkit_detection, count: usize) {
    // SAFETY: the caller's array and its count, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_array(array, count) } })
}

/// Finds the centre points of `object` in camera `camera_id`'s current picture, as
/// `camkit_moondream_detect` does: the points go to `*out_array` (free it with
/// `camkit_points_free(array, count)`) and their number to `*out_count`.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_point(
    md: *const camkit_moondream,
    camera_id: *const c_char,
    object: *const c_char,
    out_array: *mut *mut camkit_point,
    out_count: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (md, id, object, out, out_count) = unsafe {
            (
                md_arg(md)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(object, "object")?,
                Out::new(out_array, "out_array")?,
                Out::new(out_count, "out_count")?,
            )
        };
        give_array(md.point(id, object)?, out, out_count);
        Ok(())
    })
}

/// Frees the array of `camkit_moondream_point`, passing the count it gave. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_points_free(array: *mut camkit_point, count: usize) {
    // SAFETY: the caller's array and its count, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_array(array, count) } })
}

#[cfg(test)]
mod tests;
