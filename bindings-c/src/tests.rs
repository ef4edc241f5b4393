//! The C API's edges, called as C would call them: NULL arguments, buffers, results,
//! and one end-to-end run against the demo camera. (The C examples in examples/c are the
//! C-side tests: bindings-c/tests/run_c_tests.sh.)

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use crate::config::*;
use crate::demo_camera::*;
use crate::error::camkit_result::*;
use crate::error::*;
use crate::frame::*;
use crate::manager::*;
use crate::status::*;
use crate::subscription::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut n = 0usize;
    // SAFETY: a valid buffer and length.
    let r = unsafe { camkit_last_error(buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(r, CAMKIT_OK);
    // SAFETY: NUL-terminated by camkit_last_error.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.len(), n);
    s
}

fn cstr(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: camkit's static or handle-owned strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

#[test]
fn version_and_result_names() {
    assert_eq!(cstr(crate::camkit_version()), env!("CARGO_PKG_VERSION"));
    assert_eq!(cstr(camkit_result_name(4)), "UNAUTHORIZED");
    assert_eq!(cstr(camkit_result_name(9999)), "UNKNOWN");
    assert_eq!(cstr(camkit_result_message(0)), "success");
    assert_eq!(cstr(camkit_camera_state_name(1)), "streaming");
}

#[test]
fn null_arguments_are_reported_not_dereferenced() {
    // SAFETY: NULLs are what is being tested; every function must reject them.
    unsafe {
        assert_eq!(camkit_manager_new(null(), null_mut()), CAMKIT_NULL_ARGUMENT);
        assert!(last_error().contains("`out`"), "{}", last_error());
        assert_eq!(
            camkit_connect(null(), null(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(camkit_disconnect(null(), null()), CAMKIT_NULL_ARGUMENT);
        assert_eq!(camkit_disconnect_all(null()), CAMKIT_NULL_ARGUMENT);
        assert_eq!(
            camkit_snapshot(null(), null(), null(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(
            camkit_subscribe(null(), null(), null(), None, null_mut(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(
            camkit_status_get(null(), null(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(
            camkit_status_json(null(), null(), null_mut(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(camkit_frame_clone(null(), null_mut()), CAMKIT_NULL_ARGUMENT);
        assert_eq!(camkit_subscription_stop(null()), CAMKIT_NULL_ARGUMENT);
        assert_eq!(
            camkit_demo_camera_start(0, 0, 0, null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        // Accessors give their neutral value; free functions accept NULL.
        assert!(camkit_frame_data(null()).is_null());
        assert_eq!(camkit_frame_len(null()), 0);
        assert_eq!(
            camkit_status_state(null()),
            camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED
        );
        assert_eq!(camkit_demo_camera_port(null()), 0);
        camkit_manager_free(null_mut());
        camkit_frame_free(null_mut());
        camkit_status_free(null_mut());
        camkit_string_free(null_mut());
        camkit_demo_camera_free(null_mut());
        assert_eq!(camkit_subscription_free(null_mut()), CAMKIT_OK);
    }
}

#[test]
fn last_error_is_per_thread_and_buffer_checked() {
    // SAFETY: valid pointers throughout.
    unsafe {
        assert_eq!(camkit_disconnect(null(), null()), CAMKIT_NULL_ARGUMENT);
        let msg = last_error();
        assert!(msg.contains("`mgr` is NULL"), "{msg}");
        // Too small: nothing written, the size needed reported, the last error kept.
        let mut small = [b'x' as c_char; 4];
        let mut n = 0usize;
        let r = camkit_last_error(small.as_mut_ptr(), small.len(), &mut n);
        assert_eq!(r, CAMKIT_BUFFER_TOO_SMALL);
        assert_eq!(n, msg.len());
        assert!(small.iter().all(|c| *c == b'x' as c_char));
        assert_eq!(last_error(), msg);
        // Size query.
        assert_eq!(
            camkit_last_error(null_mut(), 0, &mut n),
            CAMKIT_BUFFER_TOO_SMALL
        );
        assert_eq!(n, msg.len());
        assert_eq!(
            camkit_last_error(null_mut(), 10, &mut n),
            CAMKIT_NULL_ARGUMENT
        );
    }
    // Another thread has its own (empty) last error.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
}

#[test]
fn invalid_utf8_and_bad_options_name_the_field() {
    // SAFETY: valid pointers throughout.
    unsafe {
        let mut mgr = null_mut();
        assert_eq!(camkit_manager_new(null(), &mut mgr), CAMKIT_OK);
        let bad = [b'c', 0xfe, 0];
        assert_eq!(
            camkit_disconnect(mgr, bad.as_ptr().cast()),
            CAMKIT_INVALID_INPUT
        );
        assert!(last_error().starts_with("id:"), "{}", last_error());
        assert_eq!(camkit_disconnect(mgr, c"nope".as_ptr()), CAMKIT_NOT_FOUND);

        let mut cfg = std::mem::zeroed::<camkit_camera_config>();
        assert_eq!(camkit_camera_config_init(&mut cfg), CAMKIT_OK);
        cfg.id = c"cam".as_ptr();
        cfg.host = c"127.0.0.1".as_ptr();
        cfg.rtsp_timeout_ms = 90_000_000; // more than a day
        let mut status = null_mut();
        assert_eq!(camkit_connect(mgr, &cfg, &mut status), CAMKIT_INVALID_INPUT);
        assert!(status.is_null(), "out written on failure");
        assert!(
            last_error().starts_with("rtsp_timeout_ms:"),
            "{}",
            last_error()
        );

        let opts = camkit_snapshot_options {
            max_width: 3,
            quality: 0,
            timeout_ms: 0,
        };
        let mut frame = null_mut();
        assert_eq!(
            camkit_snapshot(mgr, c"cam".as_ptr(), &opts, &mut frame),
            CAMKIT_INVALID_INPUT
        );
        assert!(last_error().starts_with("max_width:"), "{}", last_error());

        let mut json = null_mut();
        let mut len = 99usize;
        assert_eq!(
            camkit_status_json(mgr, null(), &mut json, &mut len),
            CAMKIT_OK
        );
        assert_eq!(cstr(json), "[]");
        assert_eq!(len, 2);
        camkit_string_free(json);
        camkit_manager_free(mgr);
    }
}

struct Counter {
    frames: AtomicU32,
    after_free: AtomicBool,
    freed: AtomicBool,
    sub: AtomicPtr<camkit_subscription>,
    free_in_callback: AtomicU32,
    kept: AtomicPtr<camkit_frame>,
}

unsafe extern "C" fn on_frame(userdata: *mut c_void, frame: *const camkit_frame) {
    // SAFETY: the test's Counter, alive until after the subscription is freed.
    let c = unsafe { &*(userdata as *const Counter) };
    if c.freed.load(Ordering::SeqCst) {
        c.after_free.store(true, Ordering::SeqCst);
    }
    c.frames.fetch_add(1, Ordering::SeqCst);
    // SAFETY: camkit's borrowed frame.
    unsafe {
        assert_eq!(*camkit_frame_data(frame), 0xFF);
        let sub = c.sub.load(Ordering::SeqCst);
        if !sub.is_null() && c.free_in_callback.load(Ordering::SeqCst) == 0 {
            c.free_in_callback
                .store(camkit_subscription_free(sub) as u32, Ordering::SeqCst);
        }
        if c.kept.load(Ordering::SeqCst).is_null() {
            let mut kept = null_mut();
            assert_eq!(camkit_frame_clone(frame, &mut kept), CAMKIT_OK);
            c.kept.store(kept, Ordering::SeqCst);
        }
    }
}

#[test]
fn end_to_end_with_the_demo_camera() {
    // SAFETY: valid pointers throughout; every handle freed once.
    unsafe {
        let mut demo = null_mut();
        assert_eq!(camkit_demo_camera_start(0, 320, 240, &mut demo), CAMKIT_OK);
        let port = camkit_demo_camera_port(demo);
        assert_ne!(port, 0);
        let mut n = 0usize;
        assert_eq!(
            camkit_demo_camera_url(demo, null_mut(), 0, &mut n),
            CAMKIT_BUFFER_TOO_SMALL
        );
        let mut url = vec![0 as c_char; n + 1];
        assert_eq!(
            camkit_demo_camera_url(demo, url.as_mut_ptr(), url.len(), &mut n),
            CAMKIT_OK
        );
        assert_eq!(cstr(url.as_ptr()), format!("rtsp://127.0.0.1:{port}/demo"));

        let mut mgr = null_mut();
        let opts = camkit_manager_options { worker_threads: 1 };
        assert_eq!(camkit_manager_new(&opts, &mut mgr), CAMKIT_OK);
        let mut cfg = std::mem::zeroed::<camkit_camera_config>();
        cfg.id = c"demo".as_ptr();
        cfg.url = url.as_ptr();
        let mut status = null_mut();
        let r = camkit_connect(mgr, &cfg, &mut status);
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        assert_eq!(
            camkit_status_state(status),
            camkit_camera_state::CAMKIT_CAMERA_STATE_STREAMING
        );
        assert_eq!(camkit_status_width(status), 320);
        assert_eq!(cstr(camkit_status_id(status)), "demo");
        camkit_status_free(status);
        assert_eq!(camkit_connect(mgr, &cfg, null_mut()), CAMKIT_ALREADY_EXISTS);

        let mut frame = null_mut();
        assert_eq!(
            camkit_snapshot(mgr, c"demo".as_ptr(), null(), &mut frame),
            CAMKIT_OK
        );
        let data = std::slice::from_raw_parts(camkit_frame_data(frame), camkit_frame_len(frame));
        assert_eq!(&data[..2], &[0xFF, 0xD8]);
        assert!(camkit_frame_seq(frame) >= 1);
        camkit_frame_free(frame);

        let counter = Counter {
            frames: AtomicU32::new(0),
            after_free: AtomicBool::new(false),
            freed: AtomicBool::new(false),
            sub: AtomicPtr::new(null_mut()),
            free_in_callback: AtomicU32::new(0),
            kept: AtomicPtr::new(null_mut()),
        };
        let sopts = camkit_subscribe_options {
            fps: 10.0,
            max_width: 160,
            quality: 50,
        };
        let mut sub = null_mut();
        let r = camkit_subscribe(
            mgr,
            c"demo".as_ptr(),
            &sopts,
            Some(on_frame),
            &counter as *const Counter as *mut c_void,
            &mut sub,
        );
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        counter.sub.store(sub, Ordering::SeqCst);
        let t0 = std::time::Instant::now();
        while counter.frames.load(Ordering::SeqCst) < 3 && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(counter.frames.load(Ordering::SeqCst) >= 3);
        assert_eq!(
            counter.free_in_callback.load(Ordering::SeqCst),
            CAMKIT_WOULD_DEADLOCK as u32
        );
        assert_eq!(camkit_subscription_free(sub), CAMKIT_OK);
        counter.freed.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !counter.after_free.load(Ordering::SeqCst),
            "callback after free"
        );
        let kept = counter.kept.load(Ordering::SeqCst);
        assert_eq!(camkit_frame_width(kept), 160);
        camkit_frame_free(kept);

        let mut json = null_mut();
        assert_eq!(
            camkit_status_json(mgr, c"demo".as_ptr(), &mut json, null_mut()),
            CAMKIT_OK
        );
        assert!(cstr(json).contains("\"state\":\"streaming\""));
        camkit_string_free(json);
        assert_eq!(camkit_disconnect(mgr, c"demo".as_ptr()), CAMKIT_OK);
        assert_eq!(
            camkit_snapshot(mgr, c"demo".as_ptr(), null(), &mut frame),
            CAMKIT_NOT_FOUND
        );
        camkit_manager_free(mgr);
        camkit_demo_camera_free(demo);
    }
}

unsafe extern "C" fn count_only(userdata: *mut c_void, _frame: *const camkit_frame) {
    // SAFETY: the test's AtomicU32, alive until after the subscription is freed.
    unsafe { &*(userdata as *const AtomicU32) }.fetch_add(1, Ordering::SeqCst);
}

/// A Rust program calling the C API from async code (inside a tokio runtime) must not hit
/// tokio's "cannot block_on inside a runtime" panic; and a subscription may outlive its
/// manager (it keeps the runtime alive until it is freed).
#[test]
fn callable_inside_a_runtime_and_subscription_outlives_manager() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let frames = AtomicU32::new(0);
    let frames_ptr = &frames as *const AtomicU32 as usize;
    rt.block_on(async move {
        // SAFETY: valid pointers throughout; every handle freed once.
        unsafe {
            let mut demo = null_mut();
            assert_eq!(
                camkit_demo_camera_start(0, 128, 96, &mut demo),
                CAMKIT_OK,
                "{}",
                last_error()
            );
            let mut url = [0 as c_char; 128];
            assert_eq!(
                camkit_demo_camera_url(demo, url.as_mut_ptr(), url.len(), null_mut()),
                CAMKIT_OK
            );
            let mut mgr = null_mut();
            assert_eq!(camkit_manager_new(null(), &mut mgr), CAMKIT_OK);
            let mut cfg = std::mem::zeroed::<camkit_camera_config>();
            cfg.id = c"d".as_ptr();
            cfg.url = url.as_ptr();
            assert_eq!(
                camkit_connect(mgr, &cfg, null_mut()),
                CAMKIT_OK,
                "{}",
                last_error()
            );
            let mut frame = null_mut();
            assert_eq!(
                camkit_snapshot(mgr, c"d".as_ptr(), null(), &mut frame),
                CAMKIT_OK
            );
            camkit_frame_free(frame);
            let mut sub = null_mut();
            let r = camkit_subscribe(
                mgr,
                c"d".as_ptr(),
                null(),
                Some(count_only),
                frames_ptr as *mut c_void,
                &mut sub,
            );
            assert_eq!(r, CAMKIT_OK);
            let t0 = std::time::Instant::now();
            while (*(frames_ptr as *const AtomicU32)).load(Ordering::SeqCst) == 0
                && t0.elapsed().as_secs() < 10
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            // The manager goes first: the camera stops, the subscription's callbacks end.
            camkit_manager_free(mgr);
            assert_eq!(camkit_subscription_stop(sub), CAMKIT_OK);
            assert_eq!(camkit_subscription_free(sub), CAMKIT_OK);
            camkit_demo_camera_free(demo);
        }
    });
    assert!(frames.load(Ordering::SeqCst) > 0);
}
