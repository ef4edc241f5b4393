//! Camera configuration: what the caller gives, and its validation into a camera source.
//!
//! Credentials never live in the URL camkit keeps: a `rtsp://user:pass@host/...` URL is
//! split into a bare URL and [`retina::client::Credentials`], and only the bare URL is ever
//! shown (status, logs, errors). The `username` / `password` fields are taken literally, so
//! passwords with `@ : / # %` or spaces need no escaping there.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::decode::DecoderBackend;
use crate::error::{Error, Result};

/// Longest camera id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Default RTSP port.
pub const DEFAULT_PORT: u16 = 554;
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
        }
    }
}

impl std::fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraConfig")
            .field("id", &self.id)
            .field("url", &self.url.as_deref().map(redact_url_str))
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
            .field("jpeg_quality", &self.jpeg_quality)
            .field("persistent", &self.persistent)
            .field("decode_grace", &self.decode_grace)
            .finish()
    }
}

impl CameraConfig {
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

    /// Checks every field and builds the source camkit connects to.
    ///
    /// This is also where the decoder choice is resolved: `libavcodec` where it cannot be
    /// loaded is an error naming `decoder`.
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
        if self.backoff_max < self.backoff_initial {
            return Err(Error::invalid(
                "backoffMaxMs",
                "must not be smaller than backoffInitialMs",
            ));
        }
        if let Some(u) = &self.username {
            check_text("username", u, 256)?;
        }
        if let Some(p) = &self.password {
            if p.len() > 256 || p.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
                return Err(Error::invalid(
                    "password",
                    "must be at most 256 bytes without line breaks or NUL",
                ));
            }
        }
        let (url, url_creds) = match (&self.url, &self.host) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("url", "give either url or host, not both"));
            }
            (None, None) => return Err(Error::invalid("host", "missing: give host or url")),
            (Some(u), None) => parse_rtsp_url(u)?,
            (None, Some(h)) => {
                if self.port.is_some_and(|p| p == 0 || p > 65535) {
                    return Err(Error::invalid("port", "must be between 1 and 65535"));
                }
                let port = self.port.unwrap_or(DEFAULT_PORT as u32) as u16;
                let path = self.path.as_deref().unwrap_or("/");
                (build_url(h, port, path)?, None)
            }
        };
        if self.url.is_some() && (self.port.is_some() || self.path.is_some()) {
            return Err(Error::invalid(
                "url",
                "port and path belong in the url when url is given",
            ));
        }
        let username = self
            .username
            .clone()
            .or_else(|| url_creds.as_ref().map(|c| c.0.clone()));
        let password = self
            .password
            .clone()
            .or_else(|| url_creds.as_ref().map(|c| c.1.clone()));
        let credentials = match (username, password) {
            (None, None) => None,
            (u, p) => Some(retina::client::Credentials {
                username: u.unwrap_or_default(),
                password: p.unwrap_or_default(),
            }),
        };
        let decoder = DecoderBackend::resolve(self.decoder)?;
        Ok(Source {
            url,
            credentials,
            decoder,
        })
    }
}

/// A validated camera address: a URL without credentials, and the credentials apart.
#[derive(Clone)]
pub struct Source {
    url: Url,
    credentials: Option<retina::client::Credentials>,
    decoder: DecoderBackend,
}

