//! Camera leases: claimed by compare-and-set, renewed by revision, and the fence that
//! stops a camera before its lease could be taken elsewhere.
//!
//! A lease key lives in a bucket whose `max_age` is the lease TTL, so the server drops a
//! lease that is not renewed. The owner measures, on its own monotonic clock, the time
//! since it *sent* the last write the server acknowledged: the server stamped that write
//! later, so the lease cannot expire before `sent + ttl`. The owner stops the camera at
//! `sent + ttl - margin`. When the process was paused past that point, the fence runs
//! first thing on waking (a 100 ms tick), and every request is checked against the same
//! clock before it is answered, so nothing stale is served in between.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use bytes::Bytes;

use super::records::{camera_key, LeaseRecord};
use super::Shared;
use crate::util::epoch_ms;

/// A camera this node holds the lease of.
#[derive(Clone, Debug)]
pub(crate) struct Owned {
    /// The lease's revision after the last acknowledged write.
    pub revision: u64,
    /// When the last acknowledged write was sent.
    pub renewed: Instant,
    /// The desired record's revision the camera was started from.
    pub config_revision: u64,
}

impl Owned {
    /// Whether the lease is still surely ours.
    pub fn fresh(&self, ttl: Duration, margin: Duration) -> bool {
        self.renewed.elapsed() < ttl.saturating_sub(margin)
    }
}

/// The outcome of a renewal.
pub(crate) enum Renewal {
    Renewed,
    /// Someone else holds it now.
    Lost,
    /// NATS did not answer; the fence decides.
    Unknown,
}

impl Shared {
    pub(crate) fn lease_value(&self) -> Bytes {
        let rec = LeaseRecord {
            node: self.node.clone(),
            instance: self.instance.clone(),
            at_ms: epoch_ms(std::time::SystemTime::now()),
        };
        Bytes::from(serde_json::to_vec(&rec).unwrap_or_default())
    }

    /// Whether this lease record is this very process's.
    pub(crate) fn is_mine(&self, rec: &LeaseRecord) -> bool {
        rec.node == self.node && rec.instance == self.instance
    }

    /// Tries to create the lease of `id`; its revision and send time on success.
    pub(crate) async fn claim(&self, id: &str) -> Option<(u64, Instant)> {
        let key = camera_key(id);
        let value = self.lease_value();
        let sent = Instant::now();
        match self.leases_kv.create(&key, value.clone()).await {
            Ok(rev) => {
                self.leases.note(&key, value, rev);
                Some((rev, sent))
            }
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => None,
            Err(e) => {
                tracing::debug!(camera = id, error = %e, "lease claim failed");
                None
            }
        }
    }

    /// Takes over a lease this process holds according to the bucket but not in memory.
    pub(crate) async fn adopt(&self, id: &str, revision: u64) -> Option<(u64, Instant)> {
        let key = camera_key(id);
        let value = self.lease_value();
        let sent = Instant::now();
        match self.leases_kv.update(&key, value.clone(), revision).await {
            Ok(rev) => {
                self.leases.note(&key, value, rev);
                Some((rev, sent))
            }
            Err(_) => None,
        }
    }

    /// Renews the lease of `id` at `revision`.
    pub(crate) async fn renew(&self, id: &str, revision: u64) -> (Renewal, u64, Instant) {
        let key = camera_key(id);
        let value = self.lease_value();
        let sent = Instant::now();
        match self.leases_kv.update(&key, value.clone(), revision).await {
            Ok(rev) => {
                self.leases.note(&key, value, rev);
                (Renewal::Renewed, rev, sent)
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                // Gone (a NATS restart lost the in-memory bucket, or it expired while the
                // server was away) rather than taken: claim it again if nobody has.
                match self.leases_kv.entry(&key).await {
                    Ok(None) => match self.claim(id).await {
                        Some((rev, sent)) => (Renewal::Renewed, rev, sent),
                        None => (Renewal::Lost, 0, sent),
                    },
                    Ok(Some(entry)) => {
                        let mine = serde_json::from_slice::<LeaseRecord>(&entry.value)
                            .is_ok_and(|r| self.is_mine(&r));
                        if mine && entry.operation == async_nats::jetstream::kv::Operation::Put {
                            // Our own earlier write whose ack was lost.
                            match self.adopt(id, entry.revision).await {
                                Some((rev, sent)) => (Renewal::Renewed, rev, sent),
                                None => (Renewal::Unknown, 0, sent),
                            }
                        } else if entry.operation != async_nats::jetstream::kv::Operation::Put {
                            match self.claim(id).await {
                                Some((rev, sent)) => (Renewal::Renewed, rev, sent),
                                None => (Renewal::Lost, 0, sent),
                            }
                        } else {
                            (Renewal::Lost, 0, sent)
                        }
                    }
                    Err(_) => (Renewal::Unknown, 0, sent),
                }
            }
            Err(e) => {
                tracing::debug!(camera = id, error = %e, "lease renewal failed");
                (Renewal::Unknown, 0, sent)
            }
        }
    }

    /// Gives the lease of `id` up (the camera is already stopped).
    pub(crate) async fn release(&self, id: &str, revision: u64) {
        let key = camera_key(id);
        match self
            .leases_kv
            .delete_expect_revision(&key, Some(revision))
            .await
        {
            Ok(()) => self.leases.forget(&key),
            Err(e) => tracing::debug!(camera = id, error = %e, "lease release failed"),
        }
    }

    /// The renewal loop: every owned lease, concurrently, every `renew_every`. One round at
    /// a time (the heartbeat tick and a reconnect both renew): two rounds renewing the same
    /// lease lost with a NATS restart would both try to create it again, and the one that
    /// lost that race would take its own lease for another node's and stop the camera.
    pub(crate) async fn renew_all(&self) {
        let _round = self.renewing.lock().await;
        let owned: Vec<(String, u64)> = self
            .owned
            .lock()
            .iter()
            .map(|(id, o)| (id.clone(), o.revision))
            .collect();
        // Each renewal bounded by the heartbeat period: while NATS is away a JetStream
        // publish waits for its ack for the context's whole timeout (5 s), longer than the
        // fence allows, and the round after the reconnect must not wait behind it.
        let bound = self.timing.heartbeat;
        let results = futures::future::join_all(owned.iter().map(|(id, rev)| async move {
            match tokio::time::timeout(bound, self.renew(id, *rev)).await {
                Ok(r) => r,
                Err(_) => (Renewal::Unknown, 0, Instant::now()),
            }
        }))
        .await;
        for ((id, old), (outcome, rev, sent)) in owned.into_iter().zip(results) {
            self.stats.renewal(&outcome);
            match outcome {
                Renewal::Renewed => {
                    let mut map = self.owned.lock();
                    if let Some(o) = map.get_mut(&id) {
                        if o.revision == old {
                            o.revision = rev;
                            o.renewed = sent;
                        }
                    }
                }
                Renewal::Lost => {
                    tracing::warn!(camera = %id, node = %self.node, "lease taken by another node; stopping the camera");
                    self.stop_owned(&id, "lost").await;
                }
                Renewal::Unknown => {}
            }
        }
    }

    /// The fence: stops every camera whose lease is no longer surely ours.
    pub(crate) async fn fence(&self) {
        let stale: Vec<String> = self
            .owned
            .lock()
            .iter()
            .filter(|(_, o)| !o.fresh(self.timing.lease_ttl, self.timing.fence_margin))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            tracing::warn!(camera = %id, node = %self.node, "lease not renewed in time; stopping the camera before it can move");
            self.stop_owned(&id, "fenced").await;
        }
    }
}
