//! Cluster mode from C: a `camkit_cluster` handle (`camkit_cluster_join` / `_free`) for one
//! node of camkit nodes sharing cameras through NATS JetStream (camkit's `cluster` module),
//! and the blocking calls on it: connect, disconnect, status, snapshot, the camera list and
//! the cluster view as JSON, leave.
//!
//! The C types and the exported functions are here, in every build, so that the header is
//! the same whether or not libcamkit is built with the cargo feature `cluster`; the work is
//! in [`imp`]: `live.rs` with the feature, `absent.rs` (every call fails with
//! `CAMKIT_UNSUPPORTED`) without it.

use std::os::raw::c_char;

use crate::config::{camkit_camera_config, read_config};
use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, arg_str, cstring, free_handle, into_handle, Out};
use crate::frame::{camkit_frame, camkit_snapshot_options, snapshot_args};
use crate::manager::{camkit_manager, manager_arg};
use crate::status::camkit_status;

#[cfg(not(feature = "cluster"))]
mod absent;
#[cfg(feature = "cluster")]
mod live;
#[cfg(not(feature = "cluster"))]
use absent as imp;
#[cfg(feature = "cluster")]
use live as imp;

/// How a node joins a cluster: `camkit_cluster_join`'s `options`. Zero it for the defaults
/// (every zero or NULL is one); `nats_url`, `node_id` and `cluster_key` are required.
/// Strings are only read during the call (NULL and `""` mean "not given"). Secrets
/// (`cluster_key`, `password`, `token`) never appear in a message, status, subject or NATS
/// value.
#[repr(C)]
pub struct camkit_cluster_options {
    /// The NATS server(s) with JetStream: `"nats://127.0.0.1:4222"`, `tls://` for TLS,
    /// several separated by commas. Required.
    pub nats_url: *const c_char,
    /// This node's id, unique in the cluster: 1-64 of `A-Z a-z 0-9 _ -`. Required.
    pub node_id: *const c_char,
    /// The secret that seals the cameras' credentials in NATS, the same on every node, at
    /// least 16 characters (`openssl rand -base64 32`). Required.
    pub cluster_key: *const c_char,
    /// NATS user, with `password`; NULL = none.
    pub user: *const c_char,
    /// NATS password; NULL = none.
    pub password: *const c_char,
    /// NATS token; NULL = none.
    pub token: *const c_char,
    /// Path of a file holding a NATS user nkey seed; NULL = none.
    pub nkey_file: *const c_char,
    /// Path of a PEM file of the certificate authorities that signed the NATS servers'
    /// certificates (a private CA), implying TLS; NULL = the system's roots.
    pub ca_file: *const c_char,
    /// Prefix of the NATS subjects and bucket names: clusters sharing a NATS server use
    /// different ones; NULL = `"camkit"`.
    pub prefix: *const c_char,
    /// The camera lease's TTL in ms: a dead node's cameras move after about this long,
    /// 2001-3600000 (more than the 2 s fence margin); 0 = 6000.
    pub lease_ttl_ms: u32,
    /// Bound of connecting to NATS when joining, in ms; 0 = 3000.
    pub connect_timeout_ms: u32,
    /// Bound of a request forwarded to a camera's owner (status, snapshot), in ms;
    /// 0 = 3000.
    pub request_timeout_ms: u32,
    /// Replicas of the cluster's JetStream buckets, 1-5; 0 = 1. 3 with a 3-server NATS
    /// cluster keeps the cluster's state through the loss of one server. Applies when the
    /// buckets are created; existing buckets keep theirs (a warning is logged).
    pub replicas: u32,
}

/// This node's membership of a cluster, over the manager it was joined with: the cameras
/// this node owns run on that manager. Thread-safe: any function may be called on it from
/// any thread at the same time. Created by `camkit_cluster_join`, freed by
/// `camkit_cluster_free`.
///
/// The handle keeps what it needs of its manager, so it may be freed before or after the
/// manager; once the manager is closed, calls through the handle fail with
/// `CAMKIT_CLOSED`.
pub struct camkit_cluster {
    inner: imp::Cluster,
}

