//! Moondream (visual reasoning) about a manager's cameras: `cameras.moondream(options)`
//! returns a `Moondream` object whose calls ask about a camera's current picture.
//!
//! - `query`, `caption`, `detect`, `point` return promises of typed results carrying the
//!   picture they are about (`seq`, `capturedAt`, `width`, `height`).
//! - `queryStream` / `captionStream` hand each piece of the answer to `onChunk` as it
//!   arrives and resolve with the whole answer. One piece is in flight at a time: the next
//!   is handed over only once `onChunk` has returned, so pieces arrive in order and all of
//!   them before the promise settles. `onChunk` returning `false` abandons the answer (the
//!   promise resolves with the text so far); `onChunk` throwing abandons it too, and the
//!   promise rejects with what it threw.
//! - `watch` asks at an interval and calls `callback(err, event)` with answers that change,
//!   through a weak thread-safe function (never keeps the process alive), one call in
//!   flight at a time.
//!
//! Errors carry camkit's `code`: `RATE_LIMITED`, `SERVICE_ERROR`, `UNAUTHORIZED`, `TIMEOUT`,
//! `UNREACHABLE`, `NOT_FOUND`, `NO_FRAME`, `INVALID_INPUT` (naming the field) … The API key
//! never appears in a message.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use camkit::moondream::{
    CameraAnswer, CaptionLength as CoreLength, MoondreamCameras, MoondreamConfig, TextStream,
    WatchHandle, WatchOptions as CoreWatchOptions,
};
use camkit::{Error, ErrorKind};
use futures::StreamExt;
use napi::bindgen_prelude::{FromNapiValue, PromiseRaw, Unknown};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, Status, ValueType};
use napi_derive::napi;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{self, convert, to_napi, Code};
use crate::manager::CameraManager;
use crate::promise;
use crate::subscription::{gate, Gate};

/// Watch events waiting for the JS thread (one in flight: see the module doc).
const WATCH_QUEUE: usize = 1;
/// Stream pieces waiting for the JS thread (one in flight).
const CHUNK_QUEUE: usize = 1;

/// `callback(err, event)` of a watch: error-first, weak, bounded.
type WatchCallback =
    ThreadsafeFunction<WatchEvent, UnknownReturnValue, WatchEvent, Code, true, true, WATCH_QUEUE>;
/// `onChunk(text)` of a streamed answer: weak, bounded; its return value is read.
type ChunkCallback =
    ThreadsafeFunction<String, ChunkReply, String, Status, false, true, CHUNK_QUEUE>;

/// Where Moondream is and how to talk to it. Every field is optional: without `baseUrl`
/// the Moondream cloud is used, which needs `apiKey` (or `MOONDREAM_API_KEY` in the
/// environment); a Moondream Station (`baseUrl: 'http://localhost:2020/v1'`) needs none.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct MoondreamOptions {
    /// The cloud API key. Default: the `MOONDREAM_API_KEY` environment variable. Never
    /// shown in any message.
    pub api_key: Option<String>,
    /// The API's base URL up to and including `/v1`; default the cloud
    /// (`https://api.moondream.ai/v1`).
    pub base_url: Option<String>,
    /// Limit for one attempt (connect, send, receive the answer) in ms, 100–600000;
    /// default 30000.
    pub timeout_ms: Option<u32>,
    /// Retries after 429 and 5xx answers, 0–10; default 2.
    pub max_retries: Option<u32>,
    /// Pictures are sent with their long side scaled down to at most this, 64–4096;
    /// default 768.
    pub max_image_side: Option<u32>,
}

impl MoondreamOptions {
    fn into_core(self) -> MoondreamConfig {
        let d = MoondreamConfig::default();
        MoondreamConfig {
            base_url: self.base_url.unwrap_or(d.base_url),
            api_key: self.api_key,
            timeout: self
                .timeout_ms
                .map_or(d.timeout, |ms| Duration::from_millis(ms.into())),
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            max_image_side: self.max_image_side.unwrap_or(d.max_image_side),
        }
    }
}

/// How long a caption should be.
#[napi(string_enum = "lowercase")]
pub enum CaptionLength {
    /// One short sentence.
    Short,
    /// A few sentences (the default).
    Normal,
    /// A detailed description.
    Long,
}

