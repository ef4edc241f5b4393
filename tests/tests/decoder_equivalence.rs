//! camkit's two H.264 decoders, OpenH264 and the system's libavcodec, give bit-identical
//! pictures for the same streams: H.264 decoding is exactly specified, so any difference is
//! a bug in how camkit feeds a decoder or copies its output.
//!
//! Streams: the demo camera's encoder (OpenH264, Constrained Baseline) and x264 High-profile
//! CABAC clips like the benchmark's (ffmpeg testsrc2 with temporal noise, no B-frames),
//! made here with ffmpeg and split into access units the way an RTSP depacketizer
//! delivers them.

use std::process::Command;

use camkit::{Codec, DecoderBackend, ErrorKind, Picture, VideoDecoder};

/// Decodes every access unit with both backends and checks they agree picture by picture.
/// Returns how many pictures were compared and the size of the last.
fn assert_identical(what: &str, aus: &[Vec<u8>]) -> (usize, (u32, u32)) {
    let mut oh = VideoDecoder::with_backend(Codec::H264, DecoderBackend::OpenH264).unwrap();
    let mut av = VideoDecoder::with_backend(Codec::H264, DecoderBackend::Libavcodec).unwrap();
    let mut compared = 0;
    let mut size = (0, 0);
    for (i, au) in aus.iter().enumerate() {
        let a = oh
            .decode(au)
            .unwrap_or_else(|e| panic!("{what} #{i}: openh264: {e}"));
        let b = av
            .decode(au)
            .unwrap_or_else(|e| panic!("{what} #{i}: libavcodec: {e}"));
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => panic!(
                "{what} #{i}: openh264 gave a picture: {}, libavcodec: {} \
                 (every access unit must complete one picture at once)",
                a.is_some(),
                b.is_some()
            ),
        };
        assert_same_picture(&format!("{what} #{i}"), &a, &b);
        compared += 1;
        size = (a.width, a.height);
    }
    (compared, size)
}

fn assert_same_picture(what: &str, a: &Picture, b: &Picture) {
    assert_eq!((a.width, a.height), (b.width, b.height), "{what}: size");
    for (name, pa, pb) in [("Y", &a.y, &b.y), ("U", &a.u, &b.u), ("V", &a.v, &b.v)] {
        assert_eq!(pa.len(), pb.len(), "{what}: {name} plane size");
        if let Some(at) = pa.iter().zip(pb.iter()).position(|(x, y)| x != y) {
            let differing = pa.iter().zip(pb.iter()).filter(|(x, y)| x != y).count();
            panic!(
                "{what}: {name} planes differ in {differing} of {} samples, first at index {at} \
                 ({} vs {})",
                pa.len(),
                pa[at],
                pb[at]
            );
        }
    }
}

/// The demo camera's encoder output (what every demo and most tests decode).
#[test]
fn demo_camera_stream_decodes_identically() {
    let aus = camkit_demo_camera::sample_access_units(640, 360, 40).unwrap();
    assert_eq!(aus.len(), 40);
    assert_eq!(assert_identical("demo 640x360", &aus), (40, (640, 360)));
    // A size that is not a multiple of 16 (cropping in the SPS) with an odd chroma width.
    let aus = camkit_demo_camera::sample_access_units(322, 242, 10).unwrap();
    assert_eq!(assert_identical("demo 322x242", &aus), (10, (322, 242)));
}

/// x264 High profile (CABAC, 8x8 transforms, several reference frames): what cameras send.
#[test]
fn x264_high_profile_decodes_identically() {
    let clip = x264_clip("640x360", 30, 60, 60, "high");
    let aus = camkit_demo_camera::access_units(&clip);
    assert_eq!(aus.len(), 60, "access units in a 2 s clip at 30 fps");
    assert_eq!(
        assert_identical("x264 High 640x360", &aus),
        (60, (640, 360))
    );
    let clip = x264_clip("1920x1080", 15, 4, 30, "high");
    let aus = camkit_demo_camera::access_units(&clip);
    assert_eq!(aus.len(), 4);
    assert_eq!(
        assert_identical("x264 High 1920x1080", &aus),
        (4, (1920, 1080))
    );
}

