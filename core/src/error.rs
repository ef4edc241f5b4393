//! The one error type of camkit, and its stable kinds.
//!
//! Every failure carries an [`ErrorKind`] (what the bindings map to C result codes and
//! JS `err.code`), the camera it concerns when there is one, and a message that says what
//! happened and what to do. Messages never contain a password or a URL with credentials:
//! everything that reaches [`Error::new`] is built from redacted pieces.

use std::fmt;

/// What went wrong, in a small set that stays stable across releases.
///
/// Bindings map these one to one: the C API to `camkit_result` numbers that are never
/// reused, the Node binding to `err.code` strings ([`ErrorKind::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value given by the caller is not acceptable; the message names the field.
    InvalidInput,
    /// No camera with that id.
    NotFound,
    /// A camera with that id is already connected.
    AlreadyExists,
    /// The camera refused the credentials (RTSP 401/403), or Moondream the API key (HTTP 401/403).
    Unauthorized,
    /// The camera could not be reached (connection refused, no route, DNS failure, closed mid-stream).
    Unreachable,
    /// An RTSP step or the video itself did not arrive in time.
    Timeout,
    /// The camera spoke RTSP/RTP in a way camkit could not follow (bad response, missing stream, 4xx/5xx).
    Protocol,
    /// The stream uses a codec camkit does not decode (H.265, MPEG-4 …).
    UnsupportedCodec,
    /// The video could not be decoded or encoded.
    Decode,
    /// The manager or camera was closed while the call was under way, or before it.
    Closed,
    /// No frame is available yet (the camera has not delivered a picture).
    NoFrame,
    /// A bug or resource failure inside camkit (thread spawn failed, …).
    Internal,
    /// A remote service (Moondream) refused the call for too many requests (HTTP 429),
    /// still after camkit's bounded retries.
    RateLimited,
    /// A remote service (Moondream) failed the call or answered something camkit cannot
    /// read; the message carries the service's own words.
    ServiceError,
}

impl ErrorKind {
    /// The stable string code used as JS `err.code` and in JSON.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "INVALID_INPUT",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::Unreachable => "UNREACHABLE",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Protocol => "PROTOCOL",
            ErrorKind::UnsupportedCodec => "UNSUPPORTED_CODEC",
            ErrorKind::Decode => "DECODE",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::NoFrame => "NO_FRAME",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::RateLimited => "RATE_LIMITED",
            ErrorKind::ServiceError => "SERVICE_ERROR",
        }
    }

    /// Every kind, for bindings that enumerate them. New kinds are appended, never
    /// inserted: bindings number them by position.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Unauthorized,
        ErrorKind::Unreachable,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
        ErrorKind::UnsupportedCodec,
        ErrorKind::Decode,
        ErrorKind::Closed,
        ErrorKind::NoFrame,
        ErrorKind::Internal,
        ErrorKind::RateLimited,
        ErrorKind::ServiceError,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A camkit error: a kind, the camera it concerns, and a redacted message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    camera: Option<String>,
    message: String,
}

/// `Result` with camkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error. `message` must already be free of credentials.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            camera: None,
            message: message.into(),
        }
    }

    /// An [`ErrorKind::InvalidInput`] error naming the offending field.
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        Error::new(ErrorKind::InvalidInput, format!("{field}: {problem}"))
    }

    /// Attaches the camera id this error concerns.
    pub fn for_camera(mut self, id: &str) -> Self {
        self.camera = Some(id.to_owned());
        self
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The camera this error concerns, if any.
    pub fn camera(&self) -> Option<&str> {
        self.camera.as_deref()
    }

    /// The message without the camera prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error of a call on a closed manager.
    pub fn closed() -> Self {
        Error::new(
            ErrorKind::Closed,
            "the camera manager is closed; create a new one",
        )
    }

    pub(crate) fn not_found(id: &str) -> Self {
        Error::new(
            ErrorKind::NotFound,
            format!("no camera with id {id:?} is connected; connect it first"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.camera {
            Some(id) => write!(f, "camera {id:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {self})", self.kind.code())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_upper_snake() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert!(k.code().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
    }

    #[test]
    fn display_names_camera() {
        let e = Error::new(ErrorKind::Timeout, "DESCRIBE took longer than 5s").for_camera("door");
        assert_eq!(
            e.to_string(),
            "camera \"door\": DESCRIBE took longer than 5s"
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.camera(), Some("door"));
    }
}
