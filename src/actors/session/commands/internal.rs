//! Steps the session actor queues for itself, planned in their turn like any caller's
//! command: a deadline of a pending interaction passed, and a gap in client sequences given up.

use super::{Queued, Step};
use crate::actors::error::SessionError;
use crate::actors::session::overlay::Overlay;

/// An interaction's deadline timer fired: time it out if it is still pending.
pub(in crate::actors::session) fn deadline_passed(id: String) -> Queued {
    Queued::of(DeadlinePassed { id })
}

/// The missing sequences below `sequence` are given up: it becomes the one expected next.
pub(in crate::actors::session) fn gap_given_up(sequence: i64) -> Queued {
    Queued::of(GapGivenUp { sequence })
}

struct DeadlinePassed {
    id: String,
}

impl Step for DeadlinePassed {
    fn plan(self: Box<Self>, overlay: &mut Overlay<'_>) {
        let id = self.id;
        let now = overlay.now;
        let fired = overlay
            .interaction_mut(&id)
            .is_some_and(|i| i.time_out(now));
        if fired {
            overlay.completed_now(&id);
        }
        overlay.forget_if_unchanged(&id);
        overlay.effects.timeouts.push(id);
    }

    /// No caller waits for it; a group that fails re-arms its deadline instead.
    fn fail(self: Box<Self>, _: SessionError) {}
}

struct GapGivenUp {
    sequence: i64,
}

impl Step for GapGivenUp {
    fn plan(self: Box<Self>, overlay: &mut Overlay<'_>) {
        overlay.changes.next_sequence = overlay.changes.next_sequence.max(self.sequence);
    }

    fn fail(self: Box<Self>, _: SessionError) {}
}
