//! What JS gives: camera configs and the options of calls, as camelCase objects.
//!
//! Enumerated strings (`transport`, `decode`, `decoder`) arrive as strings and are parsed by camkit, so
//! an unknown value is an `INVALID_INPUT` error that lists the accepted ones; TypeScript
//! still sees the string unions declared in [`crate::status`].

use std::time::Duration;

use napi_derive::napi;

/// Everything camkit needs to open one camera.
///
/// Either `url` (a full `rtsp://` URL, which may carry `user:pass@`) or `host` (+ `port`,
/// `path`) names the camera. `username` / `password` are taken literally: passwords with
/// `@ : / # %` or spaces need no escaping. Nothing camkit returns, logs or throws ever
/// contains the password.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CameraConfig {
    /// The caller's name for this camera: 1–64 bytes, no control characters, no `/`.
    pub id: String,
    /// A full `rtsp://` URL.
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
    /// RTP transport: `'tcp'`, `'udp'` or `'auto'` (default: TCP, then UDP when the camera
    /// refuses TCP).
    #[napi(ts_type = "Transport")]
    pub transport: Option<String>,
    /// When to decode (default `'onDemand'`).
    #[napi(ts_type = "DecodePolicy")]
    pub decode: Option<String>,
    /// Which H.264 decoder (default `'auto'`: libavcodec when the system has it, else
    /// OpenH264). `'libavcodec'` where it cannot be loaded makes `connect` throw
    /// `INVALID_INPUT` naming `decoder`; the status' `decoder` says which one runs.
    #[napi(ts_type = "Decoder")]
    pub decoder: Option<String>,
    /// Limit for each RTSP step (connect + DESCRIBE, SETUP, PLAY), default 5000.
    pub rtsp_timeout_ms: Option<u32>,
    /// Reconnect when no video frame arrives for this long, default 10000.
    pub frame_timeout_ms: Option<u32>,
    /// First reconnect delay, doubling per failure, default 500.
    pub backoff_initial_ms: Option<u32>,
    /// Longest reconnect delay, default 30000.
    pub backoff_max_ms: Option<u32>,
    /// Default JPEG quality of this camera's frames (1–100), default 80.
    pub jpeg_quality: Option<u32>,
    /// Keep the camera, retrying in the background, even when the first attempt fails;
    /// the failure is in its status' `lastError`.
    pub persistent: Option<bool>,
    /// With `decode: 'onDemand'`: how long the camera keeps decoding after a snapshot (so
    /// snapshots in a row come from the cache) and, at most 2000 of it, after its last
    /// subscriber left; then it releases its decoder. Default 5000.
    pub decode_grace_ms: Option<u32>,
    /// Longest wait of `connect`, all steps together; then it rejects with `TIMEOUT` (a
    /// persistent camera stays and `connect` resolves). Default 4 × `rtspTimeoutMs` +
    /// `frameTimeoutMs` + 10000.
    pub connect_timeout_ms: Option<u32>,
    /// Longest wait of a snapshot of this camera; then it rejects with `TIMEOUT`. Default
    /// `rtspTimeoutMs`.
    pub snapshot_timeout_ms: Option<u32>,
    /// When to send `TEARDOWN` (default `'auto'`: over UDP and to servers known to need
    /// it; `'always'`; `'never'` for cameras that answer it badly).
    #[napi(ts_type = "'auto' | 'always' | 'never'")]
    pub teardown: Option<String>,
    /// Data on RTSP-interleaved channels nobody set up (default `'auto'`; `'ignore'` for
    /// cameras that send audio or metadata there anyway).
    #[napi(ts_type = "'auto' | 'assumeStaleSession' | 'error' | 'ignore'")]
    pub unassigned_channel_data: Option<String>,
    /// RTCP sender reports from an unknown SSRC (default `'dropPackets'`;
    /// `'processPackets'` for cameras whose RTCP carries another SSRC than their RTP).
    #[napi(ts_type = "'dropPackets' | 'abortSession' | 'processPackets'")]
    pub unknown_rtcp_ssrc: Option<String>,
    /// The camera's second, smaller stream: a path starting with `/` on the same host and
    /// port (with this camera's credentials), or a full `rtsp://` URL (its own
    /// `user:pass@`, else this camera's credentials when it names the same host and port).
    /// camkit opens it as a second session: snapshots and subscriptions with a `maxWidth`
    /// it is at least as wide as come from it while it streams (see `stream`), and the
    /// status reports it as `subStream`. Its failure never stops the main stream.
    pub sub_stream: Option<String>,
}

