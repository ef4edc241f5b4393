//! Results, their names and messages, and the thread's last error.
//!
//! `camkit_result` numbers are part of the ABI: never renumber or reuse one. A new core
//! `ErrorKind` gets the next free number (and a test below fails until it has one).

use std::cell::RefCell;
use std::os::raw::c_char;

use camkit::ErrorKind;

use crate::ffi::write_str_to_buf;

/// The outcome of a camkit call. `CAMKIT_OK` is 0; every other value is a failure whose
/// details are in `camkit_last_error`. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum camkit_result {
    /// Success.
    CAMKIT_OK = 0,
    /// A value given by the caller is not acceptable (the message names the field), or a
    /// string is not valid UTF-8.
    CAMKIT_INVALID_INPUT = 1,
    /// No camera with that id is connected.
    CAMKIT_NOT_FOUND = 2,
    /// A camera with that id is already connected.
    CAMKIT_ALREADY_EXISTS = 3,
    /// The camera refused the credentials (RTSP 401/403).
    CAMKIT_UNAUTHORIZED = 4,
    /// The camera could not be reached (connection refused, no route, DNS failure, closed
    /// mid-stream).
    CAMKIT_UNREACHABLE = 5,
    /// An RTSP step, the video, or a bounded wait did not complete in time.
    CAMKIT_TIMEOUT = 6,
    /// The camera spoke RTSP/RTP in a way camkit could not follow.
    CAMKIT_PROTOCOL = 7,
    /// The stream uses a codec camkit does not decode (MPEG-4 ...), or H.265 where only
    /// OpenH264 is there (the message says to install libavcodec).
    CAMKIT_UNSUPPORTED_CODEC = 8,
    /// The video could not be decoded or encoded.
    CAMKIT_DECODE = 9,
    /// The manager or camera was closed while the call was under way, or before it.
    CAMKIT_CLOSED = 10,
    /// No frame is available yet (the camera has not delivered a picture).
    CAMKIT_NO_FRAME = 11,
    /// A bug or resource failure inside camkit (thread creation failed, ...).
    CAMKIT_INTERNAL = 12,
    /// camkit panicked inside the call (a bug in camkit); the message says where.
    CAMKIT_PANIC = 13,
    /// A pointer argument that must not be NULL was NULL.
    CAMKIT_NULL_ARGUMENT = 14,
    /// The caller's buffer is too small; `*out_len` tells the size needed.
    CAMKIT_BUFFER_TOO_SMALL = 15,
    /// The call would deadlock: `camkit_subscription_free` was called from inside that
    /// subscription's own callback.
    CAMKIT_WOULD_DEADLOCK = 16,
    /// The vision service (Moondream) kept answering 429 Too Many Requests.
    CAMKIT_RATE_LIMITED = 17,
    /// The vision service (Moondream) answered with an error; the message has its words.
    CAMKIT_SERVICE_ERROR = 18,
    /// This libcamkit was built without the part the call needs (the Moondream functions
    /// in a build without the cargo feature `moondream`, the cluster functions without
    /// `cluster`); the message names the feature.
    CAMKIT_UNSUPPORTED = 19,
}

use camkit_result::*;

/// Every result, in number order.
pub(crate) const ALL_RESULTS: [camkit_result; 20] = [
    CAMKIT_OK,
    CAMKIT_INVALID_INPUT,
    CAMKIT_NOT_FOUND,
    CAMKIT_ALREADY_EXISTS,
    CAMKIT_UNAUTHORIZED,
    CAMKIT_UNREACHABLE,
    CAMKIT_TIMEOUT,
    CAMKIT_PROTOCOL,
    CAMKIT_UNSUPPORTED_CODEC,
    CAMKIT_DECODE,
    CAMKIT_CLOSED,
    CAMKIT_NO_FRAME,
    CAMKIT_INTERNAL,
    CAMKIT_PANIC,
    CAMKIT_NULL_ARGUMENT,
    CAMKIT_BUFFER_TOO_SMALL,
    CAMKIT_WOULD_DEADLOCK,
    CAMKIT_RATE_LIMITED,
    CAMKIT_SERVICE_ERROR,
    CAMKIT_UNSUPPORTED,
];

impl camkit_result {
    /// The result with this number, if there is one.
    pub(crate) fn from_u32(n: u32) -> Option<camkit_result> {
        ALL_RESULTS.iter().copied().find(|r| *r as u32 == n)
    }

