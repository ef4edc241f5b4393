//! `camkit_video_subscription`: a camera's live video as it sent it (fragmented MP4 or
//! H.264 Annex B access units), pulled by the caller with `camkit_video_next`.
//!
//! Pull, not a callback: video must be taken in order and in full (a media segment needs
//! those before it back to the keyframe), so the caller's own thread waits for the next
//! chunk, for at most a timeout, and no camkit thread ever calls into C. What the caller
//! has not taken yet waits in camkit's per-subscription queue, bounded by
//! `max_queue_bytes`; a caller further behind loses frames up to the next keyframe
//! (`camkit_video_skipped` counts them), never the camera's pace.

use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use camkit::{
    CameraManager, VideoChunk, VideoChunkKind, VideoFormat, VideoOptions, VideoSubscription,
};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{
    arg_ref, arg_str, block_on, cstring, free_handle, into_handle, outside_runtime, Out,
};
use crate::manager::{camkit_manager, manager_arg};
use crate::panic::PanicDefault;
use crate::sub_stream::stream_choice;

/// What a video subscription yields.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_video_format {
    /// Fragmented MP4: an init segment, then one media segment (`moof` + `mdat`) per frame.
    CAMKIT_VIDEO_FMP4 = 0,
    /// H.264 or H.265 access units in Annex B form (start codes; the parameter sets before
    /// each keyframe).
    CAMKIT_VIDEO_ANNEXB = 1,
}

/// What a chunk holds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_video_kind {
    /// `ftyp` + `moov`: first, and again whenever the stream's parameters change.
    CAMKIT_VIDEO_INIT = 0,
    /// `moof` + `mdat` of one frame.
    CAMKIT_VIDEO_MEDIA = 1,
    /// One Annex B access unit (`CAMKIT_VIDEO_ANNEXB`).
    CAMKIT_VIDEO_ACCESS_UNIT = 2,
}

impl PanicDefault for camkit_video_kind {
    fn panic_default() -> Self {
        camkit_video_kind::CAMKIT_VIDEO_MEDIA
    }
}

/// Options for `camkit_video_subscribe`. Zero every field for the defaults.
#[repr(C)]
pub struct camkit_video_options {
    /// `CAMKIT_VIDEO_FMP4` (0) or `CAMKIT_VIDEO_ANNEXB` (1).
    pub format: u32,
    /// Bytes the caller may fall behind before frames are skipped up to the next
    /// keyframe, at least 65536; 0 = 4 MiB.
    pub max_queue_bytes: usize,
    /// Which stream it carries, a `camkit_stream_choice`; 0 = `CAMKIT_STREAM_AUTO`, the
    /// main stream. `CAMKIT_STREAM_SUB` takes the sub-stream when it streams as the
    /// subscription starts (else the main stream); the subscription keeps that stream.
    pub stream: u32,
}

/// A live video subscription to one camera: see `camkit_video_subscribe`. Free it with
/// `camkit_video_subscription_free`. One thread at a time may call `camkit_video_next`
/// on it (calls from several threads take turns).
pub struct camkit_video_subscription {
    sub: Mutex<VideoSubscription>,
    runtime: tokio::runtime::Handle,
    /// Keeps the manager's runtime alive while `camkit_video_next` blocks on it, even
    /// after `camkit_manager_free` (which ends the subscription: `CAMKIT_CLOSED`).
    _manager: CameraManager,
}

