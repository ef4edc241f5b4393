//! The fuzz targets of camkit: what each one feeds camkit and which invariants it checks.
//! A target returns normally for any input; a panic (a failed invariant, or a panic inside
//! camkit) is a finding.
//!
//! This file is compiled twice: as the library of the cargo-fuzz package (`fuzz/`,
//! nightly, coverage-guided: `cargo +nightly fuzz run <target>`) and, through `#[path]`,
//! by the stable smoke test `tests/tests/fuzz_smoke.rs`, which runs every target over the
//! seed corpus and a few thousand deterministic mutations of it. It depends on `camkit`
//! and `serde_json` only, which both builds have.
//!
//! | target | input | checks |
//! |---|---|---|
//! | [`config_url`] | a camera address as a URL, host fields or JSON | never panics; a validated URL carries no credentials; no password in errors, `Debug` or the URL; JSON round-trips |
//! | [`h264_decode`] | an Annex B byte stream | never panics; errors are `Decode`; every picture is consistent and encodes to a JPEG of its size, also scaled |
//! | [`rtsp_request`] | bytes a client sends the demo camera | never panics; every answer is one well-formed RTSP response |
//! | [`mjpeg_frame`] | a JPEG from an MJPEG camera | never panics; errors are `Decode`; re-encoding keeps the size |

use camkit::{CameraConfig, Codec, ErrorKind, VideoDecoder};

/// A marker every fuzzed password starts with. The other fields are built without the
/// letter `Z`, and URL serialization never produces it (hex escapes are `0-9A-F`), so
/// finding the marker anywhere but in the password is a leak.
const SECRET_MARKER: &str = "Zq7~";

/// At most this many access units / requests per input: long inputs add time, not reach.
const MAX_UNITS: usize = 64;

/// Largest picture the targets JPEG-encode (pixels), to keep each run short.
const MAX_ENCODE_PIXELS: u64 = 4096 * 2304;

fn without_z(s: &str) -> String {
    s.replace(['Z', 'z'], "")
}

/// Camera addresses: `CameraConfig::from_url` / `from_host` + `validate`, and JSON
/// deserialization of a whole `CameraConfig`.
///
/// The first byte picks the form; the rest is the text (lossy UTF-8). Invariants: no panic;
/// validation errors are `InvalidInput`; a validated URL has no user info and no `@`; a
/// password (marked with [`SECRET_MARKER`]) appears in no error message, no `Debug` output
/// and no URL; a deserialized config serializes back to itself.
pub fn config_url(data: &[u8]) {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match form % 4 {
        // A URL as typed by a user, credentials and all.
        0 => check_config(&CameraConfig::from_url("fuzz", text.as_ref()), false),
        // Host, port, path and credentials as separate fields (lines of the input).
        1 => {
            let mut parts = text.splitn(5, '\n');
            let host = without_z(parts.next().unwrap_or(""));
            let port = parts.next().unwrap_or("");
            let path = without_z(parts.next().unwrap_or("/"));
            let user = without_z(parts.next().unwrap_or(""));
            let password = format!("{SECRET_MARKER}{}", parts.next().unwrap_or(""));
            let mut cfg = CameraConfig::from_host("fuzz", host).credentials(user, password);
            cfg.port = port.trim().parse().ok();
            cfg.path = Some(path);
            check_config(&cfg, true);
        }
        // A URL whose userinfo holds a marked password with any characters in it.
        2 => {
            let (secret, hostpath) = text.split_once('\n').unwrap_or((&text, "cam/x"));
            let hostpath = without_z(hostpath).replace('@', "");
            let url = format!("rtsp://admin:{SECRET_MARKER}{secret}@{hostpath}");
            check_config(&CameraConfig::from_url("fuzz", url), true);
        }
        // JSON, as the bindings pass configs.
        _ => {
            let Ok(cfg) = serde_json::from_slice::<CameraConfig>(rest) else {
                return;
            };
            let json = serde_json::to_string(&cfg).expect("a config serializes");
            let back: CameraConfig =
                serde_json::from_str(&json).expect("a serialized config deserializes");
            assert!(back == cfg, "JSON round trip changed the config: {json}");
            let marked = cfg
                .password
                .as_deref()
                .is_some_and(|p| p.starts_with(SECRET_MARKER))
                && [&cfg.url, &cfg.host, &cfg.path, &cfg.username]
                    .iter()
                    .all(|f| f.as_deref().is_none_or(|s| !s.contains(['Z', 'z'])))
                && !cfg.id.contains(['Z', 'z']);
            check_config(&cfg, marked);
        }
    }
    // Redaction for display works on anything, parseable or not.
    let shown = camkit::address::redact_url_str(&text);
    if let Some((_, rest)) = shown.split_once("://") {
        assert!(
            !rest.contains('@'),
            "redacted URL keeps userinfo: {shown:?}"
        );
    }
}

