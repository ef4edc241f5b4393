//! What Moondream answers, as typed values (serde camelCase, as the bindings hand them on).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How long a caption should be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CaptionLength {
    /// One short sentence.
    Short,
    /// A few sentences (Moondream's default).
    #[default]
    Normal,
    /// A detailed description (newer Moondream versions; older ones answer as `normal`).
    Long,
}

impl CaptionLength {
    /// The value Moondream's API takes: `short`, `normal`, `long`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptionLength::Short => "short",
            CaptionLength::Normal => "normal",
            CaptionLength::Long => "long",
        }
    }
}

impl std::str::FromStr for CaptionLength {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "short" => Ok(CaptionLength::Short),
            "normal" | "" => Ok(CaptionLength::Normal),
            "long" => Ok(CaptionLength::Long),
            other => Err(Error::invalid(
                "length",
                format!("{other:?} is not one of short, normal, long"),
            )),
        }
    }
}

/// The answer to a question about a picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryAnswer {
    /// The answer text, as Moondream gave it.
    pub answer: String,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// A caption of a picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caption {
    /// The caption text.
    pub caption: String,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// One object found by `detect`: its bounding box, each coordinate a fraction of the
/// picture's width or height (0 = left/top, 1 = right/bottom).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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

/// The objects `detect` found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detections {
    /// Every object found (empty when none).
    pub objects: Vec<DetectedObject>,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// One point found by `point`: fractions of the picture's width and height.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// 0 = left edge, 1 = right edge.
    pub x: f64,
    /// 0 = top edge, 1 = bottom edge.
    pub y: f64,
}

/// The points `point` found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Points {
    /// Every point found (empty when none).
    pub points: Vec<Point>,
    /// The cloud's id of the request (Moondream Station gives none).
    pub request_id: Option<String>,
}

/// A result about one camera's picture, with which picture it was.
///
/// In JSON the result's fields sit beside the picture's:
/// `{"cameraId":"door","seq":812,"capturedAtMs":…,"width":768,"height":432,"answer":"Yes","requestId":…}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraAnswer<T> {
    /// The camera asked about.
    pub camera_id: String,
    /// The picture's sequence number (as in [`Frame::seq`](crate::Frame::seq)).
    pub seq: u64,
    /// When camkit received the picture from the camera, in ms since the Unix epoch.
    pub captured_at_ms: u64,
    /// Width of the picture sent, in pixels.
    pub width: u32,
    /// Height of the picture sent, in pixels.
    pub height: u32,
    /// What Moondream answered.
    #[serde(flatten)]
    pub result: T,
}

impl<T> CameraAnswer<T> {
    /// The same picture with another result (e.g. a stream's collected text).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> CameraAnswer<U> {
        CameraAnswer {
            camera_id: self.camera_id,
            seq: self.seq,
            captured_at_ms: self.captured_at_ms,
            width: self.width,
            height: self.height,
            result: f(self.result),
        }
    }
}

/// The bodies Moondream answers with (snake_case on the wire). Every field is optional
/// so a missing one becomes a clear error instead of a serde message; `error` is Moondream
/// Station's way of failing with `200 OK`.
#[derive(Deserialize, Default)]
pub(crate) struct Wire {
    pub request_id: Option<String>,
    pub answer: Option<String>,
    pub caption: Option<String>,
    pub objects: Option<Vec<WireBox>>,
    pub points: Option<Vec<WirePoint>>,
}

#[derive(Deserialize)]
pub(crate) struct WireBox {
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
}

#[derive(Deserialize)]
pub(crate) struct WirePoint {
    pub x: f64,
    pub y: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_answer_flattens_camel_case() {
        let a = CameraAnswer {
            camera_id: "door".into(),
            seq: 7,
            captured_at_ms: 1000,
            width: 768,
            height: 432,
            result: Detections {
                objects: vec![DetectedObject {
                    x_min: 0.1,
                    y_min: 0.2,
                    x_max: 0.3,
                    y_max: 0.4,
                }],
                request_id: None,
            },
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["cameraId"], "door");
        assert_eq!(v["capturedAtMs"], 1000);
        assert_eq!(v["objects"][0]["xMin"], 0.1);
        assert!(v["requestId"].is_null());
        let back: CameraAnswer<Detections> = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn caption_length_names() {
        assert_eq!(
            "short".parse::<CaptionLength>().unwrap(),
            CaptionLength::Short
        );
        assert_eq!(CaptionLength::Long.as_str(), "long");
        assert!("tiny".parse::<CaptionLength>().is_err());
        assert_eq!(
            serde_json::to_string(&CaptionLength::Normal).unwrap(),
            "\"normal\""
        );
    }
}
