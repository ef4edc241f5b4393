//! Fragmented MP4 (ISO/IEC 14496-12) for live H.264 and H.265: the init segment (`ftyp` +
//! `moov` with an `avc1` sample entry and its `avcC`, or `hvc1` and its `hvcC`, and
//! `mvex`) and one media segment (`moof` + `mdat`) per frame.
//!
//! The boxes are built with the `mp4-atom` crate (encoder and decoder for every box used
//! here); only the 8-byte `mdat` header is written here, so that a frame's bytes are
//! copied once, straight into the segment.

use bytes::Bytes;
use mp4_atom::{
    Avc1, Avcc, Dinf, Dref, Encode, Ftyp, Hdlr, Hvc1, Hvcc, Mdhd, Mdia, Mfhd, Minf, Moof, Moov,
    Mvex, Mvhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Visual,
    Vmhd,
};

use super::annexb;
use super::hvcc::{self, HevcSps};
use super::timeline::{SampleTimes, TIMESCALE};
use crate::decode::Codec;
use crate::error::{Error, ErrorKind, Result};

/// The one track's id.
const TRACK_ID: u32 = 1;

/// `sample_flags` (ISO/IEC 14496-12 8.8.3.1): a sync sample depends on no other.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// A non-sync sample that depends on others.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// The decoder configuration of the sample entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Config {
    /// H.264: `avc1` with `avcC`.
    Avc { sps: Vec<u8>, pps: Vec<u8> },
    /// H.265: `hvc1` with `hvcC` (parameter sets only there, never in samples).
    Hevc(Box<Hvcc>),
}

/// What the init segment says about the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TrackParams {
    pub config: Config,
    pub width: u32,
    pub height: u32,
    /// RFC 6381, e.g. `avc1.640028` or `hvc1.1.6.L93.B0`.
    pub codec: String,
}

impl TrackParams {
    /// The parameters of a keyframe that carries its parameter sets inline (SPS and PPS
    /// for H.264; VPS, SPS and PPS for H.265), as retina's `FrameFormat::SIMPLE` and
    /// camkit's open-GOP handling give them.
    pub fn from_keyframe(codec: Codec, au: &[u8]) -> Option<TrackParams> {
        match codec {
            Codec::H264 => {
                let (sps, pps) = annexb::parameter_sets(au)?;
                let (width, height) = annexb::sps_dimensions(&sps)?;
                let codec = annexb::rfc6381_codec(&sps)?;
                Some(TrackParams {
                    config: Config::Avc { sps, pps },
                    width,
                    height,
                    codec,
                })
            }
            Codec::H265 => {
                let (vps, sps, pps) = hvcc::parameter_sets(au)?;
                let parsed = HevcSps::parse(&sps)?;
                Some(TrackParams {
                    config: Config::Hevc(Box::new(parsed.hvcc(&vps, &sps, &pps))),
                    width: parsed.width,
                    height: parsed.height,
                    codec: parsed.rfc6381_codec(),
                })
            }
        }
    }
}

fn mux_error(what: &str, e: mp4_atom::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("could not write the MP4 {what}: {e}"),
    )
}

