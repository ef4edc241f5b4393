//! RTSP behaviours of real cameras that need a setting: when to send `TEARDOWN`, what to do
//! with data on interleaved channels nobody set up, and RTCP from unknown sources. Each maps
//! onto the retina option of the same purpose; the defaults are retina's.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When camkit sends `TEARDOWN` as a session ends (`teardown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Teardown {
    /// Over UDP, and for servers known to keep sending on a closed TCP connection (old
    /// live555): until it succeeds or the session expires. Otherwise one try on the open
    /// connection.
    #[default]
    Auto,
    /// Always, retrying until success or expiry (cameras that allow one session at a
    /// time and keep a dead one until told).
    Always,
    /// Never (cameras that answer `TEARDOWN` badly or hang on it).
    Never,
}

/// Data on an RTSP-interleaved channel no `SETUP` asked for (`unassignedChannelData`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnassignedChannelData {
    /// Taken for a stale session of a server known to have that bug (old live555),
    /// ignored otherwise.
    #[default]
    Auto,
    /// Always taken for a stale session: the session fails and is retried later.
    AssumeStaleSession,
    /// The session fails.
    Error,
    /// Ignored (cameras that send audio or metadata on channels nobody set up).
    Ignore,
}

/// RTCP sender reports from an SSRC other than the stream's (`unknownRtcpSsrc`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnknownRtcpSsrc {
    /// Dropped.
    #[default]
    DropPackets,
    /// The session fails.
    AbortSession,
    /// Used as if they came from the stream's SSRC (cameras whose RTCP carries another
    /// SSRC than their RTP).
    ProcessPackets,
}

fn parse<T: Copy>(field: &str, s: &str, names: &[(&str, T)]) -> Result<T> {
    names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let list: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            Error::invalid(field, format!("{s:?} is not one of {}", list.join(", ")))
        })
}

impl std::str::FromStr for Teardown {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        use Teardown::*;
        parse(
            "teardown",
            s,
            &[("auto", Auto), ("always", Always), ("never", Never)],
        )
    }
}

impl std::str::FromStr for UnassignedChannelData {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        use UnassignedChannelData::*;
        parse(
            "unassignedChannelData",
            s,
            &[
                ("auto", Auto),
                ("assumeStaleSession", AssumeStaleSession),
                ("error", Error),
                ("ignore", Ignore),
            ],
        )
    }
}

impl std::str::FromStr for UnknownRtcpSsrc {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        use UnknownRtcpSsrc::*;
        parse(
            "unknownRtcpSsrc",
            s,
            &[
                ("dropPackets", DropPackets),
                ("abortSession", AbortSession),
                ("processPackets", ProcessPackets),
            ],
        )
    }
}

impl Teardown {
    pub(crate) fn retina(self) -> retina::client::TeardownPolicy {
        use retina::client::TeardownPolicy as P;
        match self {
            Teardown::Auto => P::Auto,
            Teardown::Always => P::Always,
            Teardown::Never => P::Never,
        }
    }
}

impl UnassignedChannelData {
    pub(crate) fn retina(self) -> retina::client::UnassignedChannelDataPolicy {
        use retina::client::UnassignedChannelDataPolicy as P;
        match self {
            UnassignedChannelData::Auto => P::Auto,
            UnassignedChannelData::AssumeStaleSession => P::AssumeStaleSession,
            UnassignedChannelData::Error => P::Error,
            UnassignedChannelData::Ignore => P::Ignore,
        }
    }
}

impl UnknownRtcpSsrc {
    pub(crate) fn retina(self) -> retina::client::UnknownRtcpSsrcPolicy {
        use retina::client::UnknownRtcpSsrcPolicy as P;
        match self {
            UnknownRtcpSsrc::DropPackets => P::DropPackets,
            UnknownRtcpSsrc::AbortSession => P::AbortSession,
            UnknownRtcpSsrc::ProcessPackets => P::ProcessPackets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn parse_names_and_errors_name_the_field() {
        assert_eq!("never".parse::<Teardown>().unwrap(), Teardown::Never);
        assert_eq!(
            "ignore".parse::<UnassignedChannelData>().unwrap(),
            UnassignedChannelData::Ignore
        );
        assert_eq!(
            "processPackets".parse::<UnknownRtcpSsrc>().unwrap(),
            UnknownRtcpSsrc::ProcessPackets
        );
        let e = "sometimes".parse::<Teardown>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.field(), Some("teardown"));
        assert!(e.message().contains("auto, always, never"), "{e}");
        let e = "x".parse::<UnknownRtcpSsrc>().unwrap_err();
        assert_eq!(e.field(), Some("unknownRtcpSsrc"));
    }

    #[test]
    fn json_keys_and_values_are_camel_case() {
        let c: crate::CameraConfig = serde_json::from_str(
            r#"{"id":"a","host":"h","teardown":"never","unassignedChannelData":"assumeStaleSession","unknownRtcpSsrc":"abortSession"}"#,
        )
        .unwrap();
        assert_eq!(c.teardown, Teardown::Never);
        assert_eq!(
            c.unassigned_channel_data,
            UnassignedChannelData::AssumeStaleSession
        );
        assert_eq!(c.unknown_rtcp_ssrc, UnknownRtcpSsrc::AbortSession);
        let d = crate::CameraConfig::default();
        assert_eq!(
            (d.teardown, d.unassigned_channel_data, d.unknown_rtcp_ssrc),
            (
                Teardown::Auto,
                UnassignedChannelData::Auto,
                UnknownRtcpSsrc::DropPackets
            )
        );
    }
}
