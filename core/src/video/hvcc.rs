//! H.265 for the MP4 track: the parameter sets of an access unit, the few SPS fields the
//! `hvcC` box (ISO/IEC 14496-15 8.3.3, `HEVCDecoderConfigurationRecord`) and the RFC 6381
//! codec string (ISO/IEC 14496-15 annex E.3) need, and the NAL units a sample keeps.
//!
//! The SPS is read here rather than through retina, whose H.265 parser is not part of its
//! public API; h264-reader's RBSP reader (which supports H.265's two-byte NAL header) does
//! the emulation-prevention removal and Exp-Golomb decoding. Only the fields up to the bit
//! depths are read (ITU-T H.265 7.3.2.2.1): the rest of the SPS does not go into `hvcC`.

use std::io::Read;
use std::num::NonZeroUsize;

use h264_reader::rbsp::{BitRead, BitReader, ByteReader};
use mp4_atom::{HvcCArray, Hvcc};

use super::annexb::nal_units;

/// NAL unit types of ITU-T H.265 table 7-1 that the muxer looks at.
const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;
const NAL_AUD: u8 = 35;
/// RASL_N and RASL_R: leading pictures that refer to pictures before their CRA.
const NAL_RASL: std::ops::RangeInclusive<u8> = 8..=9;
/// The last VCL (picture data) type.
const LAST_VCL: u8 = 31;

fn nal_type(nal: &[u8]) -> u8 {
    (nal[0] >> 1) & 0x3f
}

/// What camkit reads of an H.265 SPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HevcSps {
    pub profile_space: u8,
    pub tier: bool,
    pub profile_idc: u8,
    pub compatibility: [u8; 4],
    pub constraints: [u8; 6],
    pub level_idc: u8,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// Picture size with the conformance window (cropping) applied.
    pub width: u32,
    pub height: u32,
}

/// An Exp-Golomb value that must fit a small range (a damaged SPS gives nonsense).
fn ue_max<R: BitRead>(r: &mut R, name: &'static str, max: u32) -> Option<u32> {
    r.read_ue(name).ok().filter(|&v| v <= max)
}