/// Options of `caption` and `captionStream`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CaptionOptions {
    /// `'short'`, `'normal'` (default) or `'long'`.
    #[napi(ts_type = "CaptionLength")]
    pub length: Option<String>,
}

/// How a watch asks.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct WatchOptions {
    /// Ask this often, in ms (100–86400000); default 5000.
    pub every_ms: Option<u32>,
    /// Skip asking when the picture has not changed enough since the last one sent;
    /// default true.
    pub only_when_changed: Option<bool>,
    /// The change that counts: mean absolute luma difference (0–255) from the last picture
    /// sent; default 1.0 (`stats.lastChange` shows a camera's scores, to tune it).
    pub change_threshold: Option<f64>,
}

impl WatchOptions {
    fn into_core(self) -> CoreWatchOptions {
        let d = CoreWatchOptions::default();
        CoreWatchOptions {
            every: self
                .every_ms
                .map_or(d.every, |ms| Duration::from_millis(ms.into())),
            only_when_changed: self.only_when_changed.unwrap_or(d.only_when_changed),
            change_threshold: self.change_threshold.unwrap_or(d.change_threshold),
        }
    }
}

/// The answer to a question about a camera's picture.
#[napi(object, object_from_js = false)]
pub struct QueryResult {
    /// The camera asked about.
    pub camera_id: String,
    /// The sequence number of the picture answered about (as a frame's `seq`).
    pub seq: f64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at: f64,
    /// Width of the picture sent, in pixels.
    pub width: u32,
    /// Height of the picture sent, in pixels.
    pub height: u32,
    /// Moondream's answer.
    pub answer: String,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// A caption of a camera's picture.
#[napi(object, object_from_js = false)]
pub struct CaptionResult {
    /// The camera captioned.
    pub camera_id: String,
    /// The sequence number of the picture captioned.
    pub seq: f64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at: f64,
    /// Width of the picture sent, in pixels.
    pub width: u32,
    /// Height of the picture sent, in pixels.
    pub height: u32,
    /// The caption.
    pub caption: String,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// One object found by `detect`: its bounding box as fractions of the picture's width and
/// height (0 = left/top, 1 = right/bottom).
#[napi(object, object_from_js = false)]
pub struct DetectedObject {
    /// Left edge, 0–1.
    pub x_min: f64,
    /// Top edge, 0–1.
    pub y_min: f64,
    /// Right edge, 0–1.
    pub x_max: f64,
    /// Bottom edge, 0–1.
    pub y_max: f64,
}

/// The objects `detect` found in a camera's picture.
#[napi(object, object_from_js = false)]
pub struct DetectResult {
    /// The camera asked about.
    pub camera_id: String,
    /// The sequence number of the picture searched.
    pub seq: f64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at: f64,
    /// Width of the picture sent, in pixels.
    pub width: u32,
    /// Height of the picture sent, in pixels.
    pub height: u32,
    /// Every object found (empty when none).
    pub objects: Vec<DetectedObject>,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// One point found by `point`: fractions of the picture's width and height.
#[napi(object, object_from_js = false)]
pub struct Point {
    /// 0 = left edge, 1 = right edge.
    pub x: f64,
    /// 0 = top edge, 1 = bottom edge.
    pub y: f64,
}

/// The points `point` found in a camera's picture.
#[napi(object, object_from_js = false)]
pub struct PointResult {
    /// The camera asked about.
    pub camera_id: String,
    /// The sequence number of the picture searched.
    pub seq: f64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at: f64,
    /// Width of the picture sent, in pixels.
    pub width: u32,
    /// Height of the picture sent, in pixels.
    pub height: u32,
    /// Every point found (empty when none).
    pub points: Vec<Point>,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// A watched question whose answer changed.
#[napi(object, object_from_js = false)]
pub struct WatchEvent {
    /// The camera watched.
    pub camera_id: String,
    /// The question asked.
    pub question: String,
    /// The new answer.
    pub answer: String,
    /// The answer before it (`null` for the first answer of the watch).
    pub previous_answer: Option<String>,
    /// The sequence number of the picture answered about.
    pub seq: f64,
    /// When camkit received that picture, in ms since the Unix epoch.
    pub captured_at: f64,
    /// When the answer arrived, in ms since the Unix epoch.
    pub at_ms: f64,
}

impl From<camkit::moondream::WatchEvent> for WatchEvent {
    fn from(e: camkit::moondream::WatchEvent) -> Self {
        WatchEvent {
            camera_id: e.camera_id,
            question: e.question,
            answer: e.answer,
            previous_answer: e.previous_answer,
            seq: e.seq as f64,
            captured_at: e.captured_at_ms as f64,
            at_ms: e.at_ms as f64,
        }
    }
}

/// What a watch has done so far.
#[napi(object, object_from_js = false)]
pub struct WatchStats {
    /// Calls made to Moondream.
    pub asked: f64,
    /// Ticks skipped because the picture had not changed enough.
    pub skipped_unchanged: f64,
    /// Ticks skipped because the camera had no picture (reconnecting).
    pub skipped_no_picture: f64,
    /// Ticks that failed (each reported to the callback).
    pub errors: f64,
    /// Answers that changed (each reported to the callback).
    pub events: f64,
    /// The change score of the last picture compared (see `changeThreshold`).
    pub last_change: Option<f64>,
}

/// The picture fields every result shares, and the result itself.
fn picture<T>(a: CameraAnswer<T>) -> (String, f64, f64, u32, u32, T) {
    (
        a.camera_id,
        a.seq as f64,
        a.captured_at_ms as f64,
        a.width,
        a.height,
        a.result,
    )
}

fn query_result(a: CameraAnswer<camkit::moondream::QueryAnswer>) -> QueryResult {
    let (camera_id, seq, captured_at, width, height, r) = picture(a);
    QueryResult {
        camera_id,
        seq,
        captured_at,
        width,
        height,
        answer: r.answer,
        request_id: r.request_id,
    }
}

fn caption_result(a: CameraAnswer<camkit::moondream::Caption>) -> CaptionResult {
    let (camera_id, seq, captured_at, width, height, r) = picture(a);
    CaptionResult {
        camera_id,
        seq,
        captured_at,
        width,
        height,
        caption: r.caption,
        request_id: r.request_id,
    }
}

/// What `onChunk` returned: `false` asks to stop; anything else goes on.
struct ChunkReply {
    stop: bool,
}

impl FromNapiValue for ChunkReply {
    unsafe fn from_napi_value(
        env: napi::sys::napi_env,
        value: napi::sys::napi_value,
    ) -> napi::Result<Self> {
        // SAFETY: napi-rs hands over a live value of the current scope on the JS thread;
        // reading a non-boolean as a boolean fails without throwing.
        let b = unsafe { bool::from_napi_value(env, value) };
        Ok(ChunkReply {
            stop: matches!(b, Ok(false)),
        })
    }
}

/// How handing one piece of a streamed answer to JS went.
enum Delivery {
    Continue,
    /// `onChunk` returned `false`.
    Stop,
    /// `onChunk` threw this.
    Threw(napi::Error),
    /// The JS environment is going away.
    Gone,
}

/// Hands `piece` to `onChunk` and waits until it has returned.
async fn deliver(cb: &ChunkCallback, piece: String) -> Delivery {
    let (tx, rx) = oneshot::channel();
    let status = cb.call_with_return_value(
        piece,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |result, _env| {
            let _ = tx.send(result);
            Ok(())
        },
    );
    if status != Status::Ok {
        return Delivery::Gone;
    }
    match rx.await {
        Ok(Ok(ChunkReply { stop: true })) => Delivery::Stop,
        Ok(Ok(_)) => Delivery::Continue,
        Ok(Err(thrown)) => Delivery::Threw(thrown),
        Err(_) => Delivery::Gone,
    }
}

/// Reads a streamed answer, handing each piece to `onChunk`: the whole text, or what
/// `onChunk` threw.
async fn pump(
    mut stream: TextStream,
    cb: ChunkCallback,
) -> camkit::Result<Result<String, napi::Error>> {
    let mut text = String::new();
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        text.push_str(&piece);
        match deliver(&cb, piece).await {
            Delivery::Continue => {}
            Delivery::Stop => break,
            Delivery::Threw(e) => return Ok(Err(e)),
            Delivery::Gone => {
                return Err(Error::new(
                    ErrorKind::Closed,
                    "the JavaScript environment is shutting down",
                ))
            }
        }
    }
    Ok(Ok(text))
}

/// A required string argument, as camkit's `INVALID_INPUT` naming it when it is not one.
fn string_arg(v: Unknown<'_>, field: &str) -> camkit::Result<String> {
    if v.get_type().ok() != Some(ValueType::String) {
        return Err(Error::invalid(field, "must be a string"));
    }
    // SAFETY: a live string value of the current call's scope, on the JS thread.
    unsafe { v.cast::<String>() }.map_err(|_| Error::invalid(field, "must be a string"))
}

fn is_nullish(v: &Unknown<'_>) -> bool {
    matches!(v.get_type(), Ok(ValueType::Undefined | ValueType::Null))
}

/// An optional options object: `undefined`/`null` give the defaults.
fn options_arg<T: FromNapiValue + napi::bindgen_prelude::TypeName + Default>(
    v: Option<Unknown<'_>>,
) -> camkit::Result<T> {
    match v {
        Some(v) if !is_nullish(&v) => convert(v, "options"),
        _ => Ok(T::default()),
    }
}

fn caption_length(o: CaptionOptions) -> camkit::Result<CoreLength> {
    match o.length {
        Some(l) => l.parse(),
        None => Ok(CoreLength::default()),
    }
}

/// Moondream for the cameras of one `CameraManager`, from `cameras.moondream(options)`.
///
/// Each call takes the camera's current picture (scaled so its long side is at most
/// `maxImageSide`, 768 by default) and asks Moondream about it; the result says which
/// picture (`seq`, `capturedAt`) it is about. Promises reject with `err.code`
/// `'NOT_FOUND'` (no such camera), `'NO_FRAME'` (no picture yet), `'UNAUTHORIZED'` (the key
/// was refused), `'RATE_LIMITED'` (429 after the retries), `'SERVICE_ERROR'` (Moondream's
/// own message), `'TIMEOUT'`, `'UNREACHABLE'`, `'INVALID_INPUT'` (naming the field).
#[napi]
pub struct Moondream {
    inner: MoondreamCameras,
    runtime: Handle,
}

#[napi]
impl CameraManager {
    /// Moondream for this manager's cameras. Throws `INVALID_INPUT` naming the field when
    /// the options are not acceptable, e.g. the cloud without an API key (`apiKey` or
    /// `MOONDREAM_API_KEY`); `CLOSED` after `close()`.
    #[napi(ts_args_type = "options?: MoondreamOptions | undefined | null")]
    pub fn moondream(&self, options: Option<Unknown>) -> error::Result<Moondream> {
        let core = self.core();
        if core.is_closed() {
            return Err(to_napi(&Error::new(
                ErrorKind::Closed,
                "the camera manager is closed; create a new one",
            )));
        }
        let options: MoondreamOptions = options_arg(options).map_err(|e| to_napi(&e))?;
        let inner = core
            .moondream(options.into_core())
            .map_err(|e| to_napi(&e))?;
        Ok(Moondream {
            inner,
            runtime: core.runtime().clone(),
        })
    }
}

#[napi]
impl Moondream {
    /// The API's base URL in use (never with a key).
    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.client().config().base_url.clone()
    }

