//! A local copy of one key-value bucket, kept current by a JetStream watch.
//!
//! Each entry remembers when this node last saw it written (its own monotonic clock), so
//! liveness (node heartbeats, leases) never compares clocks of two machines, and keys that
//! the server expires (`max_age`, which a 2.9 server removes without a delete marker) age
//! out here too. When the watch breaks (NATS restart, consumer lost) it is made again; the
//! old copy stays in use until the new watch has replayed the whole bucket, so a reconnect
//! never shows an empty desired set to the reconciler.
//!
//! A restarted nats-server has lost the in-memory buckets (heartbeats, leases): they come
//! back empty, and fill again only as each node reconnects and writes. A mirror of such an
//! *expiring* bucket therefore keeps, through a resync, the entries the replay lacks, with
//! the time it last saw them: they age out as they would have on the server, so a node
//! that has not reconnected yet stays live and keeps its leases for one TTL instead of
//! losing its cameras to a node that came back first (which would open them twice). Kept
//! entries carry revision 0, so any new write of their key wins (a recreated bucket
//! numbers its revisions from 1 again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{Operation, Store};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

/// One key's latest value.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub value: Bytes,
    pub revision: u64,
    /// When this node received it.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Seen>,
    synced: bool,
}

/// The mirror of one bucket.
#[derive(Clone)]
pub(crate) struct Mirror {
    state: Arc<Mutex<State>>,
    /// Whether the bucket's entries expire (`max_age`): then a resync keeps what the
    /// replay lacks (see the module doc).
    expiring: bool,
    /// Woken on every change.
    pub changed: Arc<Notify>,
    /// Makes the watch start over (the bucket was made again).
    restart: Arc<Notify>,
}

impl Mirror {
    /// Starts watching `store` until `closed` turns true.
    pub fn start(store: Store, expiring: bool, closed: watch::Receiver<bool>) -> Mirror {
        let m = Mirror {
            state: Arc::default(),
            expiring,
            changed: Arc::new(Notify::new()),
            restart: Arc::new(Notify::new()),
        };
        tokio::spawn(m.clone().run(store, closed));
        m
    }

    /// Drops the watch and replays the bucket afresh: after a reconnect, when the bucket
    /// may have been made again (a watch resuming at the old sequence would wait for the
    /// new stream to count past it).
    ///
    /// The revisions an expiring mirror holds are set to 0 at once: if the bucket was made
    /// again its revisions start from 1, and until the replay is in, this node's own writes
    /// (`note`) and the watch would otherwise be ignored as older than what it saw before,
    /// and its own heartbeat would age out of its live set.
    pub fn resync(&self) {
        if self.expiring {
            for seen in self.state.lock().entries.values_mut() {
                seen.revision = 0;
            }
        }
        self.restart.notify_one();
    }

    /// Whether the first full replay of the bucket has arrived.
    pub fn synced(&self) -> bool {
        self.state.lock().synced
    }

