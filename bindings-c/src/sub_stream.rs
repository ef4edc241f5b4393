//! `camkit_status_sub_*`: the sub-stream's part of a camera's status (the config's
//! `sub_stream`). The other `camkit_status_*` accessors read the main stream. And
//! `camkit_stream_choice`: which stream a snapshot, subscription or video subscription
//! takes (the `stream` field of their options).

use std::os::raw::c_char;

use camkit::StreamChoice;

use crate::error::FfiError;
use crate::status::{camkit_camera_state, camkit_status, field};

/// Which of a camera's streams serves a request (the `stream` field of
/// `camkit_snapshot_options`, `camkit_subscribe_options` and `camkit_video_options`).
/// Without a sub-stream, or while it is off, every choice is the main stream.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_stream_choice {
    /// The sub-stream when `max_width` is given and at most its width (it then loses
    /// nothing against the main stream), else the main stream. For video (no
    /// `max_width`): the main stream.
    CAMKIT_STREAM_AUTO = 0,
    /// The main stream.
    CAMKIT_STREAM_MAIN = 1,
    /// The sub-stream, whatever the size asked (pictures are never scaled up). A video
    /// subscription takes it when it streams as the subscription starts, and keeps the
    /// stream it started on.
    CAMKIT_STREAM_SUB = 2,
}

/// Core's choice from a C `stream` field; another number is `CAMKIT_INVALID_INPUT` naming
/// `stream`.
pub(crate) fn stream_choice(v: u32) -> Result<StreamChoice, FfiError> {
    const AUTO: u32 = camkit_stream_choice::CAMKIT_STREAM_AUTO as u32;
    const MAIN: u32 = camkit_stream_choice::CAMKIT_STREAM_MAIN as u32;
    const SUB: u32 = camkit_stream_choice::CAMKIT_STREAM_SUB as u32;
    match v {
        AUTO => Ok(StreamChoice::Auto),
        MAIN => Ok(StreamChoice::Main),
        SUB => Ok(StreamChoice::Sub),
        other => Err(FfiError::invalid(
            "stream",
            format!(
                "{other} is not CAMKIT_STREAM_AUTO (0), CAMKIT_STREAM_MAIN (1) or \
                 CAMKIT_STREAM_SUB (2)"
            ),
        )),
    }
}

/// Whether the camera has a sub-stream (its config's `sub_stream`); false when `status`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_has_sub_stream(status: *const camkit_status) -> bool {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(status, false, |s| s.status.sub_stream.is_some()) }
    })
}

/// The sub-stream's state (`CAMKIT_CAMERA_STATE_STREAMING` while it serves requests);
/// `CAMKIT_CAMERA_STATE_STOPPED` when the camera has none or `status` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_sub_state(
    status: *const camkit_status,
) -> camkit_camera_state {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(
                status,
                camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED,
                |s| {
                    s.status
                        .sub_stream
                        .as_ref()
                        .map_or(camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED, |sub| {
                            sub.state.into()
                        })
                },
            )
        }
    })
}

/// The sub-stream's picture width; 0 while unknown or without a sub-stream.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_sub_width(status: *const camkit_status) -> u32 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe {
            field(status, 0, |s| {
                s.status
                    .sub_stream
                    .as_ref()
                    .and_then(|sub| sub.width)
                    .unwrap_or(0)
            })
        }
    })
}

/// Frames the sub-stream decoded (`camkit_status_frames_decoded` counts the main
/// stream's only); 0 without a sub-stream.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_sub_frames_decoded(status: *const camkit_status) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe {
            field(status, 0, |s| {
                s.status
                    .sub_stream
                    .as_ref()
                    .map_or(0, |sub| sub.frames_decoded)
            })
        }
    })
}

/// Why the sub-stream serves nothing now (e.g. the camera refused a second session; the
/// main stream then serves every request), valid until the status is freed; NULL while
/// it streams, or without a sub-stream.
#[no_mangle]
pub unsafe extern "C" fn camkit_status_sub_off(status: *const camkit_status) -> *const c_char {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe {
            field(status, std::ptr::null(), |s| {
                s.sub_off.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
            })
        }
    })
}
