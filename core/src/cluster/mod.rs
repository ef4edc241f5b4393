//! Cluster mode: camkit nodes that share cameras through NATS (feature `cluster`).
//!
//! Tested: this module's unit tests
//! (`cargo test -p camkit --features cluster --lib cluster`), the C API
//! (`bindings-c/src/cluster.rs`; two nodes on a real nats-server in
//! `bindings-c/tests/cluster.c`), subscriptions on a non-owner node (`feed.rs`; two nodes
//! on a real nats-server in `tests/tests/cluster_feed.rs`), the Node `Cluster` class's
//! subscriptions (`bindings-node/test/cluster.test.js`), the cluster benchmark
//! (`tests/examples/cluster_bench.rs`) and three Express servers end to end
//! (`examples/express-server/test/cluster.test.js`: failover after `kill -9`, rejoin,
//! `SIGSTOP`, a nats-server restart, no camera ever open twice). The Express side:
//! `bindings-node/express/cluster.js`.
//!
//! A nats-server restart loses the in-memory heartbeat and lease buckets: every node makes
//! them again when its connection comes back and writes its heartbeat and leases at once
//! (`nats.rs`, `Shared::after_reconnect`); sessions never stop for it as long as the
//! connection is back within the fence (lease TTL minus fence margin, 4 s by default).
//!
//! Every node runs a [`CameraManager`] and joins a [`Cluster`] on one NATS server (or NATS
//! cluster) with JetStream. Three key-value buckets hold the shared state:
//!
//! - `<prefix>_nodes`: one heartbeat per node (key: node id), written every second; a node
//!   is live while this node has seen its heartbeat within the node TTL (3 s).
//! - `<prefix>_cameras`: the desired camera set (key: `cam.<base64url id>`), written by
//!   [`Cluster::connect`] / [`Cluster::disconnect`] on any node. Credentials are sealed with
//!   the cluster key (`seal.rs`); the bucket holds no password, nor does any subject.
//! - `<prefix>_leases`: one lease per camera, created by compare-and-set by its owner and
//!   renewed by revision; the bucket's `max_age` is the lease TTL (6 s).
//!
//! The owner of a camera is the rendezvous-hash winner over the live nodes; it claims the
//! lease and runs the camera through its own `CameraManager`. A node that cannot renew
//! stops the camera before the lease can expire (see `lease.rs`), so a camera that allows one
//! session is never opened by two nodes. Any node answers for any camera: status and
//! snapshots are forwarded to the owner by request-reply (`rpc.rs`). Frame and video
//! subscriptions ([`Cluster::subscribe`], [`Cluster::subscribe_video`]) on a non-owner are
//! fed from the owner over NATS, only while someone watches, and follow the camera when
//! it moves (`feed.rs`: subjects `<prefix>.node.<owner>.feed` and `<prefix>.feed.<node>.<sid>`).
//!
//! Events for other processes (JSON payloads):
//! - `<prefix>.events.camera.<base64url id>`: a camera changed state on its owner:
//!   `{"node","cameraId","state","error","atMs"}`.
//! - `<prefix>.events.owner.<base64url id>`: a node took or gave up a camera:
//!   `{"node","cameraId","action","atMs"}`, action `claimed`, `moved`, `removed`, `fenced`
//!   (lease not renewed in time), `lost` (taken by another node) or `left`.
//! - `<prefix>.events.node.<node>`: `{"node","action","atMs"}`, action `joined` or `left`.
//! - `<prefix>.events.watch.<base64url id>` (feature `moondream`): a Moondream watch asked
//!   through the cluster has a new answer: `{"node","cameraId","question","answer",
//!   "previousAnswer","seq","capturedAtMs","atMs"}` (`node`: the node running the watch).
//!
//! Lease health: [`Cluster::stats`] (also in [`ClusterView`]) counts this node's lease
//! claims, renewals, renewals NATS did not answer, leases lost and released, fenced stops
//! and NATS reconnects since it joined ([`ClusterStats`]).