/// `ftyp` + `moov` for one H.264 or H.265 track at the 90 kHz timescale.
pub(crate) fn init_segment(p: &TrackParams) -> Result<Bytes> {
    let width = u16::try_from(p.width).map_err(|_| {
        Error::new(
            ErrorKind::UnsupportedCodec,
            format!("a {}-pixel wide picture does not fit MP4", p.width),
        )
    })?;
    let height = u16::try_from(p.height).map_err(|_| {
        Error::new(
            ErrorKind::UnsupportedCodec,
            format!("a {}-pixel high picture does not fit MP4", p.height),
        )
    })?;
    let visual = Visual {
        data_reference_index: 1,
        width,
        height,
        depth: 24,
        frame_count: 1,
        ..Default::default()
    };
    let (brand, entry): (&[u8; 4], mp4_atom::Codec) = match &p.config {
        Config::Avc { sps, pps } => (
            b"avc1",
            Avc1 {
                visual,
                avcc: Avcc {
                    configuration_version: 1,
                    avc_profile_indication: sps[1],
                    profile_compatibility: sps[2],
                    avc_level_indication: sps[3],
                    length_size: 4,
                    sequence_parameter_sets: vec![sps.clone()],
                    picture_parameter_sets: vec![pps.clone()],
                    ext: None,
                },
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                spatial: None,
            }
            .into(),
        ),
        Config::Hevc(hvcc) => (
            b"hvc1",
            Hvc1 {
                visual,
                hvcc: (**hvcc).clone(),
                ..Default::default()
            }
            .into(),
        ),
    };
    let ftyp = Ftyp {
        major_brand: b"iso5".into(),
        minor_version: 512,
        compatible_brands: vec![b"iso5".into(), b"iso6".into(), brand.into(), b"mp41".into()],
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: TIMESCALE,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![Trak {
            tkhd: Tkhd {
                track_id: TRACK_ID,
                enabled: true,
                in_movie: true,
                width: width.into(),
                height: height.into(),
                ..Default::default()
            },
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: TIMESCALE,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: b"vide".into(),
                    name: "camkit".into(),
                },
                minf: Minf {
                    vmhd: Some(Vmhd::default()),
                    dinf: Dinf {
                        dref: Dref {
                            entries: vec![Url::default().into()],
                        },
                    },
                    stbl: Stbl {
                        stsd: Stsd {
                            codecs: vec![entry],
                        },
                        stco: Some(Stco::default()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out).map_err(|e| mux_error("ftyp", e))?;
    moov.encode(&mut out).map_err(|e| mux_error("moov", e))?;
    Ok(Bytes::from(out))
}

/// One frame as a `moof` + `mdat`: `seq` numbers the fragment (`mfhd`), `times` place it.
pub(crate) fn media_segment(
    codec: Codec,
    seq: u32,
    au: &[u8],
    keyframe: bool,
    times: SampleTimes,
) -> Result<Bytes> {
    let mut sample = Vec::with_capacity(au.len() + 16);
    annexb::to_length_prefixed(codec, au, &mut sample);
    let size = u32::try_from(sample.len())
        .ok()
        .filter(|s| s.checked_add(8).is_some())
        .ok_or_else(|| Error::new(ErrorKind::Decode, "access unit too large for MP4"))?;
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: seq,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: times.dts.max(0) as u64,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: vec![TrunEntry {
                    duration: Some(times.duration),
                    size: Some(size),
                    flags: Some(if keyframe { FLAGS_SYNC } else { FLAGS_NON_SYNC }),
                    cts: Some(times.pts - times.dts),
                }]
                .into(),
            }],
            ..Default::default()
        }],
    };
    let mut head = Vec::with_capacity(128);
    moof.encode(&mut head).map_err(|e| mux_error("moof", e))?;
    // The sample starts after the moof and the mdat header; the offset's field has a
    // fixed size, so the second encoding is as long as the first.
    let offset = head.len() + 8;
    moof.traf[0].trun[0].data_offset = Some(offset as i32);
    head.clear();
    moof.encode(&mut head).map_err(|e| mux_error("moof", e))?;
    let mut out = Vec::with_capacity(head.len() + 8 + sample.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(size + 8).to_be_bytes());
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(&sample);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::Decode;

    fn params() -> TrackParams {
        TrackParams {
            // Baseline 160x96 from openh264, as the demo camera sends.
            config: Config::Avc {
                sps: vec![0x67, 0x42, 0xc0, 0x0b, 0x8c, 0x8d, 0x41, 0x42, 0x7e, 0x40],
                pps: vec![0x68, 0xce, 0x3c, 0x80],
            },
            width: 160,
            height: 96,
            codec: "avc1.42c00b".into(),
        }
    }

    #[test]
    fn init_segment_decodes_back_with_avcc_and_mvex() {
        let init = init_segment(&params()).unwrap();
        let mut buf = std::io::Cursor::new(&init[..]);
        let ftyp = Ftyp::decode(&mut buf).unwrap();
        assert_eq!(ftyp.major_brand, b"iso5".into());
        let moov = Moov::decode(&mut buf).unwrap();
        assert_eq!(moov.mvex.unwrap().trex[0].track_id, TRACK_ID);
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 90_000);
        let mp4_atom::Codec::Avc1(avc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not avc1");
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (160, 96));
        assert_eq!(avc1.avcc.avc_profile_indication, 0x42);
        assert_eq!(
            avc1.avcc.sequence_parameter_sets,
            vec![vec![
                0x67, 0x42, 0xc0, 0x0b, 0x8c, 0x8d, 0x41, 0x42, 0x7e, 0x40
            ]]
        );
    }

    #[test]
    fn media_segment_points_at_its_sample() {
        let au = [0, 0, 0, 1, 0x41, 0x9a, 0x02, 0, 0, 1, 0x41, 0x01];
        let times = SampleTimes {
            pts: 9000,
            dts: 6000,
            duration: 3000,
        };
        let seg = media_segment(Codec::H264, 7, &au, false, times).unwrap();
        let mut buf = std::io::Cursor::new(&seg[..]);
        let moof = Moof::decode(&mut buf).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 7);
        let traf = &moof.traf[0];
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 6000);
        let trun = &traf.trun[0];
        let entry = trun.samples.get(0).unwrap();
        assert_eq!(entry.cts, Some(3000));
        assert_eq!(entry.flags, Some(FLAGS_NON_SYNC));
        assert_eq!(entry.size, Some(13));
        let offset = trun.data_offset.unwrap() as usize;
        assert_eq!(&seg[offset - 4..offset], b"mdat");
        assert_eq!(
            &seg[offset..],
            &[0, 0, 0, 3, 0x41, 0x9a, 0x02, 0, 0, 0, 2, 0x41, 0x01]
        );
    }

    #[test]
    fn keyframes_are_sync_samples_and_b_frames_get_negative_offsets() {
        let au = [0, 0, 1, 0x65, 0x88];
        let times = SampleTimes {
            pts: 3000,
            dts: 6000,
            duration: 3000,
        };
        let seg = media_segment(Codec::H264, 1, &au, true, times).unwrap();
        let moof = Moof::decode(&mut std::io::Cursor::new(&seg[..])).unwrap();
        let entry = moof.traf[0].trun[0].samples.get(0).unwrap();
        assert_eq!(entry.flags, Some(FLAGS_SYNC));
        assert_eq!(entry.cts, Some(-3000));
    }
}
