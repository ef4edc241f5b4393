//! The cluster calls of the C API, in a libcamkit built with the cargo feature `cluster`:
//! camkit's `Cluster` on the manager's runtime, each call blocking the C caller's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use camkit::cluster::{Cluster as Node, ClusterOptions};
use camkit::{CameraConfig, CameraManager, CameraStatus, Frame, SnapshotOptions};

use super::camkit_cluster_options;
use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_str, block_on, opt_str};

/// What a `camkit_cluster` holds.
pub(crate) struct Cluster {
    node: Node,
    /// A clone of the manager: its runtime runs the cluster's tasks, and stays up while
    /// this handle lives even when the C manager is freed first.
    cameras: CameraManager,
    left: AtomicBool,
}

/// `camkit_cluster_join`'s errors name the C members: `lease_ttl_ms` for core's
/// `leaseTtl` (the other fields convert by case alone).
fn c_error(e: camkit::Error) -> FfiError {
    let mut e = FfiError::from(e);
    if e.field.as_deref() == Some("lease_ttl") {
        e.field = Some("lease_ttl_ms".into());
        if let Some(rest) = e.message.strip_prefix("lease_ttl") {
            e.message = format!("lease_ttl_ms{rest}");
        }
    }
    e
}

fn json_error(e: serde_json::Error) -> FfiError {
    FfiError::new(
        camkit_result::CAMKIT_INTERNAL,
        format!("cluster to JSON: {e}"),
    )
}

impl Cluster {
    /// Joins with the options from C.
    ///
    /// # Safety
    /// The options' strings are NULL or NUL-terminated (the conventions).
    pub(crate) unsafe fn join(
        cameras: &CameraManager,
        o: &camkit_cluster_options,
    ) -> Result<Self, FfiError> {
        // SAFETY (strings): per this function's contract.
        let text = |p, name| unsafe { opt_str(p, name) }.map(|s| s.map(str::to_owned));
        // SAFETY: as above.
        let required = |p, name| unsafe { arg_str(p, name) }.map(str::to_owned);
        let mut opts = ClusterOptions::new(
            required(o.nats_url, "nats_url")?,
            required(o.node_id, "node_id")?,
            required(o.cluster_key, "cluster_key")?,
        );
        opts.user = text(o.user, "user")?;
        opts.password = text(o.password, "password")?;
        opts.token = text(o.token, "token")?;
        opts.nkey_file = text(o.nkey_file, "nkey_file")?.map(Into::into);
        opts.ca_file = text(o.ca_file, "ca_file")?.map(Into::into);
        if let Some(p) = text(o.prefix, "prefix")? {
            opts.prefix = p;
        }
        if o.lease_ttl_ms > 3_600_000 {
            return Err(FfiError::invalid(
                "lease_ttl_ms",
                format!("{} is more than 3600000 (an hour)", o.lease_ttl_ms),
            ));
        }
        let ms = |v: u32, d: Duration| crate::ffi::millis_or(v, d);
        opts.lease_ttl = ms(o.lease_ttl_ms, opts.lease_ttl);
        opts.connect_timeout = ms(o.connect_timeout_ms, opts.connect_timeout);
        opts.request_timeout = ms(o.request_timeout_ms, opts.request_timeout);
        if o.replicas != 0 {
            opts.replicas = o.replicas as usize;
        }
        let node =
            block_on(cameras.runtime(), Node::join(cameras.clone(), opts)).map_err(c_error)?;
        Ok(Cluster {
            node,
            cameras: cameras.clone(),
            left: AtomicBool::new(false),
        })
    }

    /// `CAMKIT_CLOSED` once the node left or its manager is closed.
    pub(crate) fn check_open(&self) -> Result<(), FfiError> {
        if self.left.load(Ordering::Acquire) {
            return Err(FfiError::new(
                camkit_result::CAMKIT_CLOSED,
                "this node left the cluster (camkit_cluster_leave); join again",
            ));
        }
        if self.cameras.is_closed() {
            return Err(FfiError::new(
                camkit_result::CAMKIT_CLOSED,
                "the cluster's camera manager was closed; create a manager and join again",
            ));
        }
        Ok(())
    }

    fn run<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        block_on(self.cameras.runtime(), fut)
    }

    pub(crate) fn connect(&self, config: CameraConfig) -> Result<CameraStatus, FfiError> {
        Ok(self.run(self.node.connect(config))?)
    }

    pub(crate) fn disconnect(&self, id: &str) -> Result<(), FfiError> {
        Ok(self.run(self.node.disconnect(id))?)
    }

    pub(crate) fn status(&self, id: &str) -> Result<CameraStatus, FfiError> {
        Ok(self.run(self.node.status(id))?)
    }

    pub(crate) fn snapshot(
        &self,
        id: &str,
        opts: SnapshotOptions,
        timeout: Option<Duration>,
    ) -> Result<Frame, FfiError> {
        let snapshot = self.node.snapshot(id, opts);
        match timeout {
            None => Ok(self.run(snapshot)?),
            // The timer is made inside the runtime (see camkit_snapshot).
            Some(t) => self
                .run(async move { tokio::time::timeout(t, snapshot).await })
                .map_err(|_| {
                    FfiError::new(
                        camkit_result::CAMKIT_TIMEOUT,
                        format!(
                            "camera {id:?}: no snapshot within {} ms; retry, or give a longer \
                             timeout_ms",
                            t.as_millis()
                        ),
                    )
                })?
                .map_err(Into::into),
        }
    }

    pub(crate) fn list_json(&self) -> Result<String, FfiError> {
        serde_json::to_string(&self.run(self.node.list())).map_err(json_error)
    }

    pub(crate) fn view_json(&self) -> Result<String, FfiError> {
        serde_json::to_string(&self.node.view()).map_err(json_error)
    }

    /// Leaves once; later calls are no-ops.
    pub(crate) fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) && !self.cameras.is_closed() {
            // Bounded by the NATS calls' own timeouts; the cameras stop within their
            // teardown bound.
            self.run(async {
                let _ = tokio::time::timeout(Duration::from_secs(5), self.node.leave()).await;
            });
        }
    }
}
