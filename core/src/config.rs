//! Camera configuration: what the caller gives, as plain data, and its validation.
//!
//! [`CameraConfig::validate`] checks every field and has no side effect: the address and
//! credentials are checked and split by [`crate::address`], and the decoder choice is only
//! resolved (libavcodec loaded) when the camera starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address::{AddressParts, Source};
use crate::error::{Error, Result};

/// Longest camera id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;
pub use crate::address::DEFAULT_PORT;
/// Default JPEG quality (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 80;

/// How RTP packets travel from the camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection: works through NAT and firewalls.
    Tcp,
    /// Separate UDP ports: lower latency on a clean LAN.
    Udp,
    /// TCP, then UDP when the camera answers 461 Unsupported Transport.
    #[default]
    Auto,
}

impl std::str::FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            "auto" | "" => Ok(Transport::Auto),
            other => Err(Error::invalid(
                "transport",
                format!("{other:?} is not one of tcp, udp, auto"),
            )),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Auto => "auto",
        })
    }
}

/// When a camera's video is decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DecodePolicy {
    /// Keep the compressed frames since the last keyframe and decode only when someone
    /// asks: a snapshot decodes the buffered pictures up to now, a subscriber switches the
    /// camera to continuous decoding until it leaves (plus a short grace period).
    #[default]
    OnDemand,
    /// Decode every frame as it arrives: the lowest snapshot latency, the highest CPU.
    Continuous,
    /// Decode keyframes only: a picture every GOP (typically 1–4 s) for almost no CPU.
    Keyframes,
}

impl std::str::FromStr for DecodePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "on_demand" | "onDemand" | "on-demand" => Ok(DecodePolicy::OnDemand),
            "continuous" => Ok(DecodePolicy::Continuous),
            "keyframes" => Ok(DecodePolicy::Keyframes),
            other => Err(Error::invalid(
                "decode",
                format!("{other:?} is not one of on_demand, continuous, keyframes"),
            )),
        }
    }
}

/// Which H.264 decoder a camera uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DecoderChoice {
    /// libavcodec when the system has it (FFmpeg 4–7), else OpenH264.
    #[default]
    Auto,
    /// OpenH264, built into camkit: always available.
    #[serde(rename = "openh264")]
    OpenH264,
    /// The system's libavcodec (FFmpeg), about twice as fast; connecting fails when it
    /// cannot be loaded.
    #[serde(alias = "ffmpeg")]
    Libavcodec,
}

impl std::str::FromStr for DecoderChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(DecoderChoice::Auto),
            "openh264" => Ok(DecoderChoice::OpenH264),
            "libavcodec" | "ffmpeg" => Ok(DecoderChoice::Libavcodec),
            other => Err(Error::invalid(
                "decoder",
                format!("{other:?} is not one of auto, openh264, libavcodec"),
            )),
        }
    }
}

impl std::fmt::Display for DecoderChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecoderChoice::Auto => "auto",
            DecoderChoice::OpenH264 => "openh264",
            DecoderChoice::Libavcodec => "libavcodec",
        })
    }
}