    /// Asks a question about the camera's current picture.
    #[napi(
        ts_args_type = "cameraId: string, question: string",
        ts_return_type = "Promise<QueryResult>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        question: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, QueryResult>> {
        let args = string_arg(camera_id, "cameraId")
            .and_then(|id| Ok((id, string_arg(question, "question")?)));
        let (id, question) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move { md.query(&id, &question).await },
            |_, a| Ok(query_result(a)),
        )
    }

    /// Captions the camera's current picture (`options.length`: `'short'`, `'normal'`,
    /// `'long'`).
    #[napi(
        ts_args_type = "cameraId: string, options?: CaptionOptions | undefined | null",
        ts_return_type = "Promise<CaptionResult>"
    )]
    pub fn caption<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        options: Option<Unknown<'env>>,
    ) -> napi::Result<PromiseRaw<'env, CaptionResult>> {
        let args = string_arg(camera_id, "cameraId")
            .and_then(|id| Ok((id, caption_length(options_arg(options)?)?)));
        let (id, length) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move { md.caption(&id, length).await },
            |_, a| Ok(caption_result(a)),
        )
    }

    /// Finds `object` ("person", "red car" …) in the camera's current picture: bounding
    /// boxes in 0–1 coordinates.
    #[napi(
        ts_args_type = "cameraId: string, object: string",
        ts_return_type = "Promise<DetectResult>"
    )]
    pub fn detect<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        object: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, DetectResult>> {
        let args = string_arg(camera_id, "cameraId")
            .and_then(|id| Ok((id, string_arg(object, "object")?)));
        let (id, object) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move { md.detect(&id, &object).await },
            |_, a| {
                let (camera_id, seq, captured_at, width, height, r) = picture(a);
                Ok(DetectResult {
                    camera_id,
                    seq,
                    captured_at,
                    width,
                    height,
                    objects: r
                        .objects
                        .into_iter()
                        .map(|o| DetectedObject {
                            x_min: o.x_min,
                            y_min: o.y_min,
                            x_max: o.x_max,
                            y_max: o.y_max,
                        })
                        .collect(),
                    request_id: r.request_id,
                })
            },
        )
    }

    /// Points at `object` in the camera's current picture: centre points in 0–1
    /// coordinates.
    #[napi(
        ts_args_type = "cameraId: string, object: string",
        ts_return_type = "Promise<PointResult>"
    )]
    pub fn point<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        object: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, PointResult>> {
        let args = string_arg(camera_id, "cameraId")
            .and_then(|id| Ok((id, string_arg(object, "object")?)));
        let (id, object) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move { md.point(&id, &object).await },
            |_, a| {
                let (camera_id, seq, captured_at, width, height, r) = picture(a);
                Ok(PointResult {
                    camera_id,
                    seq,
                    captured_at,
                    width,
                    height,
                    points: r
                        .points
                        .into_iter()
                        .map(|p| Point { x: p.x, y: p.y })
                        .collect(),
                    request_id: r.request_id,
                })
            },
        )
    }

    /// Asks a question and streams the answer: `onChunk(text)` gets each piece as it
    /// arrives (the next only after it has returned); the promise resolves with the whole
    /// answer after the last piece. `onChunk` returning `false` abandons the answer (the
    /// promise resolves with the text so far); throwing abandons it and rejects the promise
    /// with what was thrown. A failure mid-answer rejects with its code.
    #[napi(
        ts_args_type = "cameraId: string, question: string, onChunk: (text: string) => boolean | void",
        ts_return_type = "Promise<QueryResult>"
    )]
    pub fn query_stream<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        question: Unknown<'env>,
        on_chunk: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, QueryResult>> {
        let args = string_arg(camera_id, "cameraId").and_then(|id| {
            let q = string_arg(question, "question")?;
            Ok((id, q, convert::<ChunkCallback>(on_chunk, "onChunk")?))
        });
        let (id, question, cb) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move {
                let (picture, stream) = split(md.query_stream(&id, &question).await?);
                Ok(pump(stream, cb).await?.map(|text| picture.map(|()| text)))
            },
            |_, r| {
                let a = r?;
                let (camera_id, seq, captured_at, width, height, answer) = picture(a);
                Ok(QueryResult {
                    camera_id,
                    seq,
                    captured_at,
                    width,
                    height,
                    answer,
                    request_id: None,
                })
            },
        )
    }

    /// Captions the camera's current picture, streaming the caption to `onChunk` as
    /// `queryStream` does.
    #[napi(
        ts_args_type = "cameraId: string, options: CaptionOptions | undefined | null, onChunk: (text: string) => boolean | void",
        ts_return_type = "Promise<CaptionResult>"
    )]
    pub fn caption_stream<'env>(
        &self,
        env: &'env Env,
        camera_id: Unknown<'env>,
        options: Unknown<'env>,
        on_chunk: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, CaptionResult>> {
        let args = string_arg(camera_id, "cameraId").and_then(|id| {
            let length = caption_length(options_arg(Some(options))?)?;
            Ok((id, length, convert::<ChunkCallback>(on_chunk, "onChunk")?))
        });
        let (id, length, cb) = match args {
            Ok(a) => a,
            Err(e) => return promise::rejected(env, &self.runtime, e),
        };
        let md = self.inner.clone();
        promise::spawn(
            env,
            &self.runtime,
            async move {
                let (picture, stream) = split(md.caption_stream(&id, length).await?);
                Ok(pump(stream, cb).await?.map(|text| picture.map(|()| text)))
            },
            |_, r| {
                let a = r?;
                let (camera_id, seq, captured_at, width, height, caption) = picture(a);
                Ok(CaptionResult {
                    camera_id,
                    seq,
                    captured_at,
                    width,
                    height,
                    caption,
                    request_id: None,
                })
            },
        )
    }

    /// Asks `question` about the camera every `options.everyMs` and calls
    /// `callback(null, event)` when the answer differs from the previous one (the first
    /// answer always counts). Pictures that have not changed are not sent at all (see
    /// `onlyWhenChanged`, `changeThreshold`).
    ///
    /// A tick that fails calls `callback(err)` and the watch goes on (`RATE_LIMITED`,
    /// `SERVICE_ERROR`, `TIMEOUT`, `UNREACHABLE` …); after `UNAUTHORIZED` or
    /// `INVALID_INPUT` it ends. When the camera is disconnected or the manager closed, it
    /// ends with one last `callback(err)` whose code is `'CLOSED'`. Throws `NOT_FOUND` for
    /// an unknown camera, `INVALID_INPUT` for bad options. Dropping the returned object
    /// does not stop the watch: call `stop()`.
    #[napi(
        ts_args_type = "cameraId: string, question: string, options: WatchOptions | undefined | null, callback: (err: Error | null, event: WatchEvent) => void"
    )]
    pub fn watch(
        &self,
        env: &Env,
        camera_id: Unknown,
        question: Unknown,
        options: Unknown,
        callback: Unknown,
    ) -> error::Result<Watch> {
        let camera_id = string_arg(camera_id, "cameraId").map_err(|e| to_napi(&e))?;
        let question = string_arg(question, "question").map_err(|e| to_napi(&e))?;
        let options: WatchOptions = options_arg(Some(options)).map_err(|e| to_napi(&e))?;
        if callback.get_type().ok() != Some(ValueType::Function) {
            return Err(to_napi(&Error::invalid("callback", "must be a function")));
        }
        let callback = gate::<WatchCallback>(env, callback).map_err(|e| to_napi(&e))?;
        let (handle, events) = self
            .inner
            .watch(&camera_id, &question, options.into_core())
            .map_err(|e| to_napi(&e))?;
        Ok(Watch::start(&self.runtime, handle, events, callback))
    }
}

