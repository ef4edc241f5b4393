//! Frame and video subscriptions that follow a camera wherever it runs in the cluster.
//!
//! On the camera's owner, [`ClusterSubscription`] and [`ClusterVideoSubscription`] wrap
//! the local [`Subscription`] / [`VideoSubscription`]. On any other node they ask the
//! owner to run one and publish what it yields to a subject of this subscription alone,
//! and renew that interest every second: the owner publishes only while someone, on some
//! node, watches (an on-demand camera stays undecoded across the cluster when nobody
//! does), and stops when the subscription is dropped (it sends a stop), when no renewal
//! came for [`FEED_TTL`] (the subscriber's node died or lost NATS), or when it no longer
//! owns the camera. When the camera moves to another node (failover, a node leaving) the
//! subscription finds the new owner by itself and goes on from there; a video
//! subscription then gets a new init segment first, as after a local reconnect.
//!
//! Subjects (`<prefix>` is `camkit` unless configured; `<sid>` is 32 random hex digits
//! picked by the subscriber, `<node>` the subscriber's node id; no camera id, URL or
//! credential is ever part of a subject):
//! - `<prefix>.node.<owner>.feed` (request-reply): payload
//!   `{"id", "subject", "kind": "frames", "fps", "maxWidth"?, "quality"?, "stream"}` or
//!   `{"id", "subject", "kind": "video", "format": "fmp4" | "annexB", "maxQueueBytes"}`;
//!   an empty reply once the owner's local subscription runs, or an error reply
//!   (`Camkit-Error` header with the stable code, the message as payload).
//! - `<prefix>.feed.<node>.<sid>` (owner → subscriber), one message per item:
//!   - a frame: the JPEG, headers `Camkit-Width`, `Camkit-Height`, `Camkit-Seq`,
//!     `Camkit-Captured-At` (ms since the epoch), `Camkit-State` (the camera's state on
//!     the owner by name: `streaming` …);
//!   - a frame that could not be encoded: `Camkit-Error` and the message;
//!   - a video chunk: its bytes, headers `Camkit-Kind` (`init`, `segment`, `au`),
//!     `Camkit-Keyframe` (`1` / `0`), `Camkit-Pts` (90 kHz), `Camkit-Codec` (RFC 6381),
//!     `Camkit-Skipped` (chunks the owner's queue skipped so far);
//!   - the end: `Camkit-End` = `stopped` (the camera stopped on the owner, with
//!     `Camkit-Error` when an error ended a video stream) or `moved` (the owner gave the
//!     camera up). The subscriber then looks for the camera's owner again.
//! - `<prefix>.feed.<node>.<sid>.renew` (subscriber → owner, request-reply, every
//!   second): the reply is the camera's state on the owner as JSON (`"streaming"` …); no
//!   responder means the owner forgot the feed (it restarted, or the renewals were late):
//!   the subscriber asks again.
//! - `<prefix>.feed.<node>.<sid>.stop` (subscriber → owner): the subscription was dropped.
//!
//! Sizes: NATS refuses a message larger than the server's `max_payload` (1 MiB by
//! default), and a 4K keyframe or JPEG can be larger. Rather than failing, an item larger
//! than fits is split into parts sent back to back on the same subject (header
//! `Camkit-Part: <k>/<n>`, the item's headers on the first part), and joined again by the
//! subscriber; NATS keeps one publisher's messages on one subject in order, and an item
//! with a part missing (a slow subscriber the server cut off) is dropped whole.
//!
//! Frames stay latest-wins on the subscriber (one frame held, never a queue); the owner's
//! local subscription already paces them at the asked fps. Video goes through a queue
//! bounded in bytes on the subscriber ([`VideoOptions::max_queue_bytes`]) as well as on the
//! owner, skipping to the next keyframe when its consumer falls behind. (A skip on the
//! subscriber's side keeps an H.265 keyframe's RASL pictures, which the subscriber cannot
//! tell apart; the owner's own queue does drop them.)
//!
//! Hand-written on NATS core request-reply and subjects rather than JetStream consumers:
//! a live feed must not be stored, and interest has to end when the watcher goes away.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{HeaderMap, Message, RequestErrorKind, Subscriber};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::rpc::{self, error_headers, internal, reply_error};
use super::{wait_closed, Shared};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, StreamChoice, SubscribeOptions};
use crate::status::CameraState;
use crate::subscription::Subscription;
use crate::video::{
    Queue, VideoChunk, VideoChunkKind, VideoFormat, VideoOptions, VideoSubscription,
};