/// Everything camkit needs to open one camera.
///
/// Either `url` (a full `rtsp://` URL) or `host` (+ `port`, `path`) names the camera.
/// Deserializes from camelCase JSON with durations in milliseconds
/// (`{"id":"door","host":"10.0.0.7","path":"/stream1","rtspTimeoutMs":5000}`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CameraConfig {
    /// The caller's name for this camera: 1–64 bytes, no control characters, no `/`.
    pub id: String,
    /// A full `rtsp://` URL; may carry `user:pass@` (percent-encoded), which is moved out.
    pub url: Option<String>,
    /// Host name or IP address, when `url` is not given.
    pub host: Option<String>,
    /// RTSP port (1–65535), default 554.
    pub port: Option<u32>,
    /// Path on the camera, starting with `/` (default `/`).
    pub path: Option<String>,
    /// User name, taken literally.
    pub username: Option<String>,
    /// Password, taken literally. Never shown anywhere.
    pub password: Option<String>,
    /// RTP transport.
    pub transport: Transport,
    /// When to decode.
    pub decode: DecodePolicy,
    /// Which H.264 decoder (default `auto`: libavcodec when loadable, else OpenH264).
    pub decoder: DecoderChoice,
    /// Limit for each RTSP step (connect + DESCRIBE, SETUP, PLAY).
    #[serde(rename = "rtspTimeoutMs", with = "millis")]
    pub rtsp_timeout: Duration,
    /// Reconnect when no video frame arrives for this long (the watchdog).
    #[serde(rename = "frameTimeoutMs", with = "millis")]
    pub frame_timeout: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max`.
    #[serde(rename = "backoffInitialMs", with = "millis")]
    pub backoff_initial: Duration,
    /// Longest reconnect delay (also the delay after refused credentials).
    #[serde(rename = "backoffMaxMs", with = "millis")]
    pub backoff_max: Duration,
    /// Default JPEG quality for this camera (1–100).
    pub jpeg_quality: u8,
    /// Keep the camera (retrying in the background) even when the first attempt fails;
    /// otherwise `connect` returns that failure and forgets the camera.
    pub persistent: bool,
    /// After a snapshot, an `OnDemand` camera decodes every frame for this long (default
    /// 5 s), so snapshots in a row are served from the cache; after its last subscriber
    /// leaves, for the shorter of this and 2 s. Then it releases its decoder and raw
    /// picture (tens of MB at 1080p) until the next snapshot or subscriber.
    #[serde(rename = "decodeGraceMs", with = "millis")]
    pub decode_grace: Duration,
    /// Longest wait of `connect` for the camera's first picture, all steps together; past
    /// it `connect` fails with `Timeout` (a persistent camera stays and keeps trying).
    /// `None` (the default): 4 × `rtsp_timeout` + `frame_timeout` + 10 s, 40 s with the
    /// defaults; see [`connect_bound`](Self::connect_bound).
    #[serde(rename = "connectTimeoutMs", with = "opt_millis")]
    pub connect_timeout: Option<Duration>,
    /// Longest wait of a snapshot or a latest picture (the decode of the buffered frames
    /// and the JPEG encode); past it the call fails with `Timeout`. `None` (the default):
    /// `rtsp_timeout`; see [`snapshot_bound`](Self::snapshot_bound).
    #[serde(rename = "snapshotTimeoutMs", with = "opt_millis")]
    pub snapshot_timeout: Option<Duration>,
    /// When to send `TEARDOWN` (see [`Teardown`](crate::Teardown)); default `auto`.
    pub teardown: crate::Teardown,
    /// Data on interleaved channels nobody set up (see
    /// [`UnassignedChannelData`](crate::UnassignedChannelData)); default `auto`.
    pub unassigned_channel_data: crate::UnassignedChannelData,
    /// RTCP from an unknown SSRC (see [`UnknownRtcpSsrc`](crate::UnknownRtcpSsrc));
    /// default `dropPackets`.
    pub unknown_rtcp_ssrc: crate::UnknownRtcpSsrc,
    /// The camera's second, smaller stream (e.g. 640×360 beside a 1080p main stream): a
    /// path on the same host and port (with the camera's credentials), or a full
    /// `rtsp://` URL (its own `user:pass@`, else the camera's credentials when it names the
    /// same host and port). camkit opens it as a second session; snapshots and
    /// subscriptions pick it per request (see [`StreamChoice`](crate::StreamChoice)), and
    /// the status reports it apart (`subStream`). Its failure never stops the main stream.
    pub sub_stream: Option<String>,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            id: String::new(),
            url: None,
            host: None,
            port: None,
            path: None,
            username: None,
            password: None,
            transport: Transport::Auto,
            decode: DecodePolicy::OnDemand,
            decoder: DecoderChoice::Auto,
            rtsp_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            persistent: false,
            decode_grace: Duration::from_secs(5),
            connect_timeout: None,
            snapshot_timeout: None,
            teardown: Default::default(),
            unassigned_channel_data: Default::default(),
            unknown_rtcp_ssrc: Default::default(),
            sub_stream: None,
        }
    }
}

impl std::fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraConfig")
            .field("id", &self.id)
            .field(
                "url",
                &self.url.as_deref().map(crate::address::redact_url_str),
            )
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("decode", &self.decode)
            .field("decoder", &self.decoder)
            .field("rtsp_timeout", &self.rtsp_timeout)
            .field("frame_timeout", &self.frame_timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("jpeg_quality", &self.jpeg_quality)
            .field("persistent", &self.persistent)
            .field("decode_grace", &self.decode_grace)
            .field("connect_timeout", &self.connect_timeout)
            .field("snapshot_timeout", &self.snapshot_timeout)
            .field("teardown", &self.teardown)
            .field("unassigned_channel_data", &self.unassigned_channel_data)
            .field("unknown_rtcp_ssrc", &self.unknown_rtcp_ssrc)
            .field(
                "sub_stream",
                &self
                    .sub_stream
                    .as_deref()
                    .map(crate::address::redact_url_str),
            )
            .finish()
    }
}

