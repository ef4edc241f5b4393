//! The `camkit` binary as a user runs it: against the GStreamer server (digest auth,
//! 1080p) and the demo camera, and failing with a one-line reason and a distinct exit code.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use camkit_tests::{closed_port_url, decode_jpeg_rgb, GstServer};

fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

fn camkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camkit"))
        .args(args)
        .env_remove("CAMKIT_USERNAME")
        .env_remove("CAMKIT_PASSWORD")
        .output()
        .expect("camkit runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A camera sending H.264 High with B-frames (SPS/PPS in the SDP only): the decoder holds
/// the first pictures back for reordering, yet `camkit snapshot` (which snapshots right
/// after connecting) writes the picture, with either decoder.
#[test]
fn snapshot_of_a_bframes_stream() {
    let dir = std::env::temp_dir().join(format!("camkit-cli-b-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for decoder in ["libavcodec", "openh264"] {
        let out = dir.join(format!("{decoder}.jpg"));
        let url = server().url("/bframes");
        let o = camkit(&[
            "snapshot",
            &url,
            "-o",
            out.to_str().unwrap(),
            "--decoder",
            decoder,
        ]);
        assert!(o.status.success(), "{decoder}: {}", text(&o));
        camkit_tests::check_smpte(decoder, &std::fs::read(&out).unwrap(), 640, 360);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An H.265 camera (x265 Main 1080p, open GOPs): `camkit snapshot` writes a correct JPEG at
/// the stream's size, `camkit probe` names codec and profile, and with `--decoder openh264`
/// both fail with the unsupported-codec exit code and say what to do.
#[test]
fn snapshot_and_probe_of_an_h265_stream() {
    let dir = std::env::temp_dir().join(format!("camkit-cli-h265-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("h265.jpg");
    let url = server().url("/h265-1080");
    let o = camkit(&["snapshot", &url, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    camkit_tests::check_smpte(
        "camkit snapshot /h265-1080",
        &std::fs::read(&out).unwrap(),
        1920,
        1080,
    );

    let o = camkit(&["probe", &url, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["codec"], "h265", "{j}");
    assert_eq!(j["profile"], "Main", "{j}");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(1920), Some(1080))
    );

    let refused = dir.join("refused.jpg");
    let o = camkit(&[
        "snapshot",
        &url,
        "-o",
        refused.to_str().unwrap(),
        "--decoder",
        "openh264",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("camkit: UNSUPPORTED_CODEC: "), "{err}");
    assert!(err.contains("libavcodec"), "{err}");
    assert!(!refused.exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// `camkit snapshot` against 1080p behind digest auth writes a correct JPEG.
#[test]
fn snapshot_1080p_with_digest_auth() {
    let s = server();
    let dir = std::env::temp_dir().join(format!("camkit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("frame.jpg");
    let url = s.url("/auth/h264-1080");
    let o = camkit(&[
        "snapshot",
        &url,
        "-o",
        out.to_str().unwrap(),
        "--user",
        s.user(),
        "--password",
        s.password(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(s.password()), "{}", text(&o));
    camkit_tests::check_smpte(
        "snapshot with --user",
        &std::fs::read(&out).unwrap(),
        1920,
        1080,
    );

    // The same with credentials in the URL (percent-encoded) and a smaller size.
    let small = dir.join("small.jpg");
    let o = camkit(&[
        "snapshot",
        &s.url_with_credentials("/auth/h264-1080"),
        "-o",
        small.to_str().unwrap(),
        "--max-width",
        "640",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(s.password()), "{}", text(&o));
    let (_, w, h) = decode_jpeg_rgb(&std::fs::read(&small).unwrap());
    assert_eq!((w, h), (640, 360));
    std::fs::remove_dir_all(&dir).ok();
}

/// Failures: one line `camkit: CODE: message`, an exit code per kind, no password.
#[test]
fn failures_exit_with_a_reason() {
    let s = server();
    let o = camkit(&[
        "snapshot",
        &s.url("/auth/h264-1080"),
        "-o",
        "/dev/null",
        "--user",
        s.user(),
        "--password",
        "not-the-hunter2",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("camkit: UNAUTHORIZED: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("hunter2"));

    let o = camkit(&["probe", &closed_port_url()]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("camkit: UNREACHABLE: "));

    let o = camkit(&["snapshot", "http://example/x", "-o", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("url"));

    let o = camkit(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `camkit demo-camera` serves a camera that `camkit probe` describes.
#[test]
fn demo_camera_and_probe() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_camkit"))
        .args([
            "demo-camera",
            "--port",
            "0",
            "--width",
            "640",
            "--height",
            "360",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Kept open for the whole test: the camera's stdout stays readable.
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("demo camera at ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let o = camkit(&["probe", &url, "--json"]);
    let o264 = camkit(&["probe", &url, "--json", "--decoder", "openh264"]);
    let bad = camkit(&["probe", &url, "--decoder", "cuda"]);
    demo.kill().ok();
    demo.wait().ok();
    assert!(o.status.success(), "{}", text(&o));
    assert!(o264.status.success(), "{}", text(&o264));
    let j264: serde_json::Value = serde_json::from_slice(&o264.stdout).unwrap();
    assert_eq!(j264["decoder"], "openh264");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).starts_with("camkit: INVALID_INPUT: decoder: "),
        "{}",
        text(&bad)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["codec"], "h264");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(j["transport"], "tcp");
    // The default (auto) is libavcodec where FFmpeg's library is installed, as the test
    // command makes sure it is.
    assert!(
        j["decoder"].as_str().unwrap().starts_with("libavcodec "),
        "{j}"
    );
    let fps = j["fps"].as_f64().unwrap();
    assert!((10.0..=20.0).contains(&fps), "fps {fps}: {j}");
}

/// A 1080p camera (16:9) with a 640×480 (4:3) sub-stream, `--sub-stream /sub-4x3`: the
/// picture's shape tells which stream it came from. `--max-width 320` fits the
/// sub-stream: 320×240; `--stream main` at the same width: 320×180; `--stream sub`: the
/// sub-stream's own 640×480. `probe` names the sub-stream; a bad `--stream` is refused.
#[test]
fn snapshot_from_the_sub_stream() {
    let dir = std::env::temp_dir().join(format!("camkit-cli-sub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = server().url("/h264-1080");
    let size = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "snapshot",
            url.as_str(),
            "-o",
            out.to_str().unwrap(),
            "--sub-stream",
            "/sub-4x3",
        ];
        args.extend_from_slice(extra);
        let o = camkit(&args);
        assert!(o.status.success(), "{extra:?}: {}", text(&o));
        let (_, w, h) = decode_jpeg_rgb(&std::fs::read(&out).unwrap());
        (w, h)
    };
    assert_eq!(size("small.jpg", &["--max-width", "320"]), (320, 240));
    assert_eq!(
        size("main.jpg", &["--max-width", "320", "--stream", "main"]),
        (320, 180)
    );
    assert_eq!(size("sub.jpg", &["--stream", "sub"]), (640, 480));
    assert_eq!(size("full.jpg", &[]), (1920, 1080));

    let o = camkit(&["probe", &url, "--sub-stream", "/sub-4x3"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("sub-stream: ") && l.ends_with("/sub-4x3 (streaming)")),
        "{out}"
    );
    assert!(out.contains("640x480"), "{out}");

    let o = camkit(&[
        "snapshot",
        &url,
        "-o",
        "/dev/null",
        "--sub-stream",
        "/sub-4x3",
        "--stream",
        "hd",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("camkit: INVALID_INPUT: --stream: "),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}
