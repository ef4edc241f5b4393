//! A camera's sub-stream (the config's `sub_stream`): a second [`Camera`] of the same
//! camera, owned by the main one, and the choice of the stream that serves a request.
//!
//! The sub-stream is a whole pipeline of its own (session, decode thread, frame cache,
//! demand, status), so each stream decodes on demand for its own readers, and one failing
//! does not touch the other. The main camera stops it, reports its status (`subStream`),
//! and routes snapshots, subscriptions and the picture API with [`Camera::pick`].

use std::sync::Arc;

use retina::client::SessionGroup;
use tokio::sync::{broadcast, oneshot, watch};

use super::{Camera, Origin};
use crate::address::Source;
use crate::config::CameraConfig;
use crate::decode::DecoderBackend;
use crate::error::Result;
use crate::frame::{Frame, SnapshotOptions, StreamChoice};
use crate::status::{CameraState, SubStreamStatus};

/// A started camera: the camera, the outcome of its first attempt, and that of its
/// sub-stream's first attempt when it has one (a failed one is in the sub-stream's
/// status; the sub-stream retries whatever `persistent` says).
pub(crate) struct Started {
    pub camera: Arc<Camera>,
    pub first: oneshot::Receiver<Result<()>>,
    pub sub_first: Option<oneshot::Receiver<Result<()>>>,
}

/// What ties a main stream and its sub-stream together as they start.
#[derive(Default)]
pub(super) struct StreamLink {
    /// The main stream's sub-stream.
    pub sub: Option<Arc<Camera>>,
    /// The main stream's: lets the sub-stream open once the main stream first plays.
    pub release: Option<watch::Sender<bool>>,
    /// The sub-stream's: what it waits for before opening.
    pub gate: Option<watch::Receiver<bool>>,
}

impl StreamLink {
    /// A main stream's link to its sub-stream.
    pub fn main(sub: Arc<Camera>, release: watch::Sender<bool>) -> Self {
        StreamLink {
            sub: Some(sub),
            release: Some(release),
            gate: None,
        }
    }
}

impl Camera {
    /// Starts the sub-stream of a camera configured by `config`: a camera of its own with
    /// the same settings, always retrying (a failed sub-stream never fails the camera),
    /// whose state changes are not sent as the camera's events. It opens once `gate` is
    /// set (the main stream played) or dropped.
    pub(super) fn start_sub(
        config: &CameraConfig,
        source: Source,
        group: &Arc<SessionGroup>,
        decoder: DecoderBackend,
        gate: watch::Receiver<bool>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(Arc<Camera>, oneshot::Receiver<Result<()>>)> {
        let sub_config = CameraConfig {
            persistent: true,
            sub_stream: None,
            ..config.clone()
        };
        let origin = Origin::rtsp(source, &sub_config, group.clone(), decoder);
        // Nobody listens: the camera's events are the main stream's.
        let (quiet, _) = broadcast::channel(1);
        let link = StreamLink {
            gate: Some(gate),
            ..StreamLink::default()
        };
        Self::start_with(sub_config, origin, link, quiet, rt)
    }

    /// The sub-stream's part of the camera's status.
    pub(super) fn sub_status(&self) -> Option<SubStreamStatus> {
        self.sub
            .as_ref()
            .map(|sub| SubStreamStatus::from_status(sub.status(), sub.status.refused_session()))
    }

    /// Whether the camera has a sub-stream.
    pub fn has_sub(&self) -> bool {
        self.sub.is_some()
    }

    /// The camera that serves a request of at most `max_width` pixels from `choice`: the
    /// sub-stream when it streams and `choice` is `sub`, or `auto` with a `max_width` it
    /// is at least as wide as; else this (the main stream).
    pub fn pick(self: &Arc<Self>, max_width: Option<u32>, choice: StreamChoice) -> Arc<Camera> {
        let Some(sub) = &self.sub else {
            return self.clone();
        };
        let serving = sub.state() == CameraState::Streaming;
        let fits = || {
            let width = sub.status.width();
            max_width.is_some_and(|w| width.is_some_and(|sw| w <= sw))
        };
        let use_sub = match choice {
            StreamChoice::Main => false,
            StreamChoice::Sub => serving,
            StreamChoice::Auto => serving && fits(),
        };
        if use_sub {
            sub.clone()
        } else {
            self.clone()
        }
    }

    /// The latest picture as JPEG from the stream [`pick`](Self::pick) chooses; when the
    /// sub-stream fails it, from the main stream.
    pub async fn snapshot(self: &Arc<Self>, opts: SnapshotOptions) -> Result<Frame> {
        let cam = self.pick(opts.max_width, opts.stream);
        if !Arc::ptr_eq(&cam, self) {
            match cam.snapshot_here(opts).await {
                Ok(f) => return Ok(f),
                Err(e) => {
                    tracing::debug!(camera = %self.id, error = %e, "sub-stream snapshot failed; taking it from the main stream");
                }
            }
        }
        self.snapshot_here(opts).await
    }
}
