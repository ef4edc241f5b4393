//! camkit errors as JS `Error`s with a stable `err.code`.
//!
//! Every error this module throws or rejects with is a plain JS `Error` whose `code` is
//! camkit's [`ErrorKind::code`] (`'UNAUTHORIZED'`, `'NOT_FOUND'`, `'INVALID_INPUT'` …) and whose
//! message is camkit's, which says what happened and what to do and never holds a password.
//!
//! napi-rs gives synchronous functions a custom code through `napi::Error<S>` with any
//! `S: AsRef<str>`, but the promise of an `async fn` always rejects with a napi `Status` as
//! the code. Promises are therefore settled through [`crate::promise`], which builds the JS
//! error object on the JS thread (here, [`reject`]) and hands that exact object to the
//! rejection.

use camkit::{Error, ErrorKind};
use napi::bindgen_prelude::{FromNapiValue, JsError, TypeName, Unknown};
use napi::{Env, JsValue, Status, ValueType};

/// The `code` of a JS error: one of camkit's stable codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(&'static str);

impl Code {
    /// The code of a camkit error kind.
    pub fn of(kind: ErrorKind) -> Self {
        Code(kind.code())
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl From<Status> for Code {
    /// napi-rs' own failures (a value of the wrong type, a closing environment) in camkit's
    /// vocabulary.
    fn from(status: Status) -> Self {
        match status {
            Status::InvalidArg
            | Status::ObjectExpected
            | Status::StringExpected
            | Status::NameExpected
            | Status::FunctionExpected
            | Status::NumberExpected
            | Status::BooleanExpected
            | Status::ArrayExpected
            | Status::BigintExpected
            | Status::DateExpected
            | Status::ArrayBufferExpected => Code::of(ErrorKind::InvalidInput),
            Status::Closing | Status::Cancelled => Code::of(ErrorKind::Closed),
            _ => Code::of(ErrorKind::Internal),
        }
    }
}

/// The result of a synchronous binding call: throws an `Error` with a camkit `code`.
///
/// Named `Result` because napi-rs recognises fallible functions by that name.
pub type Result<T> = std::result::Result<T, napi::Error<Code>>;

/// A camkit error as a napi error with camkit's code and message.
pub fn to_napi(e: &Error) -> napi::Error<Code> {
    napi::Error::new(Code::of(e.kind()), e.to_string())
}

/// The JS `Error` of a camkit error, to throw or to reject with: `message` and `code` as
/// everywhere, and the structured parts camkit knows (see [`js_error`]).
///
/// Returned from a promise's settle callback, it makes the promise reject with exactly this
/// object (see the module doc); returned from a synchronous function, napi-rs throws it.
/// Runs on the JS thread.
pub fn reject(env: &Env, e: &Error) -> napi::Error {
    napi::Error::from(js_error(env, e))
}

/// The JS `Error` of a camkit error: `message`, `code`, and when camkit knows them,
/// `field` (the config or option field an `INVALID_INPUT` error is about, as spelled in
/// JS: `'rtspTimeoutMs'`) and `status` (the status code the camera or service answered,
/// e.g. `401`, `461`, `429`). Code that reacts to an error reads these, never the message.
pub fn js_error<'env>(env: &'env Env, e: &Error) -> Unknown<'env> {
    let js = JsError::from(to_napi(e)).into_unknown(*env);
    if e.field().is_none() && e.status().is_none() {
        return js;
    }
    // Best effort: an error object that cannot take a property still has code and message.
    if let Ok(mut obj) = js.coerce_to_object() {
        if let Some(field) = e.field() {
            let _ = obj.set("field", field);
        }
        if let Some(status) = e.status() {
            let _ = obj.set("status", u32::from(status));
        }
    }
    js
}

/// A camkit error for an internal failure of the binding (a task that panicked …).
pub fn internal(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("{what}; this is a bug in camkit, please report it"),
    )
}

/// Converts an argument the binding takes as `unknown` (so that a wrong type is camkit's
/// `INVALID_INPUT` naming the field, not a napi-rs type error) into `T`.
///
/// `what` names the argument (`config`, `options`); napi-rs' message names the struct
/// field, which becomes the field camkit's message starts with.
pub fn convert<T: FromNapiValue + TypeName>(value: Unknown<'_>, what: &str) -> camkit::Result<T> {
    // A number or string would read as an object without any of the fields.
    let expected = match T::value_type() {
        ValueType::Function => Some((ValueType::Function, "a function")),
        ValueType::Object => Some((ValueType::Object, "an object")),
        _ => None,
    };
    if let Some((ty, name)) = expected {
        if value.get_type().ok() != Some(ty) {
            return Err(Error::invalid(what, format!("must be {name}")));
        }
    }
    // SAFETY: `value` is a live handle of the current call's scope, on the JS thread, and
    // `FromNapiValue` checks the value's type itself.
    unsafe { value.cast::<T>() }.map_err(|e| conversion_error(&e.reason, what))
}

/// Rewrites napi-rs' conversion messages (``Missing field `id` ``, ``Failed to convert
/// JavaScript value `String "x" ` into rust type `u32` on CameraConfig.port``) as
/// `field: problem`.
fn conversion_error(reason: &str, what: &str) -> Error {
    if let Some(field) = reason
        .strip_prefix("Missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return Error::invalid(field, "missing");
    }
    if let Some((problem, location)) = reason.rsplit_once(" on ") {
        if let Some((_, field)) = location.rsplit_once('.') {
            let expected = problem
                .rsplit_once("into rust type `")
                .and_then(|(_, t)| t.split('`').next())
                .map(js_type_name);
            let given = problem
                .split_once("JavaScript value `")
                .and_then(|(_, v)| v.split_whitespace().next())
                .map(|v| v.to_ascii_lowercase());
            let msg = match (expected, given) {
                (Some(exp), Some(given)) => format!("must be {exp}, not a {given}"),
                (Some(exp), None) => format!("must be {exp}"),
                _ => problem.to_owned(),
            };
            return Error::invalid(field, msg);
        }
    }
    if reason.contains("Object") || reason.contains("object") {
        return Error::invalid(what, "must be an object");
    }
    Error::invalid(what, reason)
}

fn js_type_name(rust: &str) -> &'static str {
    match rust {
        "u8" | "u16" | "u32" | "i32" | "i64" | "u64" | "f64" | "f32" => "a number",
        "String" | "&str" => "a string",
        "bool" => "a boolean",
        _ if rust.contains("Vec") => "an array",
        _ => "one of the documented values",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_messages_name_the_field() {
        let e = conversion_error("Missing field `id`", "config");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.message(), "id: missing");
        let e = conversion_error(
            "Failed to convert JavaScript value `String \"abc\" ` into rust type `u32` on CameraConfig.port",
            "config",
        );
        assert_eq!(e.message(), "port: must be a number, not a string");
        let e = conversion_error("something else", "options");
        assert!(e.message().starts_with("options: "), "{}", e.message());
    }

    #[test]
    fn napi_statuses_map_to_camkit_codes() {
        assert_eq!(Code::from(Status::StringExpected).as_ref(), "INVALID_INPUT");
        assert_eq!(Code::from(Status::Closing).as_ref(), "CLOSED");
        assert_eq!(Code::from(Status::GenericFailure).as_ref(), "INTERNAL");
    }
}
