//! What camkit reads of H.265 access units: the NAL unit types (ITU-T H.265 table 7-1)
//! that say where decoding can start, and the parameter sets a decoder needs there.
//!
//! retina marks only IDR pictures as random access points, and with
//! `FrameFormat::SIMPLE` puts the parameter sets (VPS, SPS, PPS) before those alone,
//! dropping the copies the camera sent in the stream. Encoders that use open GOPs (x265 by
//! default, several camera firmwares) start every GOP after the first with a CRA picture
//! instead: decodable from there too, but retina calls it neither a random access point nor
//! gives it the parameter sets. [`random_access`] tells such pictures apart and
//! [`with_parameter_sets`] gives them what a decoder starting there needs.
//!
//! A CRA may be followed by RASL pictures, which refer to pictures before it: a decoder that
//! starts at the CRA cannot decode them and libavcodec skips them without output.
//! [`is_rasl`] lets the decode thread leave them out, so that it counts only access units
//! that give a picture.

/// RASL_N and RASL_R: leading pictures skipped when decoding starts at their CRA.
const RASL_N: u8 = 8;
const RASL_R: u8 = 9;
/// BLA_W_LP ..= RSV_IRAP_VCL23: intra random access point pictures.
const IRAP: std::ops::RangeInclusive<u8> = 16..=23;
const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
/// The last VCL (picture data) type; 32 and above are parameter sets, SEI and the like.
const LAST_VCL: u8 = 31;

fn nal_type(nal: &[u8]) -> u8 {
    (nal[0] >> 1) & 0x3f
}

/// The NAL units of an Annex B access unit, from their header on (each runs to the next
/// start code; only their first bytes are read here).
fn nal_units(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 3 < au.len() {
            if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
                let start = i + 3;
                i = start;
                let end = au[start..]
                    .windows(3)
                    .position(|w| w == [0, 0, 1])
                    .map_or(au.len(), |p| start + p);
                if end > start {
                    return Some(&au[start..end]);
                }
                continue;
            }
            i += 1;
        }
        None
    })
}

/// The type of the first picture-data NAL unit of an access unit.
fn first_vcl(au: &[u8]) -> Option<u8> {
    nal_units(au).map(nal_type).find(|&t| t <= LAST_VCL)
}

/// The access unit holds an IRAP picture (IDR, CRA or BLA): decoding can start at it.
pub(crate) fn random_access(au: &[u8]) -> bool {
    first_vcl(au).is_some_and(|t| IRAP.contains(&t))
}

/// The access unit is a RASL picture (undecodable when decoding started at its CRA).
pub(crate) fn is_rasl(au: &[u8]) -> bool {
    matches!(first_vcl(au), Some(RASL_N | RASL_R))
}

/// The access unit with `vps`, `sps` and `pps` (NAL units without start codes) before it,
/// unless it carries an SPS already.
pub(crate) fn with_parameter_sets(
    au: &[u8],
    vps: &[u8],
    sps: &[u8],
    pps: &[u8],
) -> Option<Vec<u8>> {
    if nal_units(au).any(|n| matches!(nal_type(n), VPS | SPS | PPS)) {
        return None;
    }
    let mut out = Vec::with_capacity(12 + vps.len() + sps.len() + pps.len() + au.len());
    for nal in [vps, sps, pps] {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out.extend_from_slice(au);
    Some(out)
}

/// Names an H.265 profile from an RFC 6381 codec string such as `hvc1.1.6.L93.B0`
/// (general_profile_idc, ITU-T H.265 annex A).
pub(crate) fn profile_name(rfc6381: &str) -> Option<String> {
    let rest = rfc6381
        .strip_prefix("hvc1.")
        .or_else(|| rfc6381.strip_prefix("hev1."))?;
    let idc = rest.split('.').next()?;
    let idc: u8 = idc.trim_start_matches(['A', 'B', 'C']).parse().ok()?;
    Some(
        match idc {
            1 => "Main",
            2 => "Main 10",
            3 => "Main Still Picture",
            4 => "Range Extensions",
            5 => "High Throughput",
            9 => "Screen Content Coding",
            _ => return Some(format!("profile_idc {idc}")),
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Annex B access unit of NAL units of these types (two header bytes and a payload).
    fn au(types: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &t in types {
            out.extend_from_slice(&[0, 0, 0, 1, t << 1, 1, 0xaf, 0x12]);
        }
        out
    }

    #[test]
    fn tells_random_access_and_leading_pictures() {
        // IDR_W_RADL, CRA, BLA_W_LP: random access; a prefix SEI before them changes nothing.
        for t in [19, 20, 21, 16] {
            assert!(random_access(&au(&[39, t])), "type {t}");
            assert!(!is_rasl(&au(&[t])), "type {t}");
        }
        // TRAIL_R, TRAIL_N, RASL, RADL: not random access; only RASL is leading-skippable.
        for t in [1, 0, 8, 9, 7] {
            assert!(!random_access(&au(&[t])), "type {t}");
        }
        assert!(is_rasl(&au(&[8])) && is_rasl(&au(&[35, 9])));
        assert!(!is_rasl(&au(&[7])) && !is_rasl(&au(&[1])));
        assert!(!random_access(&[]) && !is_rasl(&[0xde, 0xad]));
        // Empty NAL units (start code after start code) and a start code at the very end.
        assert!(random_access(&[0, 0, 1, 0, 0, 1, 21 << 1, 1, 0, 0, 1]));
        assert!(!is_rasl(&[0, 0, 1, 0, 0, 1]));
    }

    #[test]
    fn puts_parameter_sets_before_an_access_unit_without_them() {
        let cra = au(&[21]);
        let got = with_parameter_sets(
            &cra,
            &[VPS << 1, 1, 7],
            &[SPS << 1, 1, 8],
            &[PPS << 1, 1, 9],
        )
        .unwrap();
        let types: Vec<u8> = nal_units(&got).map(nal_type).collect();
        assert_eq!(types, [VPS, SPS, PPS, 21]);
        assert!(got.ends_with(&cra));
        let has = au(&[VPS, SPS, PPS, 21]);
        assert_eq!(
            with_parameter_sets(&has, &[0x40, 1], &[0x42, 1], &[0x44, 1]),
            None
        );
    }

    #[test]
    fn profiles_from_rfc6381() {
        assert_eq!(profile_name("hvc1.1.6.L93.B0").as_deref(), Some("Main"));
        assert_eq!(profile_name("hvc1.2.4.L120.B0").as_deref(), Some("Main 10"));
        assert_eq!(
            profile_name("hev1.A4.0.H150").as_deref(),
            Some("Range Extensions")
        );
        assert_eq!(
            profile_name("hvc1.77.0.L93").as_deref(),
            Some("profile_idc 77")
        );
        assert_eq!(profile_name("avc1.64001F"), None);
        assert_eq!(profile_name("hvc1."), None);
    }
}
