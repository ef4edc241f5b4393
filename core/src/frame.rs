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

/// How a snapshot or a subscription's frames are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SnapshotOptions {
    /// Scale down to at most this many pixels wide (never up); `None` = full size.
    pub max_width: Option<u32>,
    /// JPEG quality 1–100; `None` = the camera's configured quality.
    pub quality: Option<u8>,
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
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            fps: 15.0,
            max_width: None,
            quality: None,
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
    }
}
