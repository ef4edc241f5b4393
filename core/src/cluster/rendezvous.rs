//! Rendezvous (highest-random-weight) hashing: which live node owns a camera.
//!
//! Every node computes the same owner from the same live set with no coordination, and a
//! node joining or leaving moves only the cameras whose highest weight it holds (about
//! 1/N of them). The weight must be the same function on every node and in every release,
//! which rules out `std`'s `DefaultHasher` (unspecified, may change); it is FNV-1a over
//! node id, a separator and camera id, finished with the SplitMix64 mixer so nearby ids
//! spread. Twenty lines are not worth a dependency.

/// The weight of `node` for `camera`.
pub(crate) fn weight(node: &str, camera: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0xff]).chain(camera.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The owner of `camera` among `nodes`: the highest weight, ties broken by node id.
pub(crate) fn owner<'a, I>(camera: &str, nodes: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    nodes
        .into_iter()
        .max_by(|a, b| (weight(a, camera), *a).cmp(&(weight(b, camera), *b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cams() -> Vec<String> {
        (0..1200).map(|i| format!("cam-{i}")).collect()
    }

    #[test]
    fn spreads_evenly() {
        let nodes = ["n1", "n2", "n3"];
        let mut counts = [0usize; 3];
        for c in cams() {
            let o = owner(&c, nodes).unwrap();
            counts[nodes.iter().position(|n| *n == o).unwrap()] += 1;
        }
        for n in counts {
            assert!((340..=460).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn leaving_moves_only_the_leavers_share() {
        let all = ["n1", "n2", "n3", "n4"];
        let rest = ["n1", "n2", "n4"];
        let mut moved = 0;
        for c in cams() {
            let before = owner(&c, all).unwrap();
            let after = owner(&c, rest).unwrap();
            if before != "n3" {
                assert_eq!(before, after, "{c} moved though its owner stayed");
            } else {
                moved += 1;
            }
        }
        assert!((200..=400).contains(&moved), "{moved}");
    }

    #[test]
    fn weights_are_pinned() {
        // Every node and every release must compute the same owners (and so must the
        // Express end-to-end test, which hashes in JavaScript): known answers.
        assert_eq!(weight("n1", "c"), 0x95b0_bafb_f998_f8d9);
        let nodes = ["node-1", "node-2", "node-3"];
        let owners: Vec<&str> = (0..12)
            .map(|i| owner(&format!("cam-{i}"), nodes).unwrap())
            .collect();
        assert_eq!(
            owners,
            [
                "node-2", "node-1", "node-3", "node-1", "node-3", "node-3", "node-2", "node-1",
                "node-1", "node-3", "node-2", "node-2"
            ]
        );
    }

    #[test]
    fn no_nodes_no_owner() {
        assert_eq!(owner("c", std::iter::empty()), None);
        assert_eq!(weight("n1", "c"), weight("n1", "c"));
        assert_ne!(weight("n1", "c"), weight("n2", "c"));
    }
}
