//! The hub and subscriptions end to end on synthetic access units: joining mid-GOP, new
//! parameters, slow consumers, the end of the camera.

use super::*;
use futures::Stream;

/// SPS and PPS of x264 (Constrained Baseline) at 160x96 and at 320x240.
const SPS_160: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0a, 0xdc, 0x28, 0xdb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
    0x03, 0x01, 0xe0, 0xf1, 0x22, 0x78,
];
const SPS_320: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0c, 0xdc, 0x14, 0x1f, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x1e, 0x0f, 0x14, 0x2b, 0x80,
];
const PPS: &[u8] = &[0x68, 0xce, 0x0f, 0x2c, 0x80];

/// A keyframe as retina's SIMPLE format gives it (SPS, PPS inline), or a P frame.
fn au(sps: Option<&[u8]>, size: usize) -> Bytes {
    let mut v = Vec::new();
    if let Some(sps) = sps {
        for nal in [sps, PPS] {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(nal);
        }
        v.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        v.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    v.resize(v.len() + size, 0x5a);
    Bytes::from(v)
}

fn drain(sub: &mut VideoSubscription) -> Vec<VideoChunk> {
    let mut out = Vec::new();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    while let Poll::Ready(Some(c)) = Pin::new(&mut *sub).poll_next(&mut cx) {
        out.push(c);
    }
    out
}

fn kinds(chunks: &[VideoChunk]) -> Vec<(VideoChunkKind, bool)> {
    chunks.iter().map(|c| (c.kind, c.keyframe)).collect()
}

#[test]
fn a_joiner_starts_with_the_init_segment_and_the_current_gop() {
    let hub = VideoHub::default();
    // Frames before any keyframe cannot be shown: left out.
    hub.push(&au(None, 100), false, 0, 90_000);
    hub.push(&au(Some(SPS_160), 1000), true, 3000, 90_000);
    hub.push(&au(None, 100), false, 6000, 90_000);
    hub.push(&au(None, 100), false, 9000, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    let got = drain(&mut sub);
    use VideoChunkKind::*;
    assert_eq!(
        kinds(&got),
        vec![
            (Init, false),
            (Segment, true),
            (Segment, false),
            (Segment, false)
        ]
    );
    assert_eq!(got[0].codec.as_ref(), "avc1.42c00a");
    assert_eq!(got[0].mime_type(), "video/mp4; codecs=\"avc1.42c00a\"");
    assert_eq!(got[0].data[4..8], *b"ftyp");
    assert_eq!(got[1].data[4..8], *b"moof");
    assert_eq!(
        got.iter().map(|c| c.pts_90k).collect::<Vec<_>>(),
        vec![0, 0, 3000, 6000]
    );
    // Live frames follow, muxed once and shared with every subscriber.
    let mut other = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    drain(&mut other);
    hub.push(&au(None, 100), false, 12_000, 90_000);
    let a = drain(&mut sub);
    let b = drain(&mut other);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].data.as_ptr(),
        b[0].data.as_ptr(),
        "one segment for both"
    );
}

#[test]
fn new_parameters_and_new_sessions_start_a_new_init_segment() {
    let hub = VideoHub::default();
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    hub.push(&au(Some(SPS_160), 500), true, 0, 90_000);
    hub.push(&au(Some(SPS_160), 500), true, 3000, 90_000);
    // Same parameters: no new init segment.
    assert_eq!(
        kinds(&drain(&mut sub))
            .iter()
            .filter(|k| k.0 == VideoChunkKind::Init)
            .count(),
        1
    );
    // Resolution change.
    hub.push(&au(Some(SPS_320), 500), true, 6000, 90_000);
    let got = drain(&mut sub);
    assert_eq!(got[0].kind, VideoChunkKind::Init);
    assert_eq!(got[0].codec.as_ref(), "avc1.42c00c");
    // Reconnect: same parameters, new init segment anyway, timeline continues.
    hub.new_session(crate::decode::Codec::H264);
    hub.push(&au(None, 100), false, 999_999, 90_000); // mid-GOP: dropped
    hub.push(&au(Some(SPS_320), 500), true, 1_000_000, 90_000);
    let got = drain(&mut sub);
    assert_eq!(
        kinds(&got),
        vec![
            (VideoChunkKind::Init, false),
            (VideoChunkKind::Segment, true)
        ]
    );
    assert!(got[1].pts_90k > 6000, "no step back after a reconnect");
}

