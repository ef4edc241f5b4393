//! Per-frame costs of the pipeline: H.264 and H.265 decode, I420 → JPEG, and a cached
//! snapshot.
//!
//! `cargo bench -p camkit --bench pipeline`. The H.264 input is made here with OpenH264's
//! encoder from a camera-like picture (gradient, moving box, temporal noise), 2 s GOP, and,
//! when ffmpeg is on the PATH, with x264 (High profile, CABAC, like camera streams). Each is
//! decoded with both backends, OpenH264 and the system's libavcodec. The H.265 input (720p
//! and 1080p, Main, no B-frames, x264's clip source) comes from ffmpeg's libx265 and is
//! decoded with libavcodec, the only backend that decodes it; beside it the same clip in
//! x264 High at each size, for the comparison.

use std::time::Duration;

use camkit::{Codec, DecoderBackend, Picture, VideoDecoder};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use openh264::OpenH264API;

const GOP: usize = 30;

/// A camera-like picture: a gradient, a moving box, and per-frame noise (what makes
/// real camera video cost bits and decode time).
fn picture(w: u32, h: u32, frame: u32, seed: &mut u32) -> Picture {
    let (cw, ch) = Picture::chroma_dims(w, h);
    let mut y = vec![0u8; (w * h) as usize];
    let bx = (frame * 13) % w.saturating_sub(200).max(1);
    for r in 0..h {
        for c in 0..w {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((*seed >> 28) as i32) - 8;
            let base = if c >= bx && c < bx + 200 && r > h / 3 && r < h / 3 + 150 {
                220
            } else {
                ((c * 160 / w) + (r * 60 / h)) as i32
            };
            y[(r * w + c) as usize] = (base + noise).clamp(0, 255) as u8;
        }
    }
    let u = (0..cw * ch)
        .map(|i| (100 + (i % cw) * 50 / cw) as u8)
        .collect();
    let v = (0..cw * ch)
        .map(|i| (150 - (i / cw) * 40 / ch) as u8)
        .collect();
    Picture {
        width: w,
        height: h,
        y,
        u,
        v,
        full_range: true,
    }
}

fn to_yuv_buffer(p: &Picture) -> YUVBuffer {
    let mut v = Vec::with_capacity(p.y.len() + p.u.len() * 2);
    v.extend_from_slice(&p.y);
    v.extend_from_slice(&p.u);
    v.extend_from_slice(&p.v);
    YUVBuffer::from_vec(v, p.width as usize, p.height as usize)
}

/// One GOP of Annex B access units at `bps`.
fn encode_gop(w: u32, h: u32, bps: u32) -> (Vec<Vec<u8>>, Picture) {
    let cfg = EncoderConfig::new()
        .bitrate(BitRate::from_bps(bps))
        .max_frame_rate(FrameRate::from_hz(15.0))
        .intra_frame_period(IntraFramePeriod::from_num_frames(GOP as u32));
    let mut enc = Encoder::with_api_config(OpenH264API::from_source(), cfg).expect("encoder");
    let mut seed = 7u32;
    let mut aus = Vec::new();
    let mut last = None;
    for i in 0..GOP as u32 {
        let p = picture(w, h, i, &mut seed);
        aus.push(enc.encode(&to_yuv_buffer(&p)).expect("encode").to_vec());
        last = Some(p);
    }
    (aus, last.expect("frames"))
}

