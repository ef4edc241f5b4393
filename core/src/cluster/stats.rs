//! Lease health of this node, as counters since it joined: what the leases of the cameras
//! it ran went through (claimed, renewed, renewals NATS did not answer, lost to another
//! node, given up, fenced) and how often its NATS connection came back. Counted where the
//! outcome is decided (the renewal loop, and the owner events every change of ownership
//! publishes), read without a lock by [`Cluster::stats`](super::Cluster::stats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::lease::Renewal;

/// This node's lease and NATS figures since it joined (counters, never reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStats {
    /// Leases this node claimed (or took back) and started a camera on.
    pub lease_claims: u64,
    /// Lease renewals the server acknowledged.
    pub lease_renewals: u64,
    /// Lease renewals NATS did not answer (down, slow, reconnecting): the fence decides
    /// whether the camera stops.
    pub lease_renewal_failures: u64,
    /// Leases found taken by another node at renewal (the camera was stopped).
    pub leases_lost: u64,
    /// Leases given up on purpose: the camera moved to another node, was removed from the
    /// cluster, or this node left.
    pub leases_released: u64,
    /// Cameras stopped because their lease could not be renewed in time (fencing: before
    /// the lease could expire and the camera start elsewhere).
    pub fenced_stops: u64,
    /// Times the NATS connection was established again after it was lost.
    pub nats_reconnects: u64,
}

/// The live counters (all but `nats_reconnects`, which the NATS client counts).
#[derive(Default)]
pub(crate) struct Counters {
    claims: AtomicU64,
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
    lost: AtomicU64,
    released: AtomicU64,
    fenced: AtomicU64,
}

impl Counters {
    /// Counts a renewal's outcome (a lost lease is counted when its camera stops).
    pub(crate) fn renewal(&self, outcome: &Renewal) {
        match outcome {
            Renewal::Renewed => self.renewals.fetch_add(1, Relaxed),
            Renewal::Unknown => self.renewal_failures.fetch_add(1, Relaxed),
            Renewal::Lost => return,
        };
    }

    /// Counts a change of ownership by the action of its owner event (`claimed`, `moved`,
    /// `removed`, `left`, `lost`, `fenced`; see the module doc of `cluster`).
    pub(crate) fn owner(&self, action: &str) {
        let c = match action {
            "claimed" => &self.claims,
            "lost" => &self.lost,
            "fenced" => &self.fenced,
            "moved" | "removed" | "left" => &self.released,
            _ => return,
        };
        c.fetch_add(1, Relaxed);
    }

    /// The figures, with the NATS client's count of connections made (`connects`, the
    /// first one included).
    pub(crate) fn read(&self, connects: u64) -> ClusterStats {
        ClusterStats {
            lease_claims: self.claims.load(Relaxed),
            lease_renewals: self.renewals.load(Relaxed),
            lease_renewal_failures: self.renewal_failures.load(Relaxed),
            leases_lost: self.lost.load(Relaxed),
            leases_released: self.released.load(Relaxed),
            fenced_stops: self.fenced.load(Relaxed),
            nats_reconnects: connects.saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_counts_in_its_own_figure() {
        let c = Counters::default();
        assert_eq!(c.read(1), ClusterStats::default());
        c.renewal(&Renewal::Renewed);
        c.renewal(&Renewal::Renewed);
        c.renewal(&Renewal::Unknown);
        c.renewal(&Renewal::Lost);
        for action in [
            "claimed", "claimed", "moved", "removed", "left", "lost", "fenced",
        ] {
            c.owner(action);
        }
        c.owner("something else");
        assert_eq!(
            c.read(3),
            ClusterStats {
                lease_claims: 2,
                lease_renewals: 2,
                lease_renewal_failures: 1,
                leases_lost: 1,
                leases_released: 3,
                fenced_stops: 1,
                nats_reconnects: 2,
            }
        );
        // Before the first connection is counted: no reconnects, not an underflow.
        assert_eq!(c.read(0).nats_reconnects, 0);
    }
}
