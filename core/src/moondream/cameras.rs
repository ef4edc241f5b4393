//! Moondream about a camera: its latest picture, scaled for Moondream by the frame cache
//! (the pictures' source, a manager or a cluster: [`super::source`]).

use std::future::Future;

use bytes::Bytes;

use super::client::{check_text, fit_width, MoondreamClient};
use super::config::MoondreamConfig;
use super::source::Source;
use super::stream::TextStream;
use super::types::{CameraAnswer, Caption, CaptionLength, Detections, Points, QueryAnswer};
use super::watch::{self, WatchEvents, WatchHandle, WatchOptions};
use crate::error::Result;
use crate::frame::{Frame, SnapshotOptions, StreamChoice};
use crate::manager::CameraManager;
use crate::pictures::LatestPicture;

/// Moondream for the cameras of one [`CameraManager`] (or, feature `cluster`, of a whole
/// cluster: `Cluster::moondream`): ask about a camera by its id.
///
/// Each call takes the camera's latest picture (decoding what the decode policy left
/// undecoded, as a snapshot does), scaled so its long side is at most
/// [`MoondreamConfig::max_image_side`], and returns Moondream's answer with that picture's
/// `seq` and capture time. The scaled JPEG comes from the frame cache: made once per
/// picture and shared with every other reader of that size.
///
/// Through a cluster the picture comes from the camera's owner, wherever the camera runs
/// now: the same stream choice and fit, forwarded as a snapshot.
///
/// Cheap to clone; holds a clone of the manager (keeping it alive), or of the cluster
/// (keeping this node in it). Errors carry the camera id.
#[derive(Clone, Debug)]
pub struct MoondreamCameras {
    source: Source,
    client: MoondreamClient,
}

impl MoondreamCameras {
    pub(crate) fn new(source: Source, client: MoondreamClient) -> Self {
        MoondreamCameras { source, client }
    }
}

impl CameraManager {
    /// Moondream for this manager's cameras. Fails with `InvalidInput` (naming the field)
    /// when the configuration is not acceptable, e.g. the cloud without an API key in
    /// `config.api_key` or `MOONDREAM_API_KEY`.
    pub fn moondream(&self, config: MoondreamConfig) -> Result<MoondreamCameras> {
        Ok(self.moondream_with(MoondreamClient::new(config)?))
    }

    /// Moondream for this manager's cameras, through an existing client (shares its
    /// connections).
    pub fn moondream_with(&self, client: MoondreamClient) -> MoondreamCameras {
        MoondreamCameras::new(Source::Manager(self.clone()), client)
    }
}

impl MoondreamCameras {
    /// The client the calls go through.
    pub fn client(&self) -> &MoondreamClient {
        &self.client
    }

    /// The picture the next call would send: the camera's latest, scaled to fit.
    pub async fn frame(&self, camera_id: &str) -> Result<Frame> {
        self.source.fitted(camera_id, self.side()).await
    }

    /// Asks a question about the camera's current picture.
    pub async fn query(
        &self,
        camera_id: &str,
        question: &str,
    ) -> Result<CameraAnswer<QueryAnswer>> {
        check_text("question", question)?;
        self.ask(camera_id, |c, jpeg| async move {
            c.query(&jpeg, question).await
        })
        .await
    }

    /// Captions the camera's current picture.
    pub async fn caption(
        &self,
        camera_id: &str,
        length: CaptionLength,
    ) -> Result<CameraAnswer<Caption>> {
        self.ask(camera_id, |c, jpeg| async move {
            c.caption(&jpeg, length).await
        })
        .await
    }

    /// Finds `object` in the camera's current picture (bounding boxes, 0–1 coordinates).
    pub async fn detect(&self, camera_id: &str, object: &str) -> Result<CameraAnswer<Detections>> {
        check_text("object", object)?;
        self.ask(
            camera_id,
            |c, jpeg| async move { c.detect(&jpeg, object).await },
        )
        .await
    }

    /// Points at `object` in the camera's current picture (centre points, 0–1 coordinates).
    pub async fn point(&self, camera_id: &str, object: &str) -> Result<CameraAnswer<Points>> {
        check_text("object", object)?;
        self.ask(
            camera_id,
            |c, jpeg| async move { c.point(&jpeg, object).await },
        )
        .await
    }

    /// Asks a question about the camera's current picture and streams the answer (see
    /// [`MoondreamClient::query_stream`]); the picture's `seq` is known before the first
    /// piece arrives.
    pub async fn query_stream(
        &self,
        camera_id: &str,
        question: &str,
    ) -> Result<CameraAnswer<TextStream>> {
        check_text("question", question)?;
        self.ask(camera_id, |c, jpeg| async move {
            c.query_stream(&jpeg, question).await
        })
        .await
    }

    /// Captions the camera's current picture, streaming the caption.
    pub async fn caption_stream(
        &self,
        camera_id: &str,
        length: CaptionLength,
    ) -> Result<CameraAnswer<TextStream>> {
        self.ask(camera_id, |c, jpeg| async move {
            c.caption_stream(&jpeg, length).await
        })
        .await
    }

    /// Asks `question` about the camera at an interval and reports the answers that change.
    ///
    /// With `opts.only_when_changed`, a picture that has not changed enough since the last
    /// one asked about (see [`WatchOptions::change_threshold`]) is not sent at all. The
    /// first answer is always reported. Runs on the manager's runtime until the handle is
    /// dropped (or [`WatchHandle::stop`]), the events are dropped, or the camera is
    /// disconnected (through a cluster: this node left it, or the camera was removed,
    /// which ends the events with a `NotFound` error); the events then end. See
    /// [`WatchEvents`] for errors.
    pub fn watch(
        &self,
        camera_id: &str,
        question: &str,
        opts: WatchOptions,
    ) -> Result<(WatchHandle, WatchEvents)> {
        opts.validate()?;
        check_text("question", question)?;
        let target = self.source.target(camera_id)?;
        Ok(watch::start(
            target,
            self.client.clone(),
            question.to_owned(),
            opts,
            self.source.runtime(),
        ))
    }

    fn side(&self) -> u32 {
        self.client.config().max_image_side
    }

    async fn ask<T, F, Fut>(&self, camera_id: &str, call: F) -> Result<CameraAnswer<T>>
    where
        F: FnOnce(MoondreamClient, Bytes) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let frame = self.frame(camera_id).await?;
        let result = call(self.client.clone(), frame.jpeg.clone())
            .await
            .map_err(|e| e.for_camera(camera_id))?;
        Ok(CameraAnswer {
            camera_id: camera_id.to_owned(),
            seq: frame.seq,
            captured_at_ms: frame.captured_at_ms(),
            width: frame.width,
            height: frame.height,
            result,
        })
    }
}

/// A picture's JPEG scaled to fit `side`×`side`: the width is computed from this
/// picture's own aspect ratio, so a portrait picture gets a narrower width.
pub(crate) async fn fitted_jpeg(pic: &LatestPicture, side: u32) -> Result<Frame> {
    let (w, h) = pic.dimensions();
    let opts = SnapshotOptions {
        max_width: Some(fit_width(w, h, side)),
        quality: None,
        stream: StreamChoice::Main,
    };
    pic.jpeg(opts).await
}
