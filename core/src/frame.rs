//! Frames handed to callers, and the options that shape them.

use std::time::SystemTime;

use bytes::Bytes;

use crate::error::{Error, Result};

/// Smallest `max_width` accepted.
pub const MIN_WIDTH: u32 = 16;

/// A JPEG picture of one camera at one moment.
///
/// `jpeg` is reference-counted: cloning a frame, or handing the same frame to many
/// subscribers, copies no picture data.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The JPEG file bytes.
    pub jpeg: Bytes,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// The camera's picture sequence number (1 for the first picture, increasing).
    pub seq: u64,
    /// When camkit received the frame's data from the camera.
    pub captured_at: SystemTime,
}

impl Frame {
    /// Capture time in milliseconds since the Unix epoch.
    pub fn captured_at_ms(&self) -> u64 {
        crate::util::epoch_ms(self.captured_at)
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("bytes", &self.jpeg.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("seq", &self.seq)
            .finish()
    }
}

/// Which of a camera's streams serves a snapshot or subscription (see
/// [`CameraConfig::sub_stream`](crate::CameraConfig::sub_stream)).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StreamChoice {
    /// The sub-stream when it streams and `max_width` is given and at most its width (it
    /// then loses nothing against the main stream), else the main stream.
    #[default]
    Auto,
    /// Always the main stream.
    Main,
    /// The sub-stream whenever it streams, whatever the size asked (for the vision model
    /// and the viewer's grid); the main stream when the camera has none or it is off.
    Sub,
}

impl std::str::FromStr for StreamChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(StreamChoice::Auto),
            "main" => Ok(StreamChoice::Main),
            "sub" => Ok(StreamChoice::Sub),
            other => Err(Error::invalid(
                "stream",
                format!("{other:?} is not one of auto, main, sub"),
            )),
        }
    }
}

impl std::fmt::Display for StreamChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamChoice::Auto => "auto",
            StreamChoice::Main => "main",
            StreamChoice::Sub => "sub",
        })
    }
}

/// How a snapshot or a subscription's frames are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SnapshotOptions {
    /// Scale down to at most this many pixels wide (never up); `None` = full size.
    pub max_width: Option<u32>,
    /// JPEG quality 1–100; `None` = the camera's configured quality.
    pub quality: Option<u8>,
    /// Which stream serves it, for a camera with a sub-stream (default `auto`).
    pub stream: StreamChoice,
}

impl SnapshotOptions {
    /// Full size at the camera's quality.
    pub fn full() -> Self {
        Self::default()
    }

    /// Scaled to at most `w` pixels wide.
    pub fn max_width(mut self, w: u32) -> Self {
        self.max_width = Some(w);
        self
    }

    /// At JPEG quality `q`.
    pub fn quality(mut self, q: u8) -> Self {
        self.quality = Some(q);
        self
    }

    /// From the stream `stream` (see [`StreamChoice`]).
    pub fn stream(mut self, stream: StreamChoice) -> Self {
        self.stream = stream;
        self
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                return Err(Error::invalid("quality", "must be between 1 and 100"));
            }
        }
        if let Some(w) = self.max_width {
            if !(MIN_WIDTH..=16384).contains(&w) {
                return Err(Error::invalid(
                    "maxWidth",
                    format!("must be between {MIN_WIDTH} and 16384"),
                ));
            }
        }
        Ok(())
    }
}

/// Options for a frame subscription.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SubscribeOptions {
    /// At most this many frames per second (0.1–60).
    pub fps: f64,
    /// Scale down to at most this many pixels wide.
    pub max_width: Option<u32>,
    /// JPEG quality 1–100.
    pub quality: Option<u8>,
    /// Which stream serves it, for a camera with a sub-stream (default `auto`); looked at
    /// again while the subscription lives, so it moves to the main stream when the
    /// sub-stream fails and back when it returns.
    pub stream: StreamChoice,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            fps: 15.0,
            max_width: None,
            quality: None,
            stream: StreamChoice::Auto,
        }
    }
}

impl SubscribeOptions {
    /// At most `fps` frames per second, full size.
    pub fn fps(fps: f64) -> Self {
        SubscribeOptions {
            fps,
            ..Default::default()
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if !self.fps.is_finite() || !(0.1..=60.0).contains(&self.fps) {
            return Err(Error::invalid("fps", "must be between 0.1 and 60"));
        }
        self.encoding().validate()
    }

    pub(crate) fn encoding(&self) -> SnapshotOptions {
        SnapshotOptions {
            max_width: self.max_width,
            quality: self.quality,
            stream: self.stream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn options_validate_naming_fields() {
        assert!(SnapshotOptions::full().validate().is_ok());
        let e = SnapshotOptions::full().quality(0).validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().starts_with("quality"));
        let e = SnapshotOptions::full().max_width(3).validate().unwrap_err();
        assert!(e.message().starts_with("maxWidth"));
        let e = SubscribeOptions::fps(0.0).validate().unwrap_err();
        assert!(e.message().starts_with("fps"));
        assert!(SubscribeOptions::fps(f64::NAN).validate().is_err());
        assert!(SubscribeOptions::fps(15.0).validate().is_ok());
        for c in [StreamChoice::Auto, StreamChoice::Main, StreamChoice::Sub] {
            assert_eq!(c.to_string().parse::<StreamChoice>().unwrap(), c);
        }
        let e = "hd".parse::<StreamChoice>().unwrap_err();
        assert_eq!(e.field(), Some("stream"), "{e}");
        let o: SnapshotOptions =
            serde_json::from_str(r#"{"maxWidth":640,"stream":"sub"}"#).unwrap();
        assert_eq!(o.stream, StreamChoice::Sub);
    }
}
