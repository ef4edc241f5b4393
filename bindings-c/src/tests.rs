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

/// `camkit_last_error_field`, through a buffer that fits.
fn last_error_field() -> String {
    let mut buf = [0 as c_char; 64];
    let mut n = 0usize;
    // SAFETY: a valid buffer and length.
    let r = unsafe { camkit_last_error_field(buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(r, CAMKIT_OK);
    // SAFETY: NUL-terminated by camkit_last_error_field.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.len(), n);
    s
}

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
        assert_eq!(last_error_field(), "id");
        assert_eq!(camkit_disconnect(mgr, c"nope".as_ptr()), CAMKIT_NOT_FOUND);
        assert_eq!(last_error_field(), "", "a failure about no field clears it");

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
        assert_eq!(
            last_error_field(),
            "rtsp_timeout_ms",
            "core's field, spelled as in C"
        );

        let opts = camkit_snapshot_options {
            max_width: 3,
            quality: 0,
            timeout_ms: 0,
            stream: 0,
        };
        let mut frame = null_mut();
        assert_eq!(
            camkit_snapshot(mgr, c"cam".as_ptr(), &opts, &mut frame),
            CAMKIT_INVALID_INPUT
        );
        assert!(last_error().starts_with("max_width:"), "{}", last_error());
        assert_eq!(last_error_field(), "max_width");
        let mut small = [0 as c_char; 4];
        let mut n = 0usize;
        assert_eq!(
            camkit_last_error_field(small.as_mut_ptr(), small.len(), &mut n),
            CAMKIT_BUFFER_TOO_SMALL
        );
        assert_eq!(n, "max_width".len());
        let opts = camkit_snapshot_options {
            max_width: 0,
            quality: 0,
            timeout_ms: 0,
            stream: 3,
        };
        assert_eq!(
            camkit_snapshot(mgr, c"cam".as_ptr(), &opts, &mut frame),
            CAMKIT_INVALID_INPUT
        );
        assert_eq!(last_error_field(), "stream", "{}", last_error());
        assert!(
            last_error().contains("CAMKIT_STREAM_SUB (2)"),
            "{}",
            last_error()
        );
        let sopts = camkit_subscribe_options {
            fps: 0.0,
            max_width: 0,
            quality: 0,
            stream: 3,
        };
        let mut sub = null_mut();
        assert_eq!(
            camkit_subscribe(
                mgr,
                c"cam".as_ptr(),
                &sopts,
                Some(count_only),
                null_mut(),
                &mut sub
            ),
            CAMKIT_INVALID_INPUT
        );
        assert!(sub.is_null());
        assert_eq!(last_error_field(), "stream", "{}", last_error());
        assert_eq!(
            camkit_snapshot(mgr, c"cam".as_ptr(), &opts, null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(last_error_field(), "out");

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
            stream: 0,
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

/// A demo camera for one test, and its URL as a C string.
struct Demo {
    cam: *mut camkit_demo_camera,
    url: [c_char; 128],
}

impl Demo {
    fn start(width: u32, height: u32) -> Demo {
        let mut cam = null_mut();
        let mut url = [0 as c_char; 128];
        // SAFETY: valid pointers and lengths.
        unsafe {
            assert_eq!(
                camkit_demo_camera_start(0, width, height, &mut cam),
                CAMKIT_OK,
                "{}",
                last_error()
            );
            assert_eq!(
                camkit_demo_camera_url(cam, url.as_mut_ptr(), url.len(), null_mut()),
                CAMKIT_OK
            );
        }
        Demo { cam, url }
    }

    /// A config for camera `id` (a NUL-terminated literal) on this demo camera.
    fn config(&self, id: &'static CStr) -> camkit_camera_config {
        // SAFETY: an all-zero config is the documented default.
        let mut cfg = unsafe { std::mem::zeroed::<camkit_camera_config>() };
        cfg.id = id.as_ptr();
        cfg.url = self.url.as_ptr();
        cfg
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SAFETY: started in `Demo::start`, freed once.
        unsafe { camkit_demo_camera_free(self.cam) }
    }
}

fn new_manager() -> *mut camkit_manager {
    let mut mgr = null_mut();
    let opts = camkit_manager_options { worker_threads: 1 };
    // SAFETY: valid pointers.
    assert_eq!(unsafe { camkit_manager_new(&opts, &mut mgr) }, CAMKIT_OK);
    mgr
}

/// After `camkit_manager_close` every call on the manager fails with `CAMKIT_CLOSED`
/// (never a crash), closing again is fine, its subscriptions stop delivering, and the
/// handle is still freed normally.
#[test]
fn every_call_after_close_fails_with_closed() {
    let demo = Demo::start(128, 96);
    let mgr = new_manager();
    let frames = AtomicU32::new(0);
    // SAFETY: valid pointers throughout; every handle freed once.
    unsafe {
        let cfg = demo.config(c"d");
        assert_eq!(
            camkit_connect(mgr, &cfg, null_mut()),
            CAMKIT_OK,
            "{}",
            last_error()
        );
        let mut sub = null_mut();
        let userdata = &frames as *const AtomicU32 as *mut c_void;
        assert_eq!(
            camkit_subscribe(
                mgr,
                c"d".as_ptr(),
                null(),
                Some(count_only),
                userdata,
                &mut sub
            ),
            CAMKIT_OK
        );
        assert_eq!(camkit_manager_close(mgr), CAMKIT_OK);
        assert_eq!(camkit_manager_close(mgr), CAMKIT_OK, "idempotent");

        let mut status = null_mut();
        let mut frame = null_mut();
        let mut json = null_mut();
        let mut sub2 = null_mut();
        let results = [
            camkit_connect(mgr, &demo.config(c"e"), &mut status),
            camkit_disconnect(mgr, c"d".as_ptr()),
            camkit_disconnect_all(mgr),
            camkit_snapshot(mgr, c"d".as_ptr(), null(), &mut frame),
            camkit_subscribe(
                mgr,
                c"d".as_ptr(),
                null(),
                Some(count_only),
                userdata,
                &mut sub2,
            ),
            camkit_status_get(mgr, c"d".as_ptr(), &mut status),
            camkit_status_json(mgr, null(), &mut json, null_mut()),
            camkit_status_json(mgr, c"d".as_ptr(), &mut json, null_mut()),
        ];
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(r, CAMKIT_CLOSED, "call {i}: {}", last_error());
        }
        assert!(last_error().contains("closed"), "{}", last_error());
        assert!(status.is_null() && frame.is_null() && json.is_null() && sub2.is_null());

        // The subscription's camera is gone: its callbacks stop.
        std::thread::sleep(std::time::Duration::from_millis(150));
        let n = frames.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(frames.load(Ordering::SeqCst), n, "frames after close");
        assert_eq!(camkit_subscription_free(sub), CAMKIT_OK);
        camkit_manager_free(mgr);
    }
}

/// A manager whose cameras were all disconnected answers every call normally: unknown ids
/// are `CAMKIT_NOT_FOUND`, the list is empty, and the ids can be connected again.
#[test]
fn calls_on_a_manager_whose_cameras_were_all_disconnected() {
    let demo = Demo::start(128, 96);
    let mgr = new_manager();
    // SAFETY: valid pointers throughout; every handle freed once.
    unsafe {
        assert_eq!(
            camkit_connect(mgr, &demo.config(c"a"), null_mut()),
            CAMKIT_OK
        );
        assert_eq!(
            camkit_connect(mgr, &demo.config(c"b"), null_mut()),
            CAMKIT_OK
        );
        assert_eq!(camkit_disconnect_all(mgr), CAMKIT_OK);
        assert_eq!(camkit_disconnect_all(mgr), CAMKIT_OK);
        let mut frame = null_mut();
        let mut status = null_mut();
        let mut sub = null_mut();
        assert_eq!(
            camkit_snapshot(mgr, c"a".as_ptr(), null(), &mut frame),
            CAMKIT_NOT_FOUND
        );
        assert_eq!(
            camkit_status_get(mgr, c"b".as_ptr(), &mut status),
            CAMKIT_NOT_FOUND
        );
        assert_eq!(camkit_disconnect(mgr, c"a".as_ptr()), CAMKIT_NOT_FOUND);
        assert_eq!(
            camkit_subscribe(
                mgr,
                c"a".as_ptr(),
                null(),
                Some(count_only),
                null_mut(),
                &mut sub
            ),
            CAMKIT_NOT_FOUND
        );
        let mut json = null_mut();
        assert_eq!(
            camkit_status_json(mgr, null(), &mut json, null_mut()),
            CAMKIT_OK
        );
        assert_eq!(cstr(json), "[]");
        camkit_string_free(json);
        assert_eq!(
            camkit_connect(mgr, &demo.config(c"a"), null_mut()),
            CAMKIT_OK
        );
        assert_eq!(
            camkit_snapshot(mgr, c"a".as_ptr(), null(), &mut frame),
            CAMKIT_OK
        );
        camkit_frame_free(frame);
        camkit_manager_free(mgr);
    }
}

/// `camkit_manager_free` while other threads are blocked inside calls on the manager
/// (connects to a camera that accepts and never answers): the calls return promptly with
/// `CAMKIT_CLOSED` instead of touching a freed manager, and free waits for them (it
/// returns long before their RTSP timeout).
#[test]
fn free_while_calls_are_running_on_other_threads() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection without a word: a camera that hangs.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let mgr = new_manager() as usize;
    let ids: [&'static CStr; 3] = [c"hang0", c"hang1", c"hang2"];
    let callers: Vec<_> = ids
        .into_iter()
        .map(|id| {
            std::thread::spawn(move || {
                // SAFETY: an all-zero config is the default; the strings are literals.
                let mut cfg = unsafe { std::mem::zeroed::<camkit_camera_config>() };
                cfg.id = id.as_ptr();
                cfg.host = c"127.0.0.1".as_ptr();
                cfg.port = port;
                cfg.rtsp_timeout_ms = 20_000;
                let t0 = std::time::Instant::now();
                // SAFETY: the manager is live when this call starts (it is freed only
                // after the calls have started, see below).
                let r = unsafe { camkit_connect(mgr as *const camkit_manager, &cfg, null_mut()) };
                (r, t0.elapsed())
            })
        })
        .collect();
    // Let the calls start and block on the silent camera.
    std::thread::sleep(std::time::Duration::from_millis(400));
    let t0 = std::time::Instant::now();
    // SAFETY: from camkit_manager_new, freed once; no call starts after this.
    unsafe { camkit_manager_free(mgr as *mut camkit_manager) };
    let free_took = t0.elapsed();
    for c in callers {
        let (r, took) = c.join().unwrap();
        assert_eq!(r, CAMKIT_CLOSED, "a call running during free");
        assert!(took.as_secs() < 8, "a call took {took:?}");
    }
    assert!(free_took.as_secs() < 8, "free took {free_took:?}");
}

struct Watch {
    frames: AtomicU32,
    in_callback: AtomicBool,
    freed: AtomicBool,
    late: AtomicU32,
}

unsafe extern "C" fn slow_watch(userdata: *mut c_void, _frame: *const camkit_frame) {
    // SAFETY: the test's Watch, alive until after every subscription is freed.
    let w = unsafe { &*(userdata as *const Watch) };
    w.in_callback.store(true, Ordering::SeqCst);
    if w.freed.load(Ordering::SeqCst) {
        w.late.fetch_add(1, Ordering::SeqCst);
    }
    w.frames.fetch_add(1, Ordering::SeqCst);
    // A slow callback, so that free often lands while one is running.
    std::thread::sleep(std::time::Duration::from_millis(25));
    w.in_callback.store(false, Ordering::SeqCst);
}

/// Once `camkit_subscription_free` returns no callback of that subscription is running or
/// starts, with frames flowing at 15 fps and a callback that takes a while: free waits for
/// a running callback and stops the delivery thread before the next one.
#[test]
fn no_callback_after_subscription_free_at_15_fps() {
    let demo = Demo::start(128, 96);
    let mgr = new_manager();
    let w = Watch {
        frames: AtomicU32::new(0),
        in_callback: AtomicBool::new(false),
        freed: AtomicBool::new(false),
        late: AtomicU32::new(0),
    };
    let userdata = &w as *const Watch as *mut c_void;
    // SAFETY: valid pointers throughout; every handle freed once.
    unsafe {
        let mut cfg = demo.config(c"d");
        cfg.decode = camkit_decode_policy::CAMKIT_DECODE_CONTINUOUS;
        assert_eq!(
            camkit_connect(mgr, &cfg, null_mut()),
            CAMKIT_OK,
            "{}",
            last_error()
        );
        let opts = camkit_subscribe_options {
            fps: 15.0,
            max_width: 0,
            quality: 0,
            stream: 0,
        };
        for round in 0..8 {
            w.freed.store(false, Ordering::SeqCst);
            let before = w.frames.load(Ordering::SeqCst);
            let mut sub = null_mut();
            let r = camkit_subscribe(
                mgr,
                c"d".as_ptr(),
                &opts,
                Some(slow_watch),
                userdata,
                &mut sub,
            );
            assert_eq!(r, CAMKIT_OK, "{}", last_error());
            let t0 = std::time::Instant::now();
            while w.frames.load(Ordering::SeqCst) < before + 2 && t0.elapsed().as_secs() < 5 {
                std::thread::sleep(std::time::Duration::from_millis(1 + round % 7));
            }
            assert_eq!(camkit_subscription_free(sub), CAMKIT_OK);
            w.freed.store(true, Ordering::SeqCst);
            assert!(
                !w.in_callback.load(Ordering::SeqCst),
                "a callback was running after free returned"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert_eq!(w.late.load(Ordering::SeqCst), 0, "callbacks after free");
        assert!(w.frames.load(Ordering::SeqCst) >= 16);
        camkit_manager_free(mgr);
    }
}
