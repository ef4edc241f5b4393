//! The cluster calls of the C API in a libcamkit built without the cargo feature `cluster`
//! (no NATS client): the header still declares them, so a C program builds against either
//! library, and joining fails with `CAMKIT_UNSUPPORTED`. No handle can be made, so the
//! calls that take one are never reached with a live handle.

use std::time::Duration;

use camkit::{CameraConfig, CameraManager, CameraStatus, Frame, SnapshotOptions};

use super::camkit_cluster_options;
use crate::error::{camkit_result, FfiError};

/// What a `camkit_cluster` would hold: nothing can be one in this build.
pub(crate) enum Cluster {}

fn unsupported() -> FfiError {
    FfiError::new(
        camkit_result::CAMKIT_UNSUPPORTED,
        "this libcamkit was built without cluster mode (cargo feature `cluster` of camkit-c); \
         rebuild it with default features to use the camkit_cluster_* functions",
    )
}

impl Cluster {
    /// `CAMKIT_UNSUPPORTED`.
    ///
    /// # Safety
    /// None needed: nothing is read.
    pub(crate) unsafe fn join(
        _cameras: &CameraManager,
        _o: &camkit_cluster_options,
    ) -> Result<Self, FfiError> {
        Err(unsupported())
    }

    pub(crate) fn check_open(&self) -> Result<(), FfiError> {
        match *self {}
    }

    pub(crate) fn connect(&self, _config: CameraConfig) -> Result<CameraStatus, FfiError> {
        match *self {}
    }

    pub(crate) fn disconnect(&self, _id: &str) -> Result<(), FfiError> {
        match *self {}
    }

    pub(crate) fn status(&self, _id: &str) -> Result<CameraStatus, FfiError> {
        match *self {}
    }

    pub(crate) fn snapshot(
        &self,
        _id: &str,
        _opts: SnapshotOptions,
        _timeout: Option<Duration>,
    ) -> Result<Frame, FfiError> {
        match *self {}
    }

    pub(crate) fn list_json(&self) -> Result<String, FfiError> {
        match *self {}
    }

    pub(crate) fn view_json(&self) -> Result<String, FfiError> {
        match *self {}
    }

    pub(crate) fn leave(&self) {
        match *self {}
    }
}
