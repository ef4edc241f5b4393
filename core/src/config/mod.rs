//! Camera configuration: what the caller gives, as plain data, and its validation.
//!
//! [`CameraConfig::validate`] checks every field and has no side effect: the address and
//! credentials are checked and split by [`crate::address`], and the decoder choice is only
//! resolved (libavcodec loaded) when the camera starts.
//!
//! Here: the config itself and its whole check. Apart: the choices it names
//! (`choices.rs`: transport, decode policy, decoder), camera ids (`id.rs`) and durations
//! (`duration.rs`: their bounds and their form in JSON, milliseconds).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address::{AddressParts, Source};
use crate::error::{Error, Result};

mod choices;
mod duration;
mod id;

pub use crate::address::DEFAULT_PORT;
pub use choices::{DecodePolicy, DecoderChoice, Transport};
pub use id::{check_id, MAX_ID_LEN};

use duration::{check_duration, millis, opt_millis};
use id::validate_id;

/// Default JPEG quality (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 80;

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

#[cfg(test)]
mod tests;
