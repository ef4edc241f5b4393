//! `camkit_camera_config`: how C describes a camera, and its conversion to core's
//! `CameraConfig`.

use std::mem::{offset_of, size_of};
use std::os::raw::c_char;
use std::time::Duration;

use camkit::{CameraConfig, DecodePolicy, Transport};

use crate::error::{camkit_result, FfiError};
use crate::ffi::{arg_ref, millis_or, opt_str, Out};

/// How RTP packets travel from the camera.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_transport {
    /// TCP, then UDP when the camera answers 461 Unsupported Transport (the default).
    CAMKIT_TRANSPORT_AUTO = 0,
    /// Interleaved in the RTSP TCP connection: works through NAT and firewalls.
    CAMKIT_TRANSPORT_TCP = 1,
    /// Separate UDP ports: lower latency on a clean LAN.
    CAMKIT_TRANSPORT_UDP = 2,
}

/// When a camera's video is decoded.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camkit_decode_policy {
    /// Decode only when asked: a snapshot decodes the frames buffered since the last
    /// keyframe; a subscription decodes continuously while it lives (the default).
    CAMKIT_DECODE_ON_DEMAND = 0,
    /// Decode every frame as it arrives: lowest snapshot latency, highest CPU.
    CAMKIT_DECODE_CONTINUOUS = 1,
    /// Decode keyframes only: a picture every GOP (typically 1-4 s) for almost no CPU.
    CAMKIT_DECODE_KEYFRAMES = 2,
}

/// Everything camkit needs to open one camera. Fill it with `camkit_camera_config_init`
/// (or zero it: every zero is a default), then set `id` and either `url` or `host`.
///
/// Strings are NUL-terminated UTF-8 and are only read during `camkit_connect` (camkit
/// copies them). NULL and `""` both mean "not given". Numbers: 0 means the default.
#[repr(C)]
pub struct camkit_camera_config {
    /// The caller's name for the camera: 1-64 bytes, no control characters, no `/`.
    pub id: *const c_char,
    /// A full `rtsp://` URL; may carry `user:pass@` (percent-encoded). Give either `url`
    /// or `host`.
    pub url: *const c_char,
    /// Host name or IP address, when `url` is not given.
    pub host: *const c_char,
    /// RTSP port with `host`; 0 = 554.
    pub port: u16,
    /// Path on the camera with `host`, starting with `/`; NULL = `/`.
    pub path: *const c_char,
    /// User name, taken literally (no escaping needed).
    pub username: *const c_char,
    /// Password, taken literally (no escaping needed). Never shown in any message.
    pub password: *const c_char,
    /// RTP transport; `CAMKIT_TRANSPORT_AUTO` by default.
    pub transport: camkit_transport,
    /// When to decode; `CAMKIT_DECODE_ON_DEMAND` by default.
    pub decode: camkit_decode_policy,
    /// Limit for each RTSP step (connect + DESCRIBE, SETUP, PLAY) in ms; 0 = 5000.
    pub rtsp_timeout_ms: u32,
    /// Reconnect when no video arrives for this long, in ms; 0 = 10000.
    pub frame_timeout_ms: u32,
    /// Default JPEG quality for this camera's frames, 1-100; 0 = 80.
    pub jpeg_quality: u32,
    /// Keep the camera, retrying in the background, even when the first attempt fails
    /// (`camkit_connect` then succeeds and the status tells the error); otherwise
    /// `camkit_connect` returns the failure and forgets the camera.
    pub persistent: bool,
    /// The H.264 decoder: `"auto"` (NULL or `""`: libavcodec when the system has it,
    /// else OpenH264), `"openh264"` or `"libavcodec"`. `"libavcodec"` where it cannot be
    /// loaded makes `camkit_connect` fail with `CAMKIT_INVALID_INPUT` naming `decoder`;
    /// `camkit_status_decoder` tells which one runs.
    pub decoder: *const c_char,
    /// First reconnect delay in ms, doubling per failure up to `backoff_max_ms`; 0 = 500.
    pub backoff_initial_ms: u32,
    /// Longest reconnect delay in ms (also the delay after refused credentials); 0 = 30000.
    pub backoff_max_ms: u32,
    /// With `CAMKIT_DECODE_ON_DEMAND`: how long the camera keeps decoding after a
    /// snapshot (and, at most 2 s of it, after its last subscriber left), in ms; 0 = 5000.
    pub decode_grace_ms: u32,
    /// Longest wait of `camkit_connect` in ms, all steps together (then
    /// `CAMKIT_TIMEOUT`; a persistent camera stays and `camkit_connect` succeeds);
    /// 0 = 4 × `rtsp_timeout_ms` + `frame_timeout_ms` + 10000.
    pub connect_timeout_ms: u32,
    /// Longest wait of a snapshot of this camera in ms (then `CAMKIT_TIMEOUT`);
    /// 0 = `rtsp_timeout_ms`.
    pub snapshot_timeout_ms: u32,
    /// When to send `TEARDOWN`: `"auto"` (NULL or `""`), `"always"`, `"never"`.
    pub teardown: *const c_char,
    /// Data on interleaved channels nobody set up: `"auto"` (NULL or `""`),
    /// `"assumeStaleSession"`, `"error"`, `"ignore"`.
    pub unassigned_channel_data: *const c_char,
    /// RTCP sender reports from an unknown SSRC: `"dropPackets"` (NULL or `""`),
    /// `"abortSession"`, `"processPackets"`.
    pub unknown_rtcp_ssrc: *const c_char,
    /// The camera's sub-stream (NULL: none): a path starting with `/` on the same host and
    /// port, with this config's credentials, or a full `rtsp://` URL (its own
    /// `user:pass@`, else these credentials when it names the same host and port).
    /// Snapshots with a `max_width` the sub-stream is at least as wide as are taken from
    /// it while it streams; `camkit_status_sub_*` and the status JSON's `subStream` report it.
    pub sub_stream: *const c_char,
}

