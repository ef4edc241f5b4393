//! retina's errors as camkit errors: a stable kind and a message that names the RTSP step
//! and says what to do.

use crate::error::{Error, ErrorKind};

/// The RTSP steps, named in errors (camkit's public [`RtspStep`](crate::RtspStep)).
pub(crate) use crate::error::RtspStep as Step;

/// Maps a retina error to a camkit kind with a message that says what to do.
///
/// The result carries the step, the RTSP status when the camera answered one, and retina's
/// error as `source()`; retina's full text (several lines that locate the packet or
/// message in a capture) goes to the debug log, the message keeps what a person needs.
pub(crate) fn classify(e: &retina::Error, step: Step, endpoint: &str, has_creds: bool) -> Error {
    tracing::debug!(endpoint, step = step.as_str(), error = %e, "RTSP failure");
    classify_retina(e, step, endpoint, has_creds)
        .at_step(step)
        .with_source(e.clone())
}

/// What a retina error without a status code was, read from its text.
///
/// retina's error is opaque: besides [`retina::Error::status_code`] it offers no accessor
/// and no `source()`, only its `Display`, whose first line starts with a fixed phrase per
/// failure. This is the one place in camkit that reads an error's text, and it reads only
/// those phrases of retina 0.4's `ErrorInt` (`src/error.rs`).
enum RetinaFailure<'a> {
    /// "Unable to connect to RTSP server: {io error}".
    Connect(&'a str),
    /// "Error reading from / writing to RTSP peer: …", "Error receiving UDP packet: …".
    ConnectionLost(&'a str),
    /// "Timeout".
    Timeout,
    /// "Unsupported: …".
    Unsupported,
    /// Anything else (framing, packet and precondition errors): the first line says it.
    Other,
}

impl<'a> RetinaFailure<'a> {
    fn of(first_line: &'a str) -> Self {
        let after_colon = |s: &'a str| s.split_once(": ").map_or("", |(_, w)| w);
        if first_line.starts_with("Unable to connect") {
            let why = after_colon(first_line);
            RetinaFailure::Connect(if why.is_empty() { first_line } else { why })
        } else if first_line.starts_with("Error reading from RTSP peer")
            || first_line.starts_with("Error writing to RTSP peer")
            || first_line.starts_with("Error receiving UDP packet")
        {
            RetinaFailure::ConnectionLost(after_colon(first_line))
        } else if first_line == "Timeout" {
            RetinaFailure::Timeout
        } else if first_line.starts_with("Unsupported") {
            RetinaFailure::Unsupported
        } else {
            RetinaFailure::Other
        }
    }
}

fn classify_retina(e: &retina::Error, step: Step, endpoint: &str, has_creds: bool) -> Error {
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
        )
        .with_status(code);
    }
    match RetinaFailure::of(&first) {
        RetinaFailure::Connect(why) => Error::new(
            ErrorKind::Unreachable,
            format!("cannot connect to {endpoint}: {why}; check that the camera is on, the host and port are right, and no firewall blocks it"),
        ),
        RetinaFailure::ConnectionLost(why) => Error::new(
            ErrorKind::Unreachable,
            format!("connection to {endpoint} lost during {step_name}: {why}"),
        ),
        RetinaFailure::Timeout => Error::new(
            ErrorKind::Timeout,
            format!("{endpoint} timed out during {step_name}"),
        ),
        RetinaFailure::Unsupported => {
            Error::new(ErrorKind::UnsupportedCodec, format!("{endpoint}: {first}"))
        }
        RetinaFailure::Other => Error::new(
            ErrorKind::Protocol,
            format!(
                "{endpoint} sent something camkit could not follow during {step_name}: {first}"
            ),
        ),
    }
}