    /// The core kind's result.
    pub(crate) fn from_kind(kind: ErrorKind) -> camkit_result {
        match kind {
            ErrorKind::InvalidInput => CAMKIT_INVALID_INPUT,
            ErrorKind::NotFound => CAMKIT_NOT_FOUND,
            ErrorKind::AlreadyExists => CAMKIT_ALREADY_EXISTS,
            ErrorKind::Unauthorized => CAMKIT_UNAUTHORIZED,
            ErrorKind::Unreachable => CAMKIT_UNREACHABLE,
            ErrorKind::Timeout => CAMKIT_TIMEOUT,
            ErrorKind::Protocol => CAMKIT_PROTOCOL,
            ErrorKind::UnsupportedCodec => CAMKIT_UNSUPPORTED_CODEC,
            ErrorKind::Decode => CAMKIT_DECODE,
            ErrorKind::Closed => CAMKIT_CLOSED,
            ErrorKind::NoFrame => CAMKIT_NO_FRAME,
            ErrorKind::Internal => CAMKIT_INTERNAL,
            ErrorKind::RateLimited => CAMKIT_RATE_LIMITED,
            ErrorKind::ServiceError => CAMKIT_SERVICE_ERROR,
            // A kind added to core after this binding: still a failure, reported as
            // INTERNAL until it gets its own number (see the test `every_kind_has_a_result`).
            _ => CAMKIT_INTERNAL,
        }
    }

    /// `"OK"`, `"UNAUTHORIZED"` ... (NUL-terminated). The core kinds' names are
    /// `ErrorKind::code()`.
    fn name_nul(self) -> &'static str {
        match self {
            CAMKIT_OK => "OK\0",
            CAMKIT_INVALID_INPUT => "INVALID_INPUT\0",
            CAMKIT_NOT_FOUND => "NOT_FOUND\0",
            CAMKIT_ALREADY_EXISTS => "ALREADY_EXISTS\0",
            CAMKIT_UNAUTHORIZED => "UNAUTHORIZED\0",
            CAMKIT_UNREACHABLE => "UNREACHABLE\0",
            CAMKIT_TIMEOUT => "TIMEOUT\0",
            CAMKIT_PROTOCOL => "PROTOCOL\0",
            CAMKIT_UNSUPPORTED_CODEC => "UNSUPPORTED_CODEC\0",
            CAMKIT_DECODE => "DECODE\0",
            CAMKIT_CLOSED => "CLOSED\0",
            CAMKIT_NO_FRAME => "NO_FRAME\0",
            CAMKIT_INTERNAL => "INTERNAL\0",
            CAMKIT_PANIC => "PANIC\0",
            CAMKIT_NULL_ARGUMENT => "NULL_ARGUMENT\0",
            CAMKIT_BUFFER_TOO_SMALL => "BUFFER_TOO_SMALL\0",
            CAMKIT_WOULD_DEADLOCK => "WOULD_DEADLOCK\0",
            CAMKIT_RATE_LIMITED => "RATE_LIMITED\0",
            CAMKIT_SERVICE_ERROR => "SERVICE_ERROR\0",
            CAMKIT_UNSUPPORTED => "UNSUPPORTED\0",
        }
    }

    /// A one-line description (NUL-terminated).
    fn message_nul(self) -> &'static str {
        match self {
            CAMKIT_OK => "success\0",
            CAMKIT_INVALID_INPUT => "a value given by the caller is not acceptable\0",
            CAMKIT_NOT_FOUND => "no camera with that id is connected\0",
            CAMKIT_ALREADY_EXISTS => "a camera with that id is already connected\0",
            CAMKIT_UNAUTHORIZED => {
                "the camera refused the credentials: check username and password\0"
            }
            CAMKIT_UNREACHABLE => "the camera could not be reached\0",
            CAMKIT_TIMEOUT => "the camera did not answer or send video in time\0",
            CAMKIT_PROTOCOL => "the camera's RTSP/RTP could not be followed\0",
            CAMKIT_UNSUPPORTED_CODEC => "the stream's codec is not supported\0",
            CAMKIT_DECODE => "the video could not be decoded or encoded\0",
            CAMKIT_CLOSED => "the manager or camera is closed\0",
            CAMKIT_NO_FRAME => "no frame is available yet\0",
            CAMKIT_INTERNAL => "internal error in camkit\0",
            CAMKIT_PANIC => "camkit panicked (a bug in camkit)\0",
            CAMKIT_NULL_ARGUMENT => "a required pointer argument was NULL\0",
            CAMKIT_BUFFER_TOO_SMALL => "the buffer is too small\0",
            CAMKIT_WOULD_DEADLOCK => {
                "the call would deadlock (subscription freed from its own callback)\0"
            }
            CAMKIT_RATE_LIMITED => "the vision service is rate limiting requests\0",
            CAMKIT_SERVICE_ERROR => "the vision service answered with an error\0",
            CAMKIT_UNSUPPORTED => "this libcamkit was built without that feature\0",
        }
    }
}