/// A streamed answer's picture fields and its stream.
fn split(a: CameraAnswer<TextStream>) -> (CameraAnswer<()>, TextStream) {
    let CameraAnswer {
        camera_id,
        seq,
        captured_at_ms,
        width,
        height,
        result,
    } = a;
    let picture = CameraAnswer {
        camera_id,
        seq,
        captured_at_ms,
        width,
        height,
        result: (),
    };
    (picture, result)
}

/// A running watch, from `moondream.watch()`.
#[napi]
pub struct Watch {
    handle: Arc<WatchHandle>,
    /// Closed by `stop()`: no callback runs after that, not even one already queued.
    stopped: Gate,
}

impl Watch {
    /// Starts delivering `events` to `callback` (made by [`gate`], with its gate) from a
    /// task on `runtime`. The task holds the handle too, so the watch runs on when this
    /// object is garbage-collected.
    fn start(
        runtime: &Handle,
        handle: WatchHandle,
        mut events: camkit::moondream::WatchEvents,
        (callback, stopped): (WatchCallback, Gate),
    ) -> Self {
        let handle = Arc::new(handle);
        let (task_handle, task_stopped) = (Arc::clone(&handle), Arc::clone(&stopped));
        runtime.spawn(async move {
            // Whether the last item was an error that ends the watch (it then needs no
            // `CLOSED` after it).
            let mut ended_by_error = false;
            while let Some(item) = events.next().await {
                if task_stopped.load(Ordering::Acquire) {
                    return;
                }
                ended_by_error = item.as_ref().err().is_some_and(|e| {
                    matches!(
                        e.kind(),
                        ErrorKind::Unauthorized
                            | ErrorKind::InvalidInput
                            | ErrorKind::NotFound
                            | ErrorKind::Closed
                    )
                });
                let delivered = match item {
                    Ok(event) => {
                        let (returned, js_returned) = oneshot::channel::<()>();
                        let status = callback.call_with_return_value(
                            Ok(event.into()),
                            ThreadsafeFunctionCallMode::NonBlocking,
                            move |result, _env| {
                                let _ = returned.send(());
                                // An exception thrown by the callback goes on to
                                // `uncaughtException`, as from any other callback.
                                result.map(drop)
                            },
                        );
                        status == Status::Ok && js_returned.await.is_ok()
                    }
                    // napi-rs runs no return-value callback after an error argument, so
                    // an error is queued without waiting for the callback to return.
                    Err(e) => call_err(&callback, &e).await,
                };
                if !delivered {
                    // The JS environment is going away.
                    task_handle.stop();
                    return;
                }
            }
            if task_stopped.load(Ordering::Acquire) || ended_by_error {
                return;
            }
            let end = Error::new(
                ErrorKind::Closed,
                format!(
                    "camera {:?} was disconnected or its manager closed; the watch has ended",
                    task_handle.camera_id()
                ),
            );
            call_err(&callback, &end).await;
        });
        Watch { handle, stopped }
    }
}

