//! Cluster mode (cargo feature `cluster`, on by default): `Cluster.join(cameras, options)`
//! makes this process one node of camkit nodes sharing cameras through NATS JetStream
//! (camkit's `cluster` module). Any node connects, disconnects, answers status and
//! snapshots for any camera: the owner (chosen by rendezvous hashing over the live nodes)
//! runs it on its `CameraManager`, the others forward to it.
//!
//! Errors are camkit's, with `err.code` and `err.field` naming the option as spelled here
//! (`natsUrl`, `clusterKey`, `natsCredentials`, `nodeId`, `leaseTtlMs` …). The cluster key
//! and the NATS password or token never appear in a message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use camkit::cluster::{Cluster as Node, ClusterOptions as CoreOptions};
use camkit::{Error, ErrorKind};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::config::{CameraConfig, SnapshotOptions, SubscribeOptions};
use crate::error::{convert, reject};
use crate::frame::JsFrame;
use crate::manager::{function_arg, is_nullish, CameraManager, ManagerHold};
use crate::promise;
use crate::status::CameraStatus;
use crate::subscription::{gate, FrameSource, Subscription};
use crate::video::{VideoOptions, VideoSource, VideoSubscription};

/// How a node joins a cluster. `natsUrl`, `nodeId` and `clusterKey` are required.
#[napi(object, object_to_js = false)]
pub struct ClusterOptions {
    /// The NATS server(s) with JetStream: `'nats://127.0.0.1:4222'`, `tls://` for TLS,
    /// several separated by commas.
    pub nats_url: String,
    /// This node's id, unique in the cluster: 1–64 of `A-Z a-z 0-9 _ -`.
    pub node_id: String,
    /// The secret sealing the cameras' credentials in NATS, the same on every node, at
    /// least 16 characters (`openssl rand -base64 32`).
    pub cluster_key: String,
    /// NATS user, with `password`.
    pub user: Option<String>,
    /// NATS password.
    pub password: Option<String>,
    /// NATS token.
    pub token: Option<String>,
    /// Path of a file holding a NATS user nkey seed.
    pub nkey_file: Option<String>,
    /// Path of a PEM file of the certificate authorities that signed the NATS servers'
    /// certificates (a private CA); implies TLS.
    pub ca_file: Option<String>,
    /// Prefix of the NATS subjects and bucket names (default `'camkit'`): clusters sharing
    /// a NATS server use different ones.
    pub prefix: Option<String>,
    /// The camera lease's TTL (default 6000, at least 2000 and more than `fenceMarginMs`):
    /// a dead node's cameras move after about this long.
    pub lease_ttl_ms: Option<u32>,
    /// How long before the lease TTL an owner that could not renew stops its cameras
    /// (default 2000).
    pub fence_margin_ms: Option<u32>,
    /// A node is live while its heartbeat was seen within this (default 3000).
    pub node_ttl_ms: Option<u32>,
    /// Bound of connecting to NATS when joining (default 3000).
    pub connect_timeout_ms: Option<u32>,
    /// Bound of a request forwarded to a camera's owner (default 3000).
    pub request_timeout_ms: Option<u32>,
    /// Replicas of the cluster's JetStream buckets, 1–5 (default 1): 3 with a 3-server
    /// NATS cluster keeps the cluster's state through the loss of one server. Applies when
    /// the buckets are created; existing buckets keep theirs (a warning is logged).
    pub replicas: Option<u32>,
}

