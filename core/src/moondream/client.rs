//! The HTTP client for Moondream's API: one request per call, bounded retries, typed
//! answers, and streamed answers as a `Stream` of text pieces.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use tokio::time::Instant;

use super::config::MoondreamConfig;
use super::retry::{parse_retry_after, retryable, MAX_RETRY_AFTER};
use super::stream::TextStream;
use super::types::{
    Caption, CaptionLength, DetectedObject, Detections, Point, Points, QueryAnswer, Wire,
};
use crate::backoff::Backoff;
use crate::error::{Error, ErrorKind, Result};
use crate::util::fmt_duration;

/// The header the cloud reads the API key from.
const AUTH_HEADER: &str = "X-Moondream-Auth";
/// Largest answer body read. Answers are a few kB; this only stops a runaway server.
const MAX_BODY: usize = 8 << 20;
/// Longest piece of a service's message quoted in an error.
const MAX_QUOTE: usize = 300;
/// Longest question or object name sent.
const MAX_TEXT: usize = 10_000;

/// A client for Moondream's API (cloud or Moondream Station), cheap to clone.
///
/// Every call sends one JPEG as a `data:image/jpeg;base64,…` URL, scaled down first when its
/// long side is over [`MoondreamConfig::max_image_side`]. Calls that fail with `429` or
/// `500/502/503/504` are retried up to [`MoondreamConfig::max_retries`] times, waiting as
/// `Retry-After` asks (seconds or an HTTP date; a wait over 30 s fails at once with
/// `RateLimited`) or 0.5 s, 1 s, 2 s … with jitter. Timeouts, refused connections and
/// other statuses are not retried. Must be used inside a tokio runtime.
#[derive(Clone)]
pub struct MoondreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Base URL without a trailing `/`.
    base: String,
    /// The key as a header value marked sensitive (hidden from hyper's debug output).
    key_header: Option<HeaderValue>,
    /// The key itself, only to scrub it from anything quoted back from the service.
    key: Option<String>,
    config: MoondreamConfig,
}

impl std::fmt::Debug for MoondreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoondreamClient")
            .field("base_url", &self.inner.base)
            .field("api_key", &self.inner.key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.inner.config.timeout)
            .field("max_retries", &self.inner.config.max_retries)
            .finish()
    }
}

#[derive(Serialize)]
struct QueryBody<'a> {
    image_url: &'a str,
    question: &'a str,
    stream: bool,
}

#[derive(Serialize)]
struct CaptionBody<'a> {
    image_url: &'a str,
    length: &'static str,
    stream: bool,
}

#[derive(Serialize)]
struct ObjectBody<'a> {
    image_url: &'a str,
    object: &'a str,
}

