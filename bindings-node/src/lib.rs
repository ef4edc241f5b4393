//! camkit for Node.js: IP cameras (RTSP/H.264) to JPEG frames, in-process.
//!
//! The npm package `camkit` (this crate, built with `napi build`) exports `CameraManager`,
//! its `Subscription`, `VideoSubscription` and `EventListener`, `startDemoCamera()`, and
//! `Moondream` (visual reasoning about a camera's picture, from `cameras.moondream()`) with
//! its `Watch`, and `Cluster` (this process as one node of a NATS cluster of camkit nodes,
//! [`cluster`]); `index.d.ts` has the types. Conventions:
//!
//! - Camera operations return promises; the work runs on a tokio runtime, never on the JS
//!   thread ([`promise`]).
//! - Every error is a JS `Error` with camkit's stable `code` ([`error`]).
//! - Frames and events reach JS through weak, bounded thread-safe functions
//!   ([`subscription`]): they never keep the process alive and never pile up.
//! - A frame's JPEG is a `Buffer` over camkit's own bytes, not a copy ([`frame`]); so is
//!   each chunk of live video from `subscribeVideo()` ([`video`]).
//! - Names are camelCase; configs and results are plain objects ([`config`], [`status`]).
#![forbid(clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod delivery;
mod demo;
mod error;
mod frame;
mod manager;
mod moondream;
mod promise;
mod status;
mod subscription;
mod video;

#[cfg(feature = "cluster")]
pub use cluster::Cluster;
pub use config::camera_config_fields;
pub use demo::{start_demo_camera, DemoCamera};
pub use manager::CameraManager;
pub use moondream::{Moondream, Watch};
pub use subscription::{EventListener, Subscription};
pub use video::VideoSubscription;

/// One tokio runtime for the module, shared by napi-rs (promises) and, by default, every
/// `CameraManager` (camera sessions). Two workers: camera I/O is light, and decoding and
/// JPEG encoding run on camkit's own threads.
#[napi_derive::module_init]
fn init() {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("camkit-rt")
        .enable_all()
        .build()
    {
        Ok(rt) => napi::bindgen_prelude::create_custom_tokio_runtime(rt),
        // napi-rs then builds its default runtime on first use.
        Err(e) => tracing::error!(error = %e, "cannot create the camkit runtime"),
    }
}

/// The module's shared tokio runtime.
pub(crate) fn module_runtime() -> tokio::runtime::Handle {
    napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::current)
}
