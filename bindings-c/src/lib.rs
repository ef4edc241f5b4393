//! camkit's C API: `libcamkit.so` / `libcamkit.a` and the header `include/camkit.h`.
//!
//! The header is generated from this crate by cbindgen (`gen_header.sh`); the doc comment of
//! every exported item becomes its documentation there, and the API conventions (handles,
//! results, buffers, threads) are written once at the top of the header (`cbindgen.toml`)
//! and in `README.md`.
//!
//! Every exported function runs its body inside [`ffi_boundary!`], which turns a panic into
//! `CAMKIT_PANIC`; bodies report failures as [`error::FfiError`], which the boundary records
//! as the thread's last error and maps to a `camkit_result`.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]
// The safety contract of every exported function is the same set of pointer rules (valid
// live handles, NUL-terminated strings, buffers of the stated length), written once in the
// header's Conventions section rather than repeated on each function.
#![allow(clippy::missing_safety_doc)]
// Exported types and constants carry their C names (`camkit_manager`, `CAMKIT_OK`).
#![allow(non_camel_case_types)]

#[macro_use]
mod panic;
mod ffi;

// cbindgen writes the header's functions in the order of these modules, so they are kept
// in reading order (one per group: rustfmt sorts a group alphabetically).
mod error;

mod manager;

mod config;

mod status;

mod sub_stream;

mod frame;

mod subscription;

mod video;

mod demo_camera;

mod moondream;

mod cluster;

use std::os::raw::c_char;

/// The library version, NUL-terminated.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of libcamkit, e.g. `"0.1.0"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn camkit_version() -> *const c_char {
    ffi_boundary!(value, { VERSION.as_ptr().cast() })
}

#[cfg(test)]
mod tests;
