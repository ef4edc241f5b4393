//! Reconnect delays: exponential backoff with jitter, capped.

use std::time::Duration;

use crate::error::ErrorKind;

/// Delay schedule for one camera's reconnects.
///
/// Each failure doubles the delay from `initial` up to `max`; each delay is drawn
/// uniformly from [50%, 100%] of that value ("equal jitter"), so cameras that dropped
/// together do not retry in lock-step. Refused credentials wait `max` at once: retrying
/// a wrong password quickly only locks accounts on many cameras.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A schedule from `initial` to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The delay before the next attempt after a failure of this kind.
    pub fn next_delay(&mut self, kind: ErrorKind) -> Duration {
        let base = match kind {
            ErrorKind::Unauthorized | ErrorKind::UnsupportedCodec => self.max,
            _ => {
                let factor = 2u32.saturating_pow(self.failures.min(20));
                self.initial.saturating_mul(factor).min(self.max)
            }
        };
        self.failures = self.failures.saturating_add(1);
        let jitter = 0.5 + fastrand::f64() * 0.5;
        base.mul_f64(jitter)
    }

    /// The stream worked: start again from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut ceilings = vec![];
        for _ in 0..10 {
            let d = b.next_delay(ErrorKind::Unreachable);
            ceilings.push(d);
        }
        let expect_max = [
            500u64, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
        ];
        for (d, m) in ceilings.iter().zip(expect_max) {
            let ms = d.as_millis() as u64;
            assert!(ms <= m && ms >= m / 2, "{ms} not in [{}, {m}]", m / 2);
        }
        b.reset();
        assert!(b.next_delay(ErrorKind::Timeout) <= Duration::from_millis(500));
    }

    #[test]
    fn refused_credentials_wait_the_maximum() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let d = b.next_delay(ErrorKind::Unauthorized);
        assert!(d >= Duration::from_secs(15), "{d:?}");
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
            seen.insert(b.next_delay(ErrorKind::Unreachable).as_millis());
        }
        assert!(seen.len() > 5, "{seen:?}");
    }
}
