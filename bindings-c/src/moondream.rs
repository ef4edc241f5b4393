//! Moondream (visual reasoning) about a camera's current picture: `camkit_moondream_query`,
//! `_caption`, `_detect` and `_point`, blocking calls on the manager's runtime.

use std::mem::{offset_of, size_of};
use std::os::raw::c_char;
use std::time::Duration;

use camkit::moondream::{CameraAnswer, CaptionLength, MoondreamCameras, MoondreamConfig};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_str, block_on, cstring, opt_str, Out};
use crate::manager::{camkit_manager, manager_arg};

/// Added to the longest time camkit's own bounds allow, for the outer bound of a call.
const CALL_SLACK: Duration = Duration::from_secs(10);
/// The longest `Retry-After` camkit waits for between attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

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
struct RawOptions {
    base_url: *const c_char,
    api_key: *const c_char,
    timeout_ms: u32,
    max_retries: u32,
    max_image_side: u32,
    no_retries: u8,
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

/// Fills `options` with the defaults: NULL strings (the cloud, the key from
/// `MOONDREAM_API_KEY`), `timeout_ms` 30000, `max_retries` 2, `max_image_side` 768,
/// `no_retries` false. `CAMKIT_NULL_ARGUMENT` when `options` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_options_init(
    options: *mut camkit_moondream_options,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let out = unsafe { Out::new(options, "options") }?;
        let d = MoondreamConfig::default();
        out.write(camkit_moondream_options {
            base_url: std::ptr::null(),
            api_key: std::ptr::null(),
            timeout_ms: d.timeout.as_millis() as u32,
            max_retries: d.max_retries,
            max_image_side: d.max_image_side,
            no_retries: false,
        });
        Ok(())
    })
}

/// Core's configuration from the caller's options (NULL: all defaults).
///
/// # Safety
/// `p` is NULL or points to a live `camkit_moondream_options` whose strings are NULL or
/// NUL-terminated.
unsafe fn read_options(p: *const camkit_moondream_options) -> Result<MoondreamConfig, FfiError> {
    let d = MoondreamConfig::default();
    // SAFETY: per this function's contract; `RawOptions` has the same layout.
    let Some(o) = (unsafe { p.cast::<RawOptions>().as_ref() }) else {
        return Ok(d);
    };
    // SAFETY: the struct's strings, per this function's contract.
    let (base_url, api_key) = unsafe {
        (
            opt_str(o.base_url, "base_url")?,
            opt_str(o.api_key, "api_key")?,
        )
    };
    Ok(MoondreamConfig {
        base_url: base_url.map_or(d.base_url, str::to_owned),
        api_key: api_key.map(str::to_owned),
        timeout: if o.timeout_ms == 0 {
            d.timeout
        } else {
            Duration::from_millis(o.timeout_ms.into())
        },
        max_retries: match (o.no_retries != 0, o.max_retries) {
            (true, _) => 0,
            (false, 0) => d.max_retries,
            (false, n) => n,
        },
        max_image_side: if o.max_image_side == 0 {
            d.max_image_side
        } else {
            o.max_image_side
        },
    })
}