#[test]
fn a_consumer_that_stops_reading_stays_bounded_and_others_get_every_frame() {
    let hub = VideoHub::default();
    let opts = VideoOptions {
        format: VideoFormat::Fmp4,
        max_queue_bytes: 64 << 10,
        ..VideoOptions::default()
    };
    let mut stalled = VideoSubscription::new("cam", &hub, opts).unwrap();
    let mut reader = VideoSubscription::new("cam", &hub, opts).unwrap();
    let mut read = 0;
    for i in 0..300i64 {
        let key = i % 30 == 0;
        hub.push(
            &au(key.then_some(SPS_160), if key { 8000 } else { 2000 }),
            key,
            i * 3000,
            90_000,
        );
        read += drain(&mut reader)
            .iter()
            .filter(|c| c.kind == VideoChunkKind::Segment)
            .count();
        assert!(stalled.queued_bytes() <= (64 << 10) + 9000);
    }
    assert_eq!(read, 300);
    assert!(stalled.skipped() > 200);
    // When it reads again it resumes at a keyframe, behind the init segment.
    let got = drain(&mut stalled);
    let first_media = got
        .iter()
        .find(|c| c.kind == VideoChunkKind::Segment)
        .unwrap();
    assert!(first_media.keyframe);
    assert_eq!(got[0].kind, VideoChunkKind::Init);
}

#[test]
fn annex_b_subscribers_get_the_access_units_as_sent() {
    let hub = VideoHub::default();
    let key = au(Some(SPS_160), 300);
    hub.push(&key, true, 0, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::annex_b()).unwrap();
    hub.push(&au(None, 50), false, 3000, 90_000);
    let got = drain(&mut sub);
    assert_eq!(
        kinds(&got),
        vec![
            (VideoChunkKind::AccessUnit, true),
            (VideoChunkKind::AccessUnit, false)
        ]
    );
    assert_eq!(got[0].data, key, "unchanged, SPS and PPS inline");
}