impl HevcSps {
    /// Parses an SPS NAL unit (its two-byte header first, no start code).
    pub fn parse(nal: &[u8]) -> Option<HevcSps> {
        if nal.len() < 3 || nal_type(nal) != NAL_SPS {
            return None;
        }
        let mut rbsp = Vec::with_capacity(nal.len());
        ByteReader::skipping_bytes(nal, NonZeroUsize::new(2)?)
            .read_to_end(&mut rbsp)
            .ok()?;
        let mut r = BitReader::new(&rbsp[..]);
        r.skip(4, "sps_video_parameter_set_id").ok()?;
        let max_sub_layers_minus1: u8 = r.read(3, "sps_max_sub_layers_minus1").ok()?;
        let temporal_id_nesting = r.read_bool("sps_temporal_id_nesting_flag").ok()?;
        // profile_tier_level(1, sps_max_sub_layers_minus1), 7.3.3.
        let profile_space: u8 = r.read(2, "general_profile_space").ok()?;
        let tier = r.read_bool("general_tier_flag").ok()?;
        let profile_idc: u8 = r.read(5, "general_profile_idc").ok()?;
        let mut compatibility = [0u8; 4];
        for b in &mut compatibility {
            *b = r.read(8, "general_profile_compatibility_flag").ok()?;
        }
        let mut constraints = [0u8; 6];
        for b in &mut constraints {
            *b = r.read(8, "general_constraint_flags").ok()?;
        }
        let level_idc: u8 = r.read(8, "general_level_idc").ok()?;
        let mut present = [(false, false); 8];
        for p in present.iter_mut().take(usize::from(max_sub_layers_minus1)) {
            *p = (
                r.read_bool("sub_layer_profile_present_flag").ok()?,
                r.read_bool("sub_layer_level_present_flag").ok()?,
            );
        }
        if max_sub_layers_minus1 > 0 {
            r.skip(
                2 * (8 - u32::from(max_sub_layers_minus1)),
                "reserved_zero_2bits",
            )
            .ok()?;
        }
        for &(profile, level) in present.iter().take(usize::from(max_sub_layers_minus1)) {
            if profile {
                r.skip(88, "sub_layer_profile").ok()?;
            }
            if level {
                r.skip(8, "sub_layer_level_idc").ok()?;
            }
        }
        ue_max(&mut r, "sps_seq_parameter_set_id", 15)?;
        let chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)? as u8;
        let separate_colour_planes =
            chroma_format_idc == 3 && r.read_bool("separate_colour_plane_flag").ok()?;
        let coded_width = ue_max(&mut r, "pic_width_in_luma_samples", 16_888)?;
        let coded_height = ue_max(&mut r, "pic_height_in_luma_samples", 16_888)?;
        let (mut crop_w, mut crop_h) = (0, 0);
        if r.read_bool("conformance_window_flag").ok()? {
            for i in 0..4 {
                let v = ue_max(&mut r, "conf_win_offset", 16_888)?;
                if i < 2 {
                    crop_w += v;
                } else {
                    crop_h += v;
                }
            }
        }
        // SubWidthC and SubHeightC of table 6-1 (1 for 4:0:0, 4:4:4 and separate planes).
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_planes) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let width = coded_width.checked_sub(sub_w * crop_w)?;
        let height = coded_height.checked_sub(sub_h * crop_h)?;
        let bit_depth_luma_minus8 = ue_max(&mut r, "bit_depth_luma_minus8", 8)? as u8;
        let bit_depth_chroma_minus8 = ue_max(&mut r, "bit_depth_chroma_minus8", 8)? as u8;
        (width > 0 && height > 0).then_some(HevcSps {
            profile_space,
            tier,
            profile_idc,
            compatibility,
            constraints,
            level_idc,
            max_sub_layers: max_sub_layers_minus1 + 1,
            temporal_id_nesting,
            chroma_format_idc,
            bit_depth_luma_minus8,
            bit_depth_chroma_minus8,
            width,
            height,
        })
    }

    /// The RFC 6381 codec string for an `hvc1` sample entry (ISO/IEC 14496-15 E.3), e.g.
    /// `hvc1.1.6.L93.B0`: profile space and profile, the compatibility flags in reverse bit
    /// order, tier and level, then the constraint bytes without trailing zero bytes.
    pub fn rfc6381_codec(&self) -> String {
        let space = ["", "A", "B", "C"][usize::from(self.profile_space & 3)];
        let compat = u32::from_be_bytes(self.compatibility).reverse_bits();
        let tier = if self.tier { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{compat:X}.{tier}{}",
            self.profile_idc, self.level_idc
        );
        let used = self
            .constraints
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraints[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }

    /// The `hvcC` box: these fields and the parameter sets, which a sample of an `hvc1`
    /// track must not repeat (so the arrays are complete).
    pub fn hvcc(&self, vps: &[u8], sps: &[u8], pps: &[u8]) -> Hvcc {
        let array = |t: u8, nal: &[u8]| HvcCArray {
            completeness: true,
            nal_unit_type: t,
            nalus: vec![nal.to_vec()],
        };
        Hvcc {
            configuration_version: 1,
            general_profile_space: self.profile_space,
            general_tier_flag: self.tier,
            general_profile_idc: self.profile_idc,
            general_profile_compatibility_flags: self.compatibility,
            general_constraint_indicator_flags: self.constraints,
            general_level_idc: self.level_idc,
            // 0: not signalled (the VUI's value is optional here).
            min_spatial_segmentation_idc: 0,
            parallelism_type: 0,
            chroma_format_idc: self.chroma_format_idc,
            bit_depth_luma_minus8: self.bit_depth_luma_minus8,
            bit_depth_chroma_minus8: self.bit_depth_chroma_minus8,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: self.max_sub_layers,
            temporal_id_nested: self.temporal_id_nesting,
            length_size_minus_one: 3,
            arrays: vec![
                array(NAL_VPS, vps),
                array(NAL_SPS, sps),
                array(NAL_PPS, pps),
            ],
        }
    }
}

/// The VPS, SPS and PPS of an access unit (the first of each), when it carries all three.
pub(crate) fn parameter_sets(au: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in nal_units(au).filter(|n| n.len() >= 2) {
        match nal_type(nal) {
            NAL_VPS if vps.is_none() => vps = Some(nal.to_vec()),
            NAL_SPS if sps.is_none() => sps = Some(nal.to_vec()),
            NAL_PPS if pps.is_none() => pps = Some(nal.to_vec()),
            _ => {}
        }
    }
    Some((vps?, sps?, pps?))
}

