//! `camkit_demo_camera`: camkit's synthetic H.264 RTSP camera, for demos and tests.

use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

// `::` because the C handle type below has the crate's name.
use ::camkit_demo_camera::{DemoCamera, DemoCameraOptions};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, cstring, into_handle, outside_runtime, write_str_to_buf, Out};

/// A running demo camera: a synthetic H.264 RTSP camera on 127.0.0.1 (colour band, clock,
/// moving box) at 15 fps, served by threads of its own. Freed by `camkit_demo_camera_free`.
pub struct camkit_demo_camera {
    camera: Option<DemoCamera>,
    runtime: Option<tokio::runtime::Runtime>,
    url: CString,
    port: u16,
}

/// Starts a demo camera on `127.0.0.1:port` (0 = any free port; see
/// `camkit_demo_camera_port`) serving `width` x `height` pictures (even, 64-3840 by
/// 64-2160; 0 = 1280 x 720) at path `/demo`, and stores it in `*out`.
///
/// `CAMKIT_INVALID_INPUT` for an unacceptable size or a port that cannot be bound (the
/// message says which); `CAMKIT_INTERNAL` when its threads cannot start.
#[no_mangle]
pub unsafe extern "C" fn camkit_demo_camera_start(
    port: u16,
    width: u32,
    height: u32,
    out: *mut *mut camkit_demo_camera,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let out = unsafe { Out::new(out, "out") }?;
        let defaults = DemoCameraOptions::default();
        let opts = DemoCameraOptions {
            port,
            width: if width == 0 { defaults.width } else { width },
            height: if height == 0 { defaults.height } else { height },
            ..defaults
        };
        // The demo camera's own runtime: one I/O thread is plenty for a test camera.
        let start = move || -> Result<(tokio::runtime::Runtime, DemoCamera), FfiError> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("camkit-demo")
                .enable_all()
                .build()
                .map_err(|e| {
                    FfiError::new(
                        camkit_result::CAMKIT_INTERNAL,
                        format!("demo camera: cannot start its runtime: {e}"),
                    )
                })?;
            let cam = rt.block_on(DemoCamera::start(opts));
            match cam {
                Ok(cam) => Ok((rt, cam)),
                Err(e) => {
                    rt.shutdown_background();
                    Err(e.into())
                }
            }
        };
        let (runtime, camera) = outside_runtime(start)?;
        out.write(into_handle(camkit_demo_camera {
            url: cstring(&camera.url()),
            port: camera.port(),
            camera: Some(camera),
            runtime: Some(runtime),
        }));
        Ok(())
    })
}

/// Copies the camera's URL (`rtsp://127.0.0.1:PORT/demo`) NUL-terminated into `buf` of
/// `len` bytes, and its length without the NUL into `*out_len` (`out_len` may be NULL).
/// `CAMKIT_BUFFER_TOO_SMALL` when it does not fit: then `*out_len` says the length needed.
#[no_mangle]
pub unsafe extern "C" fn camkit_demo_camera_url(
    cam: *const camkit_demo_camera,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let c = unsafe { arg_ref(cam, "cam") }?;
        let url = c.url.to_str().unwrap_or_default();
        // SAFETY: as above.
        unsafe { write_str_to_buf(url, buf, len, out_len) }
    })
}

/// The TCP port the camera listens on (the one picked when started with port 0); 0 when
/// `cam` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_demo_camera_port(cam: *const camkit_demo_camera) -> u16 {
    ffi_boundary!(value, {
        // SAFETY: the caller's handle (the conventions).
        unsafe { cam.as_ref() }.map_or(0, |c| c.port)
    })
}

/// Stops the demo camera (closing its clients' connections, waiting up to about 2 s for its
/// threads) and frees it. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn camkit_demo_camera_free(cam: *mut camkit_demo_camera) {
    ffi_boundary!(value, {
        if cam.is_null() {
            return;
        }
        // SAFETY: a live handle from camkit_demo_camera_start, freed once (the conventions).
        let mut c = unsafe { Box::from_raw(cam) };
        let (Some(camera), Some(runtime)) = (c.camera.take(), c.runtime.take()) else {
            return;
        };
        let stop = move || {
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), camera.stop()).await
            });
            runtime.shutdown_timeout(Duration::from_millis(500));
        };
        outside_runtime(stop);
    })
}