impl CameraConfig {
    /// camkit's config. Validation (which names the offending field) is camkit's, at
    /// connect.
    pub fn into_core(self) -> camkit::Result<camkit::CameraConfig> {
        let defaults = camkit::CameraConfig::default();
        let ms = |v: Option<u32>, d: Duration| v.map_or(d, |v| Duration::from_millis(v.into()));
        Ok(camkit::CameraConfig {
            id: self.id,
            url: self.url,
            host: self.host,
            port: self.port,
            path: self.path,
            username: self.username,
            password: self.password,
            transport: match self.transport {
                Some(t) => t.parse()?,
                None => defaults.transport,
            },
            decode: match self.decode {
                Some(d) => d.parse()?,
                None => defaults.decode,
            },
            decoder: match self.decoder {
                Some(d) => d.parse()?,
                None => defaults.decoder,
            },
            rtsp_timeout: ms(self.rtsp_timeout_ms, defaults.rtsp_timeout),
            frame_timeout: ms(self.frame_timeout_ms, defaults.frame_timeout),
            backoff_initial: ms(self.backoff_initial_ms, defaults.backoff_initial),
            backoff_max: ms(self.backoff_max_ms, defaults.backoff_max),
            // Out-of-range values become 0, which camkit rejects naming the field.
            jpeg_quality: self
                .jpeg_quality
                .map_or(defaults.jpeg_quality, |q| u8::try_from(q).unwrap_or(0)),
            persistent: self.persistent.unwrap_or(defaults.persistent),
            decode_grace: ms(self.decode_grace_ms, defaults.decode_grace),
            connect_timeout: self
                .connect_timeout_ms
                .map(|v| Duration::from_millis(v.into())),
            snapshot_timeout: self
                .snapshot_timeout_ms
                .map(|v| Duration::from_millis(v.into())),
            teardown: match self.teardown {
                Some(t) => t.parse()?,
                None => defaults.teardown,
            },
            unassigned_channel_data: match self.unassigned_channel_data {
                Some(t) => t.parse()?,
                None => defaults.unassigned_channel_data,
            },
            unknown_rtcp_ssrc: match self.unknown_rtcp_ssrc {
                Some(t) => t.parse()?,
                None => defaults.unknown_rtcp_ssrc,
            },
            sub_stream: self.sub_stream,
        })
    }
}

/// The name of every field of camkit's camera config, as `CameraConfig` spells it here.
/// Each one is settable from this binding (its tests check this list against it).
#[napi]
pub fn camera_config_fields() -> Vec<String> {
    camkit::CameraConfig::FIELDS
        .iter()
        .map(|f| (*f).to_owned())
        .collect()
}

/// Options of a `CameraManager`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ManagerOptions {
    /// Give this manager a tokio runtime of its own with this many worker threads. By
    /// default every manager of the process shares the module's runtime (2 threads);
    /// decoding runs on threads of its own either way.
    pub worker_threads: Option<u32>,
}

/// How a snapshot is encoded.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SnapshotOptions {
    /// Scale down to at most this many pixels wide (never up); default full size.
    pub max_width: Option<u32>,
    /// JPEG quality 1–100; default the camera's `jpegQuality`.
    pub quality: Option<u32>,
    /// Which stream of a camera with a `subStream` serves it: `'auto'` (default: the
    /// sub-stream when it streams and `maxWidth` is at most its width), `'main'`, or
    /// `'sub'` (the sub-stream whenever it streams, whatever the size).
    #[napi(ts_type = "StreamChoice")]
    pub stream: Option<String>,
}

impl SnapshotOptions {
    /// camkit's options; checked by camkit.
    pub fn into_core(self) -> camkit::Result<camkit::SnapshotOptions> {
        Ok(camkit::SnapshotOptions {
            max_width: self.max_width,
            quality: self.quality.map(|q| u8::try_from(q).unwrap_or(0)),
            stream: stream(self.stream)?,
        })
    }
}

