//! H.264 decoding with OpenH264 (built from source with NASM).
//!
//! Input is Annex B access units as retina's `FrameFormat::SIMPLE` produces them
//! (parameter sets before every keyframe), which OpenH264 takes as they are.

use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

/// One camera's H.264 decoder. Not `Sync`: one thread drives it.
pub struct H264Decoder {
    inner: Decoder,
}

impl H264Decoder {
    /// A new decoder.
    pub fn new() -> Result<Self> {
        let config = DecoderConfig::new().flush_after_decode(Flush::Flush);
        let inner = Decoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create H.264 decoder: {e}"),
            )
        })?;
        Ok(H264Decoder { inner })
    }

    /// Decodes one access unit; returns the picture it completes, if any.
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

    /// Decodes one access unit and discards the picture (advances reference state only).
    ///
    /// Used to catch up on a group of pictures before the one a snapshot needs: it skips
    /// the copy out of the decoder's buffers.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        let mut d = H264Decoder::new().unwrap();
        for junk in [
            &b""[..],
            &[0, 0, 0, 1, 0x67, 0xff, 0xff][..],
            &[0xde, 0xad, 0xbe, 0xef][..],
            &[0, 0, 1, 0x65, 1, 2, 3, 4, 5, 6, 7, 8][..],
        ] {
            match d.decode(junk) {
                Ok(None) => {}
                Ok(Some(p)) => panic!("picture from junk: {p:?}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Decode),
            }
        }
    }
}