/// What `camkit_camera_config` holds, read without trusting the caller's enum and bool
/// bytes: a C program can store any number in an enum field, and a Rust enum holding an
/// undeclared value is undefined behaviour. Same layout, checked at compile time.
#[repr(C)]
struct RawCameraConfig {
    id: *const c_char,
    url: *const c_char,
    host: *const c_char,
    port: u16,
    path: *const c_char,
    username: *const c_char,
    password: *const c_char,
    transport: u32,
    decode: u32,
    rtsp_timeout_ms: u32,
    frame_timeout_ms: u32,
    jpeg_quality: u32,
    persistent: u8,
    decoder: *const c_char,
    backoff_initial_ms: u32,
    backoff_max_ms: u32,
    decode_grace_ms: u32,
    connect_timeout_ms: u32,
    snapshot_timeout_ms: u32,
    teardown: *const c_char,
    unassigned_channel_data: *const c_char,
    unknown_rtcp_ssrc: *const c_char,
    sub_stream: *const c_char,
}

macro_rules! same_layout {
    ($($f:ident),*) => {
        const _: () = {
            assert!(size_of::<RawCameraConfig>() == size_of::<camkit_camera_config>());
            $(assert!(
                offset_of!(RawCameraConfig, $f) == offset_of!(camkit_camera_config, $f)
            );)*
        };
    };
}
same_layout!(
    id,
    url,
    host,
    port,
    path,
    username,
    password,
    transport,
    decode,
    rtsp_timeout_ms,
    frame_timeout_ms,
    jpeg_quality,
    persistent,
    decoder,
    backoff_initial_ms,
    backoff_max_ms,
    decode_grace_ms,
    connect_timeout_ms,
    snapshot_timeout_ms,
    teardown,
    unassigned_channel_data,
    unknown_rtcp_ssrc,
    sub_stream
);

/// Fills `config` with the defaults: every string NULL, `port` 0 (554), transport AUTO,
/// decode ON_DEMAND, `rtsp_timeout_ms` 5000, `frame_timeout_ms` 10000, `jpeg_quality` 80,
/// `persistent` false, `decoder` NULL (auto), `backoff_initial_ms` 500, `backoff_max_ms`
/// 30000, `decode_grace_ms` 5000, `connect_timeout_ms` and `snapshot_timeout_ms` 0 (derived
/// from `rtsp_timeout_ms`). Returns `CAMKIT_NULL_ARGUMENT` when `config` is NULL.
#[no_mangle]
pub unsafe extern "C" fn camkit_camera_config_init(
    config: *mut camkit_camera_config,
) -> camkit_result {
    ffi_boundary!(result, {
        // SAFETY: the caller's pointer, per the conventions.
        let out = unsafe { Out::new(config, "config") }?;
        let d = CameraConfig::default();
        out.write(camkit_camera_config {
            id: std::ptr::null(),
            url: std::ptr::null(),
            host: std::ptr::null(),
            port: 0,
            path: std::ptr::null(),
            username: std::ptr::null(),
            password: std::ptr::null(),
            transport: camkit_transport::CAMKIT_TRANSPORT_AUTO,
            decode: camkit_decode_policy::CAMKIT_DECODE_ON_DEMAND,
            rtsp_timeout_ms: clamp_ms(d.rtsp_timeout),
            frame_timeout_ms: clamp_ms(d.frame_timeout),
            jpeg_quality: u32::from(d.jpeg_quality),
            persistent: d.persistent,
            decoder: std::ptr::null(),
            backoff_initial_ms: clamp_ms(d.backoff_initial),
            backoff_max_ms: clamp_ms(d.backoff_max),
            decode_grace_ms: clamp_ms(d.decode_grace),
            connect_timeout_ms: d.connect_timeout.map_or(0, clamp_ms),
            snapshot_timeout_ms: d.snapshot_timeout.map_or(0, clamp_ms),
            teardown: std::ptr::null(),
            unassigned_channel_data: std::ptr::null(),
            unknown_rtcp_ssrc: std::ptr::null(),
            sub_stream: std::ptr::null(),
        });
        Ok(())
    })
}

