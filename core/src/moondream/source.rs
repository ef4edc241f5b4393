//! Where Moondream's pictures come from: the cameras of one [`CameraManager`], or (feature
//! `cluster`) every camera of a cluster, wherever it runs.
//!
//! Either way the picture is the camera's latest from its sub-stream while that streams
//! (Moondream takes at most `max_image_side` pixels: decoding the main stream for it would
//! waste the CPU), scaled so its long side is at most `max_image_side`. For a camera of
//! another node it comes through [`Cluster::snapshot`](crate::cluster::Cluster::snapshot)'s
//! forwarding with the same stream choice and fit.

use super::cameras::fitted_jpeg;
use crate::error::Result;
use crate::frame::{Frame, StreamChoice};
use crate::manager::CameraManager;
use crate::picture::LumaSummary;
use crate::pictures::{CameraPictures, LatestPicture};

/// The pictures of a [`MoondreamCameras`](super::MoondreamCameras).
#[derive(Clone)]
pub(crate) enum Source {
    Manager(CameraManager),
    #[cfg(feature = "cluster")]
    Cluster(crate::cluster::Cluster),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Manager(m) => f.debug_tuple("Manager").field(m).finish(),
            #[cfg(feature = "cluster")]
            Source::Cluster(c) => f.debug_tuple("Cluster").field(&c.node_id()).finish(),
        }
    }
}

impl Source {
    /// The camera's latest picture, fitted to `side`.
    pub(crate) async fn fitted(&self, camera_id: &str, side: u32) -> Result<Frame> {
        match self {
            Source::Manager(m) => fitted_jpeg(&latest_local(m, camera_id).await?, side).await,
            #[cfg(feature = "cluster")]
            Source::Cluster(c) => c.moondream_frame(camera_id, side).await,
        }
    }

    /// What a watch of `camera_id` reads each tick. `NotFound` for an unknown camera.
    pub(crate) fn target(&self, camera_id: &str) -> Result<Target> {
        match self {
            Source::Manager(m) => Ok(Target::Local(
                m.pictures(camera_id)?.on_stream(StreamChoice::Sub),
            )),
            #[cfg(feature = "cluster")]
            Source::Cluster(c) => {
                c.moondream_check(camera_id)?;
                Ok(Target::Cluster(c.clone(), camera_id.to_owned()))
            }
        }
    }

    /// The runtime watches run on.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        match self {
            Source::Manager(m) => m.runtime(),
            #[cfg(feature = "cluster")]
            Source::Cluster(c) => c.runtime(),
        }
    }
}

/// The sub-stream's latest picture while it streams, else the main stream's.
pub(crate) async fn latest_local(m: &CameraManager, camera_id: &str) -> Result<LatestPicture> {
    m.pictures(camera_id)?
        .on_stream(StreamChoice::Sub)
        .latest()
        .await
}

/// The camera a watch asks about.
#[derive(Clone)]
pub(crate) enum Target {
    /// A camera of this process's manager: the watch ends when it is disconnected.
    Local(CameraPictures),
    /// A camera of the cluster, wherever it runs now (each tick asks its current owner):
    /// the watch ends when this node leaves, or with `NotFound` once the camera was
    /// removed from the cluster.
    #[cfg(feature = "cluster")]
    Cluster(crate::cluster::Cluster, String),
}

/// One tick's picture.
pub(crate) enum TickPicture {
    /// This process's picture, at full size (fitted when sent).
    Local(LatestPicture),
    /// The owner's picture, already fitted.
    #[cfg(feature = "cluster")]
    Fitted(Frame),
}

impl Target {
    pub(crate) fn camera_id(&self) -> &str {
        match self {
            Target::Local(p) => p.camera_id(),
            #[cfg(feature = "cluster")]
            Target::Cluster(_, id) => id,
        }
    }

    /// A watch of this camera has a new answer: a cluster publishes it for other processes
    /// (`<prefix>.events.watch.<id>`); a local camera has nobody to tell.
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub(crate) async fn on_answer(&self, ev: &super::WatchEvent) {
        match self {
            Target::Local(_) => {}
            #[cfg(feature = "cluster")]
            Target::Cluster(c, _) => c.publish_watch(ev).await,
        }
    }

    /// Resolves once the camera can have no more pictures for the watch.
    pub(crate) async fn stopped(&self) {
        match self {
            Target::Local(p) => p.stopped().await,
            #[cfg(feature = "cluster")]
            Target::Cluster(c, _) => c.left_signal().await,
        }
    }

    /// The latest picture; `side` is the fit, for a source that fits it itself.
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub(crate) async fn latest(&self, side: u32) -> Result<TickPicture> {
        match self {
            Target::Local(p) => Ok(TickPicture::Local(p.latest().await?)),
            #[cfg(feature = "cluster")]
            Target::Cluster(c, id) => Ok(TickPicture::Fitted(c.moondream_frame(id, side).await?)),
        }
    }
}

impl TickPicture {
    pub(crate) fn seq(&self) -> u64 {
        match self {
            TickPicture::Local(p) => p.seq(),
            #[cfg(feature = "cluster")]
            TickPicture::Fitted(f) => f.seq,
        }
    }

    /// Its luma on the comparison grid (a fitted picture's is decoded from its JPEG, on
    /// a blocking thread).
    pub(crate) async fn luma(&self) -> Result<LumaSummary> {
        match self {
            TickPicture::Local(p) => p.luma().await,
            #[cfg(feature = "cluster")]
            TickPicture::Fitted(f) => {
                let jpeg = f.jpeg.clone();
                tokio::task::spawn_blocking(move || {
                    crate::jpeg::decode_to_i420(&jpeg).map(|p| p.luma_summary())
                })
                .await
                .map_err(|_| {
                    crate::Error::new(crate::ErrorKind::Internal, "JPEG decode task failed")
                })?
            }
        }
    }

    /// The picture as Moondream gets it.
    pub(crate) async fn fitted(self, side: u32) -> Result<Frame> {
        match self {
            TickPicture::Local(p) => fitted_jpeg(&p, side).await,
            #[cfg(feature = "cluster")]
            TickPicture::Fitted(f) => Ok(f),
        }
    }
}
