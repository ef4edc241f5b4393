//! `camkit_status`: a point-in-time view of one camera, as an owned handle with accessors,
//! and the same as JSON.

use std::ffi::CString;
use std::os::raw::c_char;

use camkit::{CameraState, CameraStatus};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_str, cstring, free_handle, into_handle, Out};
use crate::manager::{camkit_manager, manager_arg};

/// Where a camera is in its life.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_camera_state {
    /// The first attempt to open the stream is under way.
    CAMKIT_CAMERA_STATE_CONNECTING = 0,
    /// Video is arriving.
    CAMKIT_CAMERA_STATE_STREAMING = 1,
    /// The stream failed; camkit waits (backoff) and retries.
    CAMKIT_CAMERA_STATE_RECONNECTING = 2,
    /// Disconnected (or the manager freed). Final.
    CAMKIT_CAMERA_STATE_STOPPED = 3,
}

impl From<CameraState> for camkit_camera_state {
    fn from(s: CameraState) -> Self {
        match s {
            CameraState::Connecting => camkit_camera_state::CAMKIT_CAMERA_STATE_CONNECTING,
            CameraState::Streaming => camkit_camera_state::CAMKIT_CAMERA_STATE_STREAMING,
            CameraState::Reconnecting => camkit_camera_state::CAMKIT_CAMERA_STATE_RECONNECTING,
            CameraState::Stopped => camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED,
        }
    }
}

/// A snapshot of one camera's status, taken when it was made (it does not change).
/// Owned by the caller: free it with `camkit_status_free`. Strings returned by its
/// accessors stay valid until then. May be read from any thread.
pub struct camkit_status {
    pub(crate) status: CameraStatus,
    id: CString,
    url: CString,
    decoder: CString,
    codec: Option<CString>,
    profile: Option<CString>,
    last_error: Option<CString>,
    /// Why the sub-stream serves nothing now (see `camkit_status_sub_off`).
    pub(crate) sub_off: Option<CString>,
}

impl camkit_status {
    pub(crate) fn new(status: CameraStatus) -> Self {
        camkit_status {
            id: cstring(&status.id),
            url: cstring(&status.url),
            decoder: cstring(&status.decoder),
            codec: status.codec.as_deref().map(cstring),
            profile: status.profile.as_deref().map(cstring),
            last_error: status.last_error.as_ref().map(|e| cstring(&e.message)),
            sub_off: status
                .sub_stream
                .as_ref()
                .and_then(|s| s.off.as_deref())
                .map(cstring),
            status,
        }
    }
}

/// Reads a field of a status, or `default` when the pointer is NULL.
///
/// # Safety
/// `s` is NULL or a live `camkit_status`.
pub(crate) unsafe fn field<T>(
    s: *const camkit_status,
    default: T,
    f: impl FnOnce(&camkit_status) -> T,
) -> T {
    // SAFETY: per this function's contract.
    match unsafe { s.as_ref() } {
        Some(s) => f(s),
        None => default,
    }
}

/// Stores the current status of camera `id` in `*out` (free it with `camkit_status_free`).
/// `CAMKIT_NOT_FOUND` when no camera has that id.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_get(
    mgr: *const camkit_manager,
    id: *const c_char,
    out: *mut *mut camkit_status,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (m, id, out) =
            unsafe { (manager_arg(mgr)?, arg_str(id, "id")?, Out::new(out, "out")?) };
        let status = m.cameras.status(id)?;
        out.write(into_handle(camkit_status::new(status)));
        Ok(())
    })
}

/// Frees a status. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_free(status: *mut camkit_status) {
    // SAFETY: the caller's handle, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_handle(status) } })
}

/// The camera's id (valid until the status is freed); NULL when `status` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_id(status: *const camkit_status) -> *const c_char {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, std::ptr::null(), |s| s.id.as_ptr()) }
    })
}

/// The camera's URL without credentials (valid until the status is freed); NULL when
/// `status` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_url(status: *const camkit_status) -> *const c_char {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, std::ptr::null(), |s| s.url.as_ptr()) }
    })
}

/// The camera's state; `CAMKIT_CAMERA_STATE_STOPPED` when `status` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_state(status: *const camkit_status) -> camkit_camera_state {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(
                status,
                camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED,
                |s| s.status.state.into(),
            )
        }
    })
}

/// The H.264 decoder in use: `"openh264"`, or `"libavcodec"` with its version
/// (`"libavcodec 59.37.100"`). Valid until the status is freed; NULL when `status` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_decoder(status: *const camkit_status) -> *const c_char {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, std::ptr::null(), |s| s.decoder.as_ptr()) }
    })
}

/// The video codec (`"h264"`, `"h265"`, `"jpeg"`), valid until the status is freed; NULL
/// while unknown.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_codec(status: *const camkit_status) -> *const c_char {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(status, std::ptr::null(), |s| {
                s.codec.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
            })
        }
    })
}

/// The codec's profile (H.264 `"Baseline"`, `"Main"`, `"High"` ...; H.265 `"Main"`,
/// `"Main 10"` ...), valid until the status is freed; NULL while unknown (and for MJPEG).
#[no_mangle]
pub unsafe extern "C" fn camkit_status_profile(status: *const camkit_status) -> *const c_char {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(status, std::ptr::null(), |s| {
                s.profile.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
            })
        }
    })
}

