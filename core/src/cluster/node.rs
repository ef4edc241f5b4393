//! What this node does on its own: serve its cameras only while their leases are surely
//! its own, start and stop them on its `CameraManager`, write its heartbeat, run the loops
//! (fence, heartbeat + renewal, reconcile, events) and publish events.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::records::{camera_key, token, DesiredRecord, NodeRecord};
use super::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, SnapshotOptions};
use crate::status::{CameraState, CameraStatus};
use crate::util::epoch_ms;

impl Shared {
    /// Where to answer for `id`: `None` here, `Some(node)` on its owner.
    pub(crate) fn route(&self, id: &str) -> Result<Option<String>> {
        if let Some(o) = self.owned.lock().get(id) {
            if o.fresh(self.timing.lease_ttl, self.timing.fence_margin) {
                return Ok(None);
            }
        }
        match self.holder(id) {
            Some((h, _)) if h.node != self.node => Ok(Some(h.node)),
            _ if self.cameras.get(&camera_key(id)).is_some() => Err(Error::new(
                ErrorKind::NoFrame,
                format!("camera {id:?} has no owner right now (it is moving between nodes); retry in a few seconds"),
            )
            .for_camera(id)),
            _ => Err(Error::new(ErrorKind::NotFound, format!("no camera {id:?} in the cluster"))
                .for_camera(id)),
        }
    }

    pub(crate) fn owns(&self, id: &str) -> bool {
        self.owned
            .lock()
            .get(id)
            .is_some_and(|o| o.fresh(self.timing.lease_ttl, self.timing.fence_margin))
    }

