//! Video decoding: one [`VideoDecoder`] per camera, for H.264 or H.265, backed by the
//! system's libavcodec when it can be loaded, else (H.264 only) by OpenH264 (built from
//! source, always there).
//!
//! | codec | libavcodec | OpenH264 |
//! |---|---|---|
//! | H.264 | yes | yes |
//! | H.265 Main, Main 10 | yes | no: [`ErrorKind::UnsupportedCodec`] saying what to install |
//!
//! Both take the same input, Annex B access units as retina's `FrameFormat::SIMPLE` produces
//! them (parameter sets before every keyframe), and give the same I420 pictures: H.264
//! decoding is exactly specified, and the tests check that both backends agree bit for bit.
//! libavcodec is about twice as fast on High-profile CABAC streams, which is what cameras
//! send; it is loaded at run time ([`libavcodec`]), never linked or shipped with camkit.
//! Main 10 pictures (10-bit samples) are rounded to 8 bits as they are copied out.
//!
//! They differ on damaged input: OpenH264 reports an error for a frame whose references
//! are missing, libavcodec conceals the damage and returns a picture.

pub(crate) mod hevc;
mod libavcodec;
mod openh264;

use crate::config::DecoderChoice;
use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

/// A compressed video format camkit decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 (AVC).
    H264,
    /// H.265 (HEVC): libavcodec only.
    H265,
}

impl Codec {
    /// `H.264`, `H.265`: for messages.
    pub fn label(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
        }
    }
}

/// The video decoder implementation a camera uses, resolved from a [`DecoderChoice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderBackend {
    /// OpenH264, built into camkit (H.264 only).
    OpenH264,
    /// FFmpeg's libavcodec, loaded from the system at run time (H.264 and H.265).
    Libavcodec,
}

/// How to get libavcodec, for messages.
const INSTALL: &str = "install FFmpeg's libavcodec (Debian/Ubuntu: apt-get install \
                       libavcodec59, or the libavcodec58/60/61 of your release)";

impl DecoderBackend {
    /// The backend a choice stands for here: `auto` is libavcodec when it can be loaded,
    /// else OpenH264. Asking for libavcodec where it cannot be loaded is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the field `decoder`
    /// that says what to install.
    pub fn resolve(choice: DecoderChoice) -> Result<Self> {
        match choice {
            DecoderChoice::OpenH264 => Ok(DecoderBackend::OpenH264),
            DecoderChoice::Auto => Ok(match libavcodec::api() {
                Ok(_) => DecoderBackend::Libavcodec,
                Err(_) => DecoderBackend::OpenH264,
            }),
            DecoderChoice::Libavcodec => match libavcodec::api() {
                Ok(_) => Ok(DecoderBackend::Libavcodec),
                Err(why) => Err(Error::invalid(
                    "decoder",
                    format!(
                        "libavcodec cannot be loaded ({why}); {INSTALL} or choose decoder auto \
                         or openh264"
                    ),
                )),
            },
        }
    }

    /// What the status shows: `openh264`, or `libavcodec` with the loaded library's version
    /// (`libavcodec 59.37.100`).
    pub fn name(self) -> String {
        match self {
            DecoderBackend::OpenH264 => "openh264".to_owned(),
            DecoderBackend::Libavcodec => match libavcodec::api() {
                Ok(api) => format!("libavcodec {}", api.version()),
                Err(_) => "libavcodec".to_owned(),
            },
        }
    }

    /// Whether this backend decodes `codec`.
    pub fn decodes(self, codec: Codec) -> bool {
        !(self == DecoderBackend::OpenH264 && codec == Codec::H265)
    }

    /// The [`ErrorKind::UnsupportedCodec`] error of a camera whose `codec` this backend does
    /// not decode (H.265 on OpenH264), saying what to do: install libavcodec, or choose
    /// another decoder when it is there.
    pub(crate) fn refuses(self, codec: Codec, what: &str) -> Error {
        let fix = match libavcodec::api() {
            // Loaded, so OpenH264 was asked for by name.
            Ok(_) => "choose decoder auto or libavcodec".to_owned(),
            Err(why) => format!("{INSTALL} (here: {why})"),
        };
        Error::new(
            ErrorKind::UnsupportedCodec,
            format!(
                "{what} {} video, which OpenH264 does not decode: {} needs FFmpeg's \
                 libavcodec; {fix}, or switch the camera stream to H.264",
                codec.label(),
                codec.label()
            ),
        )
    }
}

enum Inner {
    OpenH264(openh264::OpenH264Decoder),
    Libavcodec(libavcodec::AvDecoder),
}

/// One camera's video decoder. Not `Sync`: one thread drives it.
pub struct VideoDecoder {
    inner: Inner,
    codec: Codec,
}

impl VideoDecoder {
    /// A new decoder of `codec` of the `auto` choice: libavcodec when it can be loaded, else
    /// OpenH264.
    pub fn new(codec: Codec) -> Result<Self> {
        Self::with_backend(codec, DecoderBackend::resolve(DecoderChoice::Auto)?)
    }

    /// A new decoder of `codec` on this backend; H.265 on OpenH264 is an
    /// [`ErrorKind::UnsupportedCodec`] that says to install libavcodec.
    pub fn with_backend(codec: Codec, backend: DecoderBackend) -> Result<Self> {
        if !backend.decodes(codec) {
            return Err(backend.refuses(codec, "the stream is"));
        }
        let inner = match backend {
            DecoderBackend::OpenH264 => Inner::OpenH264(openh264::OpenH264Decoder::new()?),
            DecoderBackend::Libavcodec => Inner::Libavcodec(libavcodec::AvDecoder::new(codec)?),
        };
        Ok(VideoDecoder { inner, codec })
    }