/// Runs one Moondream call about a camera on the manager's runtime, blocking this thread.
///
/// Ends early with `CAMKIT_CLOSED` when the manager is closed meanwhile (so that
/// `camkit_manager_free`, which waits for running calls, is not held up by a slow
/// service), and has an outer bound that only guards against a bound camkit missed.
fn ask<T, F, Fut>(m: &camkit_manager, config: MoondreamConfig, call: F) -> Result<T, FfiError>
where
    T: Send,
    F: FnOnce(MoondreamCameras) -> Fut + Send,
    Fut: std::future::Future<Output = camkit::Result<T>> + Send,
{
    let attempts = config.max_retries.saturating_add(1);
    let bound = config.timeout.saturating_mul(attempts)
        + MAX_RETRY_WAIT.saturating_mul(config.max_retries)
        + CALL_SLACK;
    let cameras = &m.cameras;
    block_on(cameras.runtime(), async {
        let md = cameras.moondream(config)?;
        let mut events = cameras.events();
        tokio::select! {
            r = tokio::time::timeout(bound, call(md)) => match r {
                Ok(r) => r.map_err(FfiError::from),
                Err(_) => Err(FfiError::new(
                    camkit_result::CAMKIT_TIMEOUT,
                    format!(
                        "Moondream did not answer within {} s; check the service, or give a \
                         shorter timeout_ms",
                        bound.as_secs()
                    ),
                )),
            },
            // `recv` ends (None) once the manager is closed.
            _ = async { while events.recv().await.is_some() {} } => Err(FfiError::new(
                camkit_result::CAMKIT_CLOSED,
                "the camera manager was closed while Moondream was answering",
            )),
        }
    })
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
/// `max_image_side`. `options` may be NULL for the defaults (the cloud, with the key from
/// `MOONDREAM_API_KEY`). Each call opens its own connection to Moondream. The wait is
/// bounded by `timeout_ms` per attempt, the retries and their waits.
///
/// Failures: `CAMKIT_NOT_FOUND` (no such camera), `CAMKIT_NO_FRAME` (no picture yet),
/// `CAMKIT_UNAUTHORIZED` (the key was refused: check `MOONDREAM_API_KEY`),
/// `CAMKIT_RATE_LIMITED` (429 after the retries), `CAMKIT_SERVICE_ERROR` (Moondream's own
/// message), `CAMKIT_TIMEOUT`, `CAMKIT_UNREACHABLE`, `CAMKIT_INVALID_INPUT` (naming the
/// field: `question`, `base_url`, `api_key`, `timeout_ms` ...). The key never appears in a
/// message.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_query(
    mgr: *const camkit_manager,
    options: *const camkit_moondream_options,
    camera_id: *const c_char,
    question: *const c_char,
    out_answer: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options`, `out_len` nullable).
        let (m, config, id, question, out, out_len) = unsafe {
            (
                manager_arg(mgr)?,
                read_options(options)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(question, "question")?,
                Out::new(out_answer, "out_answer")?,
                Out::optional(out_len),
            )
        };
        let a = ask(&m, config, |md| async move { md.query(id, question).await })?;
        give_text(&a.result.answer, out, out_len);
        Ok(())
    })
}

/// Captions camera `camera_id`'s current picture, as `camkit_moondream_query` asks: the
/// caption goes to `*out_caption` (free it with `camkit_string_free`) and its length to
/// `*out_len` (may be NULL). `length` is a `camkit_caption_length`; any other value gives
/// `CAMKIT_INVALID_INPUT`.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_caption(
    mgr: *const camkit_manager,
    options: *const camkit_moondream_options,
    camera_id: *const c_char,
    length: u32,
    out_caption: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options`, `out_len` nullable).
        let (m, config, id, out, out_len) = unsafe {
            (
                manager_arg(mgr)?,
                read_options(options)?,
                arg_str(camera_id, "camera_id")?,
                Out::new(out_caption, "out_caption")?,
                Out::optional(out_len),
            )
        };
        use camkit_caption_length::*;
        let length = match length {
            n if n == CAMKIT_CAPTION_NORMAL as u32 => CaptionLength::Normal,
            n if n == CAMKIT_CAPTION_SHORT as u32 => CaptionLength::Short,
            n if n == CAMKIT_CAPTION_LONG as u32 => CaptionLength::Long,
            n => {
                return Err(FfiError::invalid(
                    "length",
                    format!("{n} is not a camkit_caption_length (0 normal, 1 short, 2 long)"),
                ))
            }
        };
        let a = ask(&m, config, |md| async move { md.caption(id, length).await })?;
        give_text(&a.result.caption, out, out_len);
        Ok(())
    })
}

/// Finds `object` ("person", "red car" ...) in camera `camera_id`'s current picture, as
/// `camkit_moondream_query` asks: the bounding boxes go to `*out_array` (free it with
/// `camkit_detections_free(array, count)`) and their number to `*out_count`. No object
/// found is a success with `*out_array` NULL and `*out_count` 0.
#[no_mangle]
pub unsafe extern "C" fn camkit_moondream_detect(
    mgr: *const camkit_manager,
    options: *const camkit_moondream_options,
    camera_id: *const c_char,
    object: *const c_char,
    out_array: *mut *mut camkit_detection,
    out_count: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options` nullable).
        let (m, config, id, object, out, out_count) = unsafe {
            (
                manager_arg(mgr)?,
                read_options(options)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(object, "object")?,
                Out::new(out_array, "out_array")?,
                Out::new(out_count, "out_count")?,
            )
        };
        let a: CameraAnswer<_> = ask(&m, config, |md| async move { md.detect(id, object).await })?;
        let boxes = a
            .result
            .objects
            .iter()
            .map(|o| camkit_detection {
                x_min: o.x_min,
                y_min: o.y_min,
                x_max: o.x_max,
                y_max: o.y_max,
            })
            .collect();
        give_array(boxes, out, out_count);
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
    mgr: *const camkit_manager,
    options: *const camkit_moondream_options,
    camera_id: *const c_char,
    object: *const c_char,
    out_array: *mut *mut camkit_point,
    out_count: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options` nullable).
        let (m, config, id, object, out, out_count) = unsafe {
            (
                manager_arg(mgr)?,
                read_options(options)?,
                arg_str(camera_id, "camera_id")?,
                arg_str(object, "object")?,
                Out::new(out_array, "out_array")?,
                Out::new(out_count, "out_count")?,
            )
        };
        let a = ask(&m, config, |md| async move { md.point(id, object).await })?;
        let points = a
            .result
            .points
            .iter()
            .map(|p| camkit_point { x: p.x, y: p.y })
            .collect();
        give_array(points, out, out_count);
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