impl MoondreamClient {
    /// A client for this configuration. Fails with `InvalidInput` naming the field when the
    /// configuration is not acceptable (e.g. the cloud without an API key).
    pub fn new(config: MoondreamConfig) -> Result<Self> {
        let resolved = config.validate()?;
        let key_header = match &resolved.key {
            Some(k) => {
                let mut v = HeaderValue::from_str(k)
                    .map_err(|_| Error::invalid("apiKey", "is not a valid HTTP header value"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .user_agent(concat!("camkit/", env!("CARGO_PKG_VERSION")))
            // The key travels in a header of Moondream's own, which a redirect to another
            // host would carry along (only standard credential headers are stripped): a
            // redirect is reported instead of followed.
            .redirect(reqwest::redirect::Policy::none())
            .http1_only();
        if resolved.loopback {
            // A local Moondream Station is never behind the HTTP(S)_PROXY the environment
            // may name for the internet.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create the HTTP client: {e}"),
            )
        })?;
        let mut config = config;
        // The resolved key lives in `key_header`/`key`; keep no second copy around.
        config.api_key = None;
        Ok(MoondreamClient {
            inner: Arc::new(Inner {
                http,
                base: resolved.base,
                key_header,
                key: resolved.key,
                config,
            }),
        })
    }

    /// The configuration (its `api_key` is always `None` here: the key is not handed out).
    pub fn config(&self) -> &MoondreamConfig {
        &self.inner.config
    }

    /// Asks a question about a JPEG picture.
    pub async fn query(&self, jpeg: &[u8], question: &str) -> Result<QueryAnswer> {
        check_text("question", question)?;
        let image_url = self.image_url(jpeg).await?;
        let body = QueryBody {
            image_url: &image_url,
            question,
            stream: false,
        };
        let w = self.call("/query", &body).await?;
        Ok(QueryAnswer {
            answer: w.answer.ok_or_else(|| missing("/query", "answer"))?,
            request_id: w.request_id,
        })
    }

    /// Captions a JPEG picture.
    pub async fn caption(&self, jpeg: &[u8], length: CaptionLength) -> Result<Caption> {
        let image_url = self.image_url(jpeg).await?;
        let body = CaptionBody {
            image_url: &image_url,
            length: length.as_str(),
            stream: false,
        };
        let w = self.call("/caption", &body).await?;
        Ok(Caption {
            caption: w.caption.ok_or_else(|| missing("/caption", "caption"))?,
            request_id: w.request_id,
        })
    }

    /// Finds the bounding boxes of `object` ("person", "red car" …) in a JPEG picture.
    pub async fn detect(&self, jpeg: &[u8], object: &str) -> Result<Detections> {
        let w = self.call_on_object("/detect", jpeg, object).await?;
        let objects = w.objects.ok_or_else(|| missing("/detect", "objects"))?;
        Ok(Detections {
            objects: objects
                .into_iter()
                .map(|b| DetectedObject {
                    x_min: b.x_min,
                    y_min: b.y_min,
                    x_max: b.x_max,
                    y_max: b.y_max,
                })
                .collect(),
            request_id: w.request_id,
        })
    }

    /// Finds the centre points of `object` in a JPEG picture.
    pub async fn point(&self, jpeg: &[u8], object: &str) -> Result<Points> {
        let w = self.call_on_object("/point", jpeg, object).await?;
        let points = w.points.ok_or_else(|| missing("/point", "points"))?;
        Ok(Points {
            points: points
                .into_iter()
                .map(|p| Point { x: p.x, y: p.y })
                .collect(),
            request_id: w.request_id,
        })
    }

    /// Asks a question and streams the answer as it is generated.
    ///
    /// Returns once the service has accepted the request (failures up to then, retries
    /// included, are this call's error); the stream then yields pieces of text in order
    /// and ends when the answer is complete. An error item (timeout between pieces, lost
    /// connection, the service failing mid-answer) is the last item.
    pub async fn query_stream(&self, jpeg: &[u8], question: &str) -> Result<TextStream> {
        check_text("question", question)?;
        let image_url = self.image_url(jpeg).await?;
        let body = QueryBody {
            image_url: &image_url,
            question,
            stream: true,
        };
        let (resp, _) = self.post("/query", &body, true).await?;
        Ok(TextStream::new(self.clone(), "/query", "answer", resp))
    }

    /// Captions a picture, streaming the caption as it is generated (see
    /// [`query_stream`](Self::query_stream)).
    pub async fn caption_stream(&self, jpeg: &[u8], length: CaptionLength) -> Result<TextStream> {
        let image_url = self.image_url(jpeg).await?;
        let body = CaptionBody {
            image_url: &image_url,
            length: length.as_str(),
            stream: true,
        };
        let (resp, _) = self.post("/caption", &body, true).await?;
        Ok(TextStream::new(self.clone(), "/caption", "caption", resp))
    }

    /// The picture as a data URL, scaled down first when its long side is over the limit.
    async fn image_url(&self, jpeg: &[u8]) -> Result<String> {
        let (w, h) = crate::jpeg::dimensions(jpeg)
            .map_err(|_| Error::invalid("jpeg", "is not a JPEG picture camkit can read"))?;
        let side = self.inner.config.max_image_side;
        if w.max(h) <= side {
            return Ok(data_url(jpeg));
        }
        let owned = jpeg.to_vec();
        let small = tokio::task::spawn_blocking(move || -> Result<Bytes> {
            let p = crate::jpeg::decode_to_i420(&owned)?;
            let p = p.downscaled(fit_width(w, h, side)).unwrap_or(p);
            crate::jpeg::encode_i420(&p, 90)
        })
        .await
        .map_err(|_| Error::new(ErrorKind::Internal, "JPEG scaling task failed"))??;
        Ok(data_url(&small))
    }

    /// One non-streamed call: the answer body, checked for Moondream Station's
    /// `{"error": …}`, as the wire type.
    /// `/detect` and `/point`: the same request about one object, different answers.
    async fn call_on_object(&self, path: &'static str, jpeg: &[u8], object: &str) -> Result<Wire> {
        check_text("object", object)?;
        let image_url = self.image_url(jpeg).await?;
        let body = ObjectBody {
            image_url: &image_url,
            object,
        };
        self.call(path, &body).await
    }

    async fn call(&self, path: &'static str, body: &impl Serialize) -> Result<Wire> {
        let (resp, deadline) = self.post(path, body, false).await?;
        let bytes = match tokio::time::timeout_at(deadline, read_limited(resp)).await {
            Err(_) => return Err(self.timeout_error(path)),
            Ok(r) => r.map_err(|e| self.read_error(path, e))?,
        };
        let v = self.parse_json(path, &bytes)?;
        serde_json::from_value::<Wire>(v).map_err(|e| {
            Error::new(
                ErrorKind::ServiceError,
                format!("Moondream answered {path} in an unexpected shape: {e}"),
            )
        })
    }

    /// Parses an answer body; Moondream Station reports failures as `200 {"error": …}`.
    pub(super) fn parse_json(&self, path: &str, bytes: &[u8]) -> Result<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
            Error::new(
                ErrorKind::ServiceError,
                format!(
                    "Moondream answered {path} with something that is not JSON: {}",
                    self.redact(&excerpt(&String::from_utf8_lossy(bytes)))
                ),
            )
        })?;
        if let Some(msg) = error_message(&v) {
            return Err(Error::new(
                ErrorKind::ServiceError,
                format!("Moondream could not answer {path}: {}", self.redact(&msg)),
            ));
        }
        Ok(v)
    }

    /// Sends a request, retrying as documented; returns the successful response (headers
    /// read, body not yet) and the deadline of its attempt.
    async fn post(
        &self,
        path: &'static str,
        body: &impl Serialize,
        stream: bool,
    ) -> Result<(reqwest::Response, Instant)> {
        let body = Bytes::from(serde_json::to_vec(body).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot encode the request: {e}"),
            )
        })?);
        let url = format!("{}{path}", self.inner.base);
        let cfg = &self.inner.config;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
        let mut attempt: u32 = 1;
        loop {
            let deadline = Instant::now() + cfg.timeout;
            let mut req = self
                .inner
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(
                    ACCEPT,
                    if stream {
                        "text/event-stream"
                    } else {
                        "application/json"
                    },
                )
                .body(body.clone());
            if let Some(k) = &self.inner.key_header {
                req = req.header(AUTH_HEADER, k.clone());
            }
            let resp = match tokio::time::timeout_at(deadline, req.send()).await {
                Err(_) => return Err(self.timeout_error(path)),
                Ok(Err(e)) => return Err(self.transport_error(path, &e)),
                Ok(Ok(r)) => r,
            };
            let status = resp.status();
            if status.is_success() {
                return Ok((resp, deadline));
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // The body only says why; a slow one must not hold the retry up.
            let text = tokio::time::timeout_at(deadline, read_limited(resp))
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|b| service_text(&b))
                .unwrap_or_default();
            let mut text = self.redact(&text);
            if status.is_redirection() {
                text = format!(
                    "redirected to {}: check baseUrl (https?)",
                    excerpt(location.as_deref().unwrap_or("nowhere"))
                );
            }
            if !retryable(status.as_u16()) || attempt > cfg.max_retries {
                return Err(status_error(path, status, &text, attempt));
            }
            let wait = match retry_after {
                Some(d) if d > MAX_RETRY_AFTER => {
                    return Err(Error::new(
                        ErrorKind::RateLimited,
                        format!(
                            "Moondream answered {status} to {path} and asks to retry in {}s, \
                             longer than camkit waits ({}s); retry later or slow down",
                            d.as_secs(),
                            MAX_RETRY_AFTER.as_secs()
                        ),
                    ))
                }
                Some(d) => d,
                None => backoff.next_delay(ErrorKind::RateLimited),
            };
            tracing::debug!(
                path,
                status = status.as_u16(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "Moondream asks to retry"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    pub(super) fn timeout_error(&self, path: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "Moondream ({}) did not answer {path} within {}; check the service, or raise timeoutMs",
                self.inner.base,
                fmt_duration(self.inner.config.timeout)
            ),
        )
    }

    pub(super) fn transport_error(&self, path: &str, e: &reqwest::Error) -> Error {
        let cause = self.redact(&root_cause(e));
        let base = &self.inner.base;
        if e.is_timeout() {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "connecting to Moondream ({base}) took longer than {}: {cause}",
                    fmt_duration(self.inner.config.timeout)
                ),
            )
        } else if e.is_connect() {
            Error::new(
                ErrorKind::Unreachable,
                format!("cannot connect to Moondream at {base}: {cause}; is the service running and baseUrl right?"),
            )
        } else {
            Error::new(
                ErrorKind::Unreachable,
                format!("the connection to Moondream ({base}) failed during {path}: {cause}"),
            )
        }
    }

    /// Removes the API key from text quoted back from the service or the network stack.
    pub(super) fn redact(&self, s: &str) -> String {
        match &self.inner.key {
            Some(k) if s.contains(k.as_str()) => s.replace(k.as_str(), "<redacted>"),
            _ => s.to_owned(),
        }
    }
}