fn bench(c: &mut Criterion) {
    let sizes = [
        ("720p", 1280, 720, 2_000_000),
        ("1080p", 1920, 1080, 4_000_000),
    ];
    let mut dec = c.benchmark_group("h264_decode_per_frame");
    dec.sample_size(10).measurement_time(Duration::from_secs(6));
    let mut pictures = vec![];
    let mut streams = vec![];
    for (name, w, h, bps) in sizes {
        let (gop, pic) = encode_gop(w, h, bps);
        pictures.push((name, pic));
        streams.push((format!("openh264enc_{name}"), gop));
    }
    match x264_gop(1920, 1080) {
        Some(gop) => streams.push(("x264_high_1080p".to_owned(), gop)),
        None => eprintln!("ffmpeg with libx264 not found: no x264 High 1080p decode case"),
    }
    match x264_gop(1280, 720) {
        Some(gop) => streams.push(("x264_high_720p".to_owned(), gop)),
        None => eprintln!("ffmpeg with libx264 not found: no x264 High 720p decode case"),
    }
    for (name, gop) in &streams {
        dec.throughput(Throughput::Elements(gop.len() as u64));
        for (backend, label) in [
            (DecoderBackend::OpenH264, "openh264"),
            (DecoderBackend::Libavcodec, "libavcodec"),
        ] {
            if VideoDecoder::with_backend(Codec::H264, backend).is_err() {
                eprintln!("{label} cannot be loaded: skipped");
                continue;
            }
            dec.bench_function(BenchmarkId::new(label, name), |b| {
                b.iter(|| {
                    let mut d = VideoDecoder::with_backend(Codec::H264, backend).expect("decoder");
                    let mut n = 0;
                    for au in gop {
                        if d.decode(au).expect("decode").is_some() {
                            n += 1;
                        }
                    }
                    assert_eq!(n, gop.len());
                })
            });
        }
    }
    dec.finish();

    // H.265, libavcodec only.
    let mut hevc = c.benchmark_group("h265_decode_per_frame");
    hevc.sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for (name, w, h) in [("720p", 1280, 720), ("1080p", 1920, 1080)] {
        let Some(gop) = x265_gop(w, h) else {
            eprintln!("ffmpeg with libx265 not found: no H.265 {name} decode case");
            continue;
        };
        if VideoDecoder::with_backend(Codec::H265, DecoderBackend::Libavcodec).is_err() {
            eprintln!("libavcodec cannot be loaded: no H.265 decode case");
            break;
        }
        hevc.throughput(Throughput::Elements(gop.len() as u64));
        hevc.bench_function(
            BenchmarkId::new("libavcodec", format!("x265_main_{name}")),
            |b| {
                b.iter(|| {
                    let mut d = VideoDecoder::with_backend(Codec::H265, DecoderBackend::Libavcodec)
                        .expect("decoder");
                    let mut n = 0;
                    for au in &gop {
                        if d.decode(au).expect("decode").is_some() {
                            n += 1;
                        }
                    }
                    assert_eq!(n, gop.len());
                })
            },
        );
    }
    hevc.finish();

    let mut jpeg = c.benchmark_group("jpeg_encode");
    jpeg.sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for (name, pic) in &pictures {
        jpeg.bench_function(BenchmarkId::new("turbojpeg_i420_full", name), |b| {
            b.iter(|| camkit::jpeg::encode_i420(pic, 80).expect("jpeg"))
        });
        // A limited-range picture (what x264 and most cameras send) at full size. Before:
        // each encode copied the picture to expand its range (`to_full_range`). Now: the
        // decode thread expands each picture once, in place, and encodes take it as is.
        let mut limited = pic.clone();
        limited.full_range = false;
        let expanded = limited.to_full_range();
        jpeg.bench_function(BenchmarkId::new("limited_full_before", name), |b| {
            b.iter(|| {
                let full = limited.to_full_range();
                camkit::jpeg::encode_i420(&full, 80).expect("jpeg")
            })
        });
        jpeg.bench_function(BenchmarkId::new("limited_full_after", name), |b| {
            b.iter(|| camkit::jpeg::encode_i420(&expanded, 80).expect("jpeg"))
        });
        // The parts: the expansion now made once per picture, and the copy it replaced.
        jpeg.bench_function(BenchmarkId::new("expand_range_in_place", name), |b| {
            b.iter_batched_ref(
                || limited.clone(),
                |p| p.expand_range(),
                BatchSize::LargeInput,
            )
        });
        jpeg.bench_function(BenchmarkId::new("to_full_range_copy", name), |b| {
            b.iter(|| limited.to_full_range())
        });
        jpeg.bench_function(BenchmarkId::new("turbojpeg_i420_640w", name), |b| {
            b.iter(|| {
                let small = pic.downscaled(640).expect("smaller");
                camkit::jpeg::encode_i420(&small, 80).expect("jpeg")
            })
        });
        // The pure-Rust alternative, from RGB (conversion not counted).
        let rgb = i420_to_rgb(pic);
        jpeg.bench_function(BenchmarkId::new("jpeg_encoder_rgb_full", name), |b| {
            b.iter(|| {
                let mut out = Vec::new();
                jpeg_encoder::Encoder::new(&mut out, 80)
                    .encode(
                        &rgb,
                        pic.width as u16,
                        pic.height as u16,
                        jpeg_encoder::ColorType::Rgb,
                    )
                    .expect("jpeg");
                out
            })
        });
    }
    jpeg.finish();

    snapshot_bench(c);
}

