//! The `Moondream` class: `cameras.moondream(options)` (and `cluster.moondream(options)`,
//! `crate::cluster`) and its calls, as promises.

use camkit::moondream::{CaptionLength as CoreLength, MoondreamCameras};
use camkit::{Error, ErrorKind};
use napi::bindgen_prelude::{FromNapiValue, PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;
use tokio::runtime::Handle;

use super::stream::{pump, split, ChunkCallback};
use super::types::*;
use super::watch::{Watch, WatchCallback};
use crate::error::{self, convert, to_napi};
use crate::manager::CameraManager;
use crate::promise;
use crate::subscription::gate;

/// The camera id and the one text argument (`question`, `object`) of most calls.
fn id_and_text(
    camera_id: Unknown<'_>,
    text: Unknown<'_>,
    field: &str,
) -> camkit::Result<(String, String)> {
    Ok((string_arg(camera_id, "cameraId")?, string_arg(text, field)?))
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

/// Moondream for the cameras of one `CameraManager`, from `cameras.moondream(options)`,
/// or of a whole cluster, from `cluster.moondream(options)` (the picture then comes from
/// the camera's owner, wherever it runs).
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

impl Moondream {
    /// The class over camkit's `MoondreamCameras` made from `options` by `make`, its
    /// promises run on `runtime` (for `cluster.moondream()`).
    #[cfg(feature = "cluster")]
    pub(crate) fn from_options(
        options: Option<Unknown>,
        runtime: Handle,
        make: impl FnOnce(camkit::moondream::MoondreamConfig) -> camkit::Result<MoondreamCameras>,
    ) -> error::Result<Moondream> {
        let options: MoondreamOptions = options_arg(options).map_err(|e| to_napi(&e))?;
        let inner = make(options.into_core()).map_err(|e| to_napi(&e))?;
        Ok(Moondream { inner, runtime })
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
        let args = id_and_text(camera_id, question, "question");
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
        let args = id_and_text(camera_id, object, "object");
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
        let args = id_and_text(camera_id, object, "object");
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

#[cfg(test)]
mod tests {
    use super::*;

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
