//! How partitions spread over the live nodes. Each node aims at an equal share (the first
//! `partitions % nodes` nodes in id order one more), takes free partitions (never leased, or
//! whose lease expired) up to its share, and hands back what it holds beyond it. Every node
//! decides from the same rows by the same rule, so they converge without talking to each
//! other; the lease rows' epochs (see `store::leases`) settle any race to take one partition.

/// A partition's lease as a node sees it when it balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub partition: u32,
    /// The node holding an unexpired lease; `None` when nobody does.
    pub owner: Option<String>,
}

/// What one node should do to move towards its share.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moves {
    pub take: Vec<u32>,
    pub release: Vec<u32>,
}

/// How many partitions `me` should hold among the `live` nodes.
pub fn share(me: &str, live: &[String], partitions: u32) -> u32 {
    let mut ids: Vec<&str> = live.iter().map(String::as_str).collect();
    if !ids.contains(&me) {
        ids.push(me);
    }
    ids.sort_unstable();
    let nodes = ids.len() as u32;
    let rank = ids.iter().position(|id| *id == me).unwrap_or(0) as u32;
    partitions / nodes + u32::from(rank < partitions % nodes)
}

/// The partitions `me` should take and release, given every lease row (a partition with no
/// row is free) and the live nodes. A node that is short takes free partitions starting at a
/// place of its own, so that nodes starting together do not all race for the same ones.
pub fn moves(me: &str, live: &[String], leases: &[Lease], partitions: u32) -> Moves {
    let target = share(me, live, partitions) as usize;
    let mut mine: Vec<u32> = leases
        .iter()
        .filter(|l| l.owner.as_deref() == Some(me))
        .map(|l| l.partition)
        .collect();
    mine.sort_unstable();
    if mine.len() > target {
        return Moves {
            take: Vec::new(),
            release: mine.split_off(target),
        };
    }
    let held: std::collections::HashSet<u32> = leases
        .iter()
        .filter(|l| l.owner.is_some())
        .map(|l| l.partition)
        .collect();
    let start = place_of(me, live, partitions);
    let take = (0..partitions)
        .map(|i| (start + i) % partitions.max(1))
        .filter(|p| !held.contains(p))
        .take(target - mine.len())
        .collect();
    Moves {
        take,
        release: Vec::new(),
    }
}

/// Where `me` starts looking for free partitions: its rank's stretch of the range.
fn place_of(me: &str, live: &[String], partitions: u32) -> u32 {
    let mut ids: Vec<&str> = live.iter().map(String::as_str).collect();
    if !ids.contains(&me) {
        ids.push(me);
    }
    ids.sort_unstable();
    let rank = ids.iter().position(|id| *id == me).unwrap_or(0) as u32;
    rank * (partitions / ids.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn leases(owners: &[(u32, &str)]) -> Vec<Lease> {
        owners
            .iter()
            .map(|(p, o)| Lease {
                partition: *p,
                owner: Some(o.to_string()),
            })
            .collect()
    }

    #[test]
    fn shares_add_up_to_every_partition() {
        for count in 1..=5 {
            let live = nodes(&["a", "b", "c", "d", "e"][..count]);
            let total: u32 = live.iter().map(|me| share(me, &live, 256)).sum();
            assert_eq!(total, 256, "{count} nodes");
        }
        assert_eq!(share("a", &nodes(&["b"]), 10), 5, "a node counts itself");
    }

    #[test]
    fn a_lone_node_takes_everything() {
        let m = moves("a", &nodes(&["a"]), &[], 8);
        assert_eq!(m.take, (0..8).collect::<Vec<_>>());
        assert!(m.release.is_empty());
    }

    #[test]
    fn a_node_joining_is_handed_a_share_and_takes_it() {
        let live = nodes(&["a", "b"]);
        let all_a = leases(&(0..8).map(|p| (p, "a")).collect::<Vec<_>>());
        let a = moves("a", &live, &all_a, 8);
        assert_eq!(a.release, [4, 5, 6, 7]);
        let b = moves("b", &live, &all_a, 8);
        assert!(b.take.is_empty(), "nothing is free yet");
        let after: Vec<Lease> = (0..4)
            .map(|p| Lease {
                partition: p,
                owner: Some("a".into()),
            })
            .collect();
        assert_eq!(moves("b", &live, &after, 8).take, [4, 5, 6, 7]);
        assert_eq!(moves("a", &live, &after, 8), Moves::default());
    }

    #[test]
    fn nodes_starting_together_look_in_different_places() {
        let live = nodes(&["a", "b", "c"]);
        let a = moves("a", &live, &[], 9);
        let b = moves("b", &live, &[], 9);
        let c = moves("c", &live, &[], 9);
        assert_eq!(
            (a.take, b.take, c.take),
            (vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8])
        );
    }

    #[test]
    fn a_dead_nodes_partitions_are_taken_once_its_leases_expire() {
        let live = nodes(&["a", "b"]);
        let mut rows = leases(&[(0, "a"), (1, "b"), (2, "dead"), (3, "dead")]);
        assert!(
            moves("a", &live, &rows, 4).take.is_empty(),
            "not before expiry"
        );
        rows[2].owner = None;
        rows[3].owner = None;
        assert_eq!(moves("a", &live, &rows, 4).take, [2]);
        assert_eq!(
            moves("b", &live, &rows, 4).take,
            [2],
            "both want it; the epoch decides"
        );
    }
}
