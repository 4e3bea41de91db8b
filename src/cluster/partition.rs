//! Which partition a session belongs to. Sessions hash into a fixed number of partitions,
//! chosen when the database is created; whoever owns a partition's lease owns its sessions.
//! The hash is FNV-1a (64 bits) over the scope, a zero byte and the session id: every node and
//! every version must compute the same partition for a session, so the function is written
//! out here rather than taken from a hasher whose output may change.

/// Partitions of a database made without saying otherwise.
pub const DEFAULT_PARTITIONS: u32 = 256;

/// The partition of session `session_id` in `scope`, from 0 to `partitions - 1`.
pub fn partition_of(scope: &str, session_id: &str, partitions: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = scope
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(session_id.as_bytes());
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_of_a_session_never_changes() {
        // Fixed values: a change here moves sessions between owners on upgrade.
        assert_eq!(
            partition_of("", "", 256),
            (0xaf63_bd4c_8601_b7df_u64 % 256) as u32
        );
        assert_eq!(
            partition_of("default", "s1", 256),
            partition_of("default", "s1", 256)
        );
        let values: Vec<u32> = ["a", "b", "session-42"]
            .iter()
            .map(|id| partition_of("default", id, 256))
            .collect();
        assert_eq!(values, [129, 104, 47]);
    }

    #[test]
    fn the_scope_and_the_id_do_not_run_together() {
        assert_ne!(
            partition_of("ab", "c", 1 << 20),
            partition_of("a", "bc", 1 << 20)
        );
    }

    #[test]
    fn sessions_spread_evenly() {
        let partitions = 64;
        let mut counts = vec![0u32; partitions as usize];
        for i in 0..64_000 {
            counts[partition_of("default", &format!("session-{i}"), partitions) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "{min}..{max} of 1000 each");
    }

    #[test]
    fn every_partition_is_in_range() {
        for partitions in [1, 2, 7, 256] {
            for i in 0..1000 {
                assert!(partition_of("s", &i.to_string(), partitions) < partitions);
            }
        }
        assert_eq!(partition_of("s", "x", 0), 0, "no partitions counts as one");
    }
}
