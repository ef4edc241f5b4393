//! Camera ids: what a caller may name a camera (ids end up in URLs, file names, log
//! lines and subjects).

use crate::error::{Error, Result};

/// Longest camera id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

pub(super) fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("id", "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            "id",
            format!("is {} bytes; at most {MAX_ID_LEN} allowed", id.len()),
        ));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("id", "must not contain control characters"));
    }
    if id.contains(['/', '\\']) || id == "." || id == ".." {
        return Err(Error::invalid(
            "id",
            "must not contain '/' or '\\' or be '.' or '..'",
        ));
    }
    Ok(())
}

/// Validates a camera id on its own (for lookups by id).
pub fn check_id(id: &str) -> Result<()> {
    validate_id(id)
}