/// Picture width in pixels; 0 while unknown.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_width(status: *const camkit_status) -> u32 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.width.unwrap_or(0)) }
    })
}

/// Picture height in pixels; 0 while unknown.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_height(status: *const camkit_status) -> u32 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.height.unwrap_or(0)) }
    })
}

/// Frames per second received, over the last few seconds.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_fps(status: *const camkit_status) -> f64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(status, 0.0, |s| s.status.fps) } })
}

/// Compressed frames received since connect.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_frames_received(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.frames_received) }
    })
}

/// Frames decoded to pictures.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_frames_decoded(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.frames_decoded) }
    })
}

/// Frames dropped (decoder behind, corrupt data, lost packets).
#[no_mangle]
pub unsafe extern "C" fn camkit_status_frames_dropped(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.frames_dropped) }
    })
}

/// Times the stream was reopened after a failure.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_reconnects(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.reconnects) }
    })
}

/// Frames skipped because part of them never arrived (stream joined mid-frame, lost
/// packets, data that could not be depacketized); the session goes on.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_partial_frames_skipped(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.partial_frames_skipped) }
    })
}

/// Total time without video in ms since the camera first streamed (broken streams,
/// reconnects, frames skipped after damage), including the current stretch.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_video_lost_ms(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.video_lost_ms) }
    })
}

/// Since when the camera has had no video, in ms since the Unix epoch; 0 while video
/// flows.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_video_lost_since_ms(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, 0, |s| s.status.video_lost_since_ms.unwrap_or(0)) }
    })
}

/// Whether the latest picture is stale (served while the camera has no video, e.g. while
/// it reconnects).
#[no_mangle]
pub unsafe extern "C" fn camkit_status_picture_stale(status: *const camkit_status) -> bool {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, false, |s| s.status.picture_stale) }
    })
}

/// Age of the latest picture in ms; `UINT64_MAX` while there is none.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_picture_age_ms(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe {
            field(status, u64::MAX, |s| {
                s.status.picture_age_ms.unwrap_or(u64::MAX)
            })
        }
    })
}

/// The result code of the camera's most recent error (kept after recovery, for
/// diagnosis); `CAMKIT_OK` when it has had none.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_last_error_code(
    status: *const camkit_status,
) -> camkit_result {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(status, camkit_result::CAMKIT_OK, |s| {
                s.status
                    .last_error
                    .as_ref()
                    .map_or(camkit_result::CAMKIT_OK, |e| {
                        camkit_result::from_kind(e.kind)
                    })
            })
        }
    })
}

/// The message of the camera's most recent error (valid until the status is freed);
/// NULL when it has had none.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_last_error_message(
    status: *const camkit_status,
) -> *const c_char {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(status, std::ptr::null(), |s| {
                s.last_error
                    .as_ref()
                    .map_or(std::ptr::null(), |c| c.as_ptr())
            })
        }
    })
}

/// The name of a camera state: `"connecting"`, `"streaming"`, `"reconnecting"`,
/// `"stopped"` (as in the JSON status), or `"unknown"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn camkit_camera_state_name(state: u32) -> *const c_char {
    ffi_boundary!(value, {
        let name = match state {
            0 => "connecting\0",
            1 => "streaming\0",
            2 => "reconnecting\0",
            3 => "stopped\0",
            _ => "unknown\0",
        };
        name.as_ptr().cast()
    })
}

/// The status of camera `id` as a JSON object, or of every camera as a JSON array (sorted
/// by id) when `id` is NULL. camelCase fields as in camkit's Rust and Node APIs
/// (`{"id":"door","state":"streaming","width":1280,...,"lastError":null}`).
///
/// Stores a NUL-terminated string in `*out` (free it with `camkit_string_free`) and its
/// length without the NUL in `*out_len` (`out_len` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn camkit_status_json(
    mgr: *const camkit_manager,
    id: *const c_char,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (m, out, out_len) = unsafe {
            (
                manager_arg(mgr)?,
                Out::new(out, "out")?,
                Out::optional(out_len),
            )
        };
        let json = if id.is_null() {
            serde_json::to_string(&m.cameras.list())
        } else {
            // SAFETY: as above.
            let id = unsafe { arg_str(id, "id") }?;
            serde_json::to_string(&m.cameras.status(id)?)
        }
        .map_err(|e| {
            FfiError::new(
                camkit_result::CAMKIT_INTERNAL,
                format!("status to JSON: {e}"),
            )
        })?;
        let len = json.len();
        // JSON escapes control characters, so there is no NUL inside.
        let s = cstring(&json);
        if let Some(o) = out_len {
            o.write(len);
        }
        out.write(s.into_raw());
        Ok(())
    })
}

/// Frees a string returned by camkit (`camkit_status_json`, `camkit_moondream_query`,
/// `camkit_moondream_caption`, `camkit_cluster_list_json`, `camkit_cluster_view_json`).
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_string_free(s: *mut c_char) {
    ffi_boundary!(value, {
        if !s.is_null() {
            // SAFETY: from CString::into_raw (camkit_status_json, the Moondream calls),
            // freed once (the conventions).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
