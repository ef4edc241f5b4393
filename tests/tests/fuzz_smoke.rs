//! The fuzz targets on stable Rust: every target of `fuzz/` (its logic, `fuzz/src/lib.rs`,
//! is compiled into this test) runs over its committed seed corpus (`fuzz/corpus/<target>/`)
//! and a few thousand deterministic mutations of it, within a time budget. Not
//! coverage-guided: the long, coverage-guided run is `cargo +nightly fuzz run <target>`
//! (RELIABILITY.md). A failing input is written to the temporary directory, named in the
//! failure, and replays with `cargo +nightly fuzz run <target> <file>`.
//!
//! The seeds are regenerated (real H.264 from the demo camera's encoder, JPEGs, URLs with
//! tricky credentials, RTSP sessions) by
//! `cargo test -p camkit-tests --test fuzz_smoke -- --ignored write_seed_corpus`.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camkit_tests::mutate::{mutate, Rng};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The committed seeds of a target (`seed-*`), sorted by name.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).expect("seed readable"))
        .collect();
    assert!(
        seeds.len() >= 3,
        "{}: only {} seeds",
        dir.display(),
        seeds.len()
    );
    seeds
}

/// FNV-1a, to seed each target's generator from its name.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs one input; on a panic, saves the input and fails with where it is.
fn check(target: &str, f: fn(&[u8]), input: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| f(input)) {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("camkit-fuzz-{target}-{:016x}.bin", fnv(input)));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target {target} failed on a {}-byte input, saved to {}; replay with \
             `cargo +nightly fuzz run {target} {}`: {msg}",
            input.len(),
            path.display(),
            path.display()
        );
    }
}

struct Budget {
    /// Mutated inputs to run at most.
    inputs: usize,
    /// Time to stop at, whatever was run.
    time: Duration,
    /// Fewest mutated inputs that must have run (the machine may be slow, not this slow).
    at_least: usize,
    /// Longest input.
    max_len: usize,
}

/// The seeds, then mutations of the seeds and of earlier mutations (a pool, so mutations
/// stack up as they would in a fuzzer's corpus).
fn run(target: &str, f: fn(&[u8]), budget: Budget) {
    let seeds = seeds(target);
    let start = Instant::now();
    for s in &seeds {
        check(target, f, s);
    }
    let mut rng = Rng::new(fnv(target.as_bytes()));
    let mut pool = seeds.clone();
    let mut ran = 0;
    while ran < budget.inputs && start.elapsed() < budget.time {
        let a = &pool[rng.below(pool.len())];
        let b = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, a, b, budget.max_len);
        check(target, f, &input);
        ran += 1;
        if rng.one_in(8) {
            if pool.len() < 512 {
                pool.push(input);
            } else {
                let i = rng.below(pool.len());
                pool[i] = input;
            }
        }
    }
    eprintln!(
        "{target}: {} seeds + {ran} mutated inputs in {:?}",
        seeds.len(),
        start.elapsed()
    );
    assert!(
        ran >= budget.at_least,
        "{target}: only {ran} inputs ran within {:?}",
        budget.time
    );
}

/// Camera addresses: URLs, host fields and JSON configs never panic or leak a password.
#[test]
fn config_url() {
    run(
        "config_url",
        targets::config_url,
        Budget {
            inputs: 300_000,
            time: Duration::from_secs(5),
            at_least: 20_000,
            max_len: 512,
        },
    );
}

/// Damaged and arbitrary H.264 never panics the decoder or the JPEG encoder.
#[test]
fn h264_decode() {
    run(
        "h264_decode",
        targets::h264_decode,
        Budget {
            inputs: 40_000,
            time: Duration::from_secs(8),
            at_least: 2_000,
            max_len: 32 * 1024,
        },
    );
}

/// Whatever a client sends, the demo camera answers with well-formed RTSP or not at all.
#[test]
fn rtsp_request() {
    run(
        "rtsp_request",
        targets::rtsp_request,
        Budget {
            inputs: 300_000,
            time: Duration::from_secs(5),
            at_least: 20_000,
            max_len: 4096,
        },
    );
}

/// Damaged JPEGs from MJPEG cameras never panic the size reader, decoder or encoder.
#[test]
fn mjpeg_frame() {
    run(
        "mjpeg_frame",
        targets::mjpeg_frame,
        Budget {
            inputs: 100_000,
            time: Duration::from_secs(5),
            at_least: 5_000,
            max_len: 16 * 1024,
        },
    );
}

/// Splitting a stream into access units keeps every byte, in order.
#[test]
fn access_units_cover_the_stream() {
    let s = [
        0, 0, 0, 1, 0x67, 9, 0, 0, 1, 0x68, 8, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x41, 7,
    ];
    let units = targets::access_units(&s);
    assert_eq!(units.len(), 2, "{units:?}");
    assert_eq!(units.concat(), s);
    assert_eq!(units[1], &[0, 0, 0, 1, 0x41, 7]);
    assert_eq!(targets::access_units(&[1, 2, 3]).concat(), [1, 2, 3]);
    assert!(targets::access_units(&[]).is_empty());
}