impl ClusterOptions {
    fn into_core(self) -> camkit::Result<CoreOptions> {
        let mut o = CoreOptions::new(self.nats_url, self.node_id, self.cluster_key);
        o.user = self.user.filter(|s| !s.is_empty());
        o.password = self.password.filter(|s| !s.is_empty());
        o.token = self.token.filter(|s| !s.is_empty());
        o.nkey_file = self.nkey_file.filter(|s| !s.is_empty()).map(Into::into);
        o.ca_file = self.ca_file.filter(|s| !s.is_empty()).map(Into::into);
        if let Some(p) = self.prefix {
            o.prefix = p;
        }
        let ms = |v: Option<u32>, field: &str, d: Duration| match v {
            None => Ok(d),
            Some(v) if v == 0 || v > 3_600_000 => {
                Err(Error::invalid(field, "must be 1-3600000 (ms)"))
            }
            Some(v) => Ok(Duration::from_millis(u64::from(v))),
        };
        o.lease_ttl = ms(self.lease_ttl_ms, "leaseTtlMs", o.lease_ttl)?;
        o.fence_margin = ms(self.fence_margin_ms, "fenceMarginMs", o.fence_margin)?;
        o.node_ttl = ms(self.node_ttl_ms, "nodeTtlMs", o.node_ttl)?;
        o.connect_timeout = ms(
            self.connect_timeout_ms,
            "connectTimeoutMs",
            o.connect_timeout,
        )?;
        o.request_timeout = ms(
            self.request_timeout_ms,
            "requestTimeoutMs",
            o.request_timeout,
        )?;
        if let Some(r) = self.replicas {
            o.replicas = r as usize;
        }
        Ok(o)
    }
}

/// camkit names the lease option `leaseTtl`; here it is `leaseTtlMs`.
fn js_field(e: Error) -> Error {
    match e.field() {
        Some("leaseTtl") => {
            let msg = e
                .message()
                .strip_prefix("leaseTtl: ")
                .unwrap_or(e.message());
            Error::invalid("leaseTtlMs", msg.replace("2 s", "2000 ms"))
        }
        _ => e,
    }
}

/// A camera of the cluster, as this node sees it.
#[napi(object, object_from_js = false)]
pub struct ClusterCamera {
    /// Camera id.
    pub id: String,
    /// The node holding its lease (running it), or `null` while none does (moving, or
    /// failing to start).
    pub owner: Option<String>,
    /// Its status on the owner, or `null` when the owner did not answer.
    pub status: Option<CameraStatus>,
}

/// A live node of the cluster.
#[napi(object, object_from_js = false)]
pub struct ClusterNode {
    /// Node id.
    pub id: String,
    /// Whether this is the node answering.
    pub this_node: bool,
    /// Milliseconds since its last heartbeat was seen here.
    pub last_seen_ms: f64,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: f64,
    /// The cameras it owns (from its last heartbeat).
    pub cameras: Vec<String>,
    /// How many of them stream.
    pub streaming: u32,
    /// Its camkit version.
    pub version: String,
}

/// The cluster as this node sees it.
#[napi(object, object_from_js = false)]
pub struct ClusterView {
    /// This node's id.
    pub node: String,
    /// Whether this node's NATS connection is up.
    pub nats_connected: bool,
    /// The live nodes, sorted by id.
    pub nodes: Vec<ClusterNode>,
    /// How many cameras the cluster should run.
    pub desired: u32,
    /// Desired cameras without a live owner right now.
    pub unowned: Vec<String>,
    /// This node's lease health and NATS reconnects since it joined (counters).
    pub stats: ClusterStats,
}

/// This node's lease and NATS figures since it joined (counters, never reset).
#[napi(object, object_from_js = false)]
pub struct ClusterStats {
    /// Leases this node claimed (or took back) and started a camera on.
    pub lease_claims: f64,
    /// Lease renewals the server acknowledged.
    pub lease_renewals: f64,
    /// Lease renewals NATS did not answer (down, slow, reconnecting).
    pub lease_renewal_failures: f64,
    /// Leases found taken by another node at renewal (the camera was stopped).
    pub leases_lost: f64,
    /// Leases given up on purpose: the camera moved, was removed, or this node left.
    pub leases_released: f64,
    /// Cameras stopped because their lease could not be renewed in time (fencing).
    pub fenced_stops: f64,
    /// Times the NATS connection was established again after it was lost.
    pub nats_reconnects: f64,
}

impl From<camkit::cluster::ClusterStats> for ClusterStats {
    fn from(s: camkit::cluster::ClusterStats) -> Self {
        ClusterStats {
            lease_claims: s.lease_claims as f64,
            lease_renewals: s.lease_renewals as f64,
            lease_renewal_failures: s.lease_renewal_failures as f64,
            leases_lost: s.leases_lost as f64,
            leases_released: s.leases_released as f64,
            fenced_stops: s.fenced_stops as f64,
            nats_reconnects: s.nats_reconnects as f64,
        }
    }
}