/// x264 Main profile with a short GOP: decoding continues across several keyframes.
#[test]
fn x264_main_profile_across_keyframes_decodes_identically() {
    let clip = x264_clip("320x240", 15, 35, 10, "main");
    let aus = camkit_demo_camera::access_units(&clip);
    assert_eq!(aus.len(), 35);
    assert_eq!(
        assert_identical("x264 Main 320x240 GOP 10", &aus),
        (35, (320, 240))
    );
}

/// A stream that stops mid-GOP and restarts at a keyframe (what a reconnect gives the
/// decoder after `NewStream`): only the keyframe's parameter sets say where to start.
#[test]
fn libavcodec_starts_from_any_keyframe_and_rejects_junk() {
    let clip = x264_clip("320x240", 15, 35, 10, "main");
    let aus = camkit_demo_camera::access_units(&clip);
    let mut av = VideoDecoder::with_backend(Codec::H264, DecoderBackend::Libavcodec).unwrap();
    // P-frames with no keyframe before them: nothing, or an error — never a panic.
    for au in &aus[1..5] {
        match av.decode(au) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
        }
    }
    // From the second keyframe on, libavcodec matches a fresh OpenH264 exactly.
    let mut oh = VideoDecoder::with_backend(Codec::H264, DecoderBackend::OpenH264).unwrap();
    for (i, au) in aus[10..20].iter().enumerate() {
        let b = av.decode(au).unwrap().expect("a picture per access unit");
        let a = oh.decode(au).unwrap().expect("a picture per access unit");
        assert_same_picture(&format!("from keyframe, #{i}"), &a, &b);
    }
    // `decode_discard` advances the same state without copying the picture out.
    let mut discard = VideoDecoder::with_backend(Codec::H264, DecoderBackend::Libavcodec).unwrap();
    for au in &aus[..9] {
        assert!(discard.decode_discard(au).unwrap());
    }
    let last = discard.decode(&aus[9]).unwrap().expect("picture");
    let mut full = VideoDecoder::with_backend(Codec::H264, DecoderBackend::Libavcodec).unwrap();
    let mut want = None;
    for au in &aus[..10] {
        want = full.decode(au).unwrap();
    }
    assert_same_picture("after discards", &want.unwrap(), &last);
}

/// Damaged slice data (bit errors, as a faulty link or encoder produces): libavcodec
/// conceals it and would return a picture, camkit reports the frame as a decode error as
/// OpenH264 does, keeps decoding, and is back to identical pictures at the next keyframe.
#[test]
fn libavcodec_reports_damaged_frames_and_recovers_at_the_keyframe() {
    let clip = x264_clip("320x240", 15, 35, 10, "main");
    let mut aus = camkit_demo_camera::access_units(&clip);
    // Overwrite the second half of frame 3's slice data with a pattern.
    let au = &mut aus[3];
    let n = au.len();
    for (i, b) in au[n / 2..].iter_mut().enumerate() {
        *b = if i % 3 == 0 { 0xff } else { 0x5a };
    }
    let mut av = VideoDecoder::with_backend(Codec::H264, DecoderBackend::Libavcodec).unwrap();
    for (i, au) in aus[..3].iter().enumerate() {
        assert!(av.decode(au).unwrap().is_some(), "clean frame {i}");
    }
    let e = av.decode(&aus[3]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("damaged"), "{e}");
    // Frames up to the keyframe reference the damaged one: whatever they give, no panic.
    for au in &aus[4..10] {
        let _ = av.decode(au);
    }
    let mut oh = VideoDecoder::with_backend(Codec::H264, DecoderBackend::OpenH264).unwrap();
    for (i, au) in aus[10..].iter().enumerate() {
        let b = av.decode(au).unwrap().expect("picture");
        let a = oh.decode(au).unwrap().expect("picture");
        assert_same_picture(&format!("after the damage, #{}", i + 10), &a, &b);
    }
}