/// A failure on its way to C: a result code, a detailed message, and the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FfiError {
    pub code: camkit_result,
    pub message: String,
    /// The field or argument the failure is about, spelled as in C (`rtsp_timeout_ms`).
    pub field: Option<String>,
}

impl FfiError {
    pub fn new(code: camkit_result, message: impl Into<String>) -> Self {
        FfiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A required pointer argument was NULL.
    pub fn null(name: &str) -> Self {
        FfiError {
            field: Some(name.to_owned()),
            ..FfiError::new(
                CAMKIT_NULL_ARGUMENT,
                format!("argument `{name}` is NULL; it is required"),
            )
        }
    }

    /// An unacceptable value; the message starts with the field's name.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        FfiError {
            field: Some(field.to_owned()),
            ..FfiError::new(CAMKIT_INVALID_INPUT, format!("{field}: {problem}"))
        }
    }

    /// Records the message and field as this thread's last error; returns the code.
    pub fn record(self) -> camkit_result {
        set_last_error_of(&self.message, self.field.as_deref());
        self.code
    }
}

impl From<camkit::Error> for FfiError {
    fn from(e: camkit::Error) -> Self {
        let code = camkit_result::from_kind(e.kind());
        let field = e.field().map(c_field_name);
        let mut message = e.message().to_owned();
        // Core's input errors read `field: problem` with the field as in its JSON; C
        // programs know the struct member, so the message names that one.
        if let (Some(core), Some(c)) = (e.field(), &field) {
            if let Some(rest) = message.strip_prefix(core) {
                message = format!("{c}{rest}");
            }
        }
        let message = match e.camera() {
            Some(id) => format!("camera {id:?}: {message}"),
            None => message,
        };
        FfiError {
            code,
            message,
            field,
        }
    }
}

/// Core names fields as in its JSON (`rtspTimeoutMs`); the C structs spell them in snake
/// case (`rtsp_timeout_ms`).
pub(crate) fn c_field_name(field: &str) -> String {
    let mut snake = String::with_capacity(field.len() + 4);
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// A thread's last failure: its message and the field it named.
struct LastError {
    message: String,
    field: String,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const {
        RefCell::new(LastError { message: String::new(), field: String::new() })
    };
}

/// Sets this thread's last error message (a failure about no particular field).
pub(crate) fn set_last_error(message: &str) {
    set_last_error_of(message, None);
}

/// Sets this thread's last error message and field.
fn set_last_error_of(message: &str, field: Option<&str>) {
    // NUL would end the C string early; it cannot come from camkit, but be sure.
    let clean = |s: &str| s.replace('\0', " ");
    LAST_ERROR.with(|e| {
        *e.borrow_mut() = LastError {
            message: clean(message),
            field: field.map(clean).unwrap_or_default(),
        }
    });
}

/// This thread's last error message ("" when none).
pub(crate) fn last_error_string() -> String {
    LAST_ERROR.with(|e| e.borrow().message.clone())
}

/// The field this thread's last error named ("" when none).
pub(crate) fn last_error_field_string() -> String {
    LAST_ERROR.with(|e| e.borrow().field.clone())
}

/// The name of a result without the `CAMKIT_` prefix, e.g. `"UNAUTHORIZED"` for
/// `CAMKIT_UNAUTHORIZED` (4): a static string, never freed. For the results that come
/// from camkit's error kinds it is the same code the Node binding uses as `err.code`.
/// `"UNKNOWN"` for a number that is not a `camkit_result`.
#[no_mangle]
pub extern "C" fn camkit_result_name(result: u32) -> *const c_char {
    ffi_boundary!(value, {
        camkit_result::from_u32(result)
            .map_or("UNKNOWN\0", camkit_result::name_nul)
            .as_ptr()
            .cast()
    })
}

/// A one-line description of a result (`"the camera could not be reached"`): a static
/// string, never freed. The details of the last failure are in `camkit_last_error`.
#[no_mangle]
pub extern "C" fn camkit_result_message(result: u32) -> *const c_char {
    ffi_boundary!(value, {
        camkit_result::from_u32(result)
            .map_or("unknown camkit_result\0", camkit_result::message_nul)
            .as_ptr()
            .cast()
    })
}

/// Copies the detailed message of the last failed camkit call made on this thread into
/// `buf` (NUL-terminated), and its length without the NUL into `*out_len` (`out_len` may
/// be NULL).
///
/// The message says what happened and what to do, names the camera when there is one, and
/// never contains a password. It is per thread, kept until the next failure on the same
/// thread (successful calls do not clear it), and `""` when no call on this thread failed.
///
/// Returns `CAMKIT_OK`, or `CAMKIT_BUFFER_TOO_SMALL` when `len` is not more than the
/// message's length: then nothing is written to `buf` and `*out_len` is set to the length
/// needed (without the NUL). `buf` may be NULL only when `len` is 0. This function never
/// changes the last error itself.
#[no_mangle]
pub unsafe extern "C" fn camkit_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(value, {
        let message = last_error_string();
        // SAFETY: the caller's pointers, per the conventions.
        match unsafe { write_str_to_buf(&message, buf, len, out_len) } {
            Ok(()) => CAMKIT_OK,
            Err(e) => e.code,
        }
    })
}