/// A NAL unit a sample keeps: not a parameter set (they are in `hvcC`) nor a delimiter.
pub(crate) fn sample_keeps(nal: &[u8]) -> bool {
    nal.len() < 2 || !matches!(nal_type(nal), NAL_VPS | NAL_SPS | NAL_PPS | NAL_AUD)
}

/// The access unit is a RASL picture: undecodable by a player that starts at the CRA
/// before it, so a joiner's replay leaves it out.
pub(crate) fn is_rasl(au: &[u8]) -> bool {
    nal_units(au)
        .filter(|n| n.len() >= 2)
        .map(nal_type)
        .find(|&t| t <= LAST_VCL)
        .is_some_and(|t| NAL_RASL.contains(&t))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// VPS, SPS and PPS of x265 (Main, 8-bit 4:2:0) at 320x240 and at 1920x1080 (coded as
    /// 1920x1088 with an 8-line conformance window).
    pub const VPS_320: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    pub const SPS_320: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x10,
    ];
    pub const SPS_1080: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0,
        0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x07, 0x84,
    ];
    pub const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn reads_profile_level_and_cropped_size() {
        let s = HevcSps::parse(SPS_320).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!((s.profile_space, s.tier, s.profile_idc), (0, false, 1));
        assert_eq!(s.compatibility, [0x60, 0, 0, 0]);
        assert_eq!(s.constraints, [0x90, 0, 0, 0, 0, 0]);
        assert_eq!(
            (s.level_idc, s.max_sub_layers, s.chroma_format_idc),
            (60, 1, 1)
        );
        assert_eq!((s.bit_depth_luma_minus8, s.bit_depth_chroma_minus8), (0, 0));
        let s = HevcSps::parse(SPS_1080).unwrap();
        assert_eq!((s.width, s.height, s.level_idc), (1920, 1080, 120));
    }

    #[test]
    fn codec_strings_follow_iso_14496_15_annex_e() {
        assert_eq!(
            HevcSps::parse(SPS_1080).unwrap().rfc6381_codec(),
            "hvc1.1.6.L120.90"
        );
        // The example of the standard: Main, tier Main, level 3.1, progressive + frame-only.
        let mut s = HevcSps::parse(SPS_320).unwrap();
        s.level_idc = 93;
        s.constraints = [0xb0, 0, 0, 0, 0, 0];
        assert_eq!(s.rfc6381_codec(), "hvc1.1.6.L93.B0");
        // Main 10, high tier, profile space 1, two constraint bytes.
        s.profile_idc = 2;
        s.compatibility = [0x20, 0, 0, 0];
        s.tier = true;
        s.profile_space = 1;
        s.level_idc = 150;
        s.constraints = [0xb0, 0x01, 0, 0, 0, 0];
        assert_eq!(s.rfc6381_codec(), "hvc1.A2.4.H150.B0.1");
    }

    #[test]
    fn garbage_is_no_sps() {
        assert_eq!(HevcSps::parse(&[]), None);
        assert_eq!(HevcSps::parse(PPS), None);
        assert_eq!(HevcSps::parse(&SPS_320[..12]), None);
        let mut bad = SPS_320.to_vec();
        bad[18..].fill(0); // all-zero Exp-Golomb codes: too large
        assert_eq!(HevcSps::parse(&bad), None);
    }

    #[test]
    fn finds_parameter_sets_and_leaves_them_out_of_samples() {
        let mut au = Vec::new();
        for nal in [
            &[NAL_AUD << 1, 1, 0x50][..],
            VPS_320,
            SPS_320,
            PPS,
            &[21 << 1, 1, 0xaf],
        ] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(nal);
        }
        let (v, s, p) = parameter_sets(&au).unwrap();
        assert_eq!((&v[..], &s[..], &p[..]), (VPS_320, SPS_320, PPS));
        let kept: Vec<&[u8]> = nal_units(&au).filter(|n| sample_keeps(n)).collect();
        assert_eq!(kept, vec![&[21 << 1, 1, 0xaf][..]]);
        assert!(parameter_sets(&au[..30]).is_none());
        assert!(is_rasl(&[0, 0, 1, 8 << 1, 1, 0]) && !is_rasl(&au));
    }
}
