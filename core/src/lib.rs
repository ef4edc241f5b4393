//! camkit: IP cameras to frames an application can use.
//!
//! A [`CameraManager`] opens RTSP cameras with `retina`, decodes H.264 and H.265 with the
//! system's libavcodec when it has one, else H.264 with OpenH264 (off the async worker
//! threads), passes MJPEG through, and keeps the latest picture of each camera in a frame
//! cache that encodes a JPEG at most once per picture and size, shared by every reader.
//!
//! ```no_run
//! # async fn demo() -> camkit::Result<()> {
//! use camkit::{CameraConfig, CameraManager, SnapshotOptions};
//! let cameras = CameraManager::new();
//! let cfg = CameraConfig::from_host("door", "192.168.1.20").credentials("admin", "p@ss word");
//! let status = cameras.connect(cfg).await?;
//! println!("{} is {:?} at {:?}x{:?}", status.id, status.state, status.width, status.height);
//! let frame = cameras.snapshot("door", SnapshotOptions::full().max_width(640)).await?;
//! std::fs::write("door.jpg", &frame.jpeg).unwrap();
//! # Ok(()) }
//! ```
#![forbid(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

pub mod address;
mod backoff;
mod camera;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
mod decode;
pub mod error;
pub mod events;
pub mod frame;
pub mod jpeg;
mod manager;
#[cfg(feature = "moondream")]
pub mod moondream;
pub mod picture;
mod pictures;
pub mod quirks;
pub mod status;
mod subscription;
mod util;
pub mod video;

pub use address::Source;
pub use backoff::Backoff;
pub use config::{CameraConfig, DecodePolicy, DecoderChoice, Transport};
pub use decode::{Codec, DecoderBackend, VideoDecoder};
pub use error::{Error, ErrorKind, Result, RtspStep};
pub use events::{CameraEvent, EventStream};
pub use frame::{Frame, SnapshotOptions, StreamChoice, SubscribeOptions};
pub use manager::{CameraManager, ManagerOptions};
pub use picture::{LumaSummary, Picture};
pub use pictures::{CameraPictures, LatestPicture};
pub use quirks::{Teardown, UnassignedChannelData, UnknownRtcpSsrc};
pub use status::{CameraState, CameraStatus, LastError, SubStreamStatus};
pub use subscription::Subscription;
pub use video::{VideoChunk, VideoChunkKind, VideoFormat, VideoOptions, VideoSubscription};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