/// The RTSP seeds reach PLAY and TEARDOWN: their session ids are the ones the fuzz camera
/// hands out, so mutations start from deep in the state machine.
#[test]
fn rtsp_seeds_reach_play() {
    for name in ["session", "session-audio", "session-auth"] {
        let seed = std::fs::read(corpus_dir("rtsp_request").join(format!("seed-{name}"))).unwrap();
        let answers: Vec<String> = camkit_demo_camera::fuzz_rtsp_requests(&seed)
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let play = answers.iter().find(|a| a.contains("RTP-Info"));
        assert!(
            play.is_some_and(|a| a.starts_with("RTSP/1.0 200 OK")),
            "{name}: {answers:#?}"
        );
        let last = answers.last().unwrap();
        assert!(
            last.starts_with("RTSP/1.0 200 OK"),
            "{name}: TEARDOWN: {last}"
        );
    }
}

// ---- Seed corpus -------------------------------------------------------------------------

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// The RTSP requests of a whole session, with `session` in the requests after SETUP.
fn rtsp_session(base: &str, extra: &[(&str, &str)], session: &str, audio: bool) -> Vec<u8> {
    let mut cseq = 0;
    let mut req = |method: &str, uri: &str, headers: &[(&str, &str)]| {
        cseq += 1;
        let mut r = format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n");
        for (n, v) in extra.iter().chain(headers) {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\n");
        r
    };
    let tcp = "RTP/AVP/TCP;unicast;interleaved=0-1";
    let mut out = String::new();
    out += &req("OPTIONS", "*", &[]);
    out += &req("DESCRIBE", base, &[("Accept", "application/sdp")]);
    if audio {
        out += &req(
            "SETUP",
            &format!("{base}/trackID=1"),
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3")],
        );
        out += &req(
            "SETUP",
            &format!("{base}/trackID=0"),
            &[("Transport", tcp), ("Session", session)],
        );
    } else {
        out += &req("SETUP", &format!("{base}/trackID=0"), &[("Transport", tcp)]);
    }
    out += &req(
        "PLAY",
        base,
        &[("Session", session), ("Range", "npt=0.000-")],
    );
    let mut bytes = out.into_bytes();
    // An RTCP receiver report from the client, interleaved between requests.
    bytes.extend_from_slice(b"$\x01\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00");
    let mut out = String::new();
    out += &req("GET_PARAMETER", base, &[("Session", session)]);
    out += &req("PAUSE", base, &[("Session", session)]);
    out += &req("TEARDOWN", base, &[("Session", session)]);
    bytes.extend_from_slice(out.as_bytes());
    bytes
}

/// The session id the fuzz camera hands out for selector `sel` (ids are seeded by it).
fn fuzz_session_id(sel: u8, extra: &[(&str, &str)], audio: bool) -> String {
    let base = "rtsp://127.0.0.1:8554/demo";
    let mut input = vec![sel];
    let track = if audio { "trackID=1" } else { "trackID=0" };
    let ch = if audio { "2-3" } else { "0-1" };
    let mut setup = format!("SETUP {base}/{track} RTSP/1.0\r\nCSeq: 1\r\n");
    for (n, v) in extra {
        setup.push_str(&format!("{n}: {v}\r\n"));
    }
    setup.push_str(&format!(
        "Transport: RTP/AVP/TCP;unicast;interleaved={ch}\r\n\r\n"
    ));
    input.extend_from_slice(setup.as_bytes());
    let answers = camkit_demo_camera::fuzz_rtsp_requests(&input);
    let text = String::from_utf8_lossy(&answers[0]).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no session in {text}"))
        .to_owned()
}

/// Writes `fuzz/corpus/<target>/seed-*`: small, real inputs each target starts from.
#[test]
#[ignore = "writes the seed corpus: cargo test -p camkit-tests --test fuzz_smoke -- --ignored write_seed_corpus"]
fn write_seed_corpus() {
    // config_url: first byte picks the form (0 URL, 1 fields, 2 marked password, 3 JSON).
    let urls: &[(&str, u8, &str)] = &[
        (
            "url-hikvision",
            0,
            "rtsp://admin:p@ss:w/rd#1@192.168.1.20:554/Streaming/Channels/101",
        ),
        (
            "url-encoded-ipv6",
            0,
            "rtsp://user%40corp:p%2Fw%3Ad%@[fe80::1]:8554/live?channel=1&subtype=0",
        ),
        ("url-bare", 0, "RTSP://cam-1.local/stream1"),
        ("url-bad-port", 0, "rtsp://u:p@h:65536/x"),
        ("url-empty-creds", 0, "rtsp://:@10.0.0.7:/"),
        (
            "fields",
            1,
            "192.168.1.20\n554\n/Streaming/Channels/101\nadmin\np@ss: w/rd#1%41",
        ),
        ("fields-ipv6", 1, "fe80::1\n8554\n/live\nuser\n"),
        ("marked-url", 2, "p@ss:w/rd@x#?%2F\n10.0.0.7:554/s1"),
        (
            "json-host",
            3,
            r#"{"id":"door","host":"10.0.0.7","path":"/stream1","username":"admin","password":"Zq7~p@ss: w/rd","rtspTimeoutMs":5000,"transport":"udp","decode":"keyframes","persistent":true}"#,
        ),
        (
            "json-url",
            3,
            r#"{"id":"d","url":"rtsp://a:Zq7~b%40c@h:8554/x","frameTimeoutMs":100,"backoffInitialMs":1,"backoffMaxMs":2,"jpegQuality":100}"#,
        ),
    ];
    for (name, form, text) in urls {
        let mut b = vec![*form];
        b.extend_from_slice(text.as_bytes());
        write_seed("config_url", name, &b);
    }

    // h264_decode: an options byte, then Annex B from the demo camera's encoder.
    let aus = camkit_demo_camera::sample_access_units(96, 64, 4).unwrap();
    let mut gop = vec![0x50u8];
    aus.iter().for_each(|a| gop.extend_from_slice(a));
    write_seed("h264_decode", "idr-3p-96x64", &gop);
    let mut idr = vec![0x4Au8];
    idr.extend_from_slice(&aus[0]);
    write_seed("h264_decode", "idr-96x64", &idr);
    let mut p_only = vec![0xC1u8];
    aus[1..].iter().for_each(|a| p_only.extend_from_slice(a));
    write_seed("h264_decode", "p-only-96x64", &p_only);
    let other = camkit_demo_camera::sample_access_units(64, 128, 2).unwrap();
    let mut resize = vec![0x07u8];
    resize.extend_from_slice(&aus[0]);
    other.iter().for_each(|a| resize.extend_from_slice(a));
    write_seed("h264_decode", "new-sps-mid-stream", &resize);

    // mjpeg_frame: JPEGs as cameras send them (4:2:0), and the other layouts.
    let mut dec = camkit::VideoDecoder::new(camkit::Codec::H264).unwrap();
    let pic = dec.decode(&aus[0]).unwrap().expect("a picture");
    write_seed(
        "mjpeg_frame",
        "420-96x64",
        &camkit::jpeg::encode_i420(&pic, 50).unwrap(),
    );
    let odd = pic.downscaled(33).unwrap();
    write_seed(
        "mjpeg_frame",
        "420-small",
        &camkit::jpeg::encode_i420(&odd, 30).unwrap(),
    );
    let (w, h) = (24usize, 16usize);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7) as u8).collect();
    for (name, subsamp) in [
        ("444-24x16", turbojpeg::Subsamp::None),
        ("422-24x16", turbojpeg::Subsamp::Sub2x1),
    ] {
        let img = turbojpeg::Image {
            pixels: &rgb[..],
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let jpeg = turbojpeg::compress(img, 40, subsamp).unwrap();
        write_seed("mjpeg_frame", name, &jpeg);
    }
    let gray: Vec<u8> = (0..w * h).map(|i| (i * 3) as u8).collect();
    let img = turbojpeg::Image {
        pixels: &gray[..],
        width: w,
        pitch: w,
        height: h,
        format: turbojpeg::PixelFormat::GRAY,
    };
    write_seed(
        "mjpeg_frame",
        "gray-24x16",
        &turbojpeg::compress(img, 40, turbojpeg::Subsamp::Gray).unwrap(),
    );

    // rtsp_request: a selector byte (faults, auth), then what a client sends.
    let base = "rtsp://127.0.0.1:8554/demo";
    let plain = fuzz_session_id(0x00, &[], false);
    let mut b = vec![0x00];
    b.extend_from_slice(&rtsp_session(base, &[], &plain, false));
    write_seed("rtsp_request", "session", &b);

    let audio = fuzz_session_id(0x10, &[], true);
    let mut b = vec![0x10];
    b.extend_from_slice(&rtsp_session(base, &[], &audio, true));
    write_seed("rtsp_request", "session-audio", &b);

    // Basic auth for viewer:s3cret:x (selector bit 0x80).
    let auth = [("Authorization", "Basic dmlld2VyOnMzY3JldDp4")];
    let sid = fuzz_session_id(0x80, &auth, false);
    let mut b = vec![0x80];
    b.extend_from_slice(b"DESCRIBE rtsp://127.0.0.1:8554/demo RTSP/1.0\r\nCSeq: 9\r\n\r\n");
    b.extend_from_slice(&rtsp_session(base, &auth, &sid, false));
    write_seed("rtsp_request", "session-auth", &b);

    let mut b = vec![0x05];
    b.extend_from_slice(&rtsp_session(base, &[], "0", false));
    write_seed("rtsp_request", "truncated-fault", &b);

    let mut b = vec![0x40];
    b.extend_from_slice(
        b"SET_PARAMETER rtsp://127.0.0.1:8554/demo RTSP/1.0\nCSeq: 1\nContent-Length: 4\nX: a\n  folded\n\nabcd\
          DESCRIBE /demo/ RTSP/1.0\r\nCSeq: 2\r\nRequire: funky\r\n\r\n\
          SETUP /demo/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;interleaved=4-5;mode=\"PLAY\"\r\n\r\n\
          GET / HTTP/1.1\r\n\r\n",
    );
    write_seed("rtsp_request", "odd-requests", &b);
}
