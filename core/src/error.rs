//! The one error type of camkit, and its stable kinds.
//!
//! Every failure carries an [`ErrorKind`] (what the bindings map to C result codes and
//! JS `err.code`), the camera it concerns when there is one, and a message that says what
//! happened and what to do. Messages never contain a password or a URL with credentials:
//! everything that reaches [`Error::new`] is built from redacted pieces.

use std::fmt;
use std::sync::Arc;

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
    /// The stream uses a codec camkit does not decode (MPEG-4 …), or H.265 where only
    /// OpenH264 is there (the message says to install libavcodec).
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

/// The RTSP step a camera error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RtspStep {
    /// Connecting and `DESCRIBE`.
    Describe,
    /// `SETUP` of the video track.
    Setup,
    /// `PLAY`.
    Play,
    /// Receiving the stream after `PLAY`.
    Stream,
}

impl RtspStep {
    /// `DESCRIBE`, `SETUP`, `PLAY` or `streaming`, as messages name the step.
    pub fn as_str(self) -> &'static str {
        match self {
            RtspStep::Describe => "DESCRIBE",
            RtspStep::Setup => "SETUP",
            RtspStep::Play => "PLAY",
            RtspStep::Stream => "streaming",
        }
    }
}

impl fmt::Display for RtspStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The underlying error kept as [`std::error::Error::source`]; shared so `Error` stays `Clone`.
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A camkit error: a kind, the camera it concerns, a redacted message, and what is known
/// in structure: the RTSP step, the server's status code, the field of an input error, and
/// the underlying error as [`source`](std::error::Error::source).
///
/// Code decides on [`kind`](Self::kind), [`status`](Self::status) and
/// [`field`](Self::field), never on the message's text, which is for people.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    camera: Option<String>,
    message: String,
    step: Option<RtspStep>,
    status: Option<u16>,
    field: Option<String>,
    source: Option<Source>,
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
            step: None,
            status: None,
            field: None,
            source: None,
        }
    }

    /// An [`ErrorKind::InvalidInput`] error naming the offending field: the message is
    /// `field: problem` and [`field`](Self::field) is `field`.
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        let mut e = Error::new(ErrorKind::InvalidInput, format!("{field}: {problem}"));
        e.field = Some(field.to_owned());
        e
    }

    /// Attaches the camera id this error concerns.
    pub fn for_camera(mut self, id: &str) -> Self {
        self.camera = Some(id.to_owned());
        self
    }

    /// Records the RTSP step the error happened in.
    pub fn at_step(mut self, step: RtspStep) -> Self {
        self.step = Some(step);
        self
    }

    /// Records the status code the server answered (RTSP `461`, HTTP `429` …).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Names the setting or field an error is about, also for kinds other than
    /// [`ErrorKind::InvalidInput`] (a refused credential, an unreachable server).
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// Keeps the underlying error as this error's `source()`. Its text must be free of
    /// credentials too (retina's is: camkit never gives it a URL with userinfo).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error with another message (e.g. one with a secret removed), keeping
    /// everything else.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
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

    /// The RTSP step the error happened in, for camera errors that know it.
    pub fn step(&self) -> Option<RtspStep> {
        self.step
    }

    /// The status code the server answered, when the error is a server's answer.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The field an [`ErrorKind::InvalidInput`] error is about, named as in the JSON
    /// config (`rtspTimeoutMs`, `host`, `quality` …).
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
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

/// Equal when everything but the source is: sources are arbitrary errors without equality.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.camera == other.camera
            && self.message == other.message
            && self.step == other.step
            && self.status == other.status
            && self.field == other.field
    }
}

impl Eq for Error {}

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
        write!(f, "Error({}: {self}", self.kind.code())?;
        if let Some(step) = self.step {
            write!(f, "; step {step}")?;
        }
        if let Some(status) = self.status {
            write!(f, "; status {status}")?;
        }
        if let Some(field) = &self.field {
            write!(f, "; field {field}")?;
        }
        if let Some(source) = &self.source {
            write!(f, "; source: {source}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

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
        assert_eq!((e.step(), e.status(), e.field()), (None, None, None));
    }

    #[test]
    fn structure_travels_apart_from_the_message() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::new(ErrorKind::Protocol, "the camera refused SETUP")
            .at_step(RtspStep::Setup)
            .with_status(461)
            .with_source(io)
            .for_camera("door");
        assert_eq!(e.step(), Some(RtspStep::Setup));
        assert_eq!(e.status(), Some(461));
        assert_eq!(e.source().unwrap().to_string(), "reset by peer");
        assert_eq!(e.to_string(), "camera \"door\": the camera refused SETUP");
        let dbg = format!("{e:?}");
        assert!(
            dbg.contains("step SETUP") && dbg.contains("status 461"),
            "{dbg}"
        );
        assert!(dbg.contains("reset by peer"), "{dbg}");
        assert_eq!(e.clone(), e, "a clone shares the source");
        let renamed = e.clone().with_message("other words");
        assert_eq!(renamed.status(), Some(461));
        assert_eq!(renamed.message(), "other words");

        let e = Error::invalid("rtspTimeoutMs", "must be greater than 0");
        assert_eq!(e.field(), Some("rtspTimeoutMs"));
        assert_eq!(e.message(), "rtspTimeoutMs: must be greater than 0");
        assert!(e.source().is_none());
    }
}
