//! retina's errors as camkit errors: a stable kind and a message that names the RTSP step
//! and says what to do.

use crate::error::{Error, ErrorKind};

/// The RTSP steps, named in errors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    Describe,
    Setup,
    Play,
    Stream,
}

impl Step {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Step::Describe => "DESCRIBE",
            Step::Setup => "SETUP",
            Step::Play => "PLAY",
            Step::Stream => "streaming",
        }
    }
}

/// Maps a retina error to a camkit kind with a message that says what to do.
///
/// retina's error type is opaque except for the RTSP status code; its message's first
/// line names the failure (connect, read, write, …), which is what the rest keys on.
pub(crate) fn classify(e: &retina::Error, step: Step, endpoint: &str, has_creds: bool) -> Error {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("").trim().to_owned();
    let step_name = step.as_str();
    if let Some(code) = e.status_code() {
        let (kind, advice) = match code {
            401 | 403 if has_creds => (
                ErrorKind::Unauthorized,
                "the camera refused the username/password: check them",
            ),
            401 | 403 => (
                ErrorKind::Unauthorized,
                "the camera requires a username and password: set them",
            ),
            404 => (
                ErrorKind::Protocol,
                "the camera has no stream at this path: check the path (see the camera's manual for its RTSP URL)",
            ),
            461 => (
                ErrorKind::Protocol,
                "the camera does not support this RTP transport (461 Unsupported Transport): use transport \"auto\" or the other transport",
            ),
            453 | 503 => (
                ErrorKind::Unreachable,
                "the camera is busy or has too many clients: close other viewers or retry later",
            ),
            454 => (
                ErrorKind::Protocol,
                "the camera lost the session (454): camkit reconnects",
            ),
            _ => (ErrorKind::Protocol, "the camera rejected the request"),
        };
        let reason = match code {
            400 => "400 Bad Request",
            401 => "401 Unauthorized",
            403 => "403 Forbidden",
            404 => "404 Not Found",
            405 => "405 Method Not Allowed",
            453 => "453 Not Enough Bandwidth",
            454 => "454 Session Not Found",
            455 => "455 Method Not Valid in This State",
            461 => "461 Unsupported Transport",
            500 => "500 Internal Server Error",
            501 => "501 Not Implemented",
            503 => "503 Service Unavailable",
            _ => "",
        };
        let reason = if reason.is_empty() {
            format!("status {code}")
        } else {
            reason.to_owned()
        };
        return Error::new(
            kind,
            format!("{endpoint} answered {reason} to {step_name}: {advice}"),
        );
    }
    if first.starts_with("Unable to connect") {
        let why = first
            .split_once(": ")
            .map_or(first.as_str(), |(_, w)| w)
            .to_owned();
        return Error::new(
            ErrorKind::Unreachable,
            format!("cannot connect to {endpoint}: {why}; check that the camera is on, the host and port are right, and no firewall blocks it"),
        );
    }
    if first.starts_with("Error reading from RTSP peer")
        || first.starts_with("Error writing to RTSP peer")
        || first.starts_with("Error receiving UDP packet")
    {
        let why = first.split_once(": ").map_or("", |(_, w)| w).to_owned();
        return Error::new(
            ErrorKind::Unreachable,
            format!("connection to {endpoint} lost during {step_name}: {why}"),
        );
    }
    if first == "Timeout" {
        return Error::new(
            ErrorKind::Timeout,
            format!("{endpoint} timed out during {step_name}"),
        );
    }
    if first.starts_with("Unsupported") {
        return Error::new(ErrorKind::UnsupportedCodec, format!("{endpoint}: {first}"));
    }
    Error::new(
        ErrorKind::Protocol,
        format!("{endpoint} sent something camkit could not follow during {step_name}: {first}"),
    )
}
