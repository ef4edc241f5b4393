//! State-change events of the cameras of one manager.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::status::{CameraState, LastError};

/// A camera changed state.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraEvent {
    /// The camera.
    pub camera_id: String,
    /// Its new state.
    pub state: CameraState,
    /// The error that caused it, for `reconnecting` (and a failed first attempt).
    pub error: Option<LastError>,
    /// When, in ms since the Unix epoch.
    pub at_ms: u64,
}

/// A stream of [`CameraEvent`]s. A receiver that falls more than 256 events behind skips
/// the oldest ones (and says so in the log) rather than holding memory for them.
pub struct EventStream {
    pub(crate) rx: broadcast::Receiver<CameraEvent>,
    pub(crate) closed: tokio::sync::watch::Receiver<bool>,
}

impl EventStream {
    /// The next event; `None` once the manager is closed (after the events already
    /// queued) or dropped.
    pub async fn recv(&mut self) -> Option<CameraEvent> {
        loop {
            let r = tokio::select! {
                biased;
                r = self.rx.recv() => Some(r),
                _ = self.closed.wait_for(|c| *c) => None,
            };
            let Some(r) = r else {
                // Closed: what was queued before the close, then the end.
                return self.try_recv();
            };
            match r {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event receiver fell behind; skipped events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<CameraEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}
