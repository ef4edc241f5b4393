//! The Moondream calls of the C API in a libcamkit built without the cargo feature
//! `moondream` (no HTTP client, no TLS): the header still declares them, so a C program
//! builds against either library, and each fails with `CAMKIT_UNSUPPORTED`. No handle can
//! be made, so the calls that take one are never reached with a live handle.

use camkit::CameraManager;

use super::{
    camkit_caption_length, camkit_detection, camkit_moondream_options, camkit_point, RawOptions,
};
use crate::error::{camkit_result, FfiError};

/// What a `camkit_moondream` would hold: nothing can be one in this build.
pub(crate) enum Moondream {}

fn unsupported() -> FfiError {
    FfiError::new(
        camkit_result::CAMKIT_UNSUPPORTED,
        "this libcamkit was built without Moondream (cargo feature `moondream` of camkit-c); \
         rebuild it with default features to use the camkit_moondream_* functions",
    )
}

/// No defaults to give: `CAMKIT_UNSUPPORTED`.
pub(crate) fn default_options() -> Result<camkit_moondream_options, FfiError> {
    Err(unsupported())
}

impl Moondream {
    /// `CAMKIT_UNSUPPORTED`.
    ///
    /// # Safety
    /// None needed: nothing is read.
    pub(crate) unsafe fn new(
        _manager: &CameraManager,
        _options: Option<&RawOptions>,
    ) -> Result<Self, FfiError> {
        Err(unsupported())
    }

    pub(crate) fn query(&self, _id: &str, _question: &str) -> Result<String, FfiError> {
        match *self {}
    }

    pub(crate) fn caption(
        &self,
        _id: &str,
        _length: camkit_caption_length,
    ) -> Result<String, FfiError> {
        match *self {}
    }

    pub(crate) fn detect(
        &self,
        _id: &str,
        _object: &str,
    ) -> Result<Vec<camkit_detection>, FfiError> {
        match *self {}
    }

    pub(crate) fn point(&self, _id: &str, _object: &str) -> Result<Vec<camkit_point>, FfiError> {
        match *self {}
    }
}
