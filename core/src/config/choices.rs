//! The choices a camera config names: how RTP travels ([`Transport`]), when video is
//! decoded ([`DecodePolicy`]) and by which decoder ([`DecoderChoice`]); each parses from
//! its JSON / command-line spelling, naming the config field when it cannot.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
