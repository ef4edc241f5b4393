//! The NATS connection of a node: options from the cluster settings, start-up errors that
//! name the setting to fix, and the three buckets.
//!
//! The heartbeat and lease buckets are kept in memory by nats-server, so a restart of the
//! server loses them (the cameras bucket is on disk and survives). Each node therefore
//! makes the buckets again whenever its connection comes back ([`BucketSpec`], the
//! `reconnected` signal of [`connect`]); what they held is written again by the owners'
//! next heartbeat and lease renewal (a renewal of a lease that is gone claims it anew).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{Config, Store};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::{ConnectErrorKind, ConnectOptions, Event};
use tokio::sync::Notify;

use super::ClusterOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::util::fmt_duration;

/// The server part of a NATS URL, for messages: never user info or a token.
pub(crate) fn redact(url: &str) -> String {
    crate::address::redact_url_str(url)
}

/// Connects, or says which setting is wrong. The [`Notify`] is woken every time the
/// connection is made again after a loss.
pub(crate) async fn connect(o: &ClusterOptions) -> Result<(async_nats::Client, Arc<Notify>)> {
    let shown = redact(&o.nats_url);
    let reconnected = Arc::new(Notify::new());
    let signal = reconnected.clone();
    // Connected comes for the first connection too: only one after a loss counts.
    let lost = Arc::new(AtomicBool::new(false));
    let mut opts = ConnectOptions::new()
        .event_callback(move |event| {
            let (signal, lost) = (signal.clone(), lost.clone());
            async move {
                match event {
                    Event::Disconnected => lost.store(true, Ordering::SeqCst),
                    // notify_one: kept for the keeper if it is not waiting at this instant.
                    Event::Connected if lost.swap(false, Ordering::SeqCst) => signal.notify_one(),
                    _ => {}
                }
            }
        })
        .name(format!("camkit {}", o.node_id))
        .connection_timeout(o.connect_timeout)
        .request_timeout(Some(o.request_timeout))
        // Keep trying after a lost connection: sessions do not depend on NATS, and the
        // fencing clock, not the client, decides when a node gives its cameras up.
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100 * (attempt as u64 + 1)).min(1000))
        });
    let creds_given = o.user.is_some() || o.token.is_some() || o.nkey_file.is_some();
    if let (Some(u), Some(p)) = (&o.user, &o.password) {
        opts = opts.user_and_password(u.clone(), p.clone());
    } else if o.user.is_some() || o.password.is_some() {
        return Err(Error::invalid(
            "natsUser",
            "CAMKIT_NATS_USER and CAMKIT_NATS_PASSWORD go together; give both or neither",
        ));
    }
    if let Some(t) = &o.token {
        opts = opts.token(t.clone());
    }
    if let Some(path) = &o.nkey_file {
        let seed = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                "natsNkeyFile",
                format!("CAMKIT_NATS_NKEY_FILE: cannot read {}: {e}", path.display()),
            )
        })?;
        let seed = seed
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("SU"))
            .ok_or_else(|| {
                Error::invalid(
                    "natsNkeyFile",
                    "CAMKIT_NATS_NKEY_FILE holds no user nkey seed (a line starting with SU)",
                )
            })?;
        opts = opts.nkey(seed.to_owned());
    }
    if let Some(ca) = &o.ca_file {
        // Read here, so a wrong path is named as such (the client would only say TLS failed).
        std::fs::File::open(ca).map_err(|e| {
            Error::invalid(
                "caFile",
                format!("cannot read the NATS CA file {}: {e}", ca.display()),
            )
        })?;
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    let urls: Vec<String> = o
        .nats_url
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    // TLS failures do not all come as ConnectErrorKind::Tls (a certificate from an unknown
    // issuer is an IO error): say what TLS needs whenever it is in use.
    let tls = o.ca_file.is_some() || urls.iter().any(|u| u.starts_with("tls://"));
    match opts.connect(urls).await {
        Ok(c) => Ok((c, reconnected)),
        Err(e) => Err(match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "NATS at {shown} refused {}: check CAMKIT_NATS_USER / \
                         CAMKIT_NATS_PASSWORD, CAMKIT_NATS_TOKEN or CAMKIT_NATS_NKEY_FILE",
                        if creds_given {
                            "the credentials"
                        } else {
                            "a connection without credentials"
                        }
                    ),
                )
                .with_field("natsCredentials")
            }
            ConnectErrorKind::ServerParse => Error::invalid(
                "natsUrl",
                format!("CAMKIT_NATS_URL {shown:?} is not a NATS URL (nats://host:4222)"),
            ),
            ConnectErrorKind::Tls => Error::new(
                ErrorKind::Unreachable,
                format!(
                    "TLS with NATS at {shown} failed ({e}); check CAMKIT_NATS_URL, and \
                     CAMKIT_NATS_CA_FILE for a server whose certificate a private CA signed"
                ),
            )
            .with_field("natsUrl"),
            ConnectErrorKind::TimedOut => Error::new(
                ErrorKind::Timeout,
                format!(
                    "NATS at {shown} did not answer within {}; check CAMKIT_NATS_URL and that \
                     nats-server runs",
                    fmt_duration(o.connect_timeout)
                ),
            )
            .with_field("natsUrl"),
            _ => Error::new(
                ErrorKind::Unreachable,
                format!(
                    "cannot reach NATS at {shown} ({e}); check CAMKIT_NATS_URL and that \
                     nats-server runs{}",
                    if tls {
                        " (TLS: a server whose certificate a private CA signed needs \
                         CAMKIT_NATS_CA_FILE)"
                    } else {
                        ""
                    }
                ),
            )
            .with_field("natsUrl"),
        }),
    }
}

