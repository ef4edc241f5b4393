//! `camkit_frame`: a JPEG picture handed to C, and `camkit_snapshot`.

use std::os::raw::c_char;
use std::time::Duration;

use camkit::{Frame, SnapshotOptions};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, arg_str, block_on, free_handle, into_handle, Out};
use crate::manager::{camkit_manager, manager_arg};
use crate::sub_stream::stream_choice;

/// One JPEG picture of a camera. Immutable; may be read from any thread.
///
/// The JPEG bytes are shared with camkit's frame cache (reference-counted, never copied):
/// a frame from `camkit_snapshot` or `camkit_frame_clone` is owned by the caller and its
/// data stays valid until `camkit_frame_free`, however the camera changes meanwhile. A
/// frame passed to a subscription callback is borrowed for the callback's duration only.
pub struct camkit_frame {
    pub(crate) frame: Frame,
}

/// Options for `camkit_snapshot`. Zero every field for the defaults.
#[repr(C)]
pub struct camkit_snapshot_options {
    /// Scale down to at most this many pixels wide (never up), 16-16384; 0 = full size.
    pub max_width: u32,
    /// JPEG quality 1-100; 0 = the camera's `jpeg_quality`.
    pub quality: u32,
    /// Longest wait in ms, when it should be shorter than the camera's
    /// `snapshot_timeout_ms`, which bounds every snapshot; 0 = that bound alone.
    pub timeout_ms: u32,
    /// Which stream serves it, a `camkit_stream_choice`; 0 = `CAMKIT_STREAM_AUTO`.
    pub stream: u32,
}

/// A snapshot's encoding and extra wait bound from `options` (NULL: full size at the
/// camera's quality, no extra bound); `camkit_snapshot`'s and `camkit_cluster_snapshot`'s.
pub(crate) fn snapshot_args(
    options: Option<&camkit_snapshot_options>,
) -> Result<(SnapshotOptions, Option<Duration>), FfiError> {
    Ok(match options {
        Some(o) => (
            SnapshotOptions {
                stream: stream_choice(o.stream)?,
                ..encoding(o.max_width, o.quality)?
            },
            (o.timeout_ms != 0).then(|| Duration::from_millis(u64::from(o.timeout_ms))),
        ),
        None => (SnapshotOptions::full(), None),
    })
}

/// Core's encoding options from the C fields shared by snapshots and subscriptions.
pub(crate) fn encoding(max_width: u32, quality: u32) -> Result<SnapshotOptions, FfiError> {
    let quality = match quality {
        0 => None,
        q @ 1..=100 => Some(q as u8),
        q => {
            return Err(FfiError::invalid(
                "quality",
                format!("{q} is not between 1 and 100 (0 = the camera's quality)"),
            ))
        }
    };
    let opts = SnapshotOptions {
        max_width: (max_width != 0).then_some(max_width),
        quality,
        ..SnapshotOptions::default()
    };
    opts.validate()?;
    Ok(opts)
}

/// Stores the latest picture of camera `id` as JPEG in `*out` (free it with
/// `camkit_frame_free`), blocking the calling thread.
///
/// Served from the frame cache when that picture was encoded at this size already; with
/// the ON_DEMAND policy it first decodes the frames buffered since the last keyframe.
/// `options` may be NULL for full size at the camera's quality. The wait is bounded by the
/// camera's `snapshot_timeout_ms` (default its `rtsp_timeout_ms`) and by
/// `options->timeout_ms` when given, then `CAMKIT_TIMEOUT`. `CAMKIT_NO_FRAME` while the
/// camera is not streaming (connecting or reconnecting: the message gives its last error);
/// `CAMKIT_NOT_FOUND` for an unknown id.
/// Two snapshots in a row may return the same picture (compare `camkit_frame_seq`).
#[no_mangle]
pub unsafe extern "C" fn camkit_snapshot(
    mgr: *const camkit_manager,
    id: *const c_char,
    options: *const camkit_snapshot_options,
    out: *mut *mut camkit_frame,
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
        let (opts, timeout) = snapshot_args(options)?;
        let cameras = &m.cameras;
        let snapshot = cameras.snapshot(id, opts);
        let frame = match timeout {
            // camkit bounds the snapshot by the camera's snapshot_timeout_ms.
            None => block_on(cameras.runtime(), snapshot)?,
            // The timer is made inside the runtime: tokio::time::timeout built on the
            // caller's thread panics ("no reactor running").
            Some(timeout) => block_on(cameras.runtime(), async move {
                tokio::time::timeout(timeout, snapshot).await
            })
            .map_err(|_| {
                FfiError::new(
                    camkit_result::CAMKIT_TIMEOUT,
                    format!(
                        "camera {id:?}: no snapshot within {} ms; retry, or give a longer \
                             timeout_ms",
                        timeout.as_millis()
                    ),
                )
            })??,
        };
        out.write(into_handle(camkit_frame { frame }));
        Ok(())
    })
}

/// Reads a field of a frame, or `default` when the pointer is NULL.
///
/// # Safety
/// `f` is NULL or a live `camkit_frame`.
unsafe fn field<T>(f: *const camkit_frame, default: T, get: impl FnOnce(&Frame) -> T) -> T {
    // SAFETY: per this function's contract.
    match unsafe { f.as_ref() } {
        Some(f) => get(&f.frame),
        None => default,
    }
}

/// The JPEG file bytes (starting `FF D8`), `camkit_frame_len` of them. Valid until the
/// frame is freed (for a callback's frame: until the callback returns). NULL when `frame`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_data(frame: *const camkit_frame) -> *const u8 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(frame, std::ptr::null(), |f| f.jpeg.as_ptr()) }
    })
}

/// The number of JPEG bytes at `camkit_frame_data`; 0 when `frame` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_len(frame: *const camkit_frame) -> usize {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(frame, 0, |f| f.jpeg.len()) } })
}

/// Picture width in pixels; 0 when `frame` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_width(frame: *const camkit_frame) -> u32 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(frame, 0, |f| f.width) } })
}

/// Picture height in pixels; 0 when `frame` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_height(frame: *const camkit_frame) -> u32 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(frame, 0, |f| f.height) } })
}

/// The camera's picture sequence number: 1 for its first picture, increasing. Two frames
/// with the same number show the same picture. 0 when `frame` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_seq(frame: *const camkit_frame) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(frame, 0, |f| f.seq) } })
}

/// When camkit received the picture's data from the camera, in milliseconds since the
/// Unix epoch; 0 when `frame` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_timestamp_ms(frame: *const camkit_frame) -> u64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(frame, 0, Frame::captured_at_ms) } })
}

/// Stores a new handle to the same picture in `*out` (no copy of the JPEG bytes): how a
/// subscription callback keeps a frame beyond its return. Free it with
/// `camkit_frame_free`.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_clone(
    frame: *const camkit_frame,
    out: *mut *mut camkit_frame,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (f, out) = unsafe { (arg_ref(frame, "frame")?, Out::new(out, "out")?) };
        out.write(into_handle(camkit_frame {
            frame: f.frame.clone(),
        }));
        Ok(())
    })
}

/// Frees a frame from `camkit_snapshot` or `camkit_frame_clone`. NULL is a no-op. Never
/// free the frame a subscription callback was given.
#[no_mangle]
pub unsafe extern "C" fn camkit_frame_free(frame: *mut camkit_frame) {
    // SAFETY: the caller's handle, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_handle(frame) } })
}