/// The width that fits a `w`×`h` picture into `side`×`side` (never wider than `w`): for
/// portrait pictures the height is the long side, so the width is smaller than `side`.
pub(crate) fn fit_width(w: u32, h: u32, side: u32) -> u32 {
    let fit = if w >= h {
        side
    } else {
        ((u64::from(side) * u64::from(w)) / u64::from(h.max(1))) as u32
    };
    fit.clamp(crate::frame::MIN_WIDTH, w.max(crate::frame::MIN_WIDTH))
}

fn data_url(jpeg: &[u8]) -> String {
    let mut s = String::with_capacity(23 + jpeg.len().div_ceil(3) * 4);
    s.push_str("data:image/jpeg;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(jpeg, &mut s);
    s
}

pub(crate) fn check_text(field: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > MAX_TEXT {
        return Err(Error::invalid(
            field,
            format!("is {} bytes, more than {MAX_TEXT}", s.len()),
        ));
    }
    Ok(())
}

pub(super) fn missing(path: &str, field: &str) -> Error {
    Error::new(
        ErrorKind::ServiceError,
        format!("Moondream's answer to {path} has no {field:?} field"),
    )
}

fn status_error(path: &str, status: reqwest::StatusCode, text: &str, attempts: u32) -> Error {
    let said = if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    };
    let tries = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    let e = match status.as_u16() {
        401 | 403 => Error::new(
            ErrorKind::Unauthorized,
            format!(
                "Moondream answered {status} to {path}{said}: the API key was refused; check \
                 MOONDREAM_API_KEY (or apiKey)"
            ),
        ),
        429 => Error::new(
            ErrorKind::RateLimited,
            format!(
                "Moondream answered {status} to {path}{tries}{said}: too many requests for this \
                 key; slow down (e.g. a longer watch interval) or raise the plan's limit"
            ),
        ),
        404 => Error::new(
            ErrorKind::ServiceError,
            format!("Moondream answered {status} to {path}{said}: check baseUrl (it ends in /v1)"),
        ),
        _ => Error::new(
            ErrorKind::ServiceError,
            format!(
                "Moondream answered {status} to {path}{tries}{}",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                }
            ),
        ),
    };
    e.with_status(status.as_u16())
}