    /// Every entry, with a key starting with `prefix`.
    pub fn entries(&self, prefix: &str) -> Vec<(String, Seen)> {
        self.state
            .lock()
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// One entry.
    pub fn get(&self, key: &str) -> Option<Seen> {
        self.state.lock().entries.get(key).cloned()
    }

    /// Notes a write this node made itself (its ack is the proof), ahead of the watch.
    pub fn note(&self, key: &str, value: Bytes, revision: u64) {
        let mut s = self.state.lock();
        let newer = s.entries.get(key).is_none_or(|e| e.revision < revision);
        if newer {
            s.entries.insert(
                key.to_owned(),
                Seen {
                    value,
                    revision,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Notes a delete this node made itself.
    pub fn forget(&self, key: &str) {
        self.state.lock().entries.remove(key);
    }

    async fn run(self, store: Store, mut closed: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = super::wait_closed(&mut closed) => return,
                () = self.restart.notified() => continue,
                () = self.watch_once(&store) => {}
            }
            tokio::select! {
                _ = super::wait_closed(&mut closed) => return,
                () = self.restart.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// One watch, until it breaks.
    async fn watch_once(&self, store: &Store) {
        // The stream's last sequence when the watch starts: the replay is whole once an
        // entry at or past it has arrived (or the server says nothing is pending). The
        // pending count alone is not enough: while other nodes keep writing (heartbeats,
        // lease renewals) a 2.9 server may never report 0 at the end of the replay.
        let (messages, last_seq) = match store.status().await {
            Ok(s) => (s.values(), s.info.state.last_sequence),
            Err(e) => {
                tracing::debug!(bucket = %store.name, error = %e, "bucket status failed");
                return;
            }
        };
        // With history: every key's latest value first (`DeliverPolicy::LastPerSubject`),
        // then the changes. (`watch_all` delivers only new writes, so a node joining a
        // cluster that has cameras would never see them.)
        let mut w = match store.watch_with_history(">").await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(bucket = %store.name, error = %e, "watch failed");
                return;
            }
        };
        let empty = messages == 0;
        let mut delivered = 0u64;
        let mut fresh: Option<HashMap<String, Seen>> = if empty {
            let map = self.confirm_missing(store, HashMap::new()).await;
            self.swap(map);
            None
        } else {
            Some(HashMap::new())
        };
        while let Some(item) = w.next().await {
            let entry = match item {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(bucket = %store.name, error = %e, "watch broke");
                    return;
                }
            };
            let seen = Seen {
                value: entry.value,
                revision: entry.revision,
                at: Instant::now(),
            };
            let put = entry.operation == Operation::Put;
            match &mut fresh {
                Some(map) => {
                    if put {
                        map.insert(entry.key, seen);
                    } else {
                        map.remove(&entry.key);
                    }
                    delivered += 1;
                    // Whole at the stream's last sequence. A pending count of 0 is
                    // believed for an expiring bucket (its last entry may expire before it
                    // is delivered), otherwise only once as many entries as the stream held
                    // have arrived; what a replay still lacks then is confirmed by
                    // `confirm_missing`.
                    let pending_done = entry.delta == 0 && (self.expiring || delivered >= messages);
                    if pending_done || entry.revision >= last_seq {
                        let map = fresh.take().unwrap_or_default();
                        let map = self.confirm_missing(store, map).await;
                        self.swap(map);
                    }
                }
                None => {
                    let mut s = self.state.lock();
                    if put {
                        let newer = s
                            .entries
                            .get(&entry.key)
                            .is_none_or(|e| e.revision <= seen.revision);
                        if newer {
                            s.entries.insert(entry.key, seen);
                        }
                    } else {
                        s.entries.remove(&entry.key);
                    }
                    drop(s);
                    self.changed.notify_waiters();
                }
            }
        }
    }

    /// For a bucket that does not expire (the desired set): the keys this mirror held that
    /// a replay lacks are read back one by one before they are dropped. A replay that
    /// ends early (seen right after a nats-server restart) would otherwise look like
    /// cameras removed, and their owners would stop them; a key that cannot be read now
    /// is kept.
    async fn confirm_missing(
        &self,
        store: &Store,
        mut map: HashMap<String, Seen>,
    ) -> HashMap<String, Seen> {
        if self.expiring {
            return map;
        }
        let missing: Vec<(String, Seen)> = self
            .state
            .lock()
            .entries
            .iter()
            .filter(|(k, _)| !map.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, old) in missing {
            match store.entry(&key).await {
                Ok(Some(e)) if e.operation == Operation::Put => {
                    map.insert(
                        key,
                        Seen {
                            value: e.value,
                            revision: e.revision,
                            at: Instant::now(),
                        },
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(bucket = %store.name, key = %key, error = %e, "cannot confirm a key the replay lacks; kept");
                    map.insert(key, old);
                }
            }
        }
        map
    }

    fn swap(&self, mut map: HashMap<String, Seen>) {
        let mut s = self.state.lock();
        if self.expiring {
            for (key, old) in s.entries.drain() {
                map.entry(key).or_insert(Seen { revision: 0, ..old });
            }
        }
        s.entries = map;
        s.synced = true;
        drop(s);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(expiring: bool) -> Mirror {
        Mirror {
            state: Arc::default(),
            expiring,
            changed: Arc::new(Notify::new()),
            restart: Arc::new(Notify::new()),
        }
    }

    fn seen(revision: u64) -> Seen {
        Seen {
            value: Bytes::from_static(b"{}"),
            revision,
            at: Instant::now(),
        }
    }

    #[test]
    fn a_resync_of_an_expiring_bucket_keeps_what_the_replay_lacks() {
        let m = mirror(true);
        m.swap(HashMap::from([
            ("a".into(), seen(900)),
            ("b".into(), seen(901)),
        ]));
        // The bucket came back empty but for "a", written again at revision 3.
        m.swap(HashMap::from([("a".into(), seen(3))]));
        assert_eq!(m.get("a").unwrap().revision, 3);
        let kept = m.get("b").expect("kept until it ages out");
        assert_eq!(kept.revision, 0, "any new write of the key wins");
        m.note("b", Bytes::from_static(b"{}"), 1);
        assert_eq!(m.get("b").unwrap().revision, 1);
    }

    #[test]
    fn a_resync_of_the_desired_set_replaces_it() {
        let m = mirror(false);
        m.swap(HashMap::from([
            ("a".into(), seen(1)),
            ("b".into(), seen(2)),
        ]));
        m.swap(HashMap::from([("a".into(), seen(1))]));
        assert!(m.get("b").is_none(), "deleted while the watch was down");
        assert!(m.synced());
    }
}
