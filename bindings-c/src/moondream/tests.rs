//! The Moondream calls as C makes them, against the demo camera and a loopback Moondream
//! (`camkit_tests::MoondreamMock`, cloud flavour, which checks the key and every request):
//! one handle for every call, answers, owned strings and arrays, results for each failure,
//! out-parameters untouched on failure, a key that never appears in a message, and a
//! handle that outlives its manager.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::ptr::{null, null_mut};

use camkit_tests::{Flavour, MoondreamMock, Reply, DETECT_BOX, POINT};

use super::*;
use crate::demo_camera::*;
use crate::error::camkit_result::*;
use crate::error::*;
use crate::manager::*;
use crate::status::camkit_string_free;

const KEY: &str = "md-c-test-key-do-not-show-0123";

fn last_error() -> String {
    let mut buf = [0 as c_char; 1024];
    // SAFETY: a valid buffer and length.
    let r = unsafe { camkit_last_error(buf.as_mut_ptr(), buf.len(), null_mut()) };
    assert_eq!(r, CAMKIT_OK);
    // SAFETY: NUL-terminated by camkit_last_error.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// A manager with a 320x180 demo camera connected as `door`; freed on drop.
struct Setup {
    mgr: *mut camkit_manager,
    demo: *mut camkit_demo_camera,
}

impl Setup {
    fn new() -> Setup {
        // SAFETY: valid pointers throughout; handles freed in Drop.
        unsafe {
            let mut demo = null_mut();
            assert_eq!(camkit_demo_camera_start(0, 320, 180, &mut demo), CAMKIT_OK);
            let mut url = [0 as c_char; 128];
            assert_eq!(
                camkit_demo_camera_url(demo, url.as_mut_ptr(), url.len(), null_mut()),
                CAMKIT_OK
            );
            let mut mgr = null_mut();
            assert_eq!(camkit_manager_new(null(), &mut mgr), CAMKIT_OK);
            let mut cfg = std::mem::zeroed::<crate::config::camkit_camera_config>();
            cfg.id = c"door".as_ptr();
            cfg.url = url.as_ptr();
            assert_eq!(
                camkit_connect(mgr, &cfg, null_mut()),
                CAMKIT_OK,
                "{}",
                last_error()
            );
            Setup { mgr, demo }
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: handles from Setup::new, freed once.
        unsafe {
            camkit_manager_free(self.mgr);
            camkit_demo_camera_free(self.demo);
        }
    }
}

/// Options for the mock at `base` (a C string kept alive by the caller).
fn options(base: &std::ffi::CString, key: &std::ffi::CString) -> camkit_moondream_options {
    let mut o = std::mem::MaybeUninit::<camkit_moondream_options>::uninit();
    // SAFETY: a valid pointer; init writes every field.
    unsafe {
        assert_eq!(camkit_moondream_options_init(o.as_mut_ptr()), CAMKIT_OK);
        let mut o = o.assume_init();
        o.base_url = base.as_ptr();
        o.api_key = key.as_ptr();
        o.timeout_ms = 5000;
        o
    }
}

fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

/// A Moondream handle; freed on drop.
struct Md(*mut camkit_moondream);

impl Drop for Md {
    fn drop(&mut self) {
        // SAFETY: a handle from camkit_moondream_new, freed once.
        unsafe { camkit_moondream_free(self.0) }
    }
}

/// A handle for the manager and `opts` (NULL: the defaults), or what
/// `camkit_moondream_new` failed with, its message, and `out` untouched.
fn md(
    mgr: *const camkit_manager,
    opts: *const camkit_moondream_options,
) -> Result<Md, (camkit_result, String)> {
    let sentinel = std::ptr::dangling_mut::<camkit_moondream>();
    let mut out = sentinel;
    // SAFETY: valid pointers.
    match unsafe { camkit_moondream_new(mgr, opts, &mut out) } {
        CAMKIT_OK => Ok(Md(out)),
        r => {
            assert_eq!(out, sentinel, "out written on failure");
            Err((r, last_error()))
        }
    }
}

#[test]
fn query_caption_detect_point_against_the_mock() {
    let setup = Setup::new();
    let mock = MoondreamMock::start(Flavour::Cloud {
        api_key: KEY.into(),
    });
    let (base, key) = (cstring(&mock.base_url()), cstring(KEY));
    let opts = options(&base, &key);
    // One handle (one HTTP client) for every call.
    let md = md(setup.mgr, &opts).unwrap();
    // SAFETY: valid pointers throughout; every result freed once.
    unsafe {
        mock.push(Reply::Answer("Two bars are red.".into()));
        let mut answer = null_mut();
        let mut len = 0usize;
        let r = camkit_moondream_query(
            md.0,
            c"door".as_ptr(),
            c"Which bars are red?".as_ptr(),
            &mut answer,
            &mut len,
        );
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        assert_eq!(
            CStr::from_ptr(answer).to_str().unwrap(),
            "Two bars are red."
        );
        assert_eq!(len, "Two bars are red.".len());
        camkit_string_free(answer);

        let mut caption = null_mut();
        let r = camkit_moondream_caption(
            md.0,
            c"door".as_ptr(),
            camkit_caption_length::CAMKIT_CAPTION_SHORT as u32,
            &mut caption,
            null_mut(),
        );
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        assert_eq!(CStr::from_ptr(caption).to_str().unwrap(), "mock answer");
        camkit_string_free(caption);

        let mut boxes = null_mut();
        let mut n = 99usize;
        let r =
            camkit_moondream_detect(md.0, c"door".as_ptr(), c"bar".as_ptr(), &mut boxes, &mut n);
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        assert_eq!(n, 1);
        let b = *boxes;
        assert_eq!((b.x_min, b.y_min, b.x_max, b.y_max), DETECT_BOX);
        camkit_detections_free(boxes, n);

        let mut points = null_mut();
        let r = camkit_moondream_point(
            md.0,
            c"door".as_ptr(),
            c"clock".as_ptr(),
            &mut points,
            &mut n,
        );
        assert_eq!(r, CAMKIT_OK, "{}", last_error());
        assert_eq!(n, 1);
        assert_eq!(((*points).x, (*points).y), POINT);
        camkit_points_free(points, n);
        camkit_detections_free(null_mut(), 0);
        camkit_points_free(null_mut(), 0);
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let reqs = mock.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/query", "/caption", "/detect", "/point"]);
    for r in &reqs {
        assert_eq!(r.auth.as_deref(), Some(KEY));
        assert_eq!(r.size, (320, 180));
    }
    assert_eq!(reqs[0].body["question"], "Which bars are red?");
    assert_eq!(reqs[1].body["length"], "short");
}

#[test]
fn failures_have_their_result_and_leave_out_parameters_alone() {
    let setup = Setup::new();
    let mock = MoondreamMock::start(Flavour::Cloud {
        api_key: KEY.into(),
    });
    let (base, key) = (cstring(&mock.base_url()), cstring(KEY));
    let mut opts = options(&base, &key);
    opts.no_retries = true;
    opts.max_retries = 5;
    let sentinel = std::ptr::dangling_mut::<c_char>();
    let query = |opts: &camkit_moondream_options, id: &CStr| {
        let md = match md(setup.mgr, opts) {
            Ok(md) => md,
            Err(failed) => return failed,
        };
        let mut answer = sentinel;
        let mut len = 77usize;
        // SAFETY: valid pointers.
        let r = unsafe {
            camkit_moondream_query(md.0, id.as_ptr(), c"q?".as_ptr(), &mut answer, &mut len)
        };
        if r != CAMKIT_OK {
            assert_eq!((answer, len), (sentinel, 77), "out written on failure");
        } else {
            // SAFETY: the answer camkit allocated.
            unsafe { camkit_string_free(answer) };
        }
        (r, last_error())
    };

    let (r, msg) = query(&opts, c"nope");
    assert_eq!(r, CAMKIT_NOT_FOUND, "{msg}");

    mock.push(Reply::TooManyRequests(Some("0".into())));
    let (r, msg) = query(&opts, c"door");
    assert_eq!(r, CAMKIT_RATE_LIMITED, "{msg}");
    assert_eq!(mock.requests().len(), 1, "no_retries: one attempt");

    mock.push(Reply::Status(500, "GPU on fire".into()));
    let (r, msg) = query(&opts, c"door");
    assert_eq!(r, CAMKIT_SERVICE_ERROR, "{msg}");
    assert!(
        msg.contains("GPU on fire") && msg.starts_with("camera \"door\""),
        "{msg}"
    );

    mock.push(Reply::Hang);
    let mut quick = options(&base, &key);
    quick.timeout_ms = 300;
    quick.no_retries = true;
    let (r, msg) = query(&quick, c"door");
    assert_eq!(r, CAMKIT_TIMEOUT, "{msg}");

    let wrong = cstring("md-wrong-key-never-shown");
    let refused = options(&base, &wrong);
    let (r, msg) = query(&refused, c"door");
    assert_eq!(r, CAMKIT_UNAUTHORIZED, "{msg}");
    assert!(msg.contains("MOONDREAM_API_KEY"), "{msg}");
    assert!(!msg.contains("md-wrong-key-never-shown"), "{msg}");

    // The options, named as the C struct names them.
    let mut bad = options(&base, &key);
    bad.timeout_ms = 5;
    let (r, msg) = query(&bad, c"door");
    assert_eq!(r, CAMKIT_INVALID_INPUT);
    assert!(msg.starts_with("timeout_ms:"), "{msg}");
    let ftp = cstring("ftp://example.com/v1");
    let (r, msg) = query(&options(&ftp, &key), c"door");
    assert_eq!(r, CAMKIT_INVALID_INPUT);
    assert!(msg.starts_with("base_url:"), "{msg}");
    let spaced = cstring("has a space");
    let (r, msg) = query(&options(&base, &spaced), c"door");
    assert_eq!(r, CAMKIT_INVALID_INPUT);
    assert!(
        msg.starts_with("api_key:") && !msg.contains("has a space"),
        "{msg}"
    );

    let md = md(setup.mgr, &opts).unwrap();
    // SAFETY: valid pointers, and the NULLs and values being tested.
    unsafe {
        let mut out = null_mut();
        assert_eq!(
            camkit_moondream_caption(md.0, c"door".as_ptr(), 7, &mut out, null_mut()),
            CAMKIT_INVALID_INPUT
        );
        assert!(last_error().starts_with("length:"), "{}", last_error());
        assert_eq!(
            camkit_moondream_query(null(), null(), null(), null_mut(), null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        assert!(last_error().contains("`md`"), "{}", last_error());
        let mut out_md = null_mut();
        assert_eq!(
            camkit_moondream_new(null(), &opts, &mut out_md),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(
            camkit_moondream_new(setup.mgr, &opts, null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
        camkit_moondream_free(null_mut());
        assert_eq!(
            camkit_moondream_query(
                md.0,
                c"door".as_ptr(),
                c"q?".as_ptr(),
                null_mut(),
                null_mut()
            ),
            CAMKIT_NULL_ARGUMENT
        );
        assert!(last_error().contains("out_answer"), "{}", last_error());
        let mut n = 0usize;
        assert_eq!(
            camkit_moondream_detect(
                md.0,
                c"door".as_ptr(),
                c"".as_ptr(),
                &mut null_mut(),
                &mut n
            ),
            CAMKIT_INVALID_INPUT
        );
        assert!(last_error().starts_with("object:"), "{}", last_error());
        assert_eq!(
            camkit_moondream_point(
                md.0,
                c"door".as_ptr(),
                c"x".as_ptr(),
                &mut null_mut(),
                null_mut()
            ),
            CAMKIT_NULL_ARGUMENT
        );
        assert_eq!(
            camkit_moondream_options_init(null_mut()),
            CAMKIT_NULL_ARGUMENT
        );
    }
    // Nothing sent was malformed.
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[test]
fn null_options_mean_the_cloud_with_the_environments_key() {
    if std::env::var_os("MOONDREAM_API_KEY").is_some() {
        return; // the cloud would be tried for real
    }
    let setup = Setup::new();
    // NULL options are allowed.
    let Err((r, msg)) = md(setup.mgr, null()) else {
        panic!("the cloud without a key was accepted");
    };
    assert_eq!(r, CAMKIT_INVALID_INPUT);
    assert!(
        msg.starts_with("api_key:") && msg.contains("MOONDREAM_API_KEY"),
        "{msg}"
    );
}

/// `camkit_manager_close` ends a Moondream call that is waiting for a slow service, so that
/// `camkit_manager_free` (which waits for running calls) is not held up by it.
#[test]
fn close_ends_a_call_waiting_for_moondream() {
    let setup = Setup::new();
    let mock = MoondreamMock::start(Flavour::Cloud {
        api_key: KEY.into(),
    });
    mock.push(Reply::Hang);
    let (base, key) = (cstring(&mock.base_url()), cstring(KEY));
    let mut opts = options(&base, &key);
    opts.timeout_ms = 20_000;
    let md = md(setup.mgr, &opts).unwrap();
    let md_addr = md.0 as usize;
    let t0 = std::time::Instant::now();
    let caller = std::thread::spawn(move || {
        let mut answer = null_mut();
        // SAFETY: the handle outlives this thread (joined below).
        let r = unsafe {
            camkit_moondream_query(
                md_addr as *const camkit_moondream,
                c"door".as_ptr(),
                c"q?".as_ptr(),
                &mut answer,
                null_mut(),
            )
        };
        (r, last_error())
    });
    while mock.requests().is_empty() && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: a live manager; closing does not free it.
    assert_eq!(unsafe { camkit_manager_close(setup.mgr) }, CAMKIT_OK);
    let (r, msg) = caller.join().unwrap();
    assert_eq!(r, CAMKIT_CLOSED, "{msg}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t0.elapsed()
    );
    // Later calls through the handle fail at once, before any request.
    let before = mock.requests().len();
    let mut answer = null_mut();
    // SAFETY: a live handle.
    let r = unsafe {
        camkit_moondream_query(
            md.0,
            c"door".as_ptr(),
            c"q?".as_ptr(),
            &mut answer,
            null_mut(),
        )
    };
    assert_eq!(r, CAMKIT_CLOSED, "{}", last_error());
    assert_eq!(mock.requests().len(), before);
    // A new handle on the closed manager is refused too.
    assert_eq!(
        self::md(setup.mgr, &opts).err().map(|(r, _)| r),
        Some(CAMKIT_CLOSED)
    );
}

/// A handle outlives its manager: freed after `camkit_manager_free`, its calls fail with
/// `CAMKIT_CLOSED` (and valgrind-clean frees in either order are the C tests' part).
#[test]
fn a_handle_freed_after_its_manager() {
    let mock = MoondreamMock::start(Flavour::Cloud {
        api_key: KEY.into(),
    });
    let (base, key) = (cstring(&mock.base_url()), cstring(KEY));
    let opts = options(&base, &key);
    let setup = Setup::new();
    let md = md(setup.mgr, &opts).unwrap();
    drop(setup);
    let mut answer = null_mut();
    // SAFETY: a live handle; the manager behind it is freed.
    let r = unsafe {
        camkit_moondream_query(
            md.0,
            c"door".as_ptr(),
            c"q?".as_ptr(),
            &mut answer,
            null_mut(),
        )
    };
    assert_eq!(r, CAMKIT_CLOSED, "{}", last_error());
    assert!(mock.requests().is_empty());
    drop(md);
}
