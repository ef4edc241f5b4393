//! Request-reply between nodes: a non-owner asks the owner for a camera's status, a
//! snapshot, or the list of what it runs.
//!
//! Subjects (`<prefix>` is `camkit` unless configured):
//! - `<prefix>.node.<node>.status`: payload the camera id; reply a `CameraStatus` as JSON.
//! - `<prefix>.node.<node>.snapshot`: payload `{"id", "maxWidth"?, "quality"?}`; reply the
//!   JPEG bytes, headers `Camkit-Width`, `Camkit-Height`, `Camkit-Seq`, `Camkit-Captured-At`.
//! - `<prefix>.node.<node>.list`: empty payload; reply a JSON array of `CameraStatus`.
//! - `<prefix>.node.<node>.feed`: start feeding a subscription on another node (see
//!   [`super::feed`]).
//!
//! An error reply has the header `Camkit-Error` (the stable code, `NOT_FOUND` …) and the
//! message as payload. The owner answers only for cameras whose lease it surely holds.

use std::time::{Duration, SystemTime};

use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, SnapshotOptions, StreamChoice};
use crate::status::CameraStatus;

const ERROR: &str = "Camkit-Error";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRequest {
    id: String,
    max_width: Option<u32>,
    quality: Option<u8>,
    /// Which of the camera's streams (main or sub-stream) the owner serves it from.
    #[serde(default)]
    stream: StreamChoice,
}

fn kind_of(code: &str) -> ErrorKind {
    ErrorKind::ALL
        .into_iter()
        .find(|k| k.code() == code)
        .unwrap_or(ErrorKind::Internal)
}

pub(crate) fn error_headers(e: &Error) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ERROR, e.kind().code());
    h
}

/// The error an error reply carries, if it is one.
pub(crate) fn reply_error(m: &Message) -> Option<Error> {
    let code = m.headers.as_ref()?.get(ERROR)?.as_str().to_owned();
    Some(Error::new(
        kind_of(&code),
        String::from_utf8_lossy(&m.payload).into_owned(),
    ))
}

impl Shared {
    pub(crate) fn subject(&self, node: &str, what: &str) -> String {
        format!("{}.node.{node}.{what}", self.timing.prefix)
    }

    /// Serves this node's subjects until closed.
    pub(crate) async fn serve(self: std::sync::Arc<Self>) -> Result<()> {
        let mut sub = self
            .client
            .subscribe(format!("{}.node.{}.*", self.timing.prefix, self.node))
            .await
            .map_err(|e| Error::new(ErrorKind::Unreachable, format!("NATS subscribe: {e}")))?;
        let me = self.clone();
        tokio::spawn(async move {
            let mut closed = me.closed.subscribe();
            loop {
                let msg = tokio::select! {
                    _ = super::wait_closed(&mut closed) => return,
                    m = sub.next() => match m { Some(m) => m, None => return },
                };
                let me = me.clone();
                tokio::spawn(async move { me.answer(msg).await });
            }
        });
        Ok(())
    }

