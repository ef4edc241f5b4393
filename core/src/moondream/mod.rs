//! Visual reasoning with Moondream: ask a question about a camera's current picture, caption
//! it, find objects in it, and watch for answers that change.
//!
//! Two layers:
//! - [`MoondreamClient`] speaks Moondream's HTTP API about a JPEG: `query`, `caption`,
//!   `detect`, `point`, and the streaming `query_stream` / `caption_stream`. It targets both
//!   flavours of the API with one code path: the cloud (`https://api.moondream.ai/v1`, API key
//!   in `X-Moondream-Auth`) and Moondream Station (a local server, `http://localhost:2020/v1`,
//!   no key, errors as `200 {"error": …}`).
//! - [`MoondreamCameras`] (from [`CameraManager::moondream`](crate::CameraManager::moondream))
//!   asks about a camera by id: it takes the camera's latest picture from the frame cache,
//!   scaled so its long side is at most [`MoondreamConfig::max_image_side`] (768 px, as the
//!   official clients send), and returns the answer with the picture's `seq` and capture
//!   time. [`MoondreamCameras::watch`] asks at an interval, skips pictures that have not
//!   changed, and reports only answers that change. With feature `cluster`,
//!   `Cluster::moondream` gives the same for every camera of a cluster, the pictures coming
//!   from each camera's owner (`source.rs`).
//!
//! Failures are camkit [`Error`](crate::Error)s: `Unauthorized` (401/403: check
//! `MOONDREAM_API_KEY`), `RateLimited` (429 after the bounded retries), `ServiceError` (the
//! service's own message), `Timeout`, `Unreachable`, `InvalidInput`. The API key never
//! appears in `Debug` output, logs or error messages.
//!
//! ```no_run
//! # async fn demo(cameras: camkit::CameraManager) -> camkit::Result<()> {
//! use camkit::moondream::MoondreamConfig;
//! let vision = cameras.moondream(MoondreamConfig::default())?; // key from MOONDREAM_API_KEY
//! let a = vision.query("door", "Is the door open?").await?;
//! println!("picture #{}: {}", a.seq, a.result.answer);
//! # Ok(()) }
//! ```

mod cameras;
mod client;
mod config;
mod retry;
mod source;
mod sse;
mod stream;
mod types;
mod watch;

#[cfg(feature = "cluster")]
pub(crate) use cameras::fitted_jpeg;
pub use cameras::MoondreamCameras;
#[cfg(feature = "cluster")]
pub(crate) use client::fit_width;
pub use client::MoondreamClient;
pub use config::{MoondreamConfig, API_KEY_ENV, CLOUD_URL, STATION_URL};
#[cfg(feature = "cluster")]
pub(crate) use source::{latest_local, Source};
pub use stream::TextStream;
pub use types::{
    CameraAnswer, Caption, CaptionLength, DetectedObject, Detections, Point, Points, QueryAnswer,
};
pub use watch::{WatchEvent, WatchEvents, WatchHandle, WatchOptions, WatchStats};

/// Durations as integer milliseconds in JSON (`timeoutMs`, `everyMs`).
pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