/// How often a subscriber renews its interest.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// An owner stops publishing a feed whose interest was not renewed for this long.
pub const FEED_TTL: Duration = Duration::from_secs(5);
/// Pause between attempts to find the camera's owner.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Room left in a message for the headers.
const HEADER_ROOM: usize = 1024;

const END: &str = "Camkit-End";
const PART: &str = "Camkit-Part";
const ERROR: &str = "Camkit-Error";
const STATE: &str = "Camkit-State";

/// A `Camkit-State` header's state, by its name (`streaming`).
fn parse_state(name: &str) -> Option<CameraState> {
    [
        CameraState::Connecting,
        CameraState::Streaming,
        CameraState::Reconnecting,
        CameraState::Stopped,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum FeedKind {
    #[serde(rename_all = "camelCase")]
    Frames {
        fps: f64,
        max_width: Option<u32>,
        quality: Option<u8>,
        #[serde(default)]
        stream: StreamChoice,
    },
    #[serde(rename_all = "camelCase")]
    Video {
        format: WireFormat,
        max_queue_bytes: usize,
        #[serde(default)]
        stream: StreamChoice,
    },
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum WireFormat {
    Fmp4,
    AnnexB,
}

impl FeedKind {
    fn frames(o: &SubscribeOptions) -> Self {
        FeedKind::Frames {
            fps: o.fps,
            max_width: o.max_width,
            quality: o.quality,
            stream: o.stream,
        }
    }

    fn video(o: &VideoOptions) -> Self {
        FeedKind::Video {
            format: match o.format {
                VideoFormat::Fmp4 => WireFormat::Fmp4,
                VideoFormat::AnnexB => WireFormat::AnnexB,
            },
            max_queue_bytes: o.max_queue_bytes,
            stream: o.stream,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedRequest {
    id: String,
    subject: String,
    #[serde(flatten)]
    kind: FeedKind,
}

fn random_sid() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

fn num(m: &Message, name: &str) -> i64 {
    header(m, name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// What the owner's local subscription runs.
enum LocalFeed {
    Frames(Box<Subscription>),
    Video(VideoSubscription),
}

// ------------------------------------------------------------------------------------
// The owner's side
// ------------------------------------------------------------------------------------

impl Shared {
    /// Answers a feed request: starts the local subscription and the task publishing it.
    pub(crate) async fn open_feed(self: &Arc<Self>, payload: &[u8]) -> Result<()> {
        let req: FeedRequest =
            serde_json::from_slice(payload).map_err(|e| Error::invalid("request", e))?;
        let base = format!("{}.feed.", self.timing.prefix);
        let tail = req.subject.strip_prefix(&base).unwrap_or("");
        let ok = tail.split('.').count() == 2
            && tail
                .split('.')
                .all(|t| !t.is_empty() && !t.contains(['*', '>', ' ']));
        if !ok {
            return Err(Error::invalid(
                "subject",
                format!("must be {base}<node>.<sid>"),
            ));
        }
        self.local_status(&req.id)?;
        let local = match req.kind {
            FeedKind::Frames {
                fps,
                max_width,
                quality,
                stream,
            } => {
                let o = SubscribeOptions {
                    fps,
                    max_width,
                    quality,
                    stream,
                };
                LocalFeed::Frames(Box::new(self.manager.subscribe(&req.id, o)?))
            }
            FeedKind::Video {
                format,
                max_queue_bytes,
                stream,
            } => {
                let o = VideoOptions {
                    format: match format {
                        WireFormat::Fmp4 => VideoFormat::Fmp4,
                        WireFormat::AnnexB => VideoFormat::AnnexB,
                    },
                    max_queue_bytes,
                    stream,
                };
                LocalFeed::Video(self.manager.subscribe_video(&req.id, o)?)
            }
        };
        let ctl = self
            .client
            .subscribe(format!("{}.*", req.subject))
            .await
            .map_err(|e| Error::new(ErrorKind::Unreachable, format!("NATS subscribe: {e}")))?;
        let me = self.clone();
        self.manager
            .runtime()
            .spawn(async move { me.run_feed(req, local, ctl).await });
        Ok(())
    }

    /// Keeps one feed going until it is stopped, expires, or the camera leaves this node.
    async fn run_feed(self: Arc<Self>, req: FeedRequest, local: LocalFeed, mut ctl: Subscriber) {
        let mut producer = {
            let me = self.clone();
            let subject = req.subject.clone();
            let id = req.id.clone();
            self.manager
                .runtime()
                .spawn(async move { me.produce(id, subject, local).await })
        };
        let mut closed = self.closed.subscribe();
        let mut last_renew = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut produced = false;
        let moved = loop {
            tokio::select! {
                _ = wait_closed(&mut closed) => break true,
                _ = &mut producer => {
                    produced = true;
                    break false;
                }
                m = ctl.next() => match m {
                    None => break false,
                    Some(m) => match m.subject.rsplit('.').next() {
                        Some("renew") => {
                            last_renew = Instant::now();
                            if let Some(reply) = m.reply {
                                let state = self
                                    .manager
                                    .status(&req.id)
                                    .map(|s| s.state)
                                    .unwrap_or(CameraState::Connecting);
                                let body = serde_json::to_vec(&state).unwrap_or_default();
                                let _ = self.client.publish(reply, Bytes::from(body)).await;
                            }
                        }
                        Some("stop") => break false,
                        _ => {}
                    },
                },
                _ = tick.tick() => {
                    if last_renew.elapsed() > FEED_TTL {
                        tracing::debug!(camera = %req.id, "feed not renewed; stopped");
                        break false;
                    }
                    if !self.owns(&req.id) {
                        break true;
                    }
                }
            }
        };
        if !produced {
            producer.abort();
            let _ = producer.await;
        }
        if moved {
            let mut h = HeaderMap::new();
            h.insert(END, "moved");
            let _ = self
                .client
                .publish_with_headers(req.subject.clone(), h, Bytes::new())
                .await;
        }
        let _ = ctl.unsubscribe().await;
    }

    /// Publishes what the local subscription yields; the end message when it ends.
    async fn produce(&self, id: String, subject: String, mut local: LocalFeed) {
        loop {
            let (headers, payload) = match &mut local {
                LocalFeed::Frames(sub) => match sub.next().await {
                    Some(Ok(f)) => {
                        let mut h = rpc::frame_headers(&f);
                        h.insert(STATE, sub.state().as_str());
                        (h, f.jpeg)
                    }
                    Some(Err(e)) => (error_headers(&e), Bytes::from(e.message().to_owned())),
                    None => break,
                },
                LocalFeed::Video(sub) => match sub.next().await {
                    Some(c) => {
                        let mut h = HeaderMap::new();
                        h.insert(
                            "Camkit-Kind",
                            match c.kind {
                                VideoChunkKind::Init => "init",
                                VideoChunkKind::Segment => "segment",
                                VideoChunkKind::AccessUnit => "au",
                            },
                        );
                        h.insert("Camkit-Keyframe", if c.keyframe { "1" } else { "0" });
                        h.insert("Camkit-Pts", c.pts_90k.to_string().as_str());
                        h.insert("Camkit-Codec", &*c.codec);
                        h.insert("Camkit-Skipped", sub.skipped().to_string().as_str());
                        (h, c.data)
                    }
                    None => break,
                },
            };
            if let Err(e) = self.publish_parts(&subject, headers, payload).await {
                tracing::debug!(camera = %id, error = %e, "feed publish failed");
            }
        }
        let mut h = HeaderMap::new();
        h.insert(END, "stopped");
        let mut body = Bytes::new();
        if let LocalFeed::Video(v) = &local {
            if let Some(e) = v.end_error() {
                h.insert(ERROR, e.kind().code());
                body = Bytes::from(e.message().to_owned());
            }
        }
        let _ = self.client.publish_with_headers(subject, h, body).await;
    }

    /// Publishes one item, in parts when it is larger than the server takes.
    async fn publish_parts(&self, subject: &str, headers: HeaderMap, payload: Bytes) -> Result<()> {
        let max = self.client.max_payload();
        let room = if max > 2 * HEADER_ROOM {
            max - HEADER_ROOM
        } else {
            (max / 2).max(1)
        };
        let publish_err =
            |e: async_nats::PublishError| Error::new(ErrorKind::Unreachable, format!("NATS: {e}"));
        if payload.len() <= room {
            return self
                .client
                .publish_with_headers(subject.to_owned(), headers, payload)
                .await
                .map_err(publish_err);
        }
        let n = payload.len().div_ceil(room);
        for k in 0..n {
            let mut h = if k == 0 {
                headers.clone()
            } else {
                HeaderMap::new()
            };
            h.insert(PART, format!("{k}/{n}").as_str());
            let part = payload.slice(k * room..((k + 1) * room).min(payload.len()));
            self.client
                .publish_with_headers(subject.to_owned(), h, part)
                .await
                .map_err(publish_err)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------
// The subscriber's side
// ------------------------------------------------------------------------------------

/// Joins the parts of items sent in parts.
#[derive(Default)]
struct Assembler {
    /// The first part's message, the bytes so far, the next part expected and the count.
    pending: Option<(Message, BytesMut, usize, usize)>,
}

impl Assembler {
    /// The whole item, once it is.
    fn push(&mut self, m: Message) -> Option<Message> {
        let Some(part) = header(&m, PART) else {
            self.pending = None;
            return Some(m);
        };
        let (k, n) = part.split_once('/')?;
        let (k, n): (usize, usize) = (k.parse().ok()?, n.parse().ok()?);
        if k == 0 {
            let mut buf = BytesMut::with_capacity(m.payload.len() * n);
            buf.extend_from_slice(&m.payload);
            self.pending = Some((m, buf, 1, n));
        } else {
            match &mut self.pending {
                Some((_, buf, next, total)) if *next == k && *total == n => {
                    buf.extend_from_slice(&m.payload);
                    *next += 1;
                }
                // A part went missing: the item is dropped whole.
                _ => {
                    self.pending = None;
                    return None;
                }
            }
        }
        if matches!(&self.pending, Some((_, _, next, total)) if next == total) {
            let (mut first, buf, _, _) = self.pending.take()?;
            first.payload = buf.freeze();
            return Some(first);
        }
        None
    }
}

/// How a remote feed ended.
#[derive(Clone, Debug)]
enum Ended {
    /// Look for the camera's owner again (it moved, stopped, or forgot the feed).
    Reroute,
    /// The stream cannot go on (video of a codec it cannot carry).
    Fatal(Error),
}

/// Where a remote feed's items go.
enum Sink {
    /// Latest wins: the newest frame (or encoding error) with a generation count.
    Frames(watch::Sender<(u64, Option<Result<Frame>>)>),
    Video(Arc<Queue>),
}

/// A feed from another node: the task receiving it and the one renewing the interest.
struct RemoteFeed {
    owner: String,
    tasks: [JoinHandle<()>; 2],
    ended: Arc<Mutex<Option<Ended>>>,
    done: watch::Receiver<bool>,
    state: Arc<Mutex<CameraState>>,
    skipped_remote: Arc<Mutex<u64>>,
    stop_subject: String,
    client: async_nats::Client,
    runtime: tokio::runtime::Handle,
}

impl Drop for RemoteFeed {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let client = self.client.clone();
        let subject = std::mem::take(&mut self.stop_subject);
        self.runtime.spawn(async move {
            let _ = client.publish(subject, Bytes::new()).await;
            let _ = client.flush().await;
        });
    }
}

impl RemoteFeed {
    /// Asks `owner` to feed `id`; the items go to `sink`.
    async fn open(
        shared: &Arc<Shared>,
        id: &str,
        owner: &str,
        kind: FeedKind,
        sink: Sink,
    ) -> Result<RemoteFeed> {
        let subject = format!(
            "{}.feed.{}.{}",
            shared.timing.prefix,
            shared.node,
            random_sid()
        );
        let data = shared
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| Error::new(ErrorKind::Unreachable, format!("NATS subscribe: {e}")))?;
        let req = FeedRequest {
            id: id.to_owned(),
            subject: subject.clone(),
            kind,
        };
        let body = Bytes::from(serde_json::to_vec(&req).map_err(internal)?);
        let fut = shared.client.request(shared.subject(owner, "feed"), body);
        let reply = match tokio::time::timeout(shared.timing.request_timeout, fut).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return Err(Error::new(
                    ErrorKind::Unreachable,
                    format!("node {owner:?} did not answer ({e})"),
                )
                .for_camera(id))
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("node {owner:?} did not answer in time"),
                )
                .for_camera(id))
            }
        };
        if let Some(e) = reply_error(&reply) {
            return Err(e.for_camera(id));
        }
        let ended = Arc::new(Mutex::new(None));
        let (done_tx, done) = watch::channel(false);
        let state = Arc::new(Mutex::new(CameraState::Connecting));
        let skipped_remote = Arc::new(Mutex::new(0));
        let (lost_tx, lost_rx) = watch::channel(false);
        let runtime = shared.manager.runtime().clone();
        let receive = runtime.spawn(receive(
            shared.clone(),
            data,
            sink,
            ended.clone(),
            done_tx,
            lost_rx,
            state.clone(),
            skipped_remote.clone(),
        ));
        let renew = runtime.spawn(renew(
            shared.clone(),
            id.to_owned(),
            owner.to_owned(),
            format!("{subject}.renew"),
            lost_tx,
            state.clone(),
        ));
        Ok(RemoteFeed {
            owner: owner.to_owned(),
            tasks: [receive, renew],
            ended,
            done,
            state,
            skipped_remote,
            stop_subject: format!("{subject}.stop"),
            client: shared.client.clone(),
            runtime,
        })
    }

    /// Resolves once the feed has ended.
    async fn wait_done(&mut self) {
        let _ = self.done.wait_for(|d| *d).await;
    }

    fn ended(&self) -> Ended {
        self.ended.lock().clone().unwrap_or(Ended::Reroute)
    }
}

/// Receives a feed's messages into its sink until it ends.
#[allow(clippy::too_many_arguments)]
async fn receive(
    shared: Arc<Shared>,
    mut data: Subscriber,
    sink: Sink,
    ended: Arc<Mutex<Option<Ended>>>,
    done: watch::Sender<bool>,
    mut lost: watch::Receiver<bool>,
    state: Arc<Mutex<CameraState>>,
    skipped_remote: Arc<Mutex<u64>>,
) {
    let mut closed = shared.closed.subscribe();
    let mut parts = Assembler::default();
    let mut generation = 0u64;
    let mut init: Option<VideoChunk> = None;
    let end = loop {
        let m = tokio::select! {
            _ = wait_closed(&mut closed) => break Ended::Reroute,
            _ = lost.wait_for(|l| *l) => break Ended::Reroute,
            m = data.next() => match m {
                Some(m) => m,
                None => break Ended::Reroute,
            },
        };
        let Some(m) = parts.push(m) else { continue };
        if header(&m, END).is_some() {
            break match reply_error(&m) {
                Some(e) => Ended::Fatal(e),
                None => Ended::Reroute,
            };
        }
        match &sink {
            Sink::Frames(tx) => {
                let item = match reply_error(&m) {
                    Some(e) => Err(e),
                    None => {
                        if let Some(s) = header(&m, STATE).and_then(parse_state) {
                            *state.lock() = s;
                        }
                        Ok(rpc::frame_from(m))
                    }
                };
                generation += 1;
                tx.send_replace((generation, Some(item)));
            }
            Sink::Video(q) => {
                let kind = match header(&m, "Camkit-Kind") {
                    Some("init") => VideoChunkKind::Init,
                    Some("segment") => VideoChunkKind::Segment,
                    Some("au") => VideoChunkKind::AccessUnit,
                    _ => continue,
                };
                *skipped_remote.lock() = num(&m, "Camkit-Skipped") as u64;
                let chunk = VideoChunk {
                    kind,
                    keyframe: header(&m, "Camkit-Keyframe") == Some("1"),
                    pts_90k: num(&m, "Camkit-Pts"),
                    codec: header(&m, "Camkit-Codec").unwrap_or("").into(),
                    received_at: std::time::Instant::now(),
                    data: m.payload,
                };
                if kind == VideoChunkKind::Init {
                    init = Some(chunk.clone());
                }
                if !q.offer(chunk, init.as_ref(), false) {
                    break Ended::Reroute;
                }
            }
        }
    };
    let _ = data.unsubscribe().await;
    *ended.lock() = Some(end);
    if let Sink::Video(q) = &sink {
        q.close();
    }
    done.send_replace(true);
}

/// Renews the interest every second; says `lost` when the owner forgot the feed or the
/// camera has another owner now.
async fn renew(
    shared: Arc<Shared>,
    id: String,
    owner: String,
    subject: String,
    lost: watch::Sender<bool>,
    state: Arc<Mutex<CameraState>>,
) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    loop {
        tick.tick().await;
        if let Some((h, _)) = shared.holder(&id) {
            if h.node != owner {
                break;
            }
        }
        let fut = shared.client.request(subject.clone(), Bytes::new());
        match tokio::time::timeout(RENEW_EVERY * 2, fut).await {
            Ok(Ok(m)) => {
                last_ok = Instant::now();
                if let Ok(s) = serde_json::from_slice::<CameraState>(&m.payload) {
                    *state.lock() = s;
                }
            }
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => break,
            _ => {
                if last_ok.elapsed() > FEED_TTL {
                    break;
                }
            }
        }
    }
    lost.send_replace(true);
}

/// Finds the camera's owner and opens a source there with `open` (`None`: this node owns
/// it), trying again every [`RETRY_EVERY`] while there is no owner or it does not answer.
/// `Err(None)` once the camera left the cluster or this node left it; `Err(Some(e))` when
/// the owner says the stream cannot be had at all (`UnsupportedCodec`: video of an MJPEG
/// camera).
async fn find_owner<S, F, Fut>(shared: &Shared, id: &str, mut open: F) -> Result<S, Option<Error>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<S>>,
{
    let mut closed = shared.closed.subscribe();
    loop {
        if *closed.borrow() {
            return Err(None);
        }
        match shared.route(id) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(None),
            Err(_) => {}
            Ok(owner) => match open(owner).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == ErrorKind::UnsupportedCodec => return Err(Some(e)),
                Err(e) => tracing::debug!(camera = %id, error = %e, "feed: retrying"),
            },
        }
        tokio::select! {
            _ = wait_closed(&mut closed) => return Err(None),
            () = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}

/// `NOT_FOUND` unless the camera is in the cluster (with or without an owner right now).
pub(super) fn known(shared: &Shared, id: &str) -> Result<()> {
    match shared.route(id) {
        Err(e) if e.kind() == ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What a frame subscription reads from now.
enum FrameSource {
    Local(Box<Subscription>),
    Remote(
        Box<RemoteFeed>,
        watch::Receiver<(u64, Option<Result<Frame>>)>,
    ),
    /// Looking for the owner.
    None,
}

/// A subscription to one camera's frames from any node of the cluster: latest wins, at
/// no more than the asked fps (see [`crate::Subscription`]). Dropping it unsubscribes, on
/// the owner too.
pub struct ClusterSubscription {
    shared: Arc<Shared>,
    id: String,
    opts: SubscribeOptions,
    source: FrameSource,
    last_generation: u64,
}

impl ClusterSubscription {
    /// Checks the id, the options and that the camera is in the cluster; the owner is
    /// asked at the first [`next`](Self::next).
    pub(crate) fn deferred(shared: Arc<Shared>, id: &str, opts: SubscribeOptions) -> Result<Self> {
        crate::config::check_id(id)?;
        opts.validate()?;
        known(&shared, id)?;
        Ok(ClusterSubscription {
            shared,
            id: id.to_owned(),
            opts,
            source: FrameSource::None,
            last_generation: 0,
        })
    }

    pub(crate) async fn open(
        shared: Arc<Shared>,
        id: &str,
        opts: SubscribeOptions,
    ) -> Result<Self> {
        let mut sub = Self::deferred(shared, id, opts)?;
        // No owner right now: `next` waits for one.
        if let Ok(owner) = sub.shared.route(id) {
            sub.source = sub.open_source(owner).await?;
        }
        Ok(sub)
    }

    async fn open_source(&self, owner: Option<String>) -> Result<FrameSource> {
        match owner {
            None => Ok(FrameSource::Local(Box::new(
                self.shared.manager.subscribe(&self.id, self.opts)?,
            ))),
            Some(node) => {
                let (tx, rx) = watch::channel((0, None));
                let feed = RemoteFeed::open(
                    &self.shared,
                    &self.id,
                    &node,
                    FeedKind::frames(&self.opts),
                    Sink::Frames(tx),
                )
                .await?;
                Ok(FrameSource::Remote(Box::new(feed), rx))
            }
        }
    }

    /// Finds the camera's owner again; `false` once the camera left the cluster or the
    /// cluster was left.
    async fn reroute(&mut self) -> bool {
        self.source = FrameSource::None;
        self.last_generation = 0;
        let this = &*self;
        match find_owner(&this.shared, &this.id, |owner| this.open_source(owner)).await {
            Ok(s) => {
                self.source = s;
                true
            }
            Err(_) => false,
        }
    }

    /// The camera this subscription follows.
    pub fn camera_id(&self) -> &str {
        &self.id
    }

    /// The node serving the subscription now (this one's id when it owns the camera),
    /// `None` while the camera has no owner.
    pub fn serving_node(&self) -> Option<&str> {
        match &self.source {
            FrameSource::Local(_) => Some(&self.shared.node),
            FrameSource::Remote(f, _) => Some(&f.owner),
            FrameSource::None => None,
        }
    }

    /// The camera's state on its owner, as last heard (`Connecting` while it moves).
    pub fn state(&self) -> CameraState {
        match &self.source {
            FrameSource::Local(s) => s.state(),
            FrameSource::Remote(f, _) => *f.state.lock(),
            FrameSource::None => CameraState::Connecting,
        }
    }

    /// The next frame, newer than the last one returned, no sooner than 1/fps after it.
    ///
    /// Waits while the camera reconnects or moves to another node. Returns `None` once
    /// the camera was disconnected from the cluster or this node left it; `Some(Err(_))`
    /// when a picture could not be encoded (the subscription stays usable).
    pub async fn next(&mut self) -> Option<Result<Frame>> {
        let mut closed = self.shared.closed.subscribe();
        loop {
            if *closed.borrow() {
                return None;
            }
            match &mut self.source {
                FrameSource::Local(sub) => {
                    let got = tokio::select! {
                        _ = wait_closed(&mut closed) => return None,
                        f = sub.next() => f,
                    };
                    if got.is_some() {
                        return got;
                    }
                }
                FrameSource::Remote(feed, rx) => {
                    let got = {
                        let v = rx.borrow_and_update();
                        match &v.1 {
                            Some(item) if v.0 > self.last_generation => Some((v.0, item.clone())),
                            _ => None,
                        }
                    };
                    if let Some((generation, item)) = got {
                        self.last_generation = generation;
                        return Some(item);
                    }
                    let changed = tokio::select! {
                        _ = wait_closed(&mut closed) => return None,
                        r = rx.changed() => r.is_ok(),
                        _ = feed.wait_done() => false,
                    };
                    if changed {
                        continue;
                    }
                    // A frame that came just before the end is still the newest.
                    if rx.borrow().0 > self.last_generation {
                        continue;
                    }
                }
                FrameSource::None => {}
            }
            if !self.reroute().await {
                return None;
            }
        }
    }

    /// Turns the subscription into a `futures::Stream` of frames.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Frame>> + Send {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|f| (f, s)) })
    }
}

impl std::fmt::Debug for ClusterSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSubscription")
            .field("camera", &self.id)
            .field("node", &self.serving_node())
            .finish()
    }
}

/// What a video subscription reads from now.
enum VideoSource {
    Local(VideoSubscription),
    Remote(Box<RemoteFeed>, Arc<Queue>),
    None,
}

/// Live video of one camera from any node of the cluster (see
/// [`crate::VideoSubscription`]): an init segment first, and again after the camera
/// moved to another node. Dropping it unsubscribes, on the owner too.
pub struct ClusterVideoSubscription {
    shared: Arc<Shared>,
    id: String,
    opts: VideoOptions,
    source: VideoSource,
    /// Chunks skipped by the sources before the current one.
    skipped_before: u64,
    end_error: Option<Error>,
}

impl ClusterVideoSubscription {
    /// As [`ClusterSubscription::deferred`].
    pub(crate) fn deferred(shared: Arc<Shared>, id: &str, opts: VideoOptions) -> Result<Self> {
        crate::config::check_id(id)?;
        opts.validate()?;
        known(&shared, id)?;
        Ok(ClusterVideoSubscription {
            shared,
            id: id.to_owned(),
            opts,
            source: VideoSource::None,
            skipped_before: 0,
            end_error: None,
        })
    }

    pub(crate) async fn open(shared: Arc<Shared>, id: &str, opts: VideoOptions) -> Result<Self> {
        let mut sub = Self::deferred(shared, id, opts)?;
        if let Ok(owner) = sub.shared.route(id) {
            sub.source = sub.open_source(owner).await?;
        }
        Ok(sub)
    }

    async fn open_source(&self, owner: Option<String>) -> Result<VideoSource> {
        match owner {
            None => Ok(VideoSource::Local(
                self.shared.manager.subscribe_video(&self.id, self.opts)?,
            )),
            Some(node) => {
                let q = Queue::new(self.opts.max_queue_bytes);
                let feed = RemoteFeed::open(
                    &self.shared,
                    &self.id,
                    &node,
                    FeedKind::video(&self.opts),
                    Sink::Video(q.clone()),
                )
                .await?;
                Ok(VideoSource::Remote(Box::new(feed), q))
            }
        }
    }

    fn source_skipped(&self) -> u64 {
        match &self.source {
            VideoSource::Local(v) => v.skipped(),
            VideoSource::Remote(f, q) => *f.skipped_remote.lock() + q.skipped(),
            VideoSource::None => 0,
        }
    }

    /// Finds the camera's owner again; `false` once the stream ended for good.
    async fn reroute(&mut self) -> bool {
        self.skipped_before += self.source_skipped();
        self.source = VideoSource::None;
        let this = &*self;
        match find_owner(&this.shared, &this.id, |owner| this.open_source(owner)).await {
            Ok(s) => {
                self.source = s;
                true
            }
            Err(end) => {
                self.end_error = end;
                false
            }
        }
    }

    /// The camera this subscription follows.
    pub fn camera_id(&self) -> &str {
        &self.id
    }

    /// The node serving the subscription now (this one's id when it owns the camera),
    /// `None` while the camera has no owner.
    pub fn serving_node(&self) -> Option<&str> {
        match &self.source {
            VideoSource::Local(_) => Some(&self.shared.node),
            VideoSource::Remote(f, _) => Some(&f.owner),
            VideoSource::None => None,
        }
    }

    /// The next chunk. Waits while the camera reconnects or moves to another node;
    /// `None` once the camera was disconnected from the cluster, this node left it, or
    /// the stream cannot go on (see [`end_error`](Self::end_error)).
    pub async fn next(&mut self) -> Option<VideoChunk> {
        let mut closed = self.shared.closed.subscribe();
        loop {
            if *closed.borrow() || self.end_error.is_some() {
                return None;
            }
            match &mut self.source {
                VideoSource::Local(v) => {
                    let got = tokio::select! {
                        _ = wait_closed(&mut closed) => return None,
                        c = v.next() => c,
                    };
                    if got.is_some() {
                        return got;
                    }
                    if let Some(e) = v.end_error() {
                        self.end_error = Some(e);
                        return None;
                    }
                }
                VideoSource::Remote(feed, q) => {
                    let got = tokio::select! {
                        _ = wait_closed(&mut closed) => return None,
                        c = futures::future::poll_fn(|cx| q.poll_next(cx)) => c,
                    };
                    if got.is_some() {
                        return got;
                    }
                    if let Ended::Fatal(e) = feed.ended() {
                        self.end_error = Some(e);
                        return None;
                    }
                }
                VideoSource::None => {}
            }
            if !self.reroute().await {
                return None;
            }
        }
    }

    /// Why the subscription ended, when it was not the camera's disconnect: an
    /// [`ErrorKind::UnsupportedCodec`] error when the camera came back with video the
    /// stream cannot carry (MJPEG).
    pub fn end_error(&self) -> Option<Error> {
        self.end_error.clone()
    }

    /// Chunks skipped so far because this consumer (or the link from the owner) was
    /// behind.
    pub fn skipped(&self) -> u64 {
        self.skipped_before + self.source_skipped()
    }

    /// Bytes waiting in this subscription's queue.
    pub fn queued_bytes(&self) -> usize {
        match &self.source {
            VideoSource::Local(v) => v.queued_bytes(),
            VideoSource::Remote(_, q) => q.queued_bytes(),
            VideoSource::None => 0,
        }
    }
}

impl std::fmt::Debug for ClusterVideoSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterVideoSubscription")
            .field("camera", &self.id)
            .field("node", &self.serving_node())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(headers: &[(&str, &str)], payload: &'static [u8]) -> Message {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, *v);
        }
        Message {
            subject: "s".into(),
            reply: None,
            payload: Bytes::from_static(payload),
            headers: Some(h),
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn parts_are_joined_and_an_item_missing_one_is_dropped() {
        let mut a = Assembler::default();
        assert!(a
            .push(msg(&[(PART, "0/3"), ("Camkit-Seq", "7")], b"ab"))
            .is_none());
        assert!(a.push(msg(&[(PART, "1/3")], b"cd")).is_none());
        let m = a.push(msg(&[(PART, "2/3")], b"e")).unwrap();
        assert_eq!(&m.payload[..], b"abcde");
        assert_eq!(header(&m, "Camkit-Seq"), Some("7"));
        // Part 1 lost: the item goes, the next whole one passes.
        assert!(a.push(msg(&[(PART, "0/3")], b"ab")).is_none());
        assert!(a.push(msg(&[(PART, "2/3")], b"e")).is_none());
        assert_eq!(&a.push(msg(&[], b"whole")).unwrap().payload[..], b"whole");
    }

    #[test]
    fn states_read_back_by_name() {
        for s in [
            CameraState::Connecting,
            CameraState::Streaming,
            CameraState::Reconnecting,
            CameraState::Stopped,
        ] {
            assert_eq!(parse_state(s.as_str()), Some(s));
        }
        assert_eq!(parse_state("asleep"), None);
    }

    #[test]
    fn feed_requests_read_back() {
        let req = FeedRequest {
            id: "cam".into(),
            subject: "camkit.feed.a.0123".into(),
            kind: FeedKind::video(&VideoOptions::annex_b()),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains("\"kind\":\"video\""), "{json}");
        assert!(json.contains("\"format\":\"annexB\""), "{json}");
        let back: FeedRequest = serde_json::from_str(&json).unwrap();
        assert!(matches!(
            back.kind,
            FeedKind::Video {
                format: WireFormat::AnnexB,
                ..
            }
        ));
        let f: FeedRequest = serde_json::from_str(
            r#"{"id":"c","subject":"camkit.feed.a.b","kind":"frames","fps":5,"maxWidth":320}"#,
        )
        .unwrap();
        assert!(matches!(
            f.kind,
            FeedKind::Frames {
                max_width: Some(320),
                stream: StreamChoice::Auto,
                ..
            }
        ));
    }
}