fn check_config(cfg: &CameraConfig, marked_secret: bool) {
    let leaks = |s: &str| marked_secret && s.contains(SECRET_MARKER);
    let debug = format!("{cfg:?}");
    assert!(!leaks(&debug), "password in Debug: {debug}");
    match cfg.validate() {
        Ok(source) => {
            let url = source.url();
            assert_eq!(url.scheme(), "rtsp");
            assert!(url.username().is_empty(), "user in validated URL {url}");
            assert!(url.password().is_none(), "password in validated URL {url}");
            // An '@' may be in a path given as a field, never in the authority.
            let authority = url
                .as_str()
                .split_once("://")
                .map_or("", |(_, r)| r.split(['/', '?', '#']).next().unwrap_or(""));
            assert!(!authority.contains('@'), "userinfo in validated URL {url}");
            assert!(
                url.host_str().is_some_and(|h| !h.is_empty()),
                "no host: {url}"
            );
            assert!(!leaks(url.as_str()), "password in URL {url}");
            let shown = format!("{source:?}");
            assert!(!leaks(&shown), "password in Debug: {shown}");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            let msg = e.to_string();
            assert!(!leaks(&msg), "password in error: {msg}");
        }
    }
}

/// Splits an Annex B byte stream into access units the way camkit receives them: NAL
/// units up to and including each coded slice (parameter sets and SEI ride with the slice
/// that follows them).
pub fn access_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut au_start = 0;
    let mut i = 0;
    // Positions of start codes (the index of their first zero byte).
    let mut starts = Vec::new();
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            let begin = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((begin, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let nal_type = stream.get(payload).map_or(0, |h| h & 0x1F);
        if (1..=5).contains(&nal_type) {
            let end = starts.get(k + 1).map_or(stream.len(), |&(b, _)| b);
            units.push(&stream[au_start..end]);
            au_start = end;
        }
    }
    if au_start < stream.len() {
        units.push(&stream[au_start..]);
    }
    units
}

/// H.264 decoding: the input (after one options byte) is an Annex B stream, split into
/// access units and fed to one [`VideoDecoder`] as camkit's decode thread does, alternating
/// `decode` and `decode_discard` as a snapshot's catch-up does. Every picture is checked
/// and JPEG-encoded at full size and scaled, with and without range expansion.
pub fn h264_decode(data: &[u8]) {
    let Some((&opts, stream)) = data.split_first() else {
        return;
    };
    let Ok(mut decoder) = VideoDecoder::new(Codec::H264) else {
        return;
    };
    let quality = 1 + opts % 100;
    for (i, au) in access_units(stream).into_iter().take(MAX_UNITS).enumerate() {
        let discard = opts & 0x80 != 0 && i % 3 == 1;
        if discard {
            if let Err(e) = decoder.decode_discard(au) {
                assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
            }
            continue;
        }
        match decoder.decode(au) {
            Ok(Some(mut pic)) => {
                let (cw, ch) = camkit::Picture::chroma_dims(pic.width, pic.height);
                assert!(pic.width > 0 && pic.height > 0, "{pic:?}");
                assert_eq!(pic.y.len(), (pic.width * pic.height) as usize);
                assert_eq!(pic.u.len(), (cw * ch) as usize);
                assert_eq!(pic.v.len(), (cw * ch) as usize);
                if opts & 0x40 != 0 {
                    pic.expand_range();
                }
                encode_and_check(&pic, quality);
            }
            Ok(None) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
        }
    }
}

