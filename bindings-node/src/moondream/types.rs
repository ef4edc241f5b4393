//! What Moondream calls take and give in JS: options (converted to camkit's) and results.

use std::time::Duration;

use camkit::moondream::{CameraAnswer, MoondreamConfig, WatchOptions as CoreWatchOptions};
use napi_derive::napi;

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
    pub(super) fn into_core(self) -> MoondreamConfig {
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
    pub(super) fn into_core(self) -> CoreWatchOptions {
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
pub(super) fn picture<T>(a: CameraAnswer<T>) -> (String, f64, f64, u32, u32, T) {
    (
        a.camera_id,
        a.seq as f64,
        a.captured_at_ms as f64,
        a.width,
        a.height,
        a.result,
    )
}

pub(super) fn query_result(a: CameraAnswer<camkit::moondream::QueryAnswer>) -> QueryResult {
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

pub(super) fn caption_result(a: CameraAnswer<camkit::moondream::Caption>) -> CaptionResult {
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
}
