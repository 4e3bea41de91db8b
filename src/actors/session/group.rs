//! Taking a group from the session actor's queue: the [`GroupBuilder`] collects the operations
//! of one group and tracks what they do to the expected client sequence, so the actor knows
//! which requests waiting for a gap may join.

use super::commands::{internal, Queued};

/// A group being taken: its operations and what it does to the expected client sequence.
pub(super) struct GroupBuilder {
    pub(super) ops: Vec<Queued>,
    pub(super) events: usize,
    /// The expected sequence as the group stands so far.
    pub(super) next: i64,
    /// Sequences behind the expected one when their request joined.
    pub(super) behind: Vec<i64>,
}

impl GroupBuilder {
    pub(super) fn new(next: i64) -> Self {
        Self {
            ops: Vec::new(),
            events: 0,
            next,
            behind: Vec::new(),
        }
    }

    /// Adds a request, advancing the expected sequence as the plan will.
    pub(super) fn add(&mut self, op: Queued) {
        self.events += op.weight();
        let mut sequences: Vec<i64> = op.events().iter().filter_map(|e| e.sequence).collect();
        sequences.sort_unstable();
        for s in sequences {
            if s < self.next {
                self.behind.push(s);
            }
            self.next = self.next.max(s.saturating_add(1));
        }
        self.ops.push(op);
    }

    /// Gives up the sequences missing below `sequence`: the group expects it next.
    pub(super) fn skip_to(&mut self, sequence: i64) {
        self.next = sequence;
        self.ops.push(internal::gap_given_up(sequence));
    }
}
