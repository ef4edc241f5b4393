//! The config's checks (every bad field named, no password shown) and its JSON form.

use super::*;
use crate::error::ErrorKind;

fn field_of(e: Error) -> String {
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    e.message().split(':').next().unwrap().to_owned()
}

#[test]
fn bad_configs_name_the_field() {
    let cases: Vec<(CameraConfig, &str)> = vec![
        (CameraConfig::from_host("", "h"), "id"),
        (CameraConfig::from_host("x".repeat(65), "h"), "id"),
        (CameraConfig::from_host("a\u{7}b", "h"), "id"),
        (CameraConfig::from_host("a/b", "h"), "id"),
        (CameraConfig::from_host("c", "bad host"), "host"),
        (CameraConfig::from_host("c", "1.2.3.4/x@evil"), "host"),
        (CameraConfig::from_host("c", "user@host"), "host"),
        (CameraConfig::from_host("c", ""), "host"),
        (
            CameraConfig {
                port: Some(0),
                ..CameraConfig::from_host("c", "h")
            },
            "port",
        ),
        (
            CameraConfig {
                port: Some(70000),
                ..CameraConfig::from_host("c", "h")
            },
            "port",
        ),
        (
            CameraConfig {
                path: Some("stream1".into()),
                ..CameraConfig::from_host("c", "h")
            },
            "path",
        ),
        (CameraConfig::from_url("c", "http://h/p"), "url"),
        (CameraConfig::from_url("c", "h/p"), "url"),
        (CameraConfig::from_url("c", "rtsp://h:0/p"), "url"),
        (CameraConfig::from_url("c", "rtsp:///p"), "url"),
        (
            CameraConfig {
                jpeg_quality: 0,
                ..CameraConfig::from_host("c", "h")
            },
            "jpegQuality",
        ),
        (
            CameraConfig {
                rtsp_timeout: Duration::ZERO,
                ..CameraConfig::from_host("c", "h")
            },
            "rtspTimeoutMs",
        ),
        (
            CameraConfig {
                id: "c".into(),
                ..Default::default()
            },
            "host",
        ),
        (
            CameraConfig {
                sub_stream: Some("stream2".into()),
                ..CameraConfig::from_host("c", "h")
            },
            "subStream",
        ),
    ];
    for (cfg, field) in cases {
        let dbg = format!("{cfg:?}");
        assert_eq!(field_of(cfg.validate().unwrap_err()), field, "{dbg}");
    }
}

#[test]
fn errors_never_echo_the_password() {
    let e = CameraConfig::from_url("c", "ftp://admin:hunter2@h/p")
        .validate()
        .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = CameraConfig::from_url("c", "rtsp://admin:hunter2@bad host/p")
        .validate()
        .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let dbg = format!(
        "{:?}",
        CameraConfig::from_host("c", "h").credentials("u", "hunter2")
    );
    assert!(!dbg.contains("hunter2"), "{dbg}");
}