/// The service's explanation in an error body: `error` (a string or `{message}`),
/// `message` or `detail`, else the text itself.
fn service_text(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = error_message(&v)
            .or_else(|| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .or_else(|| v.get("detail").map(value_text))
        {
            return excerpt(&m);
        }
    }
    excerpt(String::from_utf8_lossy(body).trim())
}

/// `{"error": …}` in a body: Moondream Station's failure (with `200 OK`) and the cloud's
/// error bodies.
pub(crate) fn error_message(v: &serde_json::Value) -> Option<String> {
    match v.get("error")? {
        serde_json::Value::Null | serde_json::Value::Bool(false) => None,
        serde_json::Value::Object(o) => Some(
            o.get("message")
                .map(value_text)
                .unwrap_or_else(|| serde_json::Value::Object(o.clone()).to_string()),
        ),
        other => Some(value_text(other)),
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most [`MAX_QUOTE`] characters of `s` on one line.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_QUOTE)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > MAX_QUOTE {
        out.push('…');
    }
    out
}

pub(super) async fn read_limited(
    mut resp: reqwest::Response,
) -> std::result::Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

pub(super) enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

impl MoondreamClient {
    pub(super) fn read_error(&self, path: &str, e: ReadError) -> Error {
        match e {
            ReadError::Http(e) => self.transport_error(path, &e),
            ReadError::TooLarge => Error::new(
                ErrorKind::ServiceError,
                format!(
                    "Moondream's answer to {path} is larger than {} MiB",
                    MAX_BODY >> 20
                ),
            ),
        }
    }
}