/// x264 High with B-frames (2, fixed pattern, no pyramid), as some cameras send: both
/// decoders hold pictures back for reordering and give them in display order, the last
/// one by a drain. The pictures agree, but not bit for bit: OpenH264 (2.x) rounds a few
/// chroma samples of B-frames differently from libavcodec (8 of 19,200 U samples by 1 in
/// one frame of this clip), so here "the same picture" allows a handful of samples off by
/// a little; neighbouring frames of this moving, noisy clip differ in most samples.
#[test]
fn bframes_decode_alike_in_display_order() {
    let clip = x264_clip_with("320x240", 15, 30, 15, "high", 2);
    let aus = camkit_demo_camera::access_units(&clip);
    assert_eq!(aus.len(), 30);
    let mut outputs: Vec<Vec<Picture>> = Vec::new();
    for backend in [DecoderBackend::OpenH264, DecoderBackend::Libavcodec] {
        let mut d = VideoDecoder::with_backend(Codec::H264, backend).unwrap();
        let mut pictures = Vec::new();
        for (i, au) in aus.iter().enumerate() {
            let p = d
                .decode(au)
                .unwrap_or_else(|e| panic!("{backend:?} #{i}: {e}"));
            pictures.extend(p);
        }
        // `drain` gives the last held-back picture only: drain after every AU would differ,
        // so here drain once and expect at most the final picture from it.
        pictures.extend(d.drain().unwrap());
        outputs.push(pictures);
    }
    let (oh, av) = (&outputs[0], &outputs[1]);
    assert_eq!(oh.len(), 30, "OpenH264 gives a picture per access unit");
    // libavcodec gave all but the held-back ones, then the newest of those by the drain.
    assert_eq!(
        av.len(),
        30,
        "libavcodec: a picture per access unit, the last drained"
    );
    for (i, (a, b)) in oh.iter().zip(av).enumerate() {
        assert_near_picture(&format!("B-frames #{i}"), a, b);
    }
}

/// Same size, and per plane at most 0.5 % of the samples differ, by at most 3.
fn assert_near_picture(what: &str, a: &Picture, b: &Picture) {
    assert_eq!((a.width, a.height), (b.width, b.height), "{what}: size");
    for (name, pa, pb) in [("Y", &a.y, &b.y), ("U", &a.u, &b.u), ("V", &a.v, &b.v)] {
        assert_eq!(pa.len(), pb.len(), "{what}: {name} plane size");
        let diffs: Vec<u8> = pa
            .iter()
            .zip(pb.iter())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| x.abs_diff(*y))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        assert!(
            diffs.len() * 200 <= pa.len() && max <= 3,
            "{what}: {name} planes differ in {} of {} samples, by up to {max}",
            diffs.len(),
            pa.len()
        );
    }
}

/// A camera-like H.264 clip made with ffmpeg/x264, as Annex B on ffmpeg's stdout (no
/// files), like bench/make_clips.sh: testsrc2 with temporal noise, no B-frames, a GOP of
/// `gop` frames, no scene-cut keyframes.
fn x264_clip(size: &str, rate: u32, frames: u32, gop: u32, profile: &str) -> Vec<u8> {
    x264_clip_with(size, rate, frames, gop, profile, 0)
}

/// [`x264_clip`] with `bframes` B-frames between references (a fixed pattern).
fn x264_clip_with(
    size: &str,
    rate: u32,
    frames: u32,
    gop: u32,
    profile: &str,
    bframes: u32,
) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={size}:rate={rate},noise=alls=10:allf=t+u"
        ))
        .args(["-frames:v", &frames.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            profile,
        ])
        .args([
            "-bf",
            &bframes.to_string(),
            "-x264-params",
            "b-adapt=0:b-pyramid=none:weightb=0",
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
        ])
        .args(["-sc_threshold", "0", "-b:v", "1500k", "-pix_fmt", "yuv420p"])
        .args(["-bsf:v", "h264_mp4toannexb", "-f", "h264", "-"])
        .output()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