mod feed;
mod lease;
mod mirror;
#[cfg(feature = "moondream")]
mod moondream;
mod nats;
mod node;
mod reconcile;
mod records;
mod rendezvous;
mod rpc;
mod seal;
mod stats;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::kv::{CreateErrorKind, Store};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{check_id, CameraConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, SnapshotOptions, SubscribeOptions};
use crate::manager::CameraManager;
use crate::status::{CameraState, CameraStatus};
use crate::util::epoch_ms;
use crate::video::VideoOptions;
use lease::Owned;
use mirror::Mirror;
use records::{camera_key, DesiredRecord, NodeRecord, KEY_CHECK_KEY};
use seal::Sealer;

pub use feed::{ClusterSubscription, ClusterVideoSubscription, FEED_TTL, RENEW_EVERY};
pub use seal::MIN_CLUSTER_KEY_LEN;
pub use stats::ClusterStats;

/// How a node joins a cluster. Secrets (`cluster_key`, `password`, `token`) never appear
/// in `Debug`, logs, errors or statuses.
#[derive(Clone)]
pub struct ClusterOptions {
    /// The NATS server(s): `nats://host:4222`, `tls://host:4222` for TLS, several separated by
    /// commas (`CAMKIT_NATS_URL`).
    pub nats_url: String,
    /// This node's id, unique in the cluster: 1–64 of `A-Z a-z 0-9 _ -` (`CAMKIT_NODE_ID`).
    pub node_id: String,
    /// The secret that seals camera credentials, the same on every node, at least
    /// [`MIN_CLUSTER_KEY_LEN`] characters (`CAMKIT_CLUSTER_KEY`).
    pub cluster_key: String,
    /// NATS user (`CAMKIT_NATS_USER`), with `password` (`CAMKIT_NATS_PASSWORD`).
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<String>,
    /// NATS token (`CAMKIT_NATS_TOKEN`).
    pub token: Option<String>,
    /// A file holding a NATS user nkey seed (`CAMKIT_NATS_NKEY_FILE`).
    pub nkey_file: Option<PathBuf>,
    /// A PEM file of the certificate authorities that signed the NATS servers' certificates
    /// (`CAMKIT_NATS_CA_FILE`), for servers whose CA is not in the system's roots; implies
    /// TLS, whatever the URL's scheme.
    pub ca_file: Option<PathBuf>,
    /// Prefix of subjects and bucket names (default `camkit`): clusters that share a NATS
    /// server use different prefixes.
    pub prefix: String,
    /// Lease TTL (default 6 s): a dead node's cameras move after about this long.
    pub lease_ttl: Duration,
    /// How long before the lease TTL an owner that could not renew stops a camera
    /// (default 2 s; must cover a camera's teardown).
    pub fence_margin: Duration,
    /// A node is live while its heartbeat was seen within this (default 3 s).
    pub node_ttl: Duration,
    /// Bound of connecting to NATS at start (default 3 s).
    pub connect_timeout: Duration,
    /// Bound of a forwarded request (default 3 s).
    pub request_timeout: Duration,
    /// Replicas of the three JetStream buckets, 1–5 (default 1; `CAMKIT_NATS_REPLICAS`).
    /// With a 3-server NATS cluster, 3 keeps the cluster's state through the loss of one
    /// server; 1 (a single server) loses the heartbeats and leases with that server.
    /// Applies when a bucket is created: a bucket that already exists with another count
    /// is kept as it is, with a warning in the log (change it with
    /// `nats stream edit KV_<prefix>_<bucket> --replicas N`), since rewriting a shared
    /// stream's replication from one node's start-up would let nodes with different
    /// settings fight over it.
    pub replicas: usize,
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("nats_url", &nats::redact(&self.nats_url))
            .field("node_id", &self.node_id)
            .field("user", &self.user)
            .field("ca_file", &self.ca_file)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl ClusterOptions {
    /// Options with the defaults.
    pub fn new(
        nats_url: impl Into<String>,
        node_id: impl Into<String>,
        cluster_key: impl Into<String>,
    ) -> Self {
        ClusterOptions {
            nats_url: nats_url.into(),
            node_id: node_id.into(),
            cluster_key: cluster_key.into(),
            user: None,
            password: None,
            token: None,
            nkey_file: None,
            ca_file: None,
            prefix: "camkit".into(),
            lease_ttl: Duration::from_secs(6),
            fence_margin: Duration::from_secs(2),
            node_ttl: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(3),
            replicas: 1,
        }
    }

    fn validate(&self) -> Result<()> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !token_ok(&self.node_id) {
            return Err(Error::invalid(
                "nodeId",
                "CAMKIT_NODE_ID must be 1-64 characters of A-Z a-z 0-9 _ -",
            ));
        }
        if !token_ok(&self.prefix) {
            return Err(Error::invalid(
                "prefix",
                "must be 1-64 characters of A-Z a-z 0-9 _ -",
            ));
        }
        if self.nats_url.trim().is_empty() {
            return Err(Error::invalid("natsUrl", "CAMKIT_NATS_URL is empty"));
        }
        if self.fence_margin >= self.lease_ttl || self.lease_ttl < Duration::from_secs(2) {
            return Err(Error::invalid(
                "leaseTtl",
                "must be at least 2 s and longer than fenceMargin",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::invalid(
                "replicas",
                format!(
                    "CAMKIT_NATS_REPLICAS must be 1-5 (JetStream's limit), not {}",
                    self.replicas
                ),
            ));
        }
        Ok(())
    }
}

/// The timings and names every task reads.
struct Timing {
    prefix: String,
    lease_ttl: Duration,
    fence_margin: Duration,
    node_ttl: Duration,
    request_timeout: Duration,
    heartbeat: Duration,
}

/// A camera of the cluster, as any node sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCamera {
    /// The camera id.
    pub id: String,
    /// The node holding its lease, if one does.
    pub owner: Option<String>,
    /// Its status on the owner, when the owner answered.
    pub status: Option<CameraStatus>,
}