impl camkit_video_subscription {
    fn lock(&self) -> MutexGuard<'_, VideoSubscription> {
        self.sub.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One chunk of a video subscription, owned by the caller: free it with
/// `camkit_video_chunk_free`. Its bytes are shared with camkit's other subscribers of the
/// camera (reference-counted, not copied) and stay valid until it is freed, whatever
/// happens to the subscription, camera or manager meanwhile. May be read from any thread.
pub struct camkit_video_chunk {
    chunk: VideoChunk,
    codec: CString,
}

/// Subscribes to camera `id`'s live video as the camera sent it, without decoding:
/// fragmented MP4 (an init segment first, then a media segment per frame, starting at the
/// last keyframe) or Annex B access units. `options` may be NULL for fMP4 with a 4 MiB
/// queue. Watching video does not make the camera decode. Stores the subscription in
/// `*out`; take its chunks with `camkit_video_next`. H.264 and H.265 cameras are
/// carried. `CAMKIT_NOT_FOUND` for an unknown id, `CAMKIT_INVALID_INPUT` for bad options
/// (the last error names the field), `CAMKIT_UNSUPPORTED_CODEC` for an MJPEG camera.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_subscribe(
    mgr: *const camkit_manager,
    id: *const c_char,
    options: *const camkit_video_options,
    out: *mut *mut camkit_video_subscription,
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
        let mut opts = VideoOptions::default();
        if let Some(o) = options {
            const FMP4: u32 = camkit_video_format::CAMKIT_VIDEO_FMP4 as u32;
            const ANNEXB: u32 = camkit_video_format::CAMKIT_VIDEO_ANNEXB as u32;
            opts.format = match o.format {
                FMP4 => VideoFormat::Fmp4,
                ANNEXB => VideoFormat::AnnexB,
                f => {
                    return Err(FfiError::invalid(
                        "format",
                        format!("{f} is not CAMKIT_VIDEO_FMP4 (0) or CAMKIT_VIDEO_ANNEXB (1)"),
                    ))
                }
            };
            if o.max_queue_bytes != 0 {
                opts.max_queue_bytes = o.max_queue_bytes;
            }
            opts.stream = stream_choice(o.stream)?;
        }
        let sub = m.cameras.subscribe_video(id, opts)?;
        out.write(into_handle(camkit_video_subscription {
            sub: Mutex::new(sub),
            runtime: m.cameras.runtime().clone(),
            _manager: m.cameras.clone(),
        }));
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds (0: do not wait) for the subscription's next
/// chunk and stores it in `*out` (free it with `camkit_video_chunk_free`). Chunks come in
/// order; an init segment comes again when the stream's parameters change.
/// `CAMKIT_TIMEOUT` when none came in time (call again), `CAMKIT_CLOSED` once the camera
/// is disconnected or the manager freed and every queued chunk has been taken (final;
/// `CAMKIT_UNSUPPORTED_CODEC` when the camera came back sending MJPEG, which the video
/// stream does not carry).
#[no_mangle]
pub unsafe extern "C" fn camkit_video_next(
    sub: *const camkit_video_subscription,
    timeout_ms: u32,
    out: *mut *mut camkit_video_chunk,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (s, out) = unsafe { (arg_ref(sub, "sub")?, Out::new(out, "out")?) };
        let mut guard = s.lock();
        let v = &mut *guard;
        let wait = Duration::from_millis(u64::from(timeout_ms));
        let next = block_on(&s.runtime, async {
            tokio::time::timeout(wait, v.next()).await
        });
        match next {
            Ok(Some(chunk)) => {
                let codec = cstring(&chunk.codec);
                out.write(into_handle(camkit_video_chunk { chunk, codec }));
                Ok(())
            }
            Ok(None) => Err(match v.end_error() {
                // A camera that came back with video the stream cannot carry says so.
                Some(e) => FfiError::from(e),
                None => FfiError::new(
                    camkit_result::CAMKIT_CLOSED,
                    format!(
                        "camera {:?} was disconnected or its manager freed; the video subscription has ended",
                        v.camera_id()
                    ),
                ),
            }),
            Err(_) => Err(FfiError::new(
                camkit_result::CAMKIT_TIMEOUT,
                format!(
                    "camera {:?}: no video within {timeout_ms} ms; call again",
                    v.camera_id()
                ),
            )),
        }
    })
}

