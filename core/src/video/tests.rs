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
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4());
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
    let mut other = VideoSubscription::new("cam", &hub, VideoOptions::fmp4());
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
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4());
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
    hub.new_session();
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
    };
    let mut stalled = VideoSubscription::new("cam", &hub, opts);
    let mut reader = VideoSubscription::new("cam", &hub, opts);
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
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::annex_b());
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
    let mut sub = VideoSubscription::new("cam", &hub, VideoOptions::fmp4());
    hub.close();
    let n = futures::executor::block_on(async {
        let mut n = 0;
        while sub.next().await.is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(n, 2);
    let mut late = VideoSubscription::new("cam", &hub, VideoOptions::fmp4());
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