/// A node of the cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNode {
    /// Node id.
    pub id: String,
    /// Whether this is the node answering.
    pub this_node: bool,
    /// Milliseconds since its last heartbeat was seen here.
    pub last_seen_ms: u64,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// The cameras it owns.
    pub cameras: Vec<String>,
    /// How many of them stream.
    pub streaming: usize,
    /// camkit version.
    pub version: String,
}

/// The cluster as this node sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// This node's id.
    pub node: String,
    /// Whether this node's NATS connection is up.
    pub nats_connected: bool,
    /// The live nodes, sorted by id.
    pub nodes: Vec<ClusterNode>,
    /// Cameras in the desired set.
    pub desired: usize,
    /// Desired cameras without a live owner right now (moving or failing to start).
    pub unowned: Vec<String>,
    /// This node's lease and NATS figures since it joined.
    pub stats: ClusterStats,
}

pub(crate) struct Shared {
    node: String,
    instance: String,
    started_at_ms: u64,
    manager: CameraManager,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    /// The three buckets' settings (nodes, cameras, leases), to make them again.
    buckets: [nats::BucketSpec; 3],
    /// Woken when the NATS connection comes back.
    reconnected: Arc<tokio::sync::Notify>,
    nodes_kv: Store,
    cameras_kv: Store,
    leases_kv: Store,
    nodes: Mirror,
    cameras: Mirror,
    leases: Mirror,
    sealer: Sealer,
    timing: Timing,
    owned: Mutex<HashMap<String, Owned>>,
    /// Held by the renewal round in progress (see `renew_all`).
    renewing: tokio::sync::Mutex<()>,
    /// The task starting each owned camera (aborted when the camera stops).
    starts: Mutex<HashMap<String, JoinHandle<()>>>,
    stats: stats::Counters,
    closed: watch::Sender<bool>,
}

/// This node's membership of a cluster. Cheap to clone; when the last clone is dropped
/// (or [`leave`](Self::leave) is called) the node stops its cameras and leaves.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
    }
}

/// Resolves once `closed` turns true (or its sender is gone). Holds no borrow of the value
/// across an await, so the futures that select on it stay `Send`.
pub(crate) async fn wait_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|c| *c).await.map(|_| ());
}

fn instance_id() -> String {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    format!(
        "{:016x}",
        t ^ fastrand::u64(..) ^ u64::from(std::process::id())
    )
}