/// Chunks skipped so far because the caller was behind by more than `max_queue_bytes`
/// (delivery then went on at the next keyframe); 0 when `sub` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_skipped(sub: *const camkit_video_subscription) -> u64 {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        match unsafe { sub.as_ref() } {
            Some(s) => s.lock().skipped(),
            None => 0,
        }
    })
}

/// Ends the subscription and frees it. NULL is a no-op. Must not be called while another
/// thread is inside `camkit_video_next` on it.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_subscription_free(sub: *mut camkit_video_subscription) {
    ffi_boundary!(value, {
        if sub.is_null() {
            return;
        }
        // SAFETY: a live handle from camkit_video_subscribe, freed once (the conventions).
        let s = unsafe { Box::from_raw(sub) };
        // It may hold the last reference to the manager's runtime, which cannot be
        // dropped inside a runtime.
        outside_runtime(move || drop(s));
    })
}

/// Reads a field of a chunk, or `default` when the pointer is NULL.
///
/// # Safety
/// `c` is NULL or a live `camkit_video_chunk`.
unsafe fn field<T>(
    c: *const camkit_video_chunk,
    default: T,
    get: impl FnOnce(&camkit_video_chunk) -> T,
) -> T {
    // SAFETY: per this function's contract.
    match unsafe { c.as_ref() } {
        Some(c) => get(c),
        None => default,
    }
}

/// The chunk's bytes, `camkit_video_chunk_len` of them, valid until the chunk is freed.
/// NULL when `chunk` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_data(chunk: *const camkit_video_chunk) -> *const u8 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(chunk, std::ptr::null(), |c| c.chunk.data.as_ptr()) }
    })
}

/// The number of bytes at `camkit_video_chunk_data`; 0 when `chunk` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_len(chunk: *const camkit_video_chunk) -> usize {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(chunk, 0, |c| c.chunk.data.len()) }
    })
}

/// What the chunk holds (`CAMKIT_VIDEO_INIT`, `_MEDIA`, `_ACCESS_UNIT`);
/// `CAMKIT_VIDEO_MEDIA` when `chunk` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_kind(
    chunk: *const camkit_video_chunk,
) -> camkit_video_kind {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe {
            field(chunk, camkit_video_kind::CAMKIT_VIDEO_MEDIA, |c| {
                match c.chunk.kind {
                    VideoChunkKind::Init => camkit_video_kind::CAMKIT_VIDEO_INIT,
                    VideoChunkKind::Segment => camkit_video_kind::CAMKIT_VIDEO_MEDIA,
                    VideoChunkKind::AccessUnit => camkit_video_kind::CAMKIT_VIDEO_ACCESS_UNIT,
                }
            })
        }
    })
}

/// Whether a decoder can start at this chunk (false for init segments and NULL).
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_keyframe(chunk: *const camkit_video_chunk) -> bool {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(chunk, false, |c| c.chunk.keyframe) }
    })
}

/// Presentation time on the stream's 90 kHz timeline (0 for init segments and NULL).
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_pts_90k(chunk: *const camkit_video_chunk) -> i64 {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, { unsafe { field(chunk, 0, |c| c.chunk.pts_90k) } })
}

/// The RFC 6381 codec string, e.g. `"avc1.640028"` or `"hvc1.1.6.L93.B0"` (for a MIME type
/// `video/mp4; codecs="..."`), NUL-terminated, valid until the chunk is freed. NULL when
/// `chunk` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_codec(
    chunk: *const camkit_video_chunk,
) -> *const c_char {
    // SAFETY: the caller's handle (the conventions).
    ffi_boundary!(value, {
        unsafe { field(chunk, std::ptr::null(), |c| c.codec.as_ptr()) }
    })
}

/// Frees a chunk from `camkit_video_next`. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_video_chunk_free(chunk: *mut camkit_video_chunk) {
    // SAFETY: the caller's handle, freed once (the conventions).
    ffi_boundary!(value, { unsafe { free_handle(chunk) } })
}
