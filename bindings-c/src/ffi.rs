//! Pointer, string and buffer helpers for the exported functions, and blocking on the
//! manager's runtime.
//!
//! Each helper checks what the caller controls (NULL, UTF-8, buffer size) and turns a
//! violation into an [`FfiError`]; nothing here unwraps a caller's value.

use std::ffi::{CStr, CString};
use std::future::Future;
use std::os::raw::c_char;
use std::ptr::NonNull;

use crate::error::{camkit_result, FfiError};

/// A required pointer argument as a reference.
///
/// # Safety
/// `p` is NULL or points to a live `T` that outlives `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T, FfiError> {
    // SAFETY: per this function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// A required string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes
        .to_str()
        .map_err(|_| FfiError::invalid(name, "is not valid UTF-8"))
}

/// An optional string field: NULL and `""` both mean "not given".
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(
    p: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, FfiError> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: per this function's contract.
    let s = unsafe { arg_str(p, name) }?;
    Ok((!s.is_empty()).then_some(s))
}

/// A required out-parameter, checked before the call does its work so a NULL `out` never
/// leaves an effect (a connected camera, a started thread) that the caller cannot see.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// # Safety
    /// `p` is NULL or valid for writing a `T` until [`Out::write`].
    pub unsafe fn new(p: *mut T, name: &str) -> Result<Out<T>, FfiError> {
        NonNull::new(p).map(Out).ok_or_else(|| FfiError::null(name))
    }

    /// An optional out-parameter: `None` when NULL.
    ///
    /// # Safety
    /// As [`Out::new`].
    pub unsafe fn optional(p: *mut T) -> Option<Out<T>> {
        NonNull::new(p).map(Out)
    }

    /// Writes the value (without reading or dropping the old one: it is C memory).
    pub fn write(self, v: T) {
        // SAFETY: non-NULL, and writable per the contract of `new`.
        unsafe { self.0.as_ptr().write(v) }
    }
}

/// Moves a value to the heap for C; freed by [`free_handle`].
pub(crate) fn into_handle<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `into_handle::<T>` and was not freed yet.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per this function's contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Copies `s` NUL-terminated into a caller's buffer.
///
/// On success writes `*out_len = s.len()` (when `out_len` is not NULL). When `len <=
/// s.len()` writes nothing to `buf`, sets `*out_len` to `s.len()` (the one case where an
/// out-parameter is written on failure: the size needed) and fails with
/// `CAMKIT_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `buf` is NULL or valid for writing `len` bytes; `out_len` is NULL or writable.
pub(crate) unsafe fn write_str_to_buf(
    s: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> Result<(), FfiError> {
    if buf.is_null() && len != 0 {
        return Err(FfiError::null("buf"));
    }
    // SAFETY: per this function's contract.
    let out_len = unsafe { Out::optional(out_len) };
    if len <= s.len() {
        if let Some(o) = out_len {
            o.write(s.len());
        }
        return Err(FfiError::new(
            camkit_result::CAMKIT_BUFFER_TOO_SMALL,
            format!(
                "buffer of {len} bytes is too small: {} needed (including the NUL)",
                s.len() + 1
            ),
        ));
    }
    // SAFETY: `buf` is valid for `len > s.len()` bytes, and `s` cannot overlap it (it is
    // Rust-owned memory).
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        buf.add(s.len()).write(0);
    }
    if let Some(o) = out_len {
        o.write(s.len());
    }
    Ok(())
}

/// A C string for a handle's accessor; NULs (which camkit never produces) become spaces.
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Runs `f` on a thread that is not inside a tokio runtime: this one, or a short-lived
/// scoped thread when this one is (a Rust program calling the C API from async code).
///
/// Blocking on a runtime, or creating or dropping one, panics inside a runtime. C callers,
/// and camkit's own callback threads, are never inside one: callbacks run outside
/// `block_on`.
pub(crate) fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Runs `fut` to completion on `handle`'s runtime, blocking this thread.
pub(crate) fn block_on<F>(handle: &tokio::runtime::Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    outside_runtime(|| handle.block_on(fut))
}

/// Milliseconds from C, where 0 means "the default".
pub(crate) fn millis_or(ms: u32, default: std::time::Duration) -> std::time::Duration {
    if ms == 0 {
        default
    } else {
        std::time::Duration::from_millis(u64::from(ms))
    }
}
