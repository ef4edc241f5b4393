//! Moondream through a cluster (features `cluster` and `moondream`): questions about any
//! camera of the cluster from any node. The picture is the one a local
//! [`MoondreamCameras`] would send on the camera's owner: the sub-stream's latest while it
//! streams, its long side fitted to `max_image_side`. On the owner it is read directly; on
//! any other node it comes from the owner as a forwarded snapshot (`stream: sub`,
//! `maxWidth: max_image_side`; a portrait picture, taller than wide, is asked for again at
//! the narrower width that fits it, since its size is known only from the first answer).

//!
//! A watch through a cluster also publishes each new answer on
//! `<prefix>.events.watch.<base64url id>` (JSON: the [`WatchEvent`] and the asking `node`),
//! so other processes can follow it without camkit's API.

use bytes::Bytes;

use super::records::token;
use super::{wait_closed, Cluster};
use crate::config::check_id;
use crate::error::Result;
use crate::frame::{Frame, SnapshotOptions, StreamChoice};
use crate::moondream::{MoondreamCameras, MoondreamClient, MoondreamConfig, WatchEvent};

impl Cluster {
    /// Moondream for every camera of the cluster, asked from this node (see
    /// [`MoondreamCameras`]). Fails as [`CameraManager::moondream`](crate::CameraManager::moondream)
    /// does for a configuration that is not acceptable.
    pub fn moondream(&self, config: MoondreamConfig) -> Result<MoondreamCameras> {
        Ok(self.moondream_with(MoondreamClient::new(config)?))
    }

    /// As [`moondream`](Self::moondream), through an existing client.
    pub fn moondream_with(&self, client: MoondreamClient) -> MoondreamCameras {
        MoondreamCameras::new(crate::moondream::Source::Cluster(self.clone()), client)
    }

    /// The picture Moondream gets of camera `id`, from its owner (module doc).
    pub(crate) async fn moondream_frame(&self, id: &str, side: u32) -> Result<Frame> {
        check_id(id)?;
        let s = self.s();
        let Some(node) = s.route(id)? else {
            let pic = crate::moondream::latest_local(&s.manager, id).await?;
            return crate::moondream::fitted_jpeg(&pic, side).await;
        };
        let opts = SnapshotOptions {
            max_width: Some(side),
            quality: None,
            stream: StreamChoice::Sub,
        };
        let f = s.remote_snapshot(&node, id, opts).await?;
        if f.height <= side {
            return Ok(f);
        }
        let w = crate::moondream::fit_width(f.width, f.height, side);
        s.remote_snapshot(&node, id, opts.max_width(w)).await
    }

    /// `NotFound` unless camera `id` is in the cluster (with or without an owner now).
    pub(crate) fn moondream_check(&self, id: &str) -> Result<()> {
        check_id(id)?;
        super::feed::known(self.s(), id)
    }

    /// Publishes a watch's new answer for other processes (module doc). Best effort: a
    /// watch never fails because NATS is away.
    pub(crate) async fn publish_watch(&self, ev: &WatchEvent) {
        let s = self.s();
        let mut body = serde_json::to_value(ev).unwrap_or_default();
        if let Some(o) = body.as_object_mut() {
            o.insert("node".into(), s.node.clone().into());
        }
        let subject = format!("{}.events.watch.{}", s.timing.prefix, token(&ev.camera_id));
        let _ = s
            .client
            .publish(subject, Bytes::from(body.to_string()))
            .await;
    }

    /// Resolves once this node has left the cluster.
    pub(crate) async fn left_signal(&self) {
        wait_closed(&mut self.s().closed.subscribe()).await
    }

    /// The runtime of the node's manager.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        self.s().manager.runtime()
    }
}