/// One 2 s GOP (30 frames at 15 fps) from x264 as a camera sends it: High profile, CABAC,
/// no B-frames, testsrc2 with temporal noise (as bench/make_clips.sh), split into access
/// units. `None` without ffmpeg/libx264.
fn x264_gop(w: u32, h: u32) -> Option<Vec<Vec<u8>>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={w}x{h}:rate=15,noise=alls=10:allf=t+u"
        ))
        .args(["-frames:v", "30", "-c:v", "libx264", "-preset", "veryfast"])
        .args([
            "-profile:v",
            "high",
            "-bf",
            "0",
            "-g",
            "30",
            "-sc_threshold",
            "0",
        ])
        .args(["-b:v", "4000k", "-maxrate", "4000k", "-bufsize", "4000k"])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            "-",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let aus = camkit_demo_camera::access_units(&out.stdout);
    (aus.len() == 30).then_some(aus)
}

/// The same clip as [`x264_gop`] from libx265 (Main, no B-frames, veryfast, same bit
/// rate), split into access units. `None` without ffmpeg/libx265.
fn x265_gop(w: u32, h: u32) -> Option<Vec<Vec<u8>>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={w}x{h}:rate=15,noise=alls=10:allf=t+u"
        ))
        .args(["-frames:v", "30", "-c:v", "libx265", "-preset", "veryfast"])
        .args(["-profile:v", "main", "-pix_fmt", "yuv420p"])
        .args(["-x265-params", "bframes=0:keyint=30:log-level=error"])
        .args(["-b:v", "4000k", "-maxrate", "4000k", "-bufsize", "4000k"])
        .args(["-f", "hevc", "-"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let aus = hevc_access_units(&out.stdout);
    (aus.len() == 30).then_some(aus)
}

/// Splits an H.265 Annex B stream into access units: a new one starts at the parameter
/// sets, delimiter or prefix SEI before a picture, or at a picture's first slice segment
/// (`first_slice_segment_in_pic_flag`), once the current one holds a picture.
fn hevc_access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = vec![];
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut aus: Vec<Vec<u8>> = vec![];
    let mut current: Vec<u8> = vec![];
    let mut has_picture = false;
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        let nal = &stream[s..end];
        if nal.len() < 3 {
            continue;
        }
        let t = (nal[0] >> 1) & 0x3f;
        let first_slice = t < 32 && nal[2] & 0x80 != 0;
        let opens = matches!(t, 32..=35 | 39 | 41..=44) || first_slice;
        if opens && has_picture {
            aus.push(std::mem::take(&mut current));
            has_picture = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_picture |= t < 32;
    }
    if has_picture {
        aus.push(current);
    }
    aus
}

fn i420_to_rgb(p: &Picture) -> Vec<u8> {
    let (cw, _) = Picture::chroma_dims(p.width, p.height);
    let mut out = Vec::with_capacity((p.width * p.height * 3) as usize);
    for r in 0..p.height {
        for c in 0..p.width {
            let y = p.y[(r * p.width + c) as usize] as f32;
            let ci = ((r / 2) * cw + c / 2) as usize;
            let (u, v) = (p.u[ci] as f32 - 128.0, p.v[ci] as f32 - 128.0);
            out.push((y + 1.402 * v).clamp(0.0, 255.0) as u8);
            out.push((y - 0.344 * u - 0.714 * v).clamp(0.0, 255.0) as u8);
            out.push((y + 1.772 * u).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// A snapshot of a streaming camera whose latest picture is already encoded: the cost a
/// web server pays per request.
fn snapshot_bench(c: &mut Criterion) {
    use camkit::{CameraConfig, CameraManager, DecodePolicy, SnapshotOptions};
    use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (cam, cams) = rt.block_on(async {
        let cam = DemoCamera::start(DemoCameraOptions {
            port: 0,
            ..Default::default()
        })
        .await
        .expect("demo camera");
        let cams = CameraManager::new();
        cams.connect(CameraConfig::from_url("bench", cam.url()).decode(DecodePolicy::Continuous))
            .await
            .expect("connect");
        (cam, cams)
    });
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(50);
    g.bench_function("cached_720p", |b| {
        b.iter(|| {
            rt.block_on(cams.snapshot("bench", SnapshotOptions::full()))
                .expect("snapshot")
        })
    });
    g.finish();
    rt.block_on(async {
        cams.close();
        cam.stop().await;
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