/// Joins a cluster as a node running its cameras on `mgr`, blocking until joined (bounded
/// by `connect_timeout_ms`), and stores the handle in `*out` (free it with
/// `camkit_cluster_free`). The options' strings are copied.
///
/// Failures name the field (`camkit_last_error_field`): `CAMKIT_INVALID_INPUT` for a bad
/// `node_id`, `prefix`, `lease_ttl_ms`, `replicas`, `cluster_key` (too short) or
/// `nats_url`;
/// `CAMKIT_UNREACHABLE` naming `nats_url` (NATS down, or without JetStream);
/// `CAMKIT_UNAUTHORIZED` naming `nats_credentials` (NATS refused `user`/`password`,
/// `token` or `nkey_file`) or `cluster_key` (not the key the cluster's cameras were sealed
/// with); `CAMKIT_CLOSED` (the manager is closed); `CAMKIT_UNSUPPORTED` (libcamkit was
/// built without the cargo feature `cluster`).
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_join(
    mgr: *const camkit_manager,
    options: *const camkit_cluster_options,
    out: *mut *mut camkit_cluster,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (m, options, out) = unsafe {
            (
                manager_arg(mgr)?,
                arg_ref(options, "options")?,
                Out::new(out, "out")?,
            )
        };
        // SAFETY: the options' strings, per the conventions.
        let inner = unsafe { imp::Cluster::join(&m.cameras, options) }?;
        out.write(into_handle(camkit_cluster { inner }));
        Ok(())
    })
}

/// Leaves the cluster (as `camkit_cluster_leave`, when not done yet) and frees the handle.
/// NULL is a no-op. No call may be running through it (join the threads that use it
/// first). The manager stays usable.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_free(cluster: *mut camkit_cluster) {
    ffi_boundary!(value, {
        if cluster.is_null() {
            return;
        }
        {
            // SAFETY: non-NULL, from camkit_cluster_join, not freed yet (the conventions).
            let c = unsafe { &*cluster };
            c.inner.leave();
        }
        // SAFETY: the caller's handle, freed once (the conventions).
        unsafe { free_handle(cluster) }
    })
}

/// The `cluster` argument of a call.
///
/// # Safety
/// `cluster` is NULL or a live handle from `camkit_cluster_join`.
unsafe fn cluster_arg<'a>(cluster: *const camkit_cluster) -> Result<&'a imp::Cluster, FfiError> {
    // SAFETY: per this function's contract.
    let c = &unsafe { arg_ref(cluster, "cluster") }?.inner;
    c.check_open()?;
    Ok(c)
}

/// Adds (or replaces) a camera in the cluster's desired set and waits until its owner (the
/// node the cluster chose, maybe another process) streams it, blocking the calling thread
/// within the config's `connect_timeout_ms`. Its credentials are stored sealed with the
/// cluster key. On success, when `out` is not NULL, stores the camera's status on its owner
/// in `*out` (free it with `camkit_status_free`). On failure the camera is removed again
/// and the owner's error returned, unless `config->persistent`: then it stays and the call
/// succeeds with the status (the owner retrying).
///
/// Failures as `camkit_connect`'s, and `CAMKIT_UNREACHABLE` when NATS cannot store it.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_connect(
    cluster: *const camkit_cluster,
    config: *const camkit_camera_config,
    out: *mut *mut camkit_status,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`out` nullable).
        let (c, config, out) = unsafe {
            (
                cluster_arg(cluster)?,
                read_config(config)?,
                Out::optional(out),
            )
        };
        let status = c.connect(config)?;
        if let Some(out) = out {
            out.write(into_handle(camkit_status::new(status)));
        }
        Ok(())
    })
}

/// Removes camera `id` from the cluster's desired set; its owner stops it. Waits (up to
/// 3 s) until the owner has let it go, so the id can be connected again at once.
/// `CAMKIT_NOT_FOUND` when the cluster has no camera with that id.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_disconnect(
    cluster: *const camkit_cluster,
    id: *const c_char,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (c, id) = unsafe { (cluster_arg(cluster)?, arg_str(id, "id")?) };
        c.disconnect(id)?;
        Ok(())
    })
}