    async fn answer(self: &std::sync::Arc<Self>, msg: Message) {
        let Some(reply) = msg.reply.clone() else {
            return;
        };
        let what = msg.subject.rsplit('.').next().unwrap_or("");
        let out: Result<(HeaderMap, Bytes)> = match what {
            "status" => {
                let id = String::from_utf8_lossy(&msg.payload).into_owned();
                self.local_status(&id).and_then(|s| {
                    Ok((
                        HeaderMap::new(),
                        Bytes::from(serde_json::to_vec(&s).map_err(internal)?),
                    ))
                })
            }
            "list" => {
                let list = self.local_list();
                serde_json::to_vec(&list)
                    .map(|v| (HeaderMap::new(), Bytes::from(v)))
                    .map_err(internal)
            }
            "feed" => self
                .open_feed(&msg.payload)
                .await
                .map(|()| (HeaderMap::new(), Bytes::new())),
            "snapshot" => match serde_json::from_slice::<SnapshotRequest>(&msg.payload) {
                Ok(r) => {
                    let opts = SnapshotOptions {
                        max_width: r.max_width,
                        quality: r.quality,
                        stream: r.stream,
                    };
                    self.local_snapshot(&r.id, opts)
                        .await
                        .map(|f| (frame_headers(&f), f.jpeg))
                }
                Err(e) => Err(Error::invalid("request", e)),
            },
            _ => Err(Error::new(
                ErrorKind::NotFound,
                format!("no such cluster request: {what}"),
            )),
        };
        let (headers, payload) = match out {
            Ok(x) => x,
            Err(e) => (error_headers(&e), Bytes::from(e.message().to_owned())),
        };
        let max = self.client.server_info().max_payload;
        let (headers, payload) = if payload.len() > max {
            let e = Error::new(
                ErrorKind::Internal,
                format!(
                    "the reply is {} bytes, more than NATS max_payload ({max}); ask for a \
                     smaller picture (maxWidth) or raise max_payload",
                    payload.len()
                ),
            );
            (error_headers(&e), Bytes::from(e.message().to_owned()))
        } else {
            (headers, payload)
        };
        if let Err(e) = self
            .client
            .publish_with_headers(reply, headers, payload)
            .await
        {
            tracing::debug!(error = %e, "cluster reply failed");
        }
    }

    async fn request(&self, node: &str, what: &str, payload: Bytes) -> Result<Message> {
        let subject = self.subject(node, what);
        let fut = self.client.request(subject, payload);
        let msg = match tokio::time::timeout(self.timing.request_timeout, fut).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return Err(Error::new(
                    ErrorKind::Unreachable,
                    format!("node {node:?} did not answer ({e})"),
                ))
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("node {node:?} did not answer in time"),
                ))
            }
        };
        match reply_error(&msg) {
            Some(e) => Err(e),
            None => Ok(msg),
        }
    }

    pub(crate) async fn remote_status(&self, node: &str, id: &str) -> Result<CameraStatus> {
        let m = self
            .request(node, "status", Bytes::from(id.to_owned()))
            .await
            .map_err(|e| e.for_camera(id))?;
        serde_json::from_slice(&m.payload).map_err(internal)
    }

    pub(crate) async fn remote_list(&self, node: &str) -> Result<Vec<CameraStatus>> {
        let m = self.request(node, "list", Bytes::new()).await?;
        serde_json::from_slice(&m.payload).map_err(internal)
    }

    pub(crate) async fn remote_snapshot(
        &self,
        node: &str,
        id: &str,
        opts: SnapshotOptions,
    ) -> Result<Frame> {
        let req = SnapshotRequest {
            id: id.to_owned(),
            max_width: opts.max_width,
            quality: opts.quality,
            stream: opts.stream,
        };
        let body = Bytes::from(serde_json::to_vec(&req).map_err(internal)?);
        let m = self
            .request(node, "snapshot", body)
            .await
            .map_err(|e| e.for_camera(id))?;
        Ok(frame_from(m))
    }
}

/// The headers a frame travels with, in snapshot replies and frame feeds.
pub(super) fn frame_headers(f: &Frame) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Camkit-Width", f.width.to_string().as_str());
    h.insert("Camkit-Height", f.height.to_string().as_str());
    h.insert("Camkit-Seq", f.seq.to_string().as_str());
    h.insert(
        "Camkit-Captured-At",
        f.captured_at_ms().to_string().as_str(),
    );
    h
}

/// The frame a message with [`frame_headers`] carries (a missing header reads as 0).
pub(super) fn frame_from(m: Message) -> Frame {
    let num = |name: &str| -> u64 {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str().parse().ok())
            .unwrap_or(0)
    };
    Frame {
        width: num("Camkit-Width") as u32,
        height: num("Camkit-Height") as u32,
        seq: num("Camkit-Seq"),
        captured_at: SystemTime::UNIX_EPOCH + Duration::from_millis(num("Camkit-Captured-At")),
        jpeg: m.payload,
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("cluster message: {e}"))
}
