//! A local copy of one key-value bucket, kept current by a JetStream watch.
//!
//! Each entry remembers when this node last saw it written (its own monotonic clock), so
//! liveness (node heartbeats, leases) never compares clocks of two machines, and keys that
//! the server expires (`max_age`, which a 2.9 server removes without a delete marker) age
//! out here too. When the watch breaks (NATS restart, consumer lost) it is made again; the
//! old copy stays in use until the new watch has replayed the whole bucket, so a reconnect
//! never shows an empty desired set to the reconciler.

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
    /// Woken on every change.
    pub changed: Arc<Notify>,
}

impl Mirror {
    /// Starts watching `store` until `closed` turns true.
    pub fn start(store: Store, closed: watch::Receiver<bool>) -> Mirror {
        let m = Mirror {
            state: Arc::default(),
            changed: Arc::new(Notify::new()),
        };
        tokio::spawn(m.clone().run(store, closed));
        m
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
                () = self.watch_once(&store) => {}
            }
            tokio::select! {
                _ = super::wait_closed(&mut closed) => return,
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
        let (empty, last_seq) = match store.status().await {
            Ok(s) => (s.values() == 0, s.info.state.last_sequence),
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
        let mut fresh: Option<HashMap<String, Seen>> = if empty {
            self.swap(HashMap::new());
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
                    if entry.delta == 0 || entry.revision >= last_seq {
                        let map = fresh.take().unwrap_or_default();
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

    fn swap(&self, map: HashMap<String, Seen>) {
        let mut s = self.state.lock();
        s.entries = map;
        s.synced = true;
        drop(s);
        self.changed.notify_waiters();
    }
}