impl Cluster {
    /// Joins the cluster with `manager` running the cameras this node owns. Fails with an
    /// error naming the setting: `natsUrl` (NATS down or not JetStream), `natsCredentials`
    /// (refused), `clusterKey` (not the cluster's key), `nodeId`.
    pub async fn join(manager: CameraManager, o: ClusterOptions) -> Result<Cluster> {
        o.validate()?;
        let sealer = Sealer::new(&o.cluster_key)?;
        let (client, reconnected) = nats::connect(&o).await?;
        let js = async_nats::jetstream::new(client.clone());
        let p = &o.prefix;
        let specs = [
            nats::BucketSpec {
                name: format!("{p}_nodes"),
                max_age: o.node_ttl * 4,
                storage: StorageType::Memory,
                description: "camkit node heartbeats",
                replicas: o.replicas,
            },
            nats::BucketSpec {
                name: format!("{p}_cameras"),
                max_age: Duration::ZERO,
                storage: StorageType::File,
                description: "camkit desired cameras (credentials sealed)",
                replicas: o.replicas,
            },
            nats::BucketSpec {
                name: format!("{p}_leases"),
                max_age: o.lease_ttl,
                storage: StorageType::Memory,
                description: "camkit camera leases",
                replicas: o.replicas,
            },
        ];
        let nodes_kv = specs[0].open(&js).await?;
        let cameras_kv = specs[1].open(&js).await?;
        let leases_kv = specs[2].open(&js).await?;
        check_cluster_key(&cameras_kv, &sealer).await?;

        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            node: o.node_id.clone(),
            instance: instance_id(),
            started_at_ms: epoch_ms(SystemTime::now()),
            manager,
            // Heartbeats and leases expire, so their mirrors keep what they saw through a
            // resync (see `Mirror::start`); the desired set does not.
            nodes: Mirror::start(nodes_kv.clone(), specs[0].expires(), closed.subscribe()),
            cameras: Mirror::start(cameras_kv.clone(), specs[1].expires(), closed.subscribe()),
            leases: Mirror::start(leases_kv.clone(), specs[2].expires(), closed.subscribe()),
            client,
            js,
            buckets: specs,
            reconnected,
            nodes_kv,
            cameras_kv,
            leases_kv,
            sealer,
            timing: Timing {
                prefix: o.prefix.clone(),
                lease_ttl: o.lease_ttl,
                fence_margin: o.fence_margin,
                node_ttl: o.node_ttl,
                request_timeout: o.request_timeout,
                heartbeat: (o.node_ttl / 3).max(Duration::from_millis(200)),
            },
            owned: Mutex::default(),
            renewing: tokio::sync::Mutex::new(()),
            starts: Mutex::default(),
            stats: stats::Counters::default(),
            closed,
        });
        shared.heartbeat().await;
        shared.clone().serve().await?;
        shared.clone().spawn_loops();
        shared.publish_node("joined").await;
        tracing::info!(node = %shared.node, "joined the camkit cluster");
        Ok(Cluster {
            inner: Arc::new(Handle { shared }),
        })
    }

    fn s(&self) -> &Shared {
        &self.inner.shared
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.s().node
    }

    /// Adds (or replaces) a camera in the desired set and waits until its owner streams it,
    /// within the config's connect bound. On failure the camera is removed again and the
    /// owner's error returned, unless `config.persistent`: then it stays, and its status
    /// (owner retrying) is returned.
    pub async fn connect(&self, config: CameraConfig) -> Result<CameraStatus> {
        let s = self.s();
        let rec = DesiredRecord::new(&config, &s.sealer, &s.node)?;
        let key = camera_key(&config.id);
        let value = Bytes::from(serde_json::to_vec(&rec).map_err(rpc::internal)?);
        let rev = s.cameras_kv.put(&key, value.clone()).await.map_err(|e| {
            Error::new(
                ErrorKind::Unreachable,
                format!("NATS: cannot store the camera ({e})"),
            )
            .for_camera(&config.id)
        })?;
        s.cameras.note(&key, value, rev);
        s.wake();
        let deadline = Instant::now() + config.connect_bound();
        let id = config.id.clone();
        let mut last: Option<CameraStatus> = None;
        loop {
            if let Ok(st) = self.status(&id).await {
                if st.state == CameraState::Streaming {
                    return Ok(st);
                }
                if let Some(err) = &st.last_error {
                    if !config.persistent && st.state != CameraState::Connecting {
                        let _ = self.disconnect(&id).await;
                        return Err(Error::new(err.kind, err.message.clone()).for_camera(&id));
                    }
                }
                last = Some(st);
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match last {
            Some(st) if config.persistent => Ok(st),
            _ => {
                if !config.persistent {
                    let _ = self.disconnect(&id).await;
                }
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no picture from camera {id:?} on its owner within {}; check the \
                         camera, or raise connectTimeoutMs",
                        crate::util::fmt_duration(config.connect_bound())
                    ),
                )
                .for_camera(&id))
            }
        }
    }

    /// Removes a camera from the desired set; its owner stops it. Waits (up to 3 s) until
    /// the owner has let it go, so the id can be connected again at once.
    pub async fn disconnect(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let s = self.s();
        let key = camera_key(id);
        if s.cameras.get(&key).is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no camera {id:?} in the cluster"),
            )
            .for_camera(id));
        }
        s.cameras_kv.delete(&key).await.map_err(|e| {
            Error::new(
                ErrorKind::Unreachable,
                format!("NATS: cannot remove the camera ({e})"),
            )
            .for_camera(id)
        })?;
        s.cameras.forget(&key);
        s.wake();
        let deadline = Instant::now() + Duration::from_secs(3);
        while s.holder(id).is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// A camera's status, from its owner.
    pub async fn status(&self, id: &str) -> Result<CameraStatus> {
        check_id(id)?;
        let s = self.s();
        match s.route(id)? {
            None => s.local_status(id),
            Some(node) => s.remote_status(&node, id).await,
        }
    }

    /// A camera's latest picture as JPEG, from its owner.
    pub async fn snapshot(&self, id: &str, opts: SnapshotOptions) -> Result<Frame> {
        check_id(id)?;
        opts.validate()?;
        let s = self.s();
        match s.route(id)? {
            None => s.local_snapshot(id, opts).await,
            Some(node) => s.remote_snapshot(&node, id, opts).await,
        }
    }

    /// Frames of a camera, from whichever node owns it (see [`ClusterSubscription`]). On
    /// the owner this is a local [`crate::Subscription`]; elsewhere the owner publishes the
    /// frames over NATS while the subscription lives. Fails when the camera is not in the
    /// cluster or the owner refuses (bad options); a camera without an owner right now
    /// gives a subscription that waits for one.
    pub async fn subscribe(&self, id: &str, opts: SubscribeOptions) -> Result<ClusterSubscription> {
        ClusterSubscription::open(self.inner.shared.clone(), id, opts).await
    }

    /// Live video of a camera, from whichever node owns it (see
    /// [`ClusterVideoSubscription`]); as [`subscribe`](Self::subscribe) for frames. An MJPEG
    /// camera's video is an [`ErrorKind::UnsupportedCodec`] error, as locally.
    pub async fn subscribe_video(
        &self,
        id: &str,
        opts: VideoOptions,
    ) -> Result<ClusterVideoSubscription> {
        ClusterVideoSubscription::open(self.inner.shared.clone(), id, opts).await
    }

    /// As [`subscribe`](Self::subscribe), without waiting for the owner: checks the id, the
    /// options and that the camera is in the cluster now, and asks the owner at the first
    /// [`ClusterSubscription::next`], which waits (retrying) until an owner serves it. For
    /// callers that must return at once (the Node binding); a camera removed meanwhile
    /// ends the subscription (`next` returns `None`).
    pub fn subscribe_deferred(
        &self,
        id: &str,
        opts: SubscribeOptions,
    ) -> Result<ClusterSubscription> {
        ClusterSubscription::deferred(self.inner.shared.clone(), id, opts)
    }

    /// As [`subscribe_video`](Self::subscribe_video), without waiting for the owner (see
    /// [`subscribe_deferred`](Self::subscribe_deferred)); an MJPEG camera's
    /// [`ErrorKind::UnsupportedCodec`] comes from
    /// [`ClusterVideoSubscription::end_error`] once `next` returned `None`.
    pub fn subscribe_video_deferred(
        &self,
        id: &str,
        opts: VideoOptions,
    ) -> Result<ClusterVideoSubscription> {
        ClusterVideoSubscription::deferred(self.inner.shared.clone(), id, opts)
    }

    /// Every desired camera with its owner and (when the owner answered) its status.
    pub async fn list(&self) -> Vec<ClusterCamera> {
        let s = self.s();
        let desired = s.desired();
        let mut owners: HashMap<String, String> = HashMap::new();
        for id in desired.keys() {
            if let Some((h, _)) = s.holder(id) {
                owners.insert(id.clone(), h.node);
            }
        }
        let nodes: HashSet<String> = owners.values().cloned().collect();
        let mut statuses: HashMap<String, CameraStatus> = HashMap::new();
        let remote = nodes
            .iter()
            .filter(|n| **n != s.node)
            .map(|n| s.remote_list(n));
        for list in futures::future::join_all(remote)
            .await
            .into_iter()
            .flatten()
        {
            for st in list {
                statuses.insert(st.id.clone(), st);
            }
        }
        for st in s.local_list() {
            statuses.insert(st.id.clone(), st);
        }
        let mut out: Vec<ClusterCamera> = desired
            .into_keys()
            .map(|id| ClusterCamera {
                owner: owners.get(&id).cloned(),
                status: statuses.remove(&id),
                id,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The live nodes, their cameras and health.
    pub fn view(&self) -> ClusterView {
        let s = self.s();
        let nodes: Vec<ClusterNode> = s
            .nodes
            .entries("")
            .into_iter()
            .filter(|(_, seen)| seen.at.elapsed() < s.timing.node_ttl)
            .filter_map(|(_, seen)| {
                let r: NodeRecord = serde_json::from_slice(&seen.value).ok()?;
                Some(ClusterNode {
                    this_node: r.node == s.node,
                    last_seen_ms: seen.at.elapsed().as_millis() as u64,
                    started_at_ms: r.started_at_ms,
                    streaming: r.streaming,
                    cameras: r.cameras,
                    version: r.version,
                    id: r.node,
                })
            })
            .collect();
        let mut nodes = nodes;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let desired = s.desired();
        let mut unowned: Vec<String> = desired
            .keys()
            .filter(|id| s.holder(id).is_none())
            .cloned()
            .collect();
        unowned.sort();
        ClusterView {
            node: s.node.clone(),
            nats_connected: s.client.connection_state() == async_nats::connection::State::Connected,
            nodes,
            desired: desired.len(),
            unowned,
            stats: self.stats(),
        }
    }

    /// This node's lease health and NATS reconnects since it joined (see [`ClusterStats`]).
    pub fn stats(&self) -> ClusterStats {
        let s = self.s();
        s.stats.read(
            s.client
                .statistics()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Stops this node's cameras, gives their leases up and leaves; the others take the
    /// cameras over. The manager stays usable.
    pub async fn leave(&self) {
        let s = self.s();
        s.closed.send_replace(true);
        let ids: Vec<String> = s.owned.lock().keys().cloned().collect();
        for id in ids {
            s.stop_owned(&id, "left").await;
        }
        let _ = s.nodes_kv.delete(&s.node).await;
        s.publish_node("left").await;
        let _ = s.client.flush().await;
    }
}

async fn check_cluster_key(kv: &Store, sealer: &Sealer) -> Result<()> {
    match kv
        .create(KEY_CHECK_KEY, Bytes::from(sealer.key_check()?))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
            let v = kv.get(KEY_CHECK_KEY).await.map_err(|e| {
                Error::new(
                    ErrorKind::Unreachable,
                    format!("NATS: cannot read the key check ({e})"),
                )
            })?;
            match v {
                Some(v) => sealer.verify_key_check(&String::from_utf8_lossy(&v)),
                None => Ok(()),
            }
        }
        Err(e) => Err(Error::new(
            ErrorKind::Unreachable,
            format!("NATS: cannot write the key check ({e}); is JetStream enabled?"),
        )
        .with_field("natsUrl")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_1_to_5_and_the_error_names_the_field() {
        let o = |replicas| ClusterOptions {
            replicas,
            ..ClusterOptions::new("nats://127.0.0.1:4222", "n1", "k".repeat(32))
        };
        assert_eq!(ClusterOptions::new("nats://x", "n1", "k").replicas, 1);
        for ok in [1, 3, 5] {
            o(ok).validate().expect("in range");
        }
        for bad in [0, 6, 100] {
            let e = o(bad).validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert_eq!(e.field(), Some("replicas"), "{e}");
            assert!(e.to_string().contains("CAMKIT_NATS_REPLICAS"), "{e}");
        }
    }
}