    /// The backend this decoder runs on.
    pub fn backend(&self) -> DecoderBackend {
        match self.inner {
            Inner::OpenH264(_) => DecoderBackend::OpenH264,
            Inner::Libavcodec(_) => DecoderBackend::Libavcodec,
        }
    }

    /// The codec this decoder decodes.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Decodes one access unit; returns the picture it completes, if any.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<Picture>> {
        match &mut self.inner {
            Inner::OpenH264(d) => d.decode(annexb),
            Inner::Libavcodec(d) => d.decode(annexb),
        }
    }

    /// Gets out the pictures the decoder holds back for reordering (streams with B-frames)
    /// and returns the last of them, the newest in display order, or `None` when it holds
    /// none. Afterwards the decoder must be fed from a keyframe again (libavcodec drops its
    /// reference pictures).
    ///
    /// Streams without B-frames never need it: each access unit gives its picture at once.
    pub fn drain(&mut self) -> Result<Option<Picture>> {
        match &mut self.inner {
            Inner::OpenH264(d) => d.drain(),
            Inner::Libavcodec(d) => d.drain(),
        }
    }

    /// Decodes one access unit and discards the picture (advances reference state only);
    /// returns whether it completed one.
    ///
    /// Used to catch up on a group of pictures before the one a snapshot needs: it skips
    /// the copy out of the decoder's buffers.
    pub fn decode_discard(&mut self, annexb: &[u8]) -> Result<bool> {
        match &mut self.inner {
            Inner::OpenH264(d) => d.decode_discard(annexb),
            Inner::Libavcodec(d) => d.decode_discard(annexb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const JUNK: [&[u8]; 6] = [
        b"",
        &[0, 0, 0, 1, 0x67, 0xff, 0xff],
        &[0xde, 0xad, 0xbe, 0xef],
        &[0, 0, 1, 0x65, 1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80],
        &[0, 0, 0, 1, 0x41, 0x9a, 0, 0, 0, 1, 0x61, 0xff, 0xee],
    ];

    fn junk_is_an_error_or_nothing(backend: DecoderBackend) {
        let mut d = VideoDecoder::with_backend(Codec::H264, backend).unwrap();
        assert_eq!(d.backend(), backend);
        for junk in JUNK {
            match d.decode(junk) {
                Ok(None) => {}
                Ok(Some(p)) => panic!("{backend:?}: picture from junk: {p:?}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
            }
            match d.decode_discard(junk) {
                Ok(false) => {}
                Ok(true) => panic!("{backend:?}: picture from junk"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
            }
        }
    }

    #[test]
    fn openh264_garbage_is_an_error_or_nothing_never_a_panic() {
        junk_is_an_error_or_nothing(DecoderBackend::OpenH264);
    }

    /// Needs the system's libavcodec, which the test command installs.
    #[test]
    fn libavcodec_garbage_is_an_error_or_nothing_never_a_panic() {
        junk_is_an_error_or_nothing(DecoderBackend::Libavcodec);
    }

    /// H.265 junk: parameter sets, slices and fragments of them that mean nothing.
    const HEVC_JUNK: [&[u8]; 5] = [
        &[0, 0, 0, 1, 0x40, 0x01, 0x0c, 0xff, 0xff],
        &[0, 0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 3, 0],
        &[0, 0, 0, 1, 0x26, 0x01, 0xaf, 0x12, 0x34],
        &[0, 0, 1, 0x2a, 0x01, 0xff, 0, 0, 1, 0x02, 0x01, 0xd0],
        &[0, 0, 0, 1, 0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40],
    ];

    /// Needs the system's libavcodec, which the test command installs.
    #[test]
    fn libavcodec_h265_garbage_is_an_error_or_nothing_never_a_panic() {
        let mut d = VideoDecoder::with_backend(Codec::H265, DecoderBackend::Libavcodec).unwrap();
        assert_eq!(d.codec(), Codec::H265);
        for junk in HEVC_JUNK.iter().chain(JUNK.iter()) {
            match d.decode(junk) {
                Ok(None) => {}
                Ok(Some(p)) => panic!("picture from junk: {p:?}"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
            }
        }
        assert!(d.drain().is_ok_and(|p| p.is_none()));
    }

    #[test]
    fn openh264_refuses_h265_saying_what_to_do() {
        assert!(!DecoderBackend::OpenH264.decodes(Codec::H265));
        assert!(DecoderBackend::OpenH264.decodes(Codec::H264));
        assert!(DecoderBackend::Libavcodec.decodes(Codec::H265));
        let Err(e) = VideoDecoder::with_backend(Codec::H265, DecoderBackend::OpenH264) else {
            panic!("OpenH264 made an H.265 decoder");
        };
        assert_eq!(e.kind(), ErrorKind::UnsupportedCodec, "{e}");
        // libavcodec is installed here, so OpenH264 was chosen by name: choose another.
        assert!(
            e.message().contains("choose decoder auto or libavcodec"),
            "{e}"
        );
        assert!(e.message().contains("H.265"), "{e}");
    }

    #[test]
    fn choices_resolve() {
        assert_eq!(
            DecoderBackend::resolve(DecoderChoice::OpenH264).unwrap(),
            DecoderBackend::OpenH264
        );
        assert_eq!(DecoderBackend::OpenH264.name(), "openh264");
        // The test command installs libavcodec, so here it is what `auto` picks.
        assert_eq!(
            DecoderBackend::resolve(DecoderChoice::Auto).unwrap(),
            DecoderBackend::Libavcodec
        );
        let name = DecoderBackend::Libavcodec.name();
        let version = name.strip_prefix("libavcodec ").expect(&name);
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!((58..=61).contains(&parts[0]), "{name}");
    }
}
