//! Live video as the camera sent it: `cameras.subscribeVideo()` and its `VideoSubscription`.
//!
//! Each chunk of camkit's video subscription (see `camkit::video`: an fMP4 init segment,
//! then one media segment per frame, or Annex B access units) reaches the JS callback as
//! a `Buffer` over camkit's own bytes, shared by every subscriber of the camera (no copy:
//! see [`crate::frame`]), with a descriptor: its kind, whether it is a keyframe, the codec
//! string and the MIME type a `MediaSource` or an HTTP response names.
//!
//! Unlike frames, video is not latest-wins: every chunk counts (a media segment needs the
//! ones before it back to the keyframe). Delivery keeps one chunk in flight, as frame
//! subscriptions do (the next one is taken from camkit's queue once the callback has
//! returned), so chunks never pile up on the JS side. What the callback cannot take waits
//! in camkit's per-subscriber queue, bounded by `maxQueueBytes`; when that is full camkit
//! skips up to the next keyframe. `pause()` stops taking chunks from that queue (a socket
//! whose `write()` returned `false` calls it, and `resume()` on `'drain'`), which is how a
//! slow HTTP or WebSocket client is held to the queue's bound instead of growing Node's
//! memory. The final-call and gate rules are those of frame subscriptions
//! ([`crate::subscription`]), and so is the one class for both sources: the same
//! `VideoSubscription` serves `CameraManager.subscribeVideo()` and
//! `Cluster.subscribeVideo()` ([`VideoSource`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use camkit::{Error, ErrorKind, VideoChunk, VideoChunkKind};
use napi::bindgen_prelude::{Buffer, FromNapiValue, ToNapiValue, Unknown};
use napi::threadsafe_function::UnknownReturnValue;
use napi::{sys, Env};
use napi_derive::napi;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::delivery::{call_and_wait, call_err, Call};
use crate::error::{convert, reject, Code};
use crate::frame::bytes_buffer;
use crate::manager::{function_arg, is_nullish, CameraManager};
use crate::subscription::{gate, Gate};

/// Chunks waiting for the JS thread, per subscription: one in flight (module doc).
const CHUNK_QUEUE: usize = 1;

/// `callback(err, chunk)`: error-first, weak, bounded.
pub type VideoCallback = napi::threadsafe_function::ThreadsafeFunction<
    JsVideoChunk,
    UnknownReturnValue,
    JsVideoChunk,
    Code,
    true,
    true,
    CHUNK_QUEUE,
>;

/// Options of `cameras.subscribeVideo()`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct VideoOptions {
    /// `'fmp4'` (default): an init segment, then one media segment per frame, for Media
    /// Source Extensions, `video/mp4` HTTP responses and players. `'annexb'`: H.264 or H.265
    /// access units with start codes (parameter sets before each keyframe), for decoders
    /// such as WebCodecs or ffmpeg.
    #[napi(ts_type = "VideoFormat")]
    pub format: Option<String>,
    /// Bytes the callback may fall behind before camkit skips to the next keyframe (at
    /// least 65536; default 4 MiB).
    pub max_queue_bytes: Option<u32>,
    /// Which stream of a camera with a `subStream`: `'sub'` for the sub-stream when it
    /// streams at subscription time (else the main stream, which the subscription then
    /// keeps); `'main'` and `'auto'` (default) for the main stream.
    #[napi(ts_type = "StreamChoice")]
    pub stream: Option<String>,
}

/// What a video subscription yields.
#[napi(string_enum = "lowercase")]
pub enum VideoFormat {
    /// Fragmented MP4.
    Fmp4,
    /// H.264 Annex B access units.
    Annexb,
}

impl VideoOptions {
    /// camkit's options from the optional `options` argument.
    pub(crate) fn from_arg(options: Option<Unknown>) -> camkit::Result<camkit::VideoOptions> {
        match options {
            Some(o) if !is_nullish(&o) => convert::<VideoOptions>(o, "options")?.into_core(),
            _ => VideoOptions::default().into_core(),
        }
    }

    fn into_core(self) -> camkit::Result<camkit::VideoOptions> {
        let mut o = camkit::VideoOptions::default();
        match self.format.as_deref() {
            None | Some("fmp4") => {}
            Some("annexb") => o.format = camkit::VideoFormat::AnnexB,
            Some(other) => {
                return Err(Error::invalid(
                    "format",
                    format!("{other:?} is not one of 'fmp4', 'annexb'"),
                ))
            }
        }
        if let Some(n) = self.max_queue_bytes {
            o.max_queue_bytes = n as usize;
        }
        if let Some(stream) = self.stream {
            o.stream = stream.parse()?;
        }
        o.validate()?;
        Ok(o)
    }
}