impl Source {
    /// The URL camkit connects to; it never carries credentials, so it may be shown.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn credentials(&self) -> Option<&retina::client::Credentials> {
        self.credentials.as_ref()
    }

    /// The H.264 decoder the camera will use.
    pub fn decoder(&self) -> DecoderBackend {
        self.decoder
    }

    /// The username, if any (never the password).
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("url", &self.url.as_str())
            .field("username", &self.username())
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
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

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.len() > max {
        return Err(Error::invalid(
            field,
            format!("at most {max} bytes allowed"),
        ));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
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

fn check_host(host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(Error::invalid("host", "must not be empty"));
    }
    if host.len() > 253 {
        return Err(Error::invalid("host", "longer than 253 bytes"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| Error::invalid("host", "is not a valid bracketed IPv6 address"));
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_'))
    {
        let what = match c {
            ' ' => "a space".to_owned(),
            c if c.is_control() => "a control character".to_owned(),
            c => format!("{c:?}"),
        };
        return Err(Error::invalid(
            "host",
            format!(
                "contains {what}; give only a host name or IP address (port and path are separate fields)"
            ),
        ));
    }
    Ok(())
}

fn build_url(host: &str, port: u16, path: &str) -> Result<Url> {
    check_host(host)?;
    if !path.starts_with('/') {
        return Err(Error::invalid("path", "must start with '/'"));
    }
    check_text("path", path, 1024)?;
    if path.contains(' ') {
        return Err(Error::invalid("path", "must not contain spaces"));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Url::parse(&format!("rtsp://{host}:{port}{path}"))
        .map_err(|e| Error::invalid("path", format!("does not make a valid URL: {e}")))
}

/// Parses a user-supplied `rtsp://` URL, moving any `user:pass@` out of it.
///
/// The userinfo ends at the last `@` before the host, so unencoded `@ : /` in a
/// password still parse; valid `%XX` escapes in it are decoded.
fn parse_rtsp_url(raw: &str) -> Result<(Url, Option<(String, String)>)> {
    let raw = raw.trim();
    if raw.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("url", "must not contain control characters"));
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(Error::invalid(
            "url",
            "must start with rtsp:// (e.g. rtsp://192.168.1.20:554/stream1)",
        ));
    };
    if !scheme.eq_ignore_ascii_case("rtsp") {
        return Err(Error::invalid(
            "url",
            format!(
                "scheme {:?} is not supported; use rtsp://",
                scheme.to_ascii_lowercase()
            ),
        ));
    }
    // The host part is everything after the last '@' up to the next '/'.
    let (userinfo, hostpath) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hostport, path) = match hostpath.find(['/', '?']) {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let (host, port) = split_host_port(hostport)?;
    let url = build_url(host, port, &path).map_err(|e| {
        // Errors from the pieces name "host"/"path"; here the caller gave a URL.
        Error::invalid("url", e.message())
    })?;
    let creds = userinfo.map(|ui| {
        let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
        (percent_decode_lenient(u), percent_decode_lenient(p))
    });
    Ok((url, creds))
}

fn split_host_port(hostport: &str) -> Result<(&str, u16)> {
    if hostport.is_empty() {
        return Err(Error::invalid("url", "has no host"));
    }
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(end) => {
                let host = &hostport[..=end];
                let rest = &hostport[end + 1..];
                (host, rest.strip_prefix(':'))
            }
            None => return Err(Error::invalid("url", "unclosed '[' in IPv6 host")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => n as u16,
            _ => return Err(Error::invalid("url", "port must be between 1 and 65535")),
        },
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes that are valid; leaves a lone `%` as it is.
fn percent_decode_lenient(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Removes any `user:pass@` from a URL-like string, for display. Works on strings that do
/// not parse, so nothing a caller typed can leak through an error message.
pub fn redact_url_str(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            // The last '@' anywhere ends any userinfo (it may itself contain '/').
            match rest.rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => s.to_owned(),
            }
        }
        None => match s.rfind('@') {
            Some(at) => s[at + 1..].to_owned(),
            None => s.to_owned(),
        },
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
    fn host_port_path_build_a_bare_url() {
        let mut c = CameraConfig::from_host("cam1", "192.168.1.20").credentials("admin", "p@ss");
        c.path = Some("/Streaming/Channels/101".into());
        let s = c.validate().unwrap();
        assert_eq!(
            s.url().as_str(),
            "rtsp://192.168.1.20:554/Streaming/Channels/101"
        );
        assert_eq!(s.username(), Some("admin"));
        assert_eq!(s.credentials().unwrap().password, "p@ss");
    }

    #[test]
    fn special_character_passwords_in_fields_are_literal() {
        for pw in [
            "p@ss",
            "a:b",
            "x/y",
            "hash#tag",
            "50%off",
            "two words",
            "%41",
            "@:/#% ",
        ] {
            let s = CameraConfig::from_host("c", "cam.local")
                .credentials("u", pw)
                .validate()
                .unwrap();
            assert_eq!(s.credentials().unwrap().password, pw);
            assert!(!s.url().as_str().contains(pw.trim()));
        }
    }

    #[test]
    fn credentials_in_url_are_moved_out() {
        let s = CameraConfig::from_url("c", "rtsp://admin:s%40cret%3A1@10.0.0.5:8554/live?ch=1")
            .validate()
            .unwrap();
        assert_eq!(s.url().as_str(), "rtsp://10.0.0.5:8554/live?ch=1");
        let c = s.credentials().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "s@cret:1")
        );
    }

    #[test]
    fn unencoded_specials_in_url_password_parse_by_last_at() {
        let s = CameraConfig::from_url("c", "rtsp://admin:p@ss/w#rd 1@cam.local/stream1")
            .validate()
            .unwrap();
        assert_eq!(s.url().as_str(), "rtsp://cam.local:554/stream1");
        assert_eq!(s.credentials().unwrap().password, "p@ss/w#rd 1");
        assert!(!format!("{s:?}").contains("w#rd"));
    }

    #[test]
    fn fields_override_url_credentials() {
        let s = CameraConfig::from_url("c", "rtsp://a:b@h/p")
            .credentials("x", "y")
            .validate()
            .unwrap();
        assert_eq!(s.credentials().unwrap().username, "x");
        assert_eq!(s.credentials().unwrap().password, "y");
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
    fn ipv6_hosts() {
        let s = CameraConfig::from_host("c", "::1").validate().unwrap();
        assert_eq!(s.url().as_str(), "rtsp://[::1]:554/");
        let s = CameraConfig::from_url("c", "rtsp://[::1]:8554/x")
            .validate()
            .unwrap();
        assert_eq!(s.url().port(), Some(8554));
    }

    #[test]
    fn redact_strips_userinfo() {
        assert_eq!(redact_url_str("rtsp://u:p@h/x"), "rtsp://h/x");
        assert_eq!(redact_url_str("rtsp://u:p/q@h/x"), "rtsp://h/x");
        assert_eq!(redact_url_str("rtsp://h/x"), "rtsp://h/x");
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
        assert_eq!(
            c.validate().unwrap().decoder(),
            crate::decode::DecoderBackend::OpenH264
        );
        let c: CameraConfig =
            serde_json::from_str(r#"{"id":"a","host":"h","decoder":"ffmpeg"}"#).unwrap();
        assert_eq!(c.decoder, DecoderChoice::Libavcodec);
        assert!(serde_json::from_str::<CameraConfig>(r#"{"id":"a","decoder":"vlc"}"#).is_err());
    }
}