/// Copies the name of the field or argument the last failed camkit call on this thread was
/// about into `buf` (NUL-terminated), spelled as in this header (`rtsp_timeout_ms`, `host`,
/// `quality`, `out` …), and its length without the NUL into `*out_len` (`out_len` may be
/// NULL). `""` when that failure named no field (an unreachable camera, a timeout …) or no
/// call on this thread failed.
///
/// Set by the same failures as `camkit_last_error`, and kept as long: use it to point at
/// the offending value without reading the message. Buffer rules as `camkit_last_error`.
#[no_mangle]
pub unsafe extern "C" fn camkit_last_error_field(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> camkit_result {
    ffi_boundary!(value, {
        let field = last_error_field_string();
        // SAFETY: the caller's pointers, per the conventions.
        match unsafe { write_str_to_buf(&field, buf, len, out_len) } {
            Ok(()) => CAMKIT_OK,
            Err(e) => e.code,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_contiguous_and_fixed() {
        for (i, r) in ALL_RESULTS.iter().enumerate() {
            assert_eq!(*r as u32, i as u32);
            assert_eq!(camkit_result::from_u32(i as u32), Some(*r));
        }
        assert_eq!(camkit_result::from_u32(ALL_RESULTS.len() as u32), None);
        // The numbers C programs and scripts rely on.
        assert_eq!(CAMKIT_UNAUTHORIZED as u32, 4);
        assert_eq!(CAMKIT_UNREACHABLE as u32, 5);
        assert_eq!(CAMKIT_PANIC as u32, 13);
        assert_eq!(CAMKIT_NULL_ARGUMENT as u32, 14);
        assert_eq!(CAMKIT_BUFFER_TOO_SMALL as u32, 15);
    }

    #[test]
    fn every_kind_has_a_result_named_by_its_code() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let r = camkit_result::from_kind(kind);
            assert!(
                r != CAMKIT_INTERNAL || kind == ErrorKind::Internal,
                "{kind:?} has no camkit_result of its own: add one"
            );
            assert!(seen.insert(r), "{kind:?} shares {r:?}");
            assert_eq!(r.name_nul().trim_end_matches('\0'), kind.code());
        }
    }

    #[test]
    fn names_and_messages_are_nul_terminated() {
        for r in ALL_RESULTS {
            for s in [r.name_nul(), r.message_nul()] {
                assert!(s.ends_with('\0') && !s[..s.len() - 1].contains('\0'));
            }
        }
    }

    #[test]
    fn core_field_names_become_snake_case() {
        assert_eq!(c_field_name("rtspTimeoutMs"), "rtsp_timeout_ms");
        assert_eq!(c_field_name("id"), "id");
    }

    #[test]
    fn core_errors_keep_their_field_in_c_spelling() {
        let e = FfiError::from(
            camkit::Error::invalid("backoffMaxMs", "must not be smaller than backoffInitialMs")
                .for_camera("door"),
        );
        assert_eq!(e.code, CAMKIT_INVALID_INPUT);
        assert_eq!(e.field.as_deref(), Some("backoff_max_ms"));
        assert_eq!(
            e.message,
            "camera \"door\": backoff_max_ms: must not be smaller than backoffInitialMs"
        );
        let e = FfiError::from(camkit::Error::new(ErrorKind::Timeout, "slow").with_status(408));
        assert_eq!((e.code, e.field), (CAMKIT_TIMEOUT, None));
    }
}
