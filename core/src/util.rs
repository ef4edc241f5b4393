//! Small helpers shared by the pipeline, the manager and Moondream: durations in messages
//! and times as epoch milliseconds. Kept apart so no layer imports another for them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration as people write it in a message: `5s`, or `1500ms` when not whole seconds.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Milliseconds since the Unix epoch (0 for a time before it).
pub(crate) fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(fmt_duration(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(epoch_ms(UNIX_EPOCH + Duration::from_millis(42)), 42);
    }
}
