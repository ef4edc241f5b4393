//! Which received frames may go on to the decoder and the video hub.
//!
//! Over UDP, a stream joined mid-frame, late or lost packets and data the depacketizer
//! refuses are normal; none of them ends the session. A frame is skipped when it is
//! incomplete (it does not start at its picture's first macroblock, or retina reported an
//! error while it was being assembled); the frames after a skip, or after lost packets,
//! may reference what was lost, so everything up to the next keyframe is withheld too.
//! Nothing a decoder receives references lost data.
//!
//! The H.264 check is written here rather than taken from a crate: it reads one bit of
//! the first slice header (`first_mb_in_slice == 0` is the ue(v) code `1`), which needs
//! no parser, and [`h264_reader`] would parse the whole header for it.

use super::decode_worker::VideoCodec;

/// What to do with one received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Whole, and decodable with what was delivered before it.
    Deliver,
    /// Incomplete: part of it never arrived (counted in `partialFramesSkipped`).
    SkipPartial,
    /// Whole, but after a skip or a loss and not a keyframe (counted in `framesDropped`).
    SkipUntilKeyframe,
}

/// The per-session state: whether a keyframe is needed before anything is delivered.
pub(crate) struct DamageGate {
    codec: VideoCodec,
    need_keyframe: bool,
    /// A depacketization error was counted since the last frame (one per burst: a frame
    /// joined in its middle yields one error per remaining packet).
    in_error: bool,
}

impl DamageGate {
    pub fn new(codec: VideoCodec) -> Self {
        DamageGate {
            codec,
            need_keyframe: false,
            in_error: false,
        }
    }

    /// retina could not depacketize what arrived: the frame being assembled is lost.
    /// Returns whether this starts a new burst, i.e. one more partial frame skipped.
    pub fn on_error(&mut self) -> bool {
        self.need_keyframe = true;
        !std::mem::replace(&mut self.in_error, true)
    }

    /// Judges a frame retina assembled; `loss` is the RTP packets lost just before it.
    pub fn on_frame(&mut self, keyframe: bool, loss: u64, data: &[u8]) -> Verdict {
        self.in_error = false;
        if loss > 0 {
            // What was lost belonged to this frame's start or to frames before it.
            self.need_keyframe = true;
        }
        if !starts_picture(self.codec, data) {
            self.need_keyframe = true;
            return Verdict::SkipPartial;
        }
        if self.need_keyframe {
            if !keyframe {
                return Verdict::SkipUntilKeyframe;
            }
            self.need_keyframe = false;
        }
        Verdict::Deliver
    }
}

/// Whether a frame holds its picture from the start. H.264: the first slice (Annex B)
/// starts at macroblock 0. A JPEG frame is whole once retina assembled it. A frame with no
/// slice to judge passes.
pub(crate) fn starts_picture(codec: VideoCodec, data: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => h264_first_slice_at_mb0(data).unwrap_or(true),
        #[allow(unreachable_patterns)]
        _ => true,
    }
}

/// `Some(first_mb_in_slice == 0)` of the first VCL NAL unit of an Annex B access unit.
fn h264_first_slice_at_mb0(au: &[u8]) -> Option<bool> {
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            let nal = &au[i + 3..];
            let nal_type = nal.first()? & 0x1f;
            // 1: non-IDR slice, 2: partition A (carries the slice header), 5: IDR slice.
            if matches!(nal_type, 1 | 2 | 5) {
                return Some(nal.get(1)? & 0x80 != 0);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e];
    fn slice(idr: bool, first_mb_zero: bool) -> Vec<u8> {
        let mut v = SPS.to_vec();
        v.extend_from_slice(&[0, 0, 1, if idr { 0x65 } else { 0x41 }]);
        v.push(if first_mb_zero { 0x88 } else { 0x1a });
        v.extend_from_slice(&[0x84, 0x00]);
        v
    }

    #[test]
    fn first_slice_must_start_at_macroblock_zero() {
        assert!(starts_picture(VideoCodec::H264, &slice(true, true)));
        assert!(!starts_picture(VideoCodec::H264, &slice(true, false)));
        assert!(!starts_picture(VideoCodec::H264, &slice(false, false)));
        // Nothing to judge.
        assert!(starts_picture(VideoCodec::H264, SPS));
        assert!(starts_picture(VideoCodec::Jpeg, &[0xff, 0xd8]));
    }

    #[test]
    fn after_a_skip_only_a_keyframe_is_delivered() {
        let mut g = DamageGate::new(VideoCodec::H264);
        let p = slice(false, true);
        let k = slice(true, true);
        assert_eq!(g.on_frame(false, 0, &p), Verdict::Deliver);
        // A burst of errors counts once.
        assert!(g.on_error());
        assert!(!g.on_error());
        assert_eq!(g.on_frame(false, 0, &p), Verdict::SkipUntilKeyframe);
        assert_eq!(
            g.on_frame(true, 0, &slice(true, false)),
            Verdict::SkipPartial
        );
        assert_eq!(g.on_frame(true, 0, &k), Verdict::Deliver);
        assert_eq!(g.on_frame(false, 0, &p), Verdict::Deliver);
        // Lost packets before a P-frame: wait for the keyframe; before a whole keyframe: fine.
        assert_eq!(g.on_frame(false, 3, &p), Verdict::SkipUntilKeyframe);
        assert_eq!(g.on_frame(true, 2, &k), Verdict::Deliver);
        // A new burst after frames counts again.
        assert!(g.on_error());
    }

    #[test]
    fn jpeg_frames_stand_alone() {
        let mut g = DamageGate::new(VideoCodec::Jpeg);
        assert!(g.on_error());
        assert_eq!(g.on_frame(true, 0, &[0xff, 0xd8]), Verdict::Deliver);
    }
}