/// Stores the status of camera `id` on its owner in `*out` (free it with
/// `camkit_status_free`), asking the owner through NATS when it is another node.
/// `CAMKIT_NOT_FOUND` for an unknown id, `CAMKIT_TIMEOUT` when the owner did not answer
/// within `request_timeout_ms`.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_status(
    cluster: *const camkit_cluster,
    id: *const c_char,
    out: *mut *mut camkit_status,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions.
        let (c, id, out) = unsafe {
            (
                cluster_arg(cluster)?,
                arg_str(id, "id")?,
                Out::new(out, "out")?,
            )
        };
        out.write(into_handle(camkit_status::new(c.status(id)?)));
        Ok(())
    })
}

/// Stores camera `id`'s latest picture as JPEG in `*out` (free it with
/// `camkit_frame_free`), from its owner: this node's manager, or the owning node through
/// NATS. `options` as `camkit_snapshot`'s (NULL = full size at the camera's quality);
/// failures as its, and `CAMKIT_TIMEOUT` when the owner did not answer within
/// `request_timeout_ms` (or `options->timeout_ms`).
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_snapshot(
    cluster: *const camkit_cluster,
    id: *const c_char,
    options: *const camkit_snapshot_options,
    out: *mut *mut camkit_frame,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`options` nullable).
        let (c, id, options, out) = unsafe {
            (
                cluster_arg(cluster)?,
                arg_str(id, "id")?,
                options.as_ref(),
                Out::new(out, "out")?,
            )
        };
        let (opts, timeout) = snapshot_args(options)?;
        let frame = c.snapshot(id, opts, timeout)?;
        out.write(into_handle(camkit_frame { frame }));
        Ok(())
    })
}

/// Hands a JSON text to C: `*out` (free with `camkit_string_free`) and `*out_len`.
fn give_json(json: &str, out: Out<*mut c_char>, out_len: Option<Out<usize>>) {
    // JSON escapes control characters, so there is no NUL inside.
    let s = cstring(json);
    if let Some(o) = out_len {
        o.write(s.as_bytes().len());
    }
    out.write(s.into_raw());
}

/// Every camera of the cluster as a JSON array sorted by id, each with the node holding it
/// and, when that node answered, its status (camelCase as in the Rust and Node APIs):
/// `[{"id":"door","owner":"node-a","status":{"id":"door","state":"streaming",...}},...]`
/// (`owner` and `status` are `null` while a camera has no live owner).
///
/// Stores a NUL-terminated string in `*out` (free it with `camkit_string_free`) and its
/// length without the NUL in `*out_len` (`out_len` may be NULL). No password is in it.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_list_json(
    cluster: *const camkit_cluster,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`out_len` nullable).
        let (c, out, out_len) = unsafe {
            (
                cluster_arg(cluster)?,
                Out::new(out, "out")?,
                Out::optional(out_len),
            )
        };
        give_json(&c.list_json()?, out, out_len);
        Ok(())
    })
}

/// The cluster as this node sees it, as a JSON object: `{"node":"node-a",
/// "natsConnected":true,"nodes":[{"id","thisNode","lastSeenMs","startedAtMs","cameras",
/// "streaming","version"},...],"desired":3,"unowned":[],"stats":{"leaseClaims",
/// "leaseRenewals","leaseRenewalFailures","leasesLost","leasesReleased","fencedStops",
/// "natsReconnects"}}` (the live nodes sorted by id; `unowned`: cameras without a live
/// owner right now; `stats`: this node's lease counters since it joined). Output as
/// `camkit_cluster_list_json`.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_view_json(
    cluster: *const camkit_cluster,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointers, per the conventions (`out_len` nullable).
        let (c, out, out_len) = unsafe {
            (
                cluster_arg(cluster)?,
                Out::new(out, "out")?,
                Out::optional(out_len),
            )
        };
        give_json(&c.view_json()?, out, out_len);
        Ok(())
    })
}

/// Leaves the cluster: stops the cameras this node owns, gives their leases up and tells
/// the other nodes, which take them over. Later calls through the handle fail with
/// `CAMKIT_CLOSED` (it must still be freed); the manager stays usable. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn camkit_cluster_leave(cluster: *const camkit_cluster) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let c = unsafe { arg_ref(cluster, "cluster") }?;
        c.inner.leave();
        Ok(())
    })
}