/// What a bucket is made with, kept so it can be made again after a server restart.
#[derive(Clone, Debug)]
pub(crate) struct BucketSpec {
    pub name: String,
    pub max_age: Duration,
    pub storage: StorageType,
    pub description: &'static str,
    /// `num_replicas` of its stream ([`ClusterOptions::replicas`]).
    pub replicas: usize,
}

impl BucketSpec {
    /// Whether the bucket's entries expire (a `max_age`): heartbeats and leases do.
    pub fn expires(&self) -> bool {
        !self.max_age.is_zero()
    }

    /// Opens (or creates) the bucket.
    pub async fn open(&self, js: &async_nats::jetstream::Context) -> Result<Store> {
        bucket(js, self).await
    }
}

/// Opens (or creates) one bucket.
///
/// The bucket's stream is created here, with the settings async-nats' `create_key_value`
/// would give it, rather than through that call: it first asks for the account's JetStream
/// info, and async-nats 0.50 cannot read the answer of nats-server 2.9 (Debian 12's),
/// which lacks the `reserved_memory` / `reserved_storage` fields of newer servers. The
/// stream is all a bucket is; `get_key_value` then opens it as one.
///
/// A bucket that exists is opened as it is, whatever its replica count: when that is not
/// the one asked for, a warning says so (see [`ClusterOptions::replicas`]).
pub(crate) async fn bucket(
    js: &async_nats::jetstream::Context,
    spec: &BucketSpec,
) -> Result<Store> {
    let BucketSpec {
        name,
        max_age,
        storage,
        description,
        replicas,
    } = spec;
    let (name, max_age, storage) = (name.as_str(), *max_age, *storage);
    if let Ok(s) = js.get_key_value(name).await {
        let has = s.stream.cached_info().config.num_replicas;
        if has != *replicas {
            tracing::warn!(
                bucket = name,
                replicas = has,
                asked = replicas,
                "the NATS bucket exists with another replica count; kept as it is \
                 (nats stream edit KV_{name} --replicas {replicas} changes it)"
            );
        }
        return Ok(s);
    }
    let kv = Config::default();
    let stream = stream::Config {
        name: format!("KV_{name}"),
        description: Some((*description).to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_bytes: kv.max_bytes,
        max_age,
        max_message_size: kv.max_value_size,
        storage,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: *replicas,
        discard: DiscardPolicy::New,
        ..Default::default()
    };
    // An error may be another node creating it at the same moment: opening it decides.
    let created = js.create_stream(stream).await.err();
    js.get_key_value(name).await.map_err(|open| {
        let why = created.map_or_else(|| open.to_string(), |e| e.to_string());
        Error::new(
            ErrorKind::Unreachable,
            format!(
                "cannot open the NATS key-value bucket {name:?} ({why}); nats-server \
                 must run with JetStream enabled (nats-server -js)"
            ),
        )
        .with_field("natsUrl")
    })
}