/// The `stream` option, parsed by camkit (an unknown one names the field).
fn stream(s: Option<String>) -> camkit::Result<camkit::StreamChoice> {
    s.map_or(Ok(camkit::StreamChoice::Auto), |s| s.parse())
}

/// Options of a frame subscription.
#[napi(object, object_to_js = false)]
pub struct SubscribeOptions {
    /// At most this many frames per second (0.1–60). The newest picture wins: a slow
    /// callback skips pictures, it never receives a backlog.
    pub fps: f64,
    /// Scale down to at most this many pixels wide.
    pub max_width: Option<u32>,
    /// JPEG quality 1–100.
    pub quality: Option<u32>,
    /// Which stream serves it, as for a snapshot (default `'auto'`); a subscription on the
    /// sub-stream moves to the main stream while the sub-stream is off, and back.
    #[napi(ts_type = "StreamChoice")]
    pub stream: Option<String>,
}

impl SubscribeOptions {
    /// camkit's options; checked by camkit.
    pub fn into_core(self) -> camkit::Result<camkit::SubscribeOptions> {
        Ok(camkit::SubscribeOptions {
            fps: self.fps,
            max_width: self.max_width,
            quality: self.quality.map(|q| u8::try_from(q).unwrap_or(0)),
            stream: stream(self.stream)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_camkits() {
        let c = CameraConfig {
            id: "a".into(),
            host: Some("h".into()),
            ..Default::default()
        }
        .into_core()
        .unwrap();
        assert_eq!(
            c,
            camkit::CameraConfig {
                id: "a".into(),
                host: Some("h".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn quirk_options_are_parsed_naming_the_field() {
        let c = CameraConfig {
            id: "a".into(),
            host: Some("h".into()),
            teardown: Some("never".into()),
            unassigned_channel_data: Some("ignore".into()),
            unknown_rtcp_ssrc: Some("processPackets".into()),
            ..Default::default()
        }
        .into_core()
        .unwrap();
        assert_eq!(c.teardown, camkit::Teardown::Never);
        assert_eq!(
            c.unassigned_channel_data,
            camkit::UnassignedChannelData::Ignore
        );
        assert_eq!(c.unknown_rtcp_ssrc, camkit::UnknownRtcpSsrc::ProcessPackets);
        let e = CameraConfig {
            id: "a".into(),
            unassigned_channel_data: Some("drop".into()),
            ..Default::default()
        }
        .into_core()
        .unwrap_err();
        assert_eq!(e.field(), Some("unassignedChannelData"), "{e}");
    }

    #[test]
    fn enumerated_strings_are_checked_naming_the_field() {
        let e = CameraConfig {
            id: "a".into(),
            transport: Some("carrier-pigeon".into()),
            ..Default::default()
        }
        .into_core()
        .unwrap_err();
        assert_eq!(e.kind(), camkit::ErrorKind::InvalidInput);
        assert!(e.message().starts_with("transport"), "{e}");
        let c = CameraConfig {
            id: "a".into(),
            decode: Some("keyframes".into()),
            jpeg_quality: Some(1000),
            ..Default::default()
        }
        .into_core()
        .unwrap();
        assert_eq!(c.decode, camkit::DecodePolicy::Keyframes);
        let e = CameraConfig {
            id: "a".into(),
            decoder: Some("gpu".into()),
            ..Default::default()
        }
        .into_core()
        .unwrap_err();
        assert_eq!(e.kind(), camkit::ErrorKind::InvalidInput);
        assert!(e.message().starts_with("decoder"), "{e}");
        for (text, want) in [
            ("auto", camkit::DecoderChoice::Auto),
            ("openh264", camkit::DecoderChoice::OpenH264),
            ("libavcodec", camkit::DecoderChoice::Libavcodec),
        ] {
            let c = CameraConfig {
                id: "a".into(),
                decoder: Some(text.into()),
                ..Default::default()
            }
            .into_core()
            .unwrap();
            assert_eq!(c.decoder, want);
        }
        assert_eq!(
            c.jpeg_quality, 0,
            "out of range is left for camkit to reject"
        );
    }
}
