//! Annex B access units as retina's `FrameFormat::SIMPLE` hands them over: splitting into
//! NAL units (H.264 and H.265 alike), the H.264 parameter sets they carry, and the
//! length-prefixed form ISO BMFF samples need (ISO/IEC 14496-15 5.3.2; the H.265 parts
//! are in `hvcc`).

use crate::decode::Codec;

/// NAL unit types of ITU-T H.264 table 7-1 that the muxer looks at.
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B access unit, without start codes or trailing zero bytes.
pub(crate) fn nal_units(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| s - 3)
        .chain(std::iter::once(au.len()))
        .collect();
    starts.into_iter().zip(ends).filter_map(move |(s, e)| {
        let mut end = e;
        // The zero byte of a 4-byte start code and trailing_zero_8bits belong to no NAL.
        while end > s && au[end - 1] == 0 {
            end -= 1;
        }
        (end > s).then(|| &au[s..end])
    })
}

/// The SPS and PPS of an access unit (the first of each), when it carries both.
pub(crate) fn parameter_sets(au: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut sps = None;
    let mut pps = None;
    for nal in nal_units(au) {
        match nal[0] & 0x1f {
            NAL_SPS if sps.is_none() => sps = Some(nal.to_vec()),
            NAL_PPS if pps.is_none() => pps = Some(nal.to_vec()),
            _ => {}
        }
    }
    Some((sps?, pps?))
}

/// The access unit as a sample: each NAL unit behind its 4-byte big-endian length. The
/// parameter sets travel in the init segment's `avcC` or `hvcC` and delimiters mean
/// nothing in MP4, so both are left out.
pub(crate) fn to_length_prefixed(codec: Codec, au: &[u8], out: &mut Vec<u8>) {
    for nal in nal_units(au) {
        let keep = match codec {
            Codec::H264 => !matches!(nal[0] & 0x1f, NAL_SPS | NAL_PPS | NAL_AUD),
            Codec::H265 => super::hvcc::sample_keeps(nal),
        };
        if !keep {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
}

/// Width and height in pixels (cropping applied) from an SPS NAL unit.
pub(crate) fn sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = h264_reader::rbsp::decode_nal(sps).ok()?;
    h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(&*rbsp))
        .ok()?
        .pixel_dimensions()
        .ok()
}

/// The RFC 6381 codec string of an SPS: `avc1.` then profile_idc, the constraint flags
/// byte and level_idc, each as two hex digits.
pub(crate) fn rfc6381_codec(sps: &[u8]) -> Option<String> {
    let b = sps.get(1..4)?;
    Some(format!("avc1.{:02x}{:02x}{:02x}", b[0], b[1], b[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IDR access unit as retina's SIMPLE format gives it: AUD, SPS, PPS inline, then a
    /// slice, with both 4- and 3-byte start codes.
    const AU: &[u8] = &[
        0, 0, 0, 1, 0x09, 0xf0, // AUD
        0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, // SPS (High, level 4.0)
        0, 0, 1, 0x68, 0xee, 0x3c, 0x80, // PPS
        0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00, // IDR slice with trailing zeros
    ];

    #[test]
    fn splits_nal_units_with_either_start_code() {
        let nals: Vec<&[u8]> = nal_units(AU).collect();
        assert_eq!(nals.len(), 4);
        assert_eq!(nals[1], &[0x67, 0x64, 0x00, 0x28, 0xac]);
        assert_eq!(nals[2], &[0x68, 0xee, 0x3c, 0x80]);
        assert_eq!(nals[3], &[0x65, 0x88, 0x84]);
    }

    #[test]
    fn finds_parameter_sets_and_codec_string() {
        let (sps, pps) = parameter_sets(AU).unwrap();
        assert_eq!(sps[0], 0x67);
        assert_eq!(pps, vec![0x68, 0xee, 0x3c, 0x80]);
        assert_eq!(rfc6381_codec(&sps).unwrap(), "avc1.640028");
        assert!(
            parameter_sets(&AU[24..]).is_none(),
            "a slice alone has none"
        );
    }

    #[test]
    fn sample_keeps_only_slices_behind_lengths() {
        let mut out = Vec::new();
        to_length_prefixed(Codec::H264, AU, &mut out);
        assert_eq!(out, vec![0, 0, 0, 3, 0x65, 0x88, 0x84]);
    }
}