impl CameraConfig {
    /// Every field, by its JSON (camelCase) name: the one list the bindings are checked
    /// against, so that each field is settable from Node, C and the Express connect body
    /// (a test fails when a field is added here and not there, and a core test fails when
    /// this list and the struct differ).
    pub const FIELDS: &'static [&'static str] = &[
        "id",
        "url",
        "host",
        "port",
        "path",
        "username",
        "password",
        "transport",
        "decode",
        "decoder",
        "rtspTimeoutMs",
        "frameTimeoutMs",
        "backoffInitialMs",
        "backoffMaxMs",
        "jpegQuality",
        "persistent",
        "decodeGraceMs",
        "connectTimeoutMs",
        "snapshotTimeoutMs",
        "teardown",
        "unassignedChannelData",
        "unknownRtcpSsrc",
        "subStream",
    ];

    /// A camera named by a full `rtsp://` URL.
    pub fn from_url(id: impl Into<String>, url: impl Into<String>) -> Self {
        CameraConfig {
            id: id.into(),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// A camera named by host, with the default port and path `/`.
    pub fn from_host(id: impl Into<String>, host: impl Into<String>) -> Self {
        CameraConfig {
            id: id.into(),
            host: Some(host.into()),
            ..Default::default()
        }
    }

    /// Sets username and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets the RTP transport.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the decode policy.
    pub fn decode(mut self, decode: DecodePolicy) -> Self {
        self.decode = decode;
        self
    }

    /// Sets the H.264 decoder.
    pub fn decoder(mut self, decoder: DecoderChoice) -> Self {
        self.decoder = decoder;
        self
    }

    /// Checks every field and builds the source camkit connects to (the URL without
    /// credentials, and the credentials apart). Errors name the field and never hold the
    /// password.
    ///
    /// Nothing is loaded or opened: whether the `decoder` asked for is available is known
    /// when the camera starts (`connect` then fails naming `decoder`).
    pub fn validate(&self) -> Result<Source> {
        validate_id(&self.id)?;
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(Error::invalid("jpegQuality", "must be between 1 and 100"));
        }
        check_duration("rtspTimeoutMs", self.rtsp_timeout)?;
        check_duration("frameTimeoutMs", self.frame_timeout)?;
        check_duration("backoffInitialMs", self.backoff_initial)?;
        check_duration("backoffMaxMs", self.backoff_max)?;
        check_duration("decodeGraceMs", self.decode_grace)?;
        if let Some(d) = self.connect_timeout {
            check_duration("connectTimeoutMs", d)?;
        }
        if let Some(d) = self.snapshot_timeout {
            check_duration("snapshotTimeoutMs", d)?;
        }
        if self.backoff_max < self.backoff_initial {
            return Err(Error::invalid(
                "backoffMaxMs",
                "must not be smaller than backoffInitialMs",
            ));
        }
        let main = AddressParts {
            url: self.url.as_deref(),
            host: self.host.as_deref(),
            port: self.port,
            path: self.path.as_deref(),
            username: self.username.as_deref(),
            password: self.password.as_deref(),
        }
        .resolve()?;
        self.sub_source(&main)?;
        Ok(main)
    }

    /// The sub-stream's source, when the config has one (see
    /// [`sub_stream`](Self::sub_stream)), given the main stream's.
    pub(crate) fn sub_source(&self, main: &Source) -> Result<Option<Source>> {
        self.sub_stream
            .as_deref()
            .map(|spec| main.sub_stream(spec))
            .transpose()
    }

    /// How long `connect` waits for the first picture: `connect_timeout`, or by default
    /// 4 × `rtsp_timeout` + `frame_timeout` + 10 s (the steps each have their own bound;
    /// this one holds for them together).
    pub fn connect_bound(&self) -> Duration {
        self.connect_timeout.unwrap_or_else(|| {
            self.rtsp_timeout.saturating_mul(4) + self.frame_timeout + Duration::from_secs(10)
        })
    }

    /// How long a snapshot or latest picture may take: `snapshot_timeout`, or by default
    /// `rtsp_timeout`.
    pub fn snapshot_bound(&self) -> Duration {
        self.snapshot_timeout.unwrap_or(self.rtsp_timeout)
    }
}

fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("id", "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            "id",
            format!("is {} bytes; at most {MAX_ID_LEN} allowed", id.len()),
        ));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("id", "must not contain control characters"));
    }
    if id.contains(['/', '\\']) || id == "." || id == ".." {
        return Err(Error::invalid(
            "id",
            "must not contain '/' or '\\' or be '.' or '..'",
        ));
    }
    Ok(())
}

/// Validates a camera id on its own (for lookups by id).
pub fn check_id(id: &str) -> Result<()> {
    validate_id(id)
}

fn check_duration(field: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::invalid(field, "must be greater than 0"));
    }
    if d > Duration::from_secs(24 * 3600) {
        return Err(Error::invalid(field, "must be at most one day"));
    }
    Ok(())
}

/// `Option<Duration>` as milliseconds, `null` or absent for `None`.
mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
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
        assert!(
            serde_json::to_value(CameraConfig::default()).unwrap()["connectTimeoutMs"].is_null()
        );
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
}