impl From<camkit::cluster::ClusterView> for ClusterView {
    fn from(v: camkit::cluster::ClusterView) -> Self {
        ClusterView {
            node: v.node,
            nats_connected: v.nats_connected,
            nodes: v
                .nodes
                .into_iter()
                .map(|n| ClusterNode {
                    id: n.id,
                    this_node: n.this_node,
                    last_seen_ms: n.last_seen_ms as f64,
                    started_at_ms: n.started_at_ms as f64,
                    cameras: n.cameras,
                    streaming: n.streaming as u32,
                    version: n.version,
                })
                .collect(),
            desired: v.desired as u32,
            unowned: v.unowned,
            stats: v.stats.into(),
        }
    }
}

/// This process as one node of a camkit cluster: the cameras it owns run on the
/// `CameraManager` it joined with; every call answers for any camera of the cluster.
///
/// Keep a reference for as long as the node should serve: `leave()` (or garbage
/// collection) stops its cameras and hands them to the other nodes. It keeps the
/// `CameraManager` it joined with running, even once the app dropped that object.
#[napi]
pub struct Cluster {
    node: Node,
    cameras: camkit::CameraManager,
    /// Keeps `cameras` from being closed by garbage collection of the JS manager.
    _hold: Arc<ManagerHold>,
    left: AtomicBool,
}

fn left_error() -> Error {
    Error::new(
        ErrorKind::Closed,
        "this node left the cluster (leave()); join again",
    )
}