/// The innermost cause of a network error ("Connection refused (os error 111)"), which says
/// more than reqwest's "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_width_keeps_the_long_side_in_bounds() {
        assert_eq!(fit_width(1280, 720, 768), 768);
        assert_eq!(fit_width(720, 1280, 768), 432);
        assert_eq!(fit_width(640, 480, 768), 640);
        assert_eq!(fit_width(4000, 4000, 768), 768);
        assert_eq!(fit_width(100, 20_000, 768), 16);
        for (w, h) in [
            (1280, 720),
            (720, 1280),
            (1920, 1080),
            (1080, 1920),
            (999, 1001),
        ] {
            let nw = fit_width(w, h, 768) & !1;
            let nh = ((u64::from(h) * u64::from(nw)) / u64::from(w)) as u32 & !1;
            assert!(nw.max(nh) <= 768, "{w}x{h} -> {nw}x{nh}");
            assert!(nw.max(nh) >= 760, "{w}x{h} -> {nw}x{nh} wastes the limit");
        }
    }

    #[test]
    fn error_texts() {
        let body = br#"{"error": {"message": "invalid key"}}"#;
        assert_eq!(service_text(body), "invalid key");
        assert_eq!(service_text(br#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(service_text(b"  oops \n"), "oops");
        assert_eq!(excerpt(&"x".repeat(400)).chars().count(), MAX_QUOTE + 1);
        let e = status_error("/query", reqwest::StatusCode::UNAUTHORIZED, "", 1);
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.message().contains("MOONDREAM_API_KEY"), "{e}");
        let e = status_error("/query", reqwest::StatusCode::TOO_MANY_REQUESTS, "slow", 3);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.message().contains("after 3 attempts"), "{e}");
        let e = status_error("/query", reqwest::StatusCode::BAD_REQUEST, "bad image", 1);
        assert_eq!(e.kind(), ErrorKind::ServiceError);
        assert!(e.message().ends_with(": bad image"), "{e}");
        assert_eq!(
            error_message(&serde_json::json!({"error": null, "answer": "x"})),
            None
        );
    }

    #[test]
    fn data_url_is_base64_jpeg() {
        let u = data_url(&[0xFF, 0xD8, 0xFF]);
        assert_eq!(u, "data:image/jpeg;base64,/9j/");
    }
}