fn encode_and_check(pic: &camkit::Picture, quality: u8) {
    if u64::from(pic.width) * u64::from(pic.height) > MAX_ENCODE_PIXELS {
        return;
    }
    let jpeg = camkit::jpeg::encode_i420(pic, quality).expect("a decoded picture encodes");
    let dims = camkit::jpeg::dimensions(&jpeg).expect("camkit's JPEG reads back");
    assert_eq!(dims, (pic.width, pic.height));
    let max_width = (pic.width / 3).max(16);
    if let Some(small) = pic.downscaled(max_width) {
        assert!(
            small.width <= max_width && small.width % 2 == 0,
            "{small:?}"
        );
        let jpeg = camkit::jpeg::encode_i420(&small, quality).expect("a scaled picture encodes");
        assert_eq!(
            camkit::jpeg::dimensions(&jpeg).expect("reads back"),
            (small.width, small.height)
        );
    }
}

/// The demo camera's RTSP server: request parsing and the session state machine, with the
/// faults the first byte picks (see `camkit_demo_camera::fuzz_rtsp_requests`). Every answer
/// but a fault's garbage or truncated one must be a single well-formed RTSP response: a
/// status line, header lines free of stray CR/LF, and a body as long as its
/// `Content-Length`.
pub fn rtsp_request(data: &[u8]) {
    let Some(&sel) = data.first() else {
        return;
    };
    let answers = camkit_demo_camera::fuzz_rtsp_requests(data);
    // Selectors 5 and 7 make the last answer truncated or garbage on purpose.
    let broken_tail = matches!(sel & 7, 5 | 7);
    let n = answers.len();
    for (i, a) in answers.iter().enumerate().take(MAX_UNITS * 4) {
        if broken_tail && i + 1 == n {
            continue;
        }
        check_response(a);
    }
}

fn check_response(a: &[u8]) {
    let end = a
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "response without end of head: {:?}",
                String::from_utf8_lossy(a)
            )
        });
    let head = std::str::from_utf8(&a[..end]).expect("response head is UTF-8");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status
        .strip_prefix("RTSP/1.0 ")
        .unwrap_or_else(|| panic!("status line {status:?}"));
    assert!(
        code.len() > 4
            && code.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && code.as_bytes()[3] == b' ',
        "status line {status:?}"
    );
    let mut content_length = 0;
    for line in lines {
        assert!(
            !line.contains(['\r', '\n']) && !line.is_empty(),
            "header line with a stray CR/LF: {head:?}"
        );
        let (name, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("header {line:?}"));
        assert!(
            !name.is_empty() && !name.contains([' ', ':']),
            "header name {name:?}"
        );
        if name.eq_ignore_ascii_case("Content-Length") {
            content_length = value.parse::<usize>().expect("numeric Content-Length");
        }
    }
    assert_eq!(a.len() - end - 4, content_length, "body length: {head:?}");
}

/// MJPEG cameras' frames: camkit reads a JPEG's size as it arrives (`jpeg::dimensions`),
/// and decodes it to I420 when a snapshot asks for another size or quality
/// (`jpeg::decode_to_i420`), then encodes again. Errors must be `Decode`; a decoded picture
/// has the size the header said and re-encodes at that size.
pub fn mjpeg_frame(data: &[u8]) {
    let (w, h) = match camkit::jpeg::dimensions(data) {
        Ok(d) => d,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
            return;
        }
    };
    match camkit::jpeg::decode_to_i420(data) {
        Ok(pic) => {
            assert_eq!(
                (pic.width, pic.height),
                (w, h),
                "decoded size differs from header"
            );
            encode_and_check(&pic, 75);
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
    }
}