/// One piece of a video subscription, as the callback gets it.
#[napi(object, object_from_js = false, js_name = "VideoChunk")]
pub struct VideoChunkObject {
    /// `'init'`: `ftyp` + `moov`, first and again whenever the stream's parameters change
    /// (append it before the media after it). `'media'`: `moof` + `mdat` of one frame.
    /// `'accessUnit'`: one Annex B access unit (format `'annexb'`).
    #[napi(ts_type = "'init' | 'media' | 'accessUnit'")]
    pub kind: String,
    /// The bytes: camkit's own, shared with every other subscriber. Read-only.
    pub data: Buffer,
    /// A decoder can start here (always false for init segments).
    pub keyframe: bool,
    /// The RFC 6381 codec string, e.g. `'avc1.640028'` or `'hvc1.1.6.L93.B0'`.
    pub codec: String,
    /// `video/mp4; codecs="…"`, as `MediaSource.isTypeSupported()` and `addSourceBuffer()`
    /// take it.
    pub mime_type: String,
    /// Presentation time on the stream's 90 kHz timeline (0 for init segments).
    #[napi(js_name = "pts90k")]
    pub pts90k: f64,
    /// Milliseconds since camkit received this frame from the camera (for an init
    /// segment: its keyframe), measured as the chunk is handed to the callback. Frames
    /// replayed to a new subscriber (the current GOP) are as old as they are.
    pub age_ms: f64,
}

/// A camkit video chunk on its way to JS, converted on the JS thread.
pub struct JsVideoChunk(pub VideoChunk);

impl ToNapiValue for JsVideoChunk {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let c = val.0;
        let kind = match c.kind {
            VideoChunkKind::Init => "init",
            VideoChunkKind::Segment => "media",
            VideoChunkKind::AccessUnit => "accessUnit",
        };
        let mime_type = c.mime_type();
        // SAFETY: the caller's env, on the JS thread.
        let data = unsafe { bytes_buffer(env, c.data)? };
        let obj = VideoChunkObject {
            kind: kind.to_owned(),
            // SAFETY: a Buffer just created in this call's scope, on the JS thread.
            data: unsafe { Buffer::from_napi_value(env, data)? },
            keyframe: c.keyframe,
            codec: c.codec.to_string(),
            mime_type,
            pts90k: c.pts_90k as f64,
            age_ms: c.received_at.elapsed().as_secs_f64() * 1000.0,
        };
        // SAFETY: the caller's env, on the JS thread.
        unsafe { VideoChunkObject::to_napi_value(env, obj) }
    }
}

/// Where a video subscription's chunks come from: this process's cameras, or a camera of
/// the cluster wherever it runs.
pub enum VideoSource {
    Local(camkit::VideoSubscription),
    #[cfg(feature = "cluster")]
    Cluster(Box<camkit::cluster::ClusterVideoSubscription>),
}

impl VideoSource {
    async fn next(&mut self) -> Option<VideoChunk> {
        match self {
            VideoSource::Local(s) => s.next().await,
            #[cfg(feature = "cluster")]
            VideoSource::Cluster(s) => s.next().await,
        }
    }

    fn skipped(&self) -> u64 {
        match self {
            VideoSource::Local(s) => s.skipped(),
            #[cfg(feature = "cluster")]
            VideoSource::Cluster(s) => s.skipped(),
        }
    }

    /// The final error, once `next` returned `None`.
    fn end_error(&self, id: &str) -> Error {
        let (e, what) = match self {
            VideoSource::Local(s) => (s.end_error(), "was disconnected or its manager closed"),
            #[cfg(feature = "cluster")]
            VideoSource::Cluster(s) => (
                s.end_error(),
                "was disconnected from the cluster or this node left it",
            ),
        };
        // A camera that came back with video the stream cannot carry says so.
        e.unwrap_or_else(|| {
            Error::new(
                ErrorKind::Closed,
                format!("camera {id:?} {what}; the video subscription has ended"),
            )
        })
    }
}

impl From<camkit::VideoSubscription> for VideoSource {
    fn from(s: camkit::VideoSubscription) -> Self {
        VideoSource::Local(s)
    }
}

#[derive(Default)]
struct Counters {
    active: AtomicBool,
    delivered: AtomicU64,
    skipped: AtomicU64,
}

/// A live video subscription, returned by `CameraManager.subscribeVideo()` and
/// `Cluster.subscribeVideo()`.
#[napi]
pub struct VideoSubscription {
    camera_id: String,
    task: AbortHandle,
    counters: Arc<Counters>,
    gate: Gate,
    /// Shared with the task, so that garbage collection of this object (which does not
    /// unsubscribe) leaves the task as it is.
    paused: Arc<watch::Sender<bool>>,
}

