//! The panic boundary every exported function runs inside.
//!
//! A Rust panic must not unwind into C (an `extern "C"` function that panics aborts the
//! process). [`ffi_boundary!`] runs a function body under `catch_unwind`: a panic becomes
//! `CAMKIT_PANIC` (or the type's fallback value for accessors) with a last-error message
//! naming the function.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{camkit_result, set_last_error, FfiError};
use crate::status::camkit_camera_state;

/// Runs an exported function's body behind the panic boundary.
///
/// - `ffi_boundary!(result, { ... })`: the body evaluates to `Result<(), FfiError>` (so `?`
///   works); `Ok` becomes `CAMKIT_OK`, an error is recorded as the thread's last error and
///   its code returned.
/// - `ffi_boundary!(value, { ... })`: the body evaluates to the function's return value;
///   a panic returns [`PanicDefault::panic_default`] (NULL, 0, `CAMKIT_PANIC`).
macro_rules! ffi_boundary {
    (result, $body:block) => {{
        fn here() {}
        $crate::panic::catch_result(
            ::std::any::type_name_of_val(&here),
            move || -> ::std::result::Result<(), $crate::error::FfiError> { $body },
        )
    }};
    (value, $body:block) => {{
        fn here() {}
        $crate::panic::catch_value(::std::any::type_name_of_val(&here), move || $body)
    }};
}

/// The `result` arm of [`ffi_boundary!`].
pub(crate) fn catch_result(
    site: &'static str,
    body: impl FnOnce() -> Result<(), FfiError>,
) -> camkit_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => camkit_result::CAMKIT_OK,
        Ok(Err(e)) => e.record(),
        Err(payload) => panicked(site, payload),
    }
}

/// The `value` arm of [`ffi_boundary!`].
pub(crate) fn catch_value<T: PanicDefault>(site: &'static str, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            panicked(site, payload);
            T::panic_default()
        }
    }
}

fn panicked(site: &'static str, payload: Box<dyn Any + Send>) -> camkit_result {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    set_last_error(&format!(
        "{} panicked: {what}; this is a bug in camkit, please report it",
        function_name(site)
    ));
    camkit_result::CAMKIT_PANIC
}

/// `camkit::manager::camkit_snapshot::here` → `camkit_snapshot`.
fn function_name(site: &'static str) -> &'static str {
    let site = site.strip_suffix("::here").unwrap_or(site);
    site.rsplit("::").next().unwrap_or(site)
}

/// What an exported function returns when its body panicked.
pub(crate) trait PanicDefault {
    /// The fallback value.
    fn panic_default() -> Self;
}

impl PanicDefault for camkit_result {
    fn panic_default() -> Self {
        camkit_result::CAMKIT_PANIC
    }
}

impl PanicDefault for camkit_camera_state {
    fn panic_default() -> Self {
        camkit_camera_state::CAMKIT_CAMERA_STATE_STOPPED
    }
}

impl<T> PanicDefault for *const T {
    fn panic_default() -> Self {
        std::ptr::null()
    }
}

impl<T> PanicDefault for *mut T {
    fn panic_default() -> Self {
        std::ptr::null_mut()
    }
}

macro_rules! zero_default {
    ($($t:ty),*) => {
        $(impl PanicDefault for $t {
            fn panic_default() -> Self {
                Default::default()
            }
        })*
    };
}
zero_default!((), bool, u16, u32, u64, i64, usize, f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_function() {
        assert_eq!(
            function_name("camkit::manager::camkit_snapshot::here"),
            "camkit_snapshot"
        );
        assert_eq!(function_name("x"), "x");
    }

    #[test]
    fn a_panic_becomes_camkit_panic_with_a_message() {
        // (The default panic hook prints these two panics to stderr; the global hook is
        // left alone so that other tests running in parallel keep their messages.)
        let r = ffi_boundary!(result, {
            if true {
                panic!("boom");
            }
            Ok(())
        });
        let p: *const u8 = ffi_boundary!(value, {
            if true {
                panic!("boom2");
            }
            std::ptr::dangling()
        });
        assert_eq!(r, camkit_result::CAMKIT_PANIC);
        assert!(p.is_null());
        let msg = crate::error::last_error_string();
        assert!(msg.contains("panicked: boom2"), "{msg}");
        assert!(msg.contains("a_panic_becomes_camkit_panic"), "{msg}");
    }
}
