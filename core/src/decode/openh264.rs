//! The OpenH264 backend (built from source with NASM, so always available).
//!
//! Input is Annex B access units as retina's `FrameFormat::SIMPLE` produces them
//! (parameter sets before every keyframe), which OpenH264 takes as they are.

use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

/// One OpenH264 decoder.
pub(super) struct OpenH264Decoder {
    inner: Decoder,
}

impl OpenH264Decoder {
    pub fn new() -> Result<Self> {
        let config = DecoderConfig::new().flush_after_decode(Flush::Flush);
        let inner = Decoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create H.264 decoder: {e}"),
            )
        })?;
        Ok(OpenH264Decoder { inner })
    }

    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Picture>> {
        match self.inner.decode(annexb) {
            Ok(Some(yuv)) => to_picture(&yuv).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::new(
                ErrorKind::Decode,
                format!("H.264 decode failed: {e}"),
            )),
        }
    }

    pub fn decode_discard(&mut self, annexb: &[u8]) -> Result<bool> {
        match self.inner.decode(annexb) {
            Ok(p) => Ok(p.is_some()),
            Err(e) => Err(Error::new(
                ErrorKind::Decode,
                format!("H.264 decode failed: {e}"),
            )),
        }
    }
}

fn to_picture(yuv: &DecodedYUV<'_>) -> Result<Picture> {
    let (w, h) = yuv.dimensions();
    let (ys, us, vs) = yuv.strides();
    Picture::from_strided(
        w as u32,
        h as u32,
        [(yuv.y(), ys), (yuv.u(), us), (yuv.v(), vs)],
    )
    .ok_or_else(|| {
        Error::new(
            ErrorKind::Decode,
            format!("decoder returned planes that do not fit {w}x{h}"),
        )
    })
}