    pub(crate) fn local_status(&self, id: &str) -> Result<CameraStatus> {
        if !self.owns(id) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("camera {id:?} is not on node {:?}", self.node),
            )
            .for_camera(id));
        }
        self.manager.status(id)
    }

    pub(crate) fn local_list(&self) -> Vec<CameraStatus> {
        self.manager
            .list()
            .into_iter()
            .filter(|s| self.owns(&s.id))
            .collect()
    }

    pub(crate) async fn local_snapshot(&self, id: &str, opts: SnapshotOptions) -> Result<Frame> {
        self.local_status(id)?;
        let f = self.manager.snapshot(id, opts).await?;
        // Checked again: the lease may have lapsed while the picture was awaited.
        self.local_status(id)?;
        Ok(f)
    }

    pub(crate) fn wake(&self) {
        self.cameras.changed.notify_waiters();
    }

    /// Starts `id` on this node's manager (the lease is held).
    pub(crate) fn start_camera(self: &Shared, id: &str, rec: DesiredRecord) {
        let config = match rec.open(&self.sealer) {
            Ok(mut c) => {
                c.persistent = true;
                c
            }
            Err(e) => {
                tracing::error!(camera = id, error = %e, "cannot open the camera's credentials");
                return;
            }
        };
        let manager = self.manager.clone();
        let cam = id.to_owned();
        let task = self.manager.runtime().spawn(async move {
            // A camera of an earlier ownership still stopping.
            let _ = manager.disconnect(&cam).await;
            if let Err(e) = manager.connect(config).await {
                tracing::info!(camera = %cam, error = %e, "camera not streaming yet; retrying");
            }
        });
        if let Some(old) = self.starts.lock().insert(id.to_owned(), task) {
            old.abort();
        }
    }

    /// Restarts an owned camera with a new config.
    pub(crate) fn restart(&self, id: &str, rec: DesiredRecord, config_rev: u64) {
        if let Some(o) = self.owned.lock().get_mut(id) {
            o.config_revision = config_rev;
        }
        self.start_camera(id, rec);
    }

    /// Stops an owned camera, then gives its lease up.
    pub(crate) async fn stop_owned(&self, id: &str, why: &str) {
        let Some(o) = self.owned.lock().remove(id) else {
            return;
        };
        let task = self.starts.lock().remove(id);
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        let _ = self.manager.disconnect(id).await;
        self.release(id, o.revision).await;
        self.publish_owner(id, why).await;
    }

    pub(crate) async fn heartbeat(&self) {
        let owned: Vec<String> = {
            let map = self.owned.lock();
            let mut v: Vec<String> = map
                .iter()
                .filter(|(_, o)| o.fresh(self.timing.lease_ttl, self.timing.fence_margin))
                .map(|(k, _)| k.clone())
                .collect();
            v.sort();
            v
        };
        let streaming = owned
            .iter()
            .filter(|id| {
                self.manager
                    .status(id)
                    .is_ok_and(|s| s.state == CameraState::Streaming)
            })
            .count();
        let rec = NodeRecord {
            node: self.node.clone(),
            instance: self.instance.clone(),
            started_at_ms: self.started_at_ms,
            at_ms: epoch_ms(SystemTime::now()),
            cameras: owned,
            streaming,
            version: crate::VERSION.to_owned(),
        };
        let value = Bytes::from(serde_json::to_vec(&rec).unwrap_or_default());
        // Bounded as renewals are (see `renew_all`): the next beat is due by then.
        let put = tokio::time::timeout(
            self.timing.heartbeat,
            self.nodes_kv.put(&self.node, value.clone()),
        );
        match put.await {
            Ok(Ok(rev)) => self.nodes.note(&self.node, value, rev),
            Ok(Err(e)) => tracing::debug!(error = %e, "heartbeat failed"),
            Err(_) => tracing::debug!("heartbeat not acknowledged in time"),
        }
    }

    /// After the NATS connection came back: makes the buckets again (a restarted
    /// nats-server lost the in-memory ones), replays them into the mirrors, and writes
    /// this node's heartbeat and leases at once, before the fence would stop cameras whose
    /// sessions never depended on NATS.
    pub(crate) async fn after_reconnect(&self) {
        for spec in &self.buckets {
            match tokio::time::timeout(self.timing.request_timeout, spec.open(&self.js)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(bucket = %spec.name, error = %e, "cannot make the bucket again")
                }
                Err(_) => tracing::warn!(bucket = %spec.name, "making the bucket again timed out"),
            }
        }
        self.nodes.resync();
        self.cameras.resync();
        self.leases.resync();
        tokio::join!(self.heartbeat(), self.renew_all());
        tracing::info!(node = %self.node, "NATS connection back; heartbeat and leases written again");
    }

    pub(crate) fn spawn_loops(self: Arc<Self>) {
        let rt = self.manager.runtime().clone();
        let me = self.clone();
        rt.spawn(async move {
            let mut closed = me.closed.subscribe();
            loop {
                tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    () = me.reconnected.notified() => me.after_reconnect().await,
                }
            }
        });
        // Fence: first, and often, so a node waking from a pause stops stale cameras
        // before anything else of it runs for long.
        let me = self.clone();
        rt.spawn(async move {
            let mut closed = me.closed.subscribe();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    _ = tick.tick() => me.fence().await,
                }
            }
        });
        let me = self.clone();
        rt.spawn(async move {
            let mut closed = me.closed.subscribe();
            let mut tick = tokio::time::interval(me.timing.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    _ = tick.tick() => {
                        me.fence().await;
                        tokio::join!(me.heartbeat(), me.renew_all());
                    }
                }
            }
        });
        let me = self.clone();
        rt.spawn(async move {
            let mut closed = me.closed.subscribe();
            loop {
                let changed = [
                    me.cameras.changed.clone(),
                    me.nodes.changed.clone(),
                    me.leases.changed.clone(),
                ];
                let any =
                    futures::future::select_all(changed.iter().map(|n| Box::pin(n.notified())));
                tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    _ = any => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                me.fence().await;
                me.reconcile().await;
            }
        });
        let me = self;
        rt.spawn(async move {
            let mut closed = me.closed.subscribe();
            let mut events = me.manager.events();
            loop {
                let ev = tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    e = events.recv() => match e { Some(e) => e, None => return },
                };
                if !me.owned.lock().contains_key(&ev.camera_id) {
                    continue;
                }
                let body = serde_json::json!({
                    "node": me.node,
                    "cameraId": ev.camera_id,
                    "state": ev.state,
                    "error": ev.error,
                    "atMs": ev.at_ms,
                });
                let subject = format!(
                    "{}.events.camera.{}",
                    me.timing.prefix,
                    token(&ev.camera_id)
                );
                let _ = me
                    .client
                    .publish(subject, Bytes::from(body.to_string()))
                    .await;
            }
        });
    }

    pub(crate) async fn publish_owner(&self, id: &str, action: &str) {
        self.stats.owner(action);
        let body = serde_json::json!({
            "node": self.node, "cameraId": id, "action": action,
            "atMs": epoch_ms(SystemTime::now()),
        });
        let subject = format!("{}.events.owner.{}", self.timing.prefix, token(id));
        let _ = self
            .client
            .publish(subject, Bytes::from(body.to_string()))
            .await;
    }

    pub(crate) async fn publish_node(&self, action: &str) {
        let body = serde_json::json!({
            "node": self.node, "action": action, "atMs": epoch_ms(SystemTime::now()),
        });
        let subject = format!("{}.events.node.{}", self.timing.prefix, self.node);
        let _ = self
            .client
            .publish(subject, Bytes::from(body.to_string()))
            .await;
    }
}