impl VideoSubscription {
    /// Starts delivering `sub`'s chunks to `callback` (made by [`gate`], with its `gate`)
    /// from a task on `runtime`.
    pub fn start(
        runtime: &Handle,
        camera_id: String,
        sub: impl Into<VideoSource>,
        (callback, gate): (VideoCallback, Gate),
    ) -> Self {
        let mut sub = sub.into();
        let counters = Arc::new(Counters::default());
        counters.active.store(true, Ordering::Release);
        let (paused, mut paused_rx) = watch::channel(false);
        let paused = Arc::new(paused);
        let keep = Arc::clone(&paused);
        let c = Arc::clone(&counters);
        let id = camera_id.clone();
        let task = runtime.spawn(async move {
            let _keep = keep;
            loop {
                // Never an error: this task holds a sender.
                let _ = paused_rx.wait_for(|p| !*p).await;
                let Some(chunk) = sub.next().await else { break };
                // Paused while waiting for it: it is held here (one chunk) until resume().
                let _ = paused_rx.wait_for(|p| !*p).await;
                c.skipped.store(sub.skipped(), Ordering::Relaxed);
                match call_and_wait(&callback, JsVideoChunk(chunk)).await {
                    Call::Returned(()) | Call::Threw(_) => {}
                    // One in flight, so the queue is never full; were it, waiting for
                    // room keeps every chunk.
                    Call::Full => {
                        tracing::warn!("camkit video delivery found the JS queue full");
                        return c.active.store(false, Ordering::Release);
                    }
                    Call::Gone => return c.active.store(false, Ordering::Release),
                }
                c.delivered.fetch_add(1, Ordering::Relaxed);
            }
            c.active.store(false, Ordering::Release);
            let end = sub.end_error(&id);
            drop(sub);
            call_err(&callback, &end).await;
        });
        VideoSubscription {
            camera_id,
            task: task.abort_handle(),
            counters,
            gate,
            paused,
        }
    }
}

#[napi]
impl VideoSubscription {
    /// Stops the deliveries: no callback runs after this returns, not even one already
    /// queued (nor the final `CLOSED` one). Idempotent.
    #[napi]
    pub fn unsubscribe(&self) {
        self.gate.store(true, Ordering::Release);
        self.task.abort();
        self.counters.active.store(false, Ordering::Release);
    }

    /// Stops taking chunks until `resume()`: they wait in camkit's queue, which skips to
    /// the next keyframe once `maxQueueBytes` are waiting. For a consumer that is backed
    /// up (a socket whose `write()` returned false). No callback runs from this call to
    /// `resume()` (a chunk camkit had already handed over is held until then).
    #[napi]
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Takes chunks again after `pause()`.
    #[napi]
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Whether `pause()` is in effect.
    #[napi(getter)]
    pub fn paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// The camera this subscription follows.
    #[napi(getter)]
    pub fn camera_id(&self) -> String {
        self.camera_id.clone()
    }

    /// Whether chunks are still being delivered (false after `unsubscribe()`, or once the
    /// camera is disconnected or the manager closed).
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.counters.active.load(Ordering::Acquire) && !self.task.is_finished()
    }

    /// Chunks handed to the callback.
    #[napi(getter)]
    pub fn delivered(&self) -> f64 {
        self.counters.delivered.load(Ordering::Relaxed) as f64
    }

    /// Chunks camkit skipped because this subscriber was behind by more than
    /// `maxQueueBytes` (it then resumes at the next keyframe).
    #[napi(getter)]
    pub fn skipped(&self) -> f64 {
        self.counters.skipped.load(Ordering::Relaxed) as f64
    }
}

#[napi]
impl CameraManager {
    /// Calls `callback(null, chunk)` with a camera's live video as the camera sent it,
    /// without decoding: by default fragmented MP4 (an `'init'` chunk, then one `'media'`
    /// chunk per frame, starting at the last keyframe), until `unsubscribe()`.
    ///
    /// Watching video does not make the camera decode. A callback that falls behind by
    /// more than `maxQueueBytes` loses frames up to the next keyframe (`skipped` counts
    /// them); `pause()` / `resume()` hold delivery for a backed-up consumer. When the
    /// camera is disconnected or the manager closed, the callback gets one last call with
    /// an error whose code is `'CLOSED'` (`'UNSUPPORTED_CODEC'` when the camera came back
    /// sending MJPEG). H.264 and H.265 cameras are carried. Throws `NOT_FOUND`,
    /// `INVALID_INPUT` (naming the field), `UNSUPPORTED_CODEC` for an MJPEG camera.
    /// Dropping the returned object does not unsubscribe.
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
        let opts = VideoOptions::from_arg(options).map_err(|e| reject(env, &e))?;
        let callback = function_arg(callback).map_err(|e| reject(env, &e))?;
        let core = self.core();
        let sub = core
            .subscribe_video(&id, opts)
            .map_err(|e| reject(env, &e))?;
        let callback = gate(env, callback).map_err(|e| reject(env, &e))?;
        Ok(VideoSubscription::start(core.runtime(), id, sub, callback))
    }
}
