//! The read-only picture API: a camera's latest picture as a consumer built on camkit sees
//! it (Moondream, an application's own analysis), without the pipeline's internals.
//!
//! A [`LatestPicture`] is one published picture: its sequence number, capture time and
//! size, a luma summary to tell whether the scene changed, and its JPEG at any size and
//! quality, made by the frame cache (once per picture, size and quality, shared with every
//! snapshot and subscriber).

use std::sync::Arc;
use std::time::SystemTime;

use crate::camera::{CachedPicture, Camera};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, SnapshotOptions, StreamChoice};
use crate::picture::LumaSummary;

/// One camera's pictures, read-only (from [`CameraManager::pictures`](crate::CameraManager::pictures)).
///
/// Follows the camera it was made for: after that camera is disconnected, a camera
/// connected again under the same id is another camera, and [`stopped`](Self::stopped)
/// has resolved. Cheap to clone.
#[derive(Clone)]
pub struct CameraPictures {
    camera: Arc<Camera>,
    stream: StreamChoice,
}

impl CameraPictures {
    pub(crate) fn new(camera: Arc<Camera>) -> Self {
        CameraPictures {
            camera,
            stream: StreamChoice::Main,
        }
    }

    /// The pictures of another of the camera's streams: `Sub` for the sub-stream's while
    /// it streams (the main stream's otherwise; a camera without one has only those).
    /// The default is the main stream. Sequence numbers count per stream.
    pub fn on_stream(mut self, stream: StreamChoice) -> Self {
        self.stream = stream;
        self
    }

    /// The camera's id.
    pub fn camera_id(&self) -> &str {
        self.camera.id()
    }

    /// The latest picture, decoding what the decode policy left undecoded (as a snapshot
    /// does). While the camera reconnects, its last picture (stale: see
    /// [`CameraStatus::picture_stale`](crate::CameraStatus::picture_stale)). `NoFrame` when
    /// there is none to serve: not streaming and no picture yet, or stopped.
    pub async fn latest(&self) -> Result<LatestPicture> {
        let camera = self.camera.pick(None, self.stream);
        if !Arc::ptr_eq(&camera, &self.camera) {
            if let Ok(pic) = camera.latest_picture().await {
                return Ok(LatestPicture { camera, pic });
            }
        }
        let pic = self.camera.latest_picture().await?;
        Ok(LatestPicture {
            camera: self.camera.clone(),
            pic,
        })
    }

    /// Resolves once the camera is disconnected (or its manager closed).
    pub async fn stopped(&self) {
        self.camera.stopped().await
    }
}

impl std::fmt::Debug for CameraPictures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraPictures")
            .field("camera", &self.camera.id())
            .finish()
    }
}

/// One published picture of a camera. Holding it keeps that picture (and the JPEGs made
/// of it) alive, nothing else.
#[derive(Clone)]
pub struct LatestPicture {
    camera: Arc<Camera>,
    pic: Arc<CachedPicture>,
}

impl LatestPicture {
    /// The camera's picture sequence number (as in [`Frame::seq`]).
    pub fn seq(&self) -> u64 {
        self.pic.seq
    }

    /// When camkit received the picture's data from the camera.
    pub fn captured_at(&self) -> SystemTime {
        self.pic.captured_at
    }

    /// Capture time in milliseconds since the Unix epoch.
    pub fn captured_at_ms(&self) -> u64 {
        crate::util::epoch_ms(self.captured_at())
    }

    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        self.pic.dimensions()
    }

    /// The picture's luma on a coarse grid, to compare with another picture's
    /// ([`LumaSummary::change`]). A picture the camera sent as JPEG (MJPEG), or one an
    /// idle camera keeps as JPEG, is decoded for it on a blocking thread.
    pub async fn luma(&self) -> Result<LumaSummary> {
        if let Some(s) = self.pic.luma_summary_now() {
            return Ok(s);
        }
        let pic = self.pic.clone();
        tokio::task::spawn_blocking(move || pic.luma_summary())
            .await
            .map_err(|_| Error::new(ErrorKind::Internal, "JPEG decode task failed"))?
            .map_err(|e| e.for_camera(self.camera.id()))
    }

    /// The picture as JPEG (`opts`: width, quality), from the frame cache when made
    /// already, else encoded once on a blocking thread however many ask at the same time.
    pub async fn jpeg(&self, opts: SnapshotOptions) -> Result<Frame> {
        opts.validate()?;
        self.camera.encode(self.pic.clone(), opts).await
    }
}

impl std::fmt::Debug for LatestPicture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (w, h) = self.dimensions();
        f.debug_struct("LatestPicture")
            .field("camera", &self.camera.id())
            .field("seq", &self.seq())
            .field("width", &w)
            .field("height", &h)
            .finish()
    }
}