#[test]
fn json_config_round_trips_with_millis() {
    let c: CameraConfig = serde_json::from_str(
        r#"{"id":"door","host":"10.0.0.7","path":"/s1","transport":"tcp","rtspTimeoutMs":1500,"decode":"continuous"}"#,
    )
    .unwrap();
    assert_eq!(c.rtsp_timeout, Duration::from_millis(1500));
    assert_eq!(c.transport, Transport::Tcp);
    assert_eq!(c.decode, DecodePolicy::Continuous);
    assert!(serde_json::from_str::<CameraConfig>(r#"{"id":"x","bogus":1}"#).is_err());
    assert_eq!(c.decode_grace, Duration::from_secs(5));
    let c: CameraConfig =
        serde_json::from_str(r#"{"id":"d","host":"h","decodeGraceMs":250}"#).unwrap();
    assert_eq!(c.decode_grace, Duration::from_millis(250));
    let e = CameraConfig {
        decode_grace: Duration::ZERO,
        ..c
    }
    .validate()
    .unwrap_err();
    assert_eq!(field_of(e), "decodeGraceMs");
    assert_eq!(c.decoder, DecoderChoice::Auto);
}

/// `FIELDS` is the struct's own list of keys: what serde writes for a config, in
/// declaration order, and what serde accepts.
#[test]
fn fields_are_the_structs_keys() {
    let json = serde_json::to_value(CameraConfig::default()).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut fields = CameraConfig::FIELDS.to_vec();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    fields.sort_unstable();
    assert_eq!(sorted, fields, "CameraConfig::FIELDS must list every field");
    for field in CameraConfig::FIELDS {
        let mut obj = json.as_object().unwrap().clone();
        obj.retain(|k, _| k == field);
        serde_json::from_value::<CameraConfig>(obj.into())
            .unwrap_or_else(|e| panic!("{field}: {e}"));
    }
}

#[test]
fn bounds_default_from_the_rtsp_timeout() {
    let c = CameraConfig::from_host("c", "h");
    assert_eq!(c.connect_bound(), Duration::from_secs(40));
    assert_eq!(c.snapshot_bound(), Duration::from_secs(5));
    let c = CameraConfig {
        rtsp_timeout: Duration::from_secs(1),
        ..c
    };
    assert_eq!(c.connect_bound(), Duration::from_secs(24));
    assert_eq!(c.snapshot_bound(), Duration::from_secs(1));
    let c: CameraConfig = serde_json::from_str(
        r#"{"id":"c","host":"h","connectTimeoutMs":1500,"snapshotTimeoutMs":250}"#,
    )
    .unwrap();
    assert_eq!(c.connect_bound(), Duration::from_millis(1500));
    assert_eq!(c.snapshot_bound(), Duration::from_millis(250));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["snapshotTimeoutMs"], 250);
    assert!(serde_json::to_value(CameraConfig::default()).unwrap()["connectTimeoutMs"].is_null());
    for (field, cfg) in [
        (
            "connectTimeoutMs",
            CameraConfig {
                connect_timeout: Some(Duration::ZERO),
                ..c.clone()
            },
        ),
        (
            "snapshotTimeoutMs",
            CameraConfig {
                snapshot_timeout: Some(Duration::from_secs(100_000)),
                ..c.clone()
            },
        ),
    ] {
        assert_eq!(field_of(cfg.validate().unwrap_err()), field);
    }
}

#[test]
fn decoder_choice_parses_and_names_the_field() {
    for (text, want) in [
        ("auto", DecoderChoice::Auto),
        ("openh264", DecoderChoice::OpenH264),
        ("OpenH264", DecoderChoice::OpenH264),
        ("libavcodec", DecoderChoice::Libavcodec),
        ("ffmpeg", DecoderChoice::Libavcodec),
    ] {
        assert_eq!(text.parse::<DecoderChoice>().unwrap(), want);
    }
    for c in [
        DecoderChoice::Auto,
        DecoderChoice::OpenH264,
        DecoderChoice::Libavcodec,
    ] {
        assert_eq!(c.to_string().parse::<DecoderChoice>().unwrap(), c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{c}\""));
    }
    let e = "x264".parse::<DecoderChoice>().unwrap_err();
    assert_eq!(field_of(e.clone()), "decoder");
    assert!(e.message().contains("auto, openh264, libavcodec"), "{e}");
    let c: CameraConfig =
        serde_json::from_str(r#"{"id":"a","host":"h","decoder":"openh264"}"#).unwrap();
    assert_eq!(c.decoder, DecoderChoice::OpenH264);
    assert!(c.validate().is_ok());
    assert_eq!(
        crate::decode::DecoderBackend::resolve(c.decoder).unwrap(),
        crate::decode::DecoderBackend::OpenH264
    );
    let c: CameraConfig =
        serde_json::from_str(r#"{"id":"a","host":"h","decoder":"ffmpeg"}"#).unwrap();
    assert_eq!(c.decoder, DecoderChoice::Libavcodec);
    assert!(serde_json::from_str::<CameraConfig>(r#"{"id":"a","decoder":"vlc"}"#).is_err());
}
