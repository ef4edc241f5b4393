//! H.264 decoding: one [`H264Decoder`] per camera, backed by the system's libavcodec when it
//! can be loaded, else by OpenH264 (built from source, always there).
//!
//! Both take the same input, Annex B access units as retina's `FrameFormat::SIMPLE` produces
//! them (parameter sets before every keyframe), and give the same I420 pictures: H.264
//! decoding is exactly specified, and the tests check that both backends agree bit for bit.
//! libavcodec is about twice as fast on High-profile CABAC streams, which is what cameras
//! send; it is loaded at run time ([`libavcodec`]), never linked or shipped with camkit.
//!
//! They differ on damaged input: OpenH264 reports an error for a frame whose references
//! are missing, libavcodec conceals the damage and returns a picture.

mod libavcodec;
mod openh264;

use crate::config::DecoderChoice;
use crate::error::{Error, Result};
use crate::picture::Picture;

/// The H.264 decoder implementation a camera uses, resolved from a [`DecoderChoice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderBackend {
    /// OpenH264, built into camkit.
    OpenH264,
    /// FFmpeg's libavcodec, loaded from the system at run time.
    Libavcodec,
}

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
                        "libavcodec cannot be loaded ({why}); install FFmpeg's libavcodec \
                         (Debian/Ubuntu: apt-get install libavcodec59, or the libavcodec58/60/61 \
                         of your release) or choose decoder auto or openh264"
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
}

enum Inner {
    OpenH264(openh264::OpenH264Decoder),
    Libavcodec(libavcodec::AvDecoder),
}

/// One camera's H.264 decoder. Not `Sync`: one thread drives it.
pub struct H264Decoder {
    inner: Inner,
}

impl H264Decoder {
    /// A new decoder of the `auto` choice: libavcodec when it can be loaded, else OpenH264.
    pub fn new() -> Result<Self> {
        Self::with_backend(DecoderBackend::resolve(DecoderChoice::Auto)?)
    }

    /// A new decoder of this backend.
    pub fn with_backend(backend: DecoderBackend) -> Result<Self> {
        let inner = match backend {
            DecoderBackend::OpenH264 => Inner::OpenH264(openh264::OpenH264Decoder::new()?),
            DecoderBackend::Libavcodec => Inner::Libavcodec(libavcodec::AvDecoder::new()?),
        };
        Ok(H264Decoder { inner })
    }

    /// The backend this decoder runs on.
    pub fn backend(&self) -> DecoderBackend {
        match self.inner {
            Inner::OpenH264(_) => DecoderBackend::OpenH264,
            Inner::Libavcodec(_) => DecoderBackend::Libavcodec,
        }
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
        let mut d = H264Decoder::with_backend(backend).unwrap();
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