fn clamp_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Reads a C camera config into core's (which then validates it fully in `connect`).
///
/// # Safety
/// `config` is NULL or points to a `camkit_camera_config` whose strings are NULL or
/// NUL-terminated.
pub(crate) unsafe fn read_config(
    config: *const camkit_camera_config,
) -> Result<CameraConfig, FfiError> {
    // SAFETY: per this function's contract; read as `RawCameraConfig` (same layout, every
    // bit pattern valid) so no enum or bool is trusted.
    let raw = unsafe { arg_ref(config.cast::<RawCameraConfig>(), "config") }?;
    let d = CameraConfig::default();
    // SAFETY (strings): per this function's contract.
    let text = |p, name| unsafe { opt_str(p, name) }.map(|s| s.map(str::to_owned));
    use camkit_decode_policy::*;
    use camkit_transport::*;
    let transport = match raw.transport {
        n if n == CAMKIT_TRANSPORT_AUTO as u32 => Transport::Auto,
        n if n == CAMKIT_TRANSPORT_TCP as u32 => Transport::Tcp,
        n if n == CAMKIT_TRANSPORT_UDP as u32 => Transport::Udp,
        n => {
            return Err(FfiError::invalid(
                "transport",
                format!("{n} is not a camkit_transport (AUTO 0, TCP 1, UDP 2)"),
            ))
        }
    };
    let decode = match raw.decode {
        n if n == CAMKIT_DECODE_ON_DEMAND as u32 => DecodePolicy::OnDemand,
        n if n == CAMKIT_DECODE_CONTINUOUS as u32 => DecodePolicy::Continuous,
        n if n == CAMKIT_DECODE_KEYFRAMES as u32 => DecodePolicy::Keyframes,
        n => {
            return Err(FfiError::invalid(
                "decode",
                format!(
                    "{n} is not a camkit_decode_policy (ON_DEMAND 0, CONTINUOUS 1, KEYFRAMES 2)"
                ),
            ))
        }
    };
    let jpeg_quality = match raw.jpeg_quality {
        0 => d.jpeg_quality,
        q @ 1..=100 => q as u8,
        q => {
            return Err(FfiError::invalid(
                "jpeg_quality",
                format!("{q} is not between 1 and 100 (0 = default 80)"),
            ))
        }
    };
    Ok(CameraConfig {
        // A missing id is left to core, which says "id: must not be empty".
        id: text(raw.id, "id")?.unwrap_or_default(),
        url: text(raw.url, "url")?,
        host: text(raw.host, "host")?,
        port: (raw.port != 0).then_some(u32::from(raw.port)),
        path: text(raw.path, "path")?,
        username: text(raw.username, "username")?,
        password: text(raw.password, "password")?,
        transport,
        decode,
        rtsp_timeout: millis_or(raw.rtsp_timeout_ms, d.rtsp_timeout),
        frame_timeout: millis_or(raw.frame_timeout_ms, d.frame_timeout),
        backoff_initial: millis_or(raw.backoff_initial_ms, d.backoff_initial),
        backoff_max: millis_or(raw.backoff_max_ms, d.backoff_max),
        decode_grace: millis_or(raw.decode_grace_ms, d.decode_grace),
        connect_timeout: (raw.connect_timeout_ms != 0)
            .then(|| Duration::from_millis(raw.connect_timeout_ms.into())),
        snapshot_timeout: (raw.snapshot_timeout_ms != 0)
            .then(|| Duration::from_millis(raw.snapshot_timeout_ms.into())),
        jpeg_quality,
        persistent: raw.persistent != 0,
        decoder: match text(raw.decoder, "decoder")? {
            Some(name) => name.parse()?,
            None => d.decoder,
        },
        teardown: match text(raw.teardown, "teardown")? {
            Some(v) => v.parse()?,
            None => d.teardown,
        },
        unassigned_channel_data: match text(raw.unassigned_channel_data, "unassigned_channel_data")?
        {
            Some(v) => v.parse()?,
            None => d.unassigned_channel_data,
        },
        unknown_rtcp_ssrc: match text(raw.unknown_rtcp_ssrc, "unknown_rtcp_ssrc")? {
            Some(v) => v.parse()?,
            None => d.unknown_rtcp_ssrc,
        },
        sub_stream: text(raw.sub_stream, "sub_stream")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> camkit_camera_config {
        let mut c = std::mem::MaybeUninit::<camkit_camera_config>::uninit();
        // SAFETY: a valid pointer to writable memory.
        let r = unsafe { camkit_camera_config_init(c.as_mut_ptr()) };
        assert_eq!(r, camkit_result::CAMKIT_OK);
        // SAFETY: init wrote every field.
        unsafe { c.assume_init() }
    }

    #[test]
    fn init_gives_core_defaults() {
        let c = init();
        let d = CameraConfig::default();
        assert_eq!(c.rtsp_timeout_ms as u128, d.rtsp_timeout.as_millis());
        assert_eq!(c.jpeg_quality, 80);
        assert!(c.id.is_null() && !c.persistent);
        // SAFETY: a NULL pointer.
        let r = unsafe { camkit_camera_config_init(std::ptr::null_mut()) };
        assert_eq!(r, camkit_result::CAMKIT_NULL_ARGUMENT);
    }

    #[test]
    fn reads_strings_and_defaults() {
        let mut c = init();
        c.id = c"door".as_ptr();
        c.host = c"10.0.0.7".as_ptr();
        c.path = c"".as_ptr();
        c.password = c"p@ss:w/rd".as_ptr();
        c.transport = camkit_transport::CAMKIT_TRANSPORT_TCP;
        c.rtsp_timeout_ms = 0;
        // SAFETY: a valid config.
        let core = unsafe { read_config(&c) }.unwrap();
        assert_eq!(core.id, "door");
        assert_eq!(core.host.as_deref(), Some("10.0.0.7"));
        assert_eq!(core.path, None, "empty string means not given");
        assert_eq!(core.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(core.transport, Transport::Tcp);
        assert_eq!(core.rtsp_timeout, CameraConfig::default().rtsp_timeout);
        assert_eq!(core.decoder, camkit::DecoderChoice::Auto);
        assert!(core.validate().is_ok());
        c.decoder = c"openh264".as_ptr();
        // SAFETY: a valid config.
        let core = unsafe { read_config(&c) }.unwrap();
        assert_eq!(core.decoder, camkit::DecoderChoice::OpenH264);
        assert!(core.validate().is_ok());
        assert_eq!(
            camkit::DecoderBackend::resolve(core.decoder).unwrap(),
            camkit::DecoderBackend::OpenH264
        );
    }

    /// Fields of core's `CameraConfig` that C deliberately lacks, with the reason. Empty:
    /// C sets every one.
    const NOT_IN_C: &[(&str, &str)] = &[];

    /// The struct fields of `camkit_camera_config` as the committed header declares them.
    fn header_fields() -> Vec<String> {
        let header = include_str!("../include/camkit.h");
        let start = header
            .find("typedef struct camkit_camera_config {")
            .expect("camkit_camera_config in the header");
        let body = &header[start..];
        let body = &body[..body.find("} camkit_camera_config;").expect("its end")];
        body.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('*') && !l.starts_with("/*") && l.ends_with(';'))
            .filter_map(|l| l.trim_end_matches(';').rsplit([' ', '*']).next())
            .map(str::to_owned)
            .collect()
    }

    /// One list of config fields: every field of core's config (`CameraConfig::FIELDS`) is a
    /// field of the header's `camkit_camera_config` and reaches core from it (a value other
    /// than the default set in C arrives in core's config), unless it is in [`NOT_IN_C`].
    #[test]
    fn every_core_field_is_settable_from_c() {
        type Set = fn(&mut camkit_camera_config);
        let set: &[(&str, Set, serde_json::Value)] = &[
            ("id", |c| c.id = c"door".as_ptr(), "door".into()),
            (
                "url",
                |c| c.url = c"rtsp://h/x".as_ptr(),
                "rtsp://h/x".into(),
            ),
            ("host", |c| c.host = c"h".as_ptr(), "h".into()),
            ("port", |c| c.port = 8554, 8554.into()),
            ("path", |c| c.path = c"/s".as_ptr(), "/s".into()),
            ("username", |c| c.username = c"u".as_ptr(), "u".into()),
            ("password", |c| c.password = c"p".as_ptr(), "p".into()),
            (
                "transport",
                |c| c.transport = camkit_transport::CAMKIT_TRANSPORT_UDP,
                "udp".into(),
            ),
            (
                "decode",
                |c| c.decode = camkit_decode_policy::CAMKIT_DECODE_KEYFRAMES,
                "keyframes".into(),
            ),
            (
                "decoder",
                |c| c.decoder = c"openh264".as_ptr(),
                "openh264".into(),
            ),
            ("rtspTimeoutMs", |c| c.rtsp_timeout_ms = 1234, 1234.into()),
            ("frameTimeoutMs", |c| c.frame_timeout_ms = 1234, 1234.into()),
            (
                "backoffInitialMs",
                |c| c.backoff_initial_ms = 1234,
                1234.into(),
            ),
            ("backoffMaxMs", |c| c.backoff_max_ms = 1234, 1234.into()),
            ("jpegQuality", |c| c.jpeg_quality = 42, 42.into()),
            ("persistent", |c| c.persistent = true, true.into()),
            ("decodeGraceMs", |c| c.decode_grace_ms = 1234, 1234.into()),
            (
                "connectTimeoutMs",
                |c| c.connect_timeout_ms = 1234,
                1234.into(),
            ),
            (
                "snapshotTimeoutMs",
                |c| c.snapshot_timeout_ms = 1234,
                1234.into(),
            ),
            (
                "teardown",
                |c| c.teardown = c"never".as_ptr(),
                "never".into(),
            ),
            (
                "unassignedChannelData",
                |c| c.unassigned_channel_data = c"ignore".as_ptr(),
                "ignore".into(),
            ),
            (
                "unknownRtcpSsrc",
                |c| c.unknown_rtcp_ssrc = c"processPackets".as_ptr(),
                "processPackets".into(),
            ),
            (
                "subStream",
                |c| c.sub_stream = c"/sub".as_ptr(),
                "/sub".into(),
            ),
        ];
        let in_header = header_fields();
        let defaults = serde_json::to_value(CameraConfig::default()).unwrap();
        for field in CameraConfig::FIELDS {
            if let Some((_, why)) = NOT_IN_C.iter().find(|(f, _)| f == field) {
                assert!(!why.is_empty(), "{field}: say why C lacks it");
                continue;
            }
            let c_name = crate::error::c_field_name(field);
            assert!(
                in_header.contains(&c_name),
                "core's {field} is not in camkit_camera_config as {c_name} (header fields: \
                 {in_header:?}); add it, or list it in NOT_IN_C with the reason"
            );
            let (_, setter, want) = set
                .iter()
                .find(|(f, _, _)| f == field)
                .unwrap_or_else(|| panic!("{field}: add how C sets it to this test"));
            let mut c = init();
            setter(&mut c);
            // SAFETY: a valid config.
            let core = serde_json::to_value(unsafe { read_config(&c) }.unwrap()).unwrap();
            assert_ne!(
                &defaults[field], want,
                "{field}: test with a value other than the default"
            );
            assert_eq!(
                &core[field], want,
                "{field} set in C as {c_name} does not reach core"
            );
        }
    }

    #[test]
    fn rejects_bad_enums_numbers_and_utf8_naming_the_field() {
        let bad_utf8 = [b'a', 0xff, 0];
        type Mutate = Box<dyn Fn(&mut RawCameraConfig)>;
        let cases: Vec<(Mutate, &str)> = vec![
            (Box::new(|c| c.transport = 7), "transport"),
            (Box::new(|c| c.decode = 3), "decode"),
            (Box::new(|c| c.jpeg_quality = 101), "jpeg_quality"),
            (Box::new(|c| c.decoder = c"vaapi".as_ptr()), "decoder"),
            (
                Box::new(move |c| c.username = bad_utf8.as_ptr().cast()),
                "username",
            ),
        ];
        for (mutate, field) in cases {
            let mut c = init();
            c.id = c"x".as_ptr();
            c.host = c"h".as_ptr();
            // SAFETY: same layout (checked at compile time).
            mutate(unsafe { &mut *(&mut c as *mut camkit_camera_config).cast() });
            // SAFETY: a valid config.
            let e = unsafe { read_config(&c) }.unwrap_err();
            assert_eq!(e.code, camkit_result::CAMKIT_INVALID_INPUT);
            assert!(e.message.starts_with(&format!("{field}:")), "{}", e.message);
        }
        // SAFETY: NULL.
        let e = unsafe { read_config(std::ptr::null()) }.unwrap_err();
        assert_eq!(e.code, camkit_result::CAMKIT_NULL_ARGUMENT);
    }
}