#[test]
fn closing_the_hub_ends_every_subscription() {
    let hub = VideoHub::default();
    hub.push(&au(Some(SPS_160), 300), true, 0, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    hub.close();
    let n = futures::executor::block_on(async {
        let mut n = 0;
        while sub.next().await.is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(n, 2);
    let mut late = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    assert!(futures::executor::block_on(late.next()).is_none());
    drop(late);
    assert_eq!(hub.subscribers(), 0);
}

#[test]
fn options_name_the_field_at_fault() {
    let e = VideoOptions {
        max_queue_bytes: 10,
        ..VideoOptions::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    assert!(e.message().contains("maxQueueBytes"));
}

/// An H.265 access unit: VPS, SPS and PPS (x265, 320x240) before a keyframe, as retina
/// and camkit's open-GOP handling give them, or a picture of NAL unit type `t` alone.
fn hevc_au(t: u8, size: usize) -> Bytes {
    use super::hvcc::tests::{PPS as H_PPS, SPS_320 as H_SPS, VPS_320};
    let mut v = Vec::new();
    if (16..=23).contains(&t) {
        for nal in [VPS_320, H_SPS, H_PPS] {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(nal);
        }
    }
    v.extend_from_slice(&[0, 0, 0, 1, t << 1, 1]);
    v.resize(v.len() + size, 0x5a);
    Bytes::from(v)
}

#[test]
fn h265_gets_an_hvc1_init_segment_and_joiners_skip_leading_pictures() {
    use mp4_atom::Decode;
    let hub = VideoHub::default();
    hub.new_session(crate::decode::Codec::H265);
    // CRA (21), then its RASL pictures (8) shown before it, then trailing ones (1).
    hub.push(&hevc_au(21, 800), true, 9000, 90_000);
    hub.push(&hevc_au(8, 100), false, 3000, 90_000);
    hub.push(&hevc_au(8, 100), false, 6000, 90_000);
    hub.push(&hevc_au(1, 100), false, 18_000, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    let got = drain(&mut sub);
    use VideoChunkKind::*;
    assert_eq!(
        kinds(&got),
        vec![(Init, false), (Segment, true), (Segment, false)],
        "the RASL pictures refer to a GOP the joiner never got"
    );
    assert_eq!(got[0].codec.as_ref(), "hvc1.1.6.L60.90");
    assert_eq!(got[0].mime_type(), "video/mp4; codecs=\"hvc1.1.6.L60.90\"");
    let mut buf = std::io::Cursor::new(&got[0].data[..]);
    let ftyp = mp4_atom::Ftyp::decode(&mut buf).unwrap();
    assert!(ftyp.compatible_brands.contains(&b"hvc1".into()));
    let moov = mp4_atom::Moov::decode(&mut buf).unwrap();
    let mp4_atom::Codec::Hvc1(hvc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not hvc1");
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (320, 240));
    assert_eq!(hvc1.hvcc.general_profile_idc, 1);
    assert_eq!(hvc1.hvcc.general_level_idc, 60);
    assert_eq!(hvc1.hvcc.length_size_minus_one, 3);
    let types: Vec<u8> = hvc1.hvcc.arrays.iter().map(|a| a.nal_unit_type).collect();
    assert_eq!(types, vec![32, 33, 34]);
    assert!(hvc1.hvcc.arrays.iter().all(|a| a.completeness));
    // The keyframe's sample holds the CRA slice alone: the parameter sets are in hvcC.
    let moof = mp4_atom::Moof::decode(&mut std::io::Cursor::new(&got[1].data[..])).unwrap();
    let trun = &moof.traf[0].trun[0];
    assert_eq!(trun.samples.get(0).unwrap().flags, Some(0x0200_0000));
    let offset = trun.data_offset.unwrap() as usize;
    assert_eq!(&got[1].data[offset..offset + 6], &[0, 0, 3, 34, 21 << 1, 1]);
    // A subscriber that was there from the start keeps the next CRA's RASL pictures
    // (it has the GOP they refer to).
    hub.push(&hevc_au(21, 800), true, 36_000, 90_000);
    hub.push(&hevc_au(8, 100), false, 30_000, 90_000);
    assert_eq!(
        kinds(&drain(&mut sub)),
        vec![(Segment, true), (Segment, false)]
    );
}

#[test]
fn a_camera_whose_video_cannot_be_carried_refuses_and_ends_subscriptions() {
    let hub = VideoHub::default();
    hub.push(&au(Some(SPS_160), 300), true, 0, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    // The camera reconnects and now sends MJPEG.
    hub.refuse("cam", "MJPEG");
    let n = futures::executor::block_on(async {
        let mut n = 0;
        while sub.next().await.is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(n, 2, "what was queued, then the end");
    let e = sub.end_error().expect("ended with an error");
    assert_eq!(e.kind(), crate::ErrorKind::UnsupportedCodec);
    assert!(e.message().contains("MJPEG"), "{}", e.message());
    let e = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::UnsupportedCodec);
    // Back to H.264: subscriptions work again.
    hub.new_session(crate::decode::Codec::H264);
    hub.push(&au(Some(SPS_160), 300), true, 3000, 90_000);
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4()).unwrap();
    assert_eq!(drain(&mut sub).len(), 2);
    assert!(sub.end_error().is_none());
}
