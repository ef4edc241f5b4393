//! The OpenH264 backend (built from source with NASM, so always available).
//!
//! Input is Annex B access units as retina's `FrameFormat::SIMPLE` produces them
//! (parameter sets before every keyframe), which OpenH264 takes as they are.
//!
//! Output order: OpenH264 is asked to flush after every access unit, which gives each
//! picture at once, as libavcodec does on streams without B-frames. On a stream with
//! B-frames that flush puts pictures out of display order and, after a few frames, makes
//! OpenH264 fail; so once the stream shows it reorders (the SPS's `max_num_reorder_frames`,
//! or a B slice), the decoder keeps pictures back for reordering as libavcodec does, and
//! [`OpenH264Decoder::drain`] gets them out. Telling costs a look at the first slice header
//! of each access unit (a few bytes) until then.

use openh264::decoder::{DecodeOptions, DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

/// One OpenH264 decoder.
pub(super) struct OpenH264Decoder {
    inner: Decoder,
    /// The stream reorders pictures (B-frames): no flush after each access unit.
    reorders: bool,
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
        Ok(OpenH264Decoder {
            inner,
            reorders: false,
        })
    }

    fn options(&mut self, annexb: &[u8]) -> DecodeOptions {
        if !self.reorders && reorders(annexb) {
            tracing::debug!("H.264 stream with B-frames: OpenH264 keeps pictures for reordering");
            self.reorders = true;
        }
        DecodeOptions::new().flush_after_decode(if self.reorders {
            Flush::NoFlush
        } else {
            Flush::Flush
        })
    }

    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Picture>> {
        let options = self.options(annexb);
        match self.inner.decode_with_options(annexb, options) {
            Ok(Some(yuv)) => to_picture(&yuv).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::new(
                ErrorKind::Decode,
                format!("H.264 decode failed: {e}"),
            )),
        }
    }

    pub fn decode_discard(&mut self, annexb: &[u8]) -> Result<bool> {
        let options = self.options(annexb);
        match self.inner.decode_with_options(annexb, options) {
            Ok(p) => Ok(p.is_some()),
            Err(e) => Err(Error::new(
                ErrorKind::Decode,
                format!("H.264 decode failed: {e}"),
            )),
        }
    }
}

impl OpenH264Decoder {
    /// The last of the pictures held back for reordering, if any.
    pub fn drain(&mut self) -> Result<Option<Picture>> {
        let frames = self
            .inner
            .flush_remaining()
            .map_err(|e| Error::new(ErrorKind::Decode, format!("H.264 decode failed: {e}")))?;
        frames.last().map(to_picture).transpose()
    }
}

/// Whether an access unit shows that its stream reorders pictures: an SPS announcing
/// reordering, or a B slice. Looks at NAL units up to the first slice only.
fn reorders(annexb: &[u8]) -> bool {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitRead, BitReader};
    for nal in nal_units(annexb) {
        let Some(&header) = nal.first() else { continue };
        match header & 0x1f {
            7 => {
                let Ok(rbsp) = decode_nal(nal) else { continue };
                let reorder = SeqParameterSet::from_bits(BitReader::new(&*rbsp))
                    .ok()
                    .and_then(|s| s.vui_parameters)
                    .and_then(|v| v.bitstream_restrictions)
                    .is_some_and(|b| b.max_num_reorder_frames > 0);
                if reorder {
                    return true;
                }
            }
            1 | 5 => {
                // first_mb_in_slice and slice_type lead the slice header: a few bytes.
                let head = &nal[..nal.len().min(16)];
                let Ok(rbsp) = decode_nal(head) else {
                    return false;
                };
                let mut r = BitReader::new(&rbsp[..]);
                let slice_type = r
                    .read_ue("first_mb_in_slice")
                    .and_then(|_| r.read_ue("slice_type"));
                return matches!(slice_type, Ok(t) if t % 5 == 1);
            }
            _ => {}
        }
    }
    false
}

/// The NAL units of an Annex B access unit, without start codes (trailing zero bytes of
/// a 4-byte start code are left on the unit before it, which decoding ignores).
fn nal_units(annexb: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = annexb;
    std::iter::from_fn(move || loop {
        let start = rest.windows(3).position(|w| w == [0, 0, 1])? + 3;
        rest = &rest[start..];
        let end = rest
            .windows(3)
            .position(|w| w == [0, 0, 1])
            .unwrap_or(rest.len());
        let nal = &rest[..end];
        if !nal.is_empty() {
            return Some(nal);
        }
    })
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