/// Queues `callback(err)`; while the queue is full (the previous call has not run yet),
/// retries for up to 2 s so that an error is not lost. False when the JS environment is
/// going away.
async fn call_err(callback: &WatchCallback, e: &Error) -> bool {
    for _ in 0..100 {
        match callback.call(Err(to_napi(e)), ThreadsafeFunctionCallMode::NonBlocking) {
            Status::QueueFull => tokio::time::sleep(Duration::from_millis(20)).await,
            status => return status == Status::Ok,
        }
    }
    tracing::warn!(error = %e, "camkit watch callback is behind; an error was dropped");
    true
}

#[napi]
impl Watch {
    /// Stops the watch: no further calls to Moondream, and no callback runs after this
    /// returns, not even one already queued. Idempotent.
    #[napi]
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.handle.stop();
    }

    /// Whether the watch still runs (false after `stop()`, once the camera is gone, or
    /// after an error it cannot get past).
    #[napi(getter)]
    pub fn running(&self) -> bool {
        !self.stopped.load(Ordering::Acquire) && self.handle.is_running()
    }

    /// The camera watched.
    #[napi(getter)]
    pub fn camera_id(&self) -> String {
        self.handle.camera_id().to_owned()
    }

    /// The question asked.
    #[napi(getter)]
    pub fn question(&self) -> String {
        self.handle.question().to_owned()
    }

    /// What the watch has done so far.
    #[napi(getter)]
    pub fn stats(&self) -> WatchStats {
        let s = self.handle.stats();
        WatchStats {
            asked: s.asked as f64,
            skipped_unchanged: s.skipped_unchanged as f64,
            skipped_no_picture: s.skipped_no_picture as f64,
            errors: s.errors as f64,
            events: s.events as f64,
            last_change: s.last_change,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_to_cores() {
        let c = MoondreamOptions::default().into_core();
        assert_eq!(c, MoondreamConfig::default());
        let c = MoondreamOptions {
            base_url: Some("http://127.0.0.1:2020/v1".into()),
            timeout_ms: Some(1500),
            max_retries: Some(0),
            ..Default::default()
        }
        .into_core();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.base_url, "http://127.0.0.1:2020/v1");
        let w = WatchOptions {
            every_ms: Some(250),
            ..Default::default()
        }
        .into_core();
        assert_eq!(w.every, Duration::from_millis(250));
        assert!(w.only_when_changed);
    }

    #[test]
    fn caption_length_is_checked_naming_the_field() {
        let e = caption_length(CaptionOptions {
            length: Some("tiny".into()),
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().starts_with("length"), "{e}");
        assert_eq!(
            caption_length(CaptionOptions::default()).unwrap(),
            CoreLength::Normal
        );
    }
}
