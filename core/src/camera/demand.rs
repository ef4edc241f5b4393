//! Who wants a camera's pictures now: its decode policy, its subscribers, and the grace
//! after a snapshot or a subscriber leaving. The decode thread asks it, per frame, whether
//! to decode, and whether an idle camera may release its decoder.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::DecodePolicy;

/// How long decoding continues after the last subscriber leaves (at most; never longer
/// than the camera's `decode_grace`).
const SUBSCRIBER_GRACE: Duration = Duration::from_secs(2);

/// Who wants pictures now: subscribers, and recent snapshots (grace).
pub(crate) struct Demand {
    subscribers: AtomicUsize,
    policy: AtomicU8,
    grace_until: Mutex<Option<Instant>>,
    /// How long decoding continues after a snapshot (the camera's `decode_grace`), so
    /// snapshots in a row are served from the cache instead of each catching up on the GOP.
    snapshot_grace: Duration,
}

impl Demand {
    pub fn new(policy: DecodePolicy, snapshot_grace: Duration) -> Self {
        Demand {
            subscribers: AtomicUsize::new(0),
            policy: AtomicU8::new(policy_to_u8(policy)),
            grace_until: Mutex::new(None),
            snapshot_grace,
        }
    }

    pub fn policy(&self) -> DecodePolicy {
        match self.policy.load(Ordering::Relaxed) {
            1 => DecodePolicy::Continuous,
            2 => DecodePolicy::Keyframes,
            _ => DecodePolicy::OnDemand,
        }
    }

    pub fn set_policy(&self, p: DecodePolicy) {
        self.policy.store(policy_to_u8(p), Ordering::Relaxed);
    }

    /// Someone is consuming frames, or did so a moment ago.
    pub fn active(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
            || self.grace_until.lock().is_some_and(|t| Instant::now() < t)
    }

    /// A snapshot was taken (or is about to be): keep decoding for the snapshot grace.
    pub fn after_snapshot(&self) {
        self.extend_grace(self.snapshot_grace);
    }

    fn extend_grace(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut g = self.grace_until.lock();
        if g.is_none_or(|t| t < until) {
            *g = Some(until);
        }
    }

    pub fn add_subscriber(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn remove_subscriber(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
        self.extend_grace(SUBSCRIBER_GRACE.min(self.snapshot_grace));
    }

    /// Whether the decoder and the raw picture may go: an `OnDemand` camera nobody uses.
    pub(super) fn idle(&self) -> bool {
        self.policy() == DecodePolicy::OnDemand && !self.active()
    }

    /// Whether an arriving frame should be decoded at once.
    pub(super) fn decode_now(&self, keyframe: bool) -> bool {
        match self.policy() {
            DecodePolicy::Continuous => true,
            // A subscriber gets every frame whatever the policy: it asked for a rate.
            DecodePolicy::Keyframes => keyframe || self.subscribers.load(Ordering::Relaxed) > 0,
            DecodePolicy::OnDemand => self.active(),
        }
    }
}

fn policy_to_u8(p: DecodePolicy) -> u8 {
    match p {
        DecodePolicy::OnDemand => 0,
        DecodePolicy::Continuous => 1,
        DecodePolicy::Keyframes => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_follows_subscribers_and_grace() {
        let d = Demand::new(DecodePolicy::OnDemand, Duration::from_secs(5));
        assert!(!d.active());
        assert!(!d.decode_now(true));
        d.add_subscriber();
        assert!(d.active());
        d.remove_subscriber();
        // Grace keeps it active a moment after the last subscriber left.
        assert!(d.active());
        *d.grace_until.lock() = Some(Instant::now() - Duration::from_millis(1));
        assert!(!d.active());
        d.set_policy(DecodePolicy::Keyframes);
        assert!(d.decode_now(true));
        assert!(!d.decode_now(false));
        d.set_policy(DecodePolicy::Continuous);
        assert!(d.decode_now(false));
    }
}
