//! The reconciler: from the desired set, the live nodes and the leases to the cameras this
//! node runs. Runs on every bucket change and every half second.
//!
//! For each desired camera the owner is the rendezvous winner among live nodes. The winner
//! claims a free lease (create: exactly one node can) and starts the camera; a node that
//! holds a lease but is no longer the winner stops the camera first and then deletes the
//! lease, so the two sessions never overlap. A camera's config changing (connect again with
//! the same id) restarts it on its owner.

use std::collections::HashMap;

use super::lease::Owned;
use super::records::{
    camera_id, camera_key, DesiredRecord, LeaseRecord, NodeRecord, CAMERA_PREFIX,
};
use super::{rendezvous, Shared};

impl Shared {
    /// The live nodes: heartbeats seen within the node TTL (this node only while its own
    /// heartbeat gets through).
    pub(crate) fn live_nodes(&self) -> Vec<(String, NodeRecord)> {
        let ttl = self.timing.node_ttl;
        let mut out: Vec<(String, NodeRecord)> = self
            .nodes
            .entries("")
            .into_iter()
            .filter(|(_, s)| s.at.elapsed() < ttl)
            .filter_map(|(k, s)| Some((k, serde_json::from_slice::<NodeRecord>(&s.value).ok()?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The desired cameras: id → (record, revision).
    pub(crate) fn desired(&self) -> HashMap<String, (DesiredRecord, u64)> {
        self.cameras
            .entries(CAMERA_PREFIX)
            .into_iter()
            .filter_map(|(k, s)| {
                let id = camera_id(&k)?;
                let rec = serde_json::from_slice::<DesiredRecord>(&s.value).ok()?;
                Some((id, (rec, s.revision)))
            })
            .collect()
    }

    /// The fresh lease holder of `id`, with the lease's revision, as this node saw it.
    pub(crate) fn holder(&self, id: &str) -> Option<(LeaseRecord, u64)> {
        let seen = self.leases.get(&camera_key(id))?;
        if seen.at.elapsed() >= self.timing.lease_ttl {
            return None;
        }
        Some((serde_json::from_slice(&seen.value).ok()?, seen.revision))
    }

    pub(crate) async fn reconcile(&self) {
        if !(self.nodes.synced() && self.cameras.synced() && self.leases.synced()) {
            return;
        }
        let live = self.live_nodes();
        let live_ids: Vec<&str> = live.iter().map(|(k, _)| k.as_str()).collect();
        let desired = self.desired();
        let owned: HashMap<String, Owned> = self.owned.lock().clone();

        // No longer desired: stop and release.
        for id in owned.keys() {
            if !desired.contains_key(id) {
                self.stop_owned(id, "removed").await;
            }
        }
        for (id, (rec, config_rev)) in &desired {
            let target = rendezvous::owner(id, live_ids.iter().copied());
            match owned.get(id) {
                Some(o) => {
                    if target.is_some_and(|t| t != self.node) {
                        // Moved to another live node: stop first, then free the lease.
                        self.stop_owned(id, "moved").await;
                    } else if o.config_revision != *config_rev {
                        self.restart(id, rec.clone(), *config_rev);
                    }
                }
                None if target == Some(self.node.as_str()) => {
                    let claimed = match self.holder(id) {
                        Some((h, rev)) if self.is_mine(&h) => self.adopt(id, rev).await,
                        Some(_) => None,
                        None => self.claim(id).await,
                    };
                    if let Some((revision, renewed)) = claimed {
                        self.owned.lock().insert(
                            id.clone(),
                            Owned {
                                revision,
                                renewed,
                                config_revision: *config_rev,
                            },
                        );
                        self.start_camera(id, rec.clone());
                        self.publish_owner(id, "claimed").await;
                    }
                }
                None => {
                    // A lease of ours the process forgot (an ack lost before it arrived):
                    // free it for the winner.
                    if let Some((h, rev)) = self.holder(id) {
                        if self.is_mine(&h) && target.is_some() {
                            self.release(id, rev).await;
                        }
                    }
                }
            }
        }
    }
}
