//! The Moondream calls of the C API, in a libcamkit built with the cargo feature
//! `moondream`: camkit's `MoondreamCameras` (one HTTP client) behind the handle, each call
//! blocking the C caller's thread on the manager's runtime.

use std::time::Duration;

use camkit::moondream::{CaptionLength, MoondreamCameras, MoondreamConfig};
use camkit::CameraManager;

use super::{
    camkit_caption_length, camkit_detection, camkit_moondream_options, camkit_point, RawOptions,
};
use crate::error::{camkit_result, FfiError};
use crate::ffi::{block_on, opt_str};

/// What a `camkit_moondream` holds.
pub(crate) struct Moondream {
    cameras: MoondreamCameras,
    /// The manager: its runtime runs the calls, and its events tell when it is closed.
    manager: CameraManager,
}

/// The defaults, as `camkit_moondream_options_init` gives them.
pub(crate) fn default_options() -> Result<camkit_moondream_options, FfiError> {
    let d = MoondreamConfig::default();
    Ok(camkit_moondream_options {
        base_url: std::ptr::null(),
        api_key: std::ptr::null(),
        timeout_ms: d.timeout.as_millis() as u32,
        max_retries: d.max_retries,
        max_image_side: d.max_image_side,
        no_retries: false,
    })
}

/// Core's configuration from the caller's options (None: all defaults).
///
/// # Safety
/// The strings of `o` are NULL or NUL-terminated.
unsafe fn read_options(o: Option<&RawOptions>) -> Result<MoondreamConfig, FfiError> {
    let d = MoondreamConfig::default();
    let Some(o) = o else {
        return Ok(d);
    };
    // SAFETY: the struct's strings, per this function's contract.
    let (base_url, api_key) = unsafe {
        (
            opt_str(o.base_url, "base_url")?,
            opt_str(o.api_key, "api_key")?,
        )
    };
    Ok(MoondreamConfig {
        base_url: base_url.map_or(d.base_url, str::to_owned),
        api_key: api_key.map(str::to_owned),
        timeout: if o.timeout_ms == 0 {
            d.timeout
        } else {
            Duration::from_millis(o.timeout_ms.into())
        },
        max_retries: match (o.no_retries != 0, o.max_retries) {
            (true, _) => 0,
            (false, 0) => d.max_retries,
            (false, n) => n,
        },
        max_image_side: if o.max_image_side == 0 {
            d.max_image_side
        } else {
            o.max_image_side
        },
    })
}

impl Moondream {
    /// A client for `manager`'s cameras, configured by `options`.
    ///
    /// # Safety
    /// The strings of `options` are NULL or NUL-terminated.
    pub(crate) unsafe fn new(
        manager: &CameraManager,
        options: Option<&RawOptions>,
    ) -> Result<Self, FfiError> {
        // SAFETY: per this function's contract.
        let config = unsafe { read_options(options) }?;
        // Built on the runtime it will run on (the client's connector belongs there).
        let cameras = block_on(manager.runtime(), async { manager.moondream(config) })?;
        Ok(Moondream {
            cameras,
            manager: manager.clone(),
        })
    }

    /// Runs one call on the manager's runtime, blocking this thread.
    ///
    /// Ends early with `CAMKIT_CLOSED` when the manager is closed meanwhile (so that
    /// closing a manager is not held up by a slow service). camkit bounds the call: the
    /// picture by the camera's `snapshot_timeout_ms`, each attempt by `timeout_ms`, the
    /// retries by `max_retries` and at most 30 s of `Retry-After` each.
    fn ask<T, F, Fut>(&self, call: F) -> Result<T, FfiError>
    where
        T: Send,
        F: FnOnce(MoondreamCameras) -> Fut + Send,
        Fut: std::future::Future<Output = camkit::Result<T>> + Send,
    {
        let closed = || {
            FfiError::new(
                camkit_result::CAMKIT_CLOSED,
                "the camera manager was closed while Moondream was answering",
            )
        };
        if self.manager.is_closed() {
            return Err(closed());
        }
        let md = self.cameras.clone();
        let mut events = self.manager.events();
        block_on(self.manager.runtime(), async {
            tokio::select! {
                r = call(md) => r.map_err(FfiError::from),
                // `recv` ends (None) once the manager is closed.
                _ = async { while events.recv().await.is_some() {} } => Err(closed()),
            }
        })
    }

    pub(crate) fn query(&self, id: &str, question: &str) -> Result<String, FfiError> {
        let a = self.ask(|md| async move { md.query(id, question).await })?;
        Ok(a.result.answer)
    }

    pub(crate) fn caption(
        &self,
        id: &str,
        length: camkit_caption_length,
    ) -> Result<String, FfiError> {
        let length = match length {
            camkit_caption_length::CAMKIT_CAPTION_NORMAL => CaptionLength::Normal,
            camkit_caption_length::CAMKIT_CAPTION_SHORT => CaptionLength::Short,
            camkit_caption_length::CAMKIT_CAPTION_LONG => CaptionLength::Long,
        };
        let a = self.ask(|md| async move { md.caption(id, length).await })?;
        Ok(a.result.caption)
    }

    pub(crate) fn detect(&self, id: &str, object: &str) -> Result<Vec<camkit_detection>, FfiError> {
        let a = self.ask(|md| async move { md.detect(id, object).await })?;
        Ok(a.result
            .objects
            .iter()
            .map(|o| camkit_detection {
                x_min: o.x_min,
                y_min: o.y_min,
                x_max: o.x_max,
                y_max: o.y_max,
            })
            .collect())
    }

    pub(crate) fn point(&self, id: &str, object: &str) -> Result<Vec<camkit_point>, FfiError> {
        let a = self.ask(|md| async move { md.point(id, object).await })?;
        Ok(a.result
            .points
            .iter()
            .map(|p| camkit_point { x: p.x, y: p.y })
            .collect())
    }
}