#[napi]
impl Cluster {
    /// Joins a cluster with `cameras` running the cameras this node will own. Rejects with
    /// `INVALID_INPUT` (bad option, `field` names it), `UNREACHABLE` naming `natsUrl`
    /// (NATS down, or without JetStream), `UNAUTHORIZED` naming `natsCredentials` (NATS
    /// refused the user/password, token or nkey) or `clusterKey` (not the key the cluster's
    /// cameras were sealed with), `CLOSED` (the manager is closed).
    #[napi(
        ts_args_type = "cameras: CameraManager, options: ClusterOptions",
        ts_return_type = "Promise<Cluster>"
    )]
    pub fn join<'env>(
        env: &'env Env,
        cameras: &CameraManager,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Cluster>> {
        let manager = cameras.core().clone();
        let hold = cameras.hold();
        let rt = manager.runtime().clone();
        let options = match convert::<ClusterOptions>(options, "options")
            .and_then(ClusterOptions::into_core)
        {
            Ok(o) => o,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        if manager.is_closed() {
            let e = Error::new(ErrorKind::Closed, "the camera manager is closed");
            return promise::rejected(env, &rt, e);
        }
        promise::spawn(
            env,
            &rt,
            async move {
                let node = Node::join(manager.clone(), options)
                    .await
                    .map_err(js_field)?;
                Ok(Cluster {
                    node,
                    cameras: manager,
                    _hold: hold,
                    left: AtomicBool::new(false),
                })
            },
            |_, c| Ok(c),
        )
    }

    /// This node's id.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.node.node_id().to_owned()
    }

    fn open(&self) -> camkit::Result<Node> {
        if self.left.load(Ordering::Acquire) {
            return Err(left_error());
        }
        if self.cameras.is_closed() {
            return Err(Error::new(
                ErrorKind::Closed,
                "the cluster's camera manager was closed; create one and join again",
            ));
        }
        Ok(self.node.clone())
    }

    /// Adds (or replaces) a camera in the cluster and waits until its owner streams it;
    /// resolves to its status there. Its credentials are stored sealed with the cluster
    /// key. Failures as `CameraManager.connect`'s, and `UNREACHABLE` when NATS cannot
    /// store it.
    #[napi(
        ts_args_type = "config: CameraConfig",
        ts_return_type = "Promise<CameraStatus>"
    )]
    pub fn connect<'env>(
        &self,
        env: &'env Env,
        config: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, CameraStatus>> {
        let rt = self.cameras.runtime().clone();
        let run = self.open().and_then(|node| {
            convert::<CameraConfig>(config, "config")
                .and_then(|c| c.into_core())
                .map(|c| (node, c))
        });
        let (node, config) = match run {
            Ok(v) => v,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        promise::spawn(
            env,
            &rt,
            async move { node.connect(config).await },
            |_, s| Ok(s.into()),
        )
    }

    /// Removes a camera from the cluster; its owner stops it. `NOT_FOUND` for an unknown
    /// id.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let rt = self.cameras.runtime().clone();
        let node = match self.open() {
            Ok(n) => n,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        promise::spawn(
            env,
            &rt,
            async move { node.disconnect(&id).await },
            |_, ()| Ok(()),
        )
    }

    /// A camera's status on its owner (asked through NATS when it is another node).
    /// `NOT_FOUND` for an unknown id, `TIMEOUT` when the owner did not answer within
    /// `requestTimeoutMs`.
    #[napi(ts_return_type = "Promise<CameraStatus>")]
    pub fn status<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, CameraStatus>> {
        let rt = self.cameras.runtime().clone();
        let node = match self.open() {
            Ok(n) => n,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        promise::spawn(env, &rt, async move { node.status(&id).await }, |_, s| {
            Ok(s.into())
        })
    }

    /// A camera's latest picture as JPEG, from its owner. Options and failures as
    /// `CameraManager.snapshot`'s, and `TIMEOUT` when the owner did not answer.
    #[napi(
        ts_args_type = "id: string, options?: SnapshotOptions | undefined | null",
        ts_return_type = "Promise<Frame>"
    )]
    pub fn snapshot<'env>(
        &self,
        env: &'env Env,
        id: String,
        options: Option<Unknown<'env>>,
    ) -> napi::Result<PromiseRaw<'env, JsFrame>> {
        let rt = self.cameras.runtime().clone();
        let run = self.open().and_then(|node| {
            let o: SnapshotOptions = match options {
                Some(o) if !is_nullish(&o) => convert(o, "options")?,
                _ => SnapshotOptions::default(),
            };
            Ok((node, o.into_core()?))
        });
        let (node, opts) = match run {
            Ok(v) => v,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        promise::spawn(
            env,
            &rt,
            async move { node.snapshot(&id, opts).await },
            |_, f| Ok(JsFrame(f)),
        )
    }

    /// Calls `callback(null, frame)` with a camera's frames, from whichever node owns it,
    /// as `CameraManager.subscribe` does (latest wins, at most `options.fps`), until
    /// `unsubscribe()`. On the owner the frames come from its own camera; elsewhere the
    /// owner sends them through NATS only while this subscription lives (an `onDemand`
    /// camera nobody watches stays undecoded), and when the camera moves to another node
    /// the subscription follows it.
    ///
    /// Returns at once: it throws `INVALID_INPUT` (naming the field), `NOT_FOUND` (no such
    /// camera in the cluster) or `CLOSED` (this node left), and asks the owner
    /// afterwards; while no owner answers (the camera is moving, the owner is busy) it
    /// waits and asks again. The callback's last call is an error whose code is `'CLOSED'`
    /// once the camera was removed from the cluster or this node left it. Dropping the
    /// returned object does not unsubscribe.
    #[napi(
        ts_args_type = "id: string, options: SubscribeOptions, callback: (err: Error | null, frame: Frame) => void"
    )]
    pub fn subscribe(
        &self,
        env: &Env,
        id: String,
        options: Unknown,
        callback: Unknown,
    ) -> napi::Result<Subscription> {
        let node = self.open().map_err(|e| reject(env, &e))?;
        let options: SubscribeOptions = convert(options, "options").map_err(|e| reject(env, &e))?;
        let callback = function_arg(callback).map_err(|e| reject(env, &e))?;
        let sub = options
            .into_core()
            .and_then(|o| node.subscribe_deferred(&id, o))
            .map_err(|e| reject(env, &e))?;
        let callback = gate(env, callback).map_err(|e| reject(env, &e))?;
        let source = FrameSource::Cluster(Box::new(sub));
        Ok(Subscription::start(
            self.cameras.runtime(),
            id,
            source,
            callback,
        ))
    }

    /// Calls `callback(null, chunk)` with a camera's live video, from whichever node owns
    /// it, as `CameraManager.subscribeVideo` does (an `'init'` chunk, then `'media'`
    /// chunks; `pause()` / `resume()`, `skipped`), until `unsubscribe()`. When the camera
    /// moves to another node the subscription follows it, starting with a new `'init'`
    /// chunk, as after a reconnect.
    ///
    /// Returns at once, as `subscribe` does: it throws `INVALID_INPUT`, `NOT_FOUND` or
    /// `CLOSED`; an MJPEG camera (which camkit cannot carry as video) is known only to its
    /// owner, so it ends the subscription through the callback: its only call is an error
    /// whose code is `'UNSUPPORTED_CODEC'`. Otherwise the last call is `'CLOSED'` once the
    /// camera was removed from the cluster or this node left it.
    #[napi(
        ts_args_type = "id: string, callback: (err: Error | null, chunk: VideoChunk) => void, options?: VideoOptions | undefined | null"
    )]
    pub fn subscribe_video(
        &self,
        env: &Env,
        id: String,
        callback: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<VideoSubscription> {
        let node = self.open().map_err(|e| reject(env, &e))?;
        let opts = VideoOptions::from_arg(options).map_err(|e| reject(env, &e))?;
        let callback = function_arg(callback).map_err(|e| reject(env, &e))?;
        let sub = node
            .subscribe_video_deferred(&id, opts)
            .map_err(|e| reject(env, &e))?;
        let callback = gate(env, callback).map_err(|e| reject(env, &e))?;
        let source = VideoSource::Cluster(Box::new(sub));
        Ok(VideoSubscription::start(
            self.cameras.runtime(),
            id,
            source,
            callback,
        ))
    }

    /// Moondream for every camera of the cluster, asked from this node: the same class and
    /// calls as `CameraManager.moondream()`'s, about the picture the camera's owner has
    /// (its sub-stream's while that streams, fitted to `maxImageSide`), forwarded when the
    /// owner is another node. A watch follows the camera when it moves, and ends with
    /// `NOT_FOUND` once the camera is removed from the cluster. Throws `INVALID_INPUT`
    /// naming the field (e.g. the cloud without an API key), `CLOSED` after `leave()`.
    #[napi(ts_args_type = "options?: MoondreamOptions | undefined | null")]
    pub fn moondream(
        &self,
        options: Option<Unknown>,
    ) -> crate::error::Result<crate::moondream::Moondream> {
        let node = self.open().map_err(|e| crate::error::to_napi(&e))?;
        crate::moondream::Moondream::from_options(
            options,
            self.cameras.runtime().clone(),
            |config| node.moondream(config),
        )
    }

    /// Every camera of the cluster with its owner and (when the owner answered) its
    /// status, sorted by id.
    #[napi(ts_return_type = "Promise<ClusterCamera[]>")]
    pub fn list<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<ClusterCamera>>> {
        let rt = self.cameras.runtime().clone();
        let node = match self.open() {
            Ok(n) => n,
            Err(e) => return promise::rejected(env, &rt, e),
        };
        promise::spawn(env, &rt, async move { Ok(node.list().await) }, |_, list| {
            Ok(list
                .into_iter()
                .map(|c| ClusterCamera {
                    id: c.id,
                    owner: c.owner,
                    status: c.status.map(Into::into),
                })
                .collect())
        })
    }

    /// The live nodes, the cameras each owns, and the cluster's health, as this node sees
    /// them (no NATS round trip).
    #[napi]
    pub fn view(&self, env: &Env) -> napi::Result<ClusterView> {
        let node = self.open().map_err(|e| reject(env, &e))?;
        Ok(node.view().into())
    }

    /// Stops this node's cameras, gives their leases up and leaves; the other nodes take
    /// the cameras over. The manager stays usable. Later calls reject with `CLOSED`;
    /// calling it again does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn leave<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let rt = self.cameras.runtime().clone();
        let first = !self.left.swap(true, Ordering::AcqRel);
        let node = self.node.clone();
        promise::spawn(
            env,
            &rt,
            async move {
                if first {
                    let _ = tokio::time::timeout(Duration::from_secs(5), node.leave()).await;
                }
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }

    /// Whether `leave()` was called.
    #[napi(getter)]
    pub fn left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }
}
