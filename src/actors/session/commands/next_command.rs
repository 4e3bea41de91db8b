//! `GET .../commands/next?wait=`: hand out the oldest queued command, while no other command
//! of the session is pending, waiting up to `wait` for one. Callers are served in arrival
//! order: those parked by earlier groups first. A command is never handed to a caller that has
//! gone away, because the actor, not the caller, ends each wait.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Answer, Command};
use crate::actors::session::interactions::NextWaiter;
use crate::actors::session::plan::Planner;
use crate::actors::session::reply::NextReply;
use crate::domain::interaction::{Interaction, InteractionStatus};

/// Hand out the next command, waiting up to `wait`. `None` when none became available in time.
pub(crate) struct NextCommand {
    pub wait: Duration,
}

impl Command for NextCommand {
    type Answer = Option<Interaction>;
    const MAY_CREATE: bool = false;
    const WAITS_ITS_OWN_TIME: bool = true;

    fn plan(self, planner: &mut Planner<'_>, reply: Answer<Option<Interaction>>) {
        if planner.session.is_none() {
            let error = planner.no_session();
            return planner.answer(reply, Err(error));
        }
        // Served once the whole group is planned: a command created later in the group counts.
        planner.next_requests.push((self.wait, reply));
    }
}

/// Hands queued commands to waiting callers (parked ones first, then this group's) while no
/// other command of the session is pending. Callers left are the group's to park or answer.
pub(in crate::actors::session) fn serve_waiting_callers(
    planner: &mut Planner<'_>,
    parked: &mut VecDeque<NextWaiter>,
) {
    if planner.session.is_none() || (parked.is_empty() && planner.next_requests.is_empty()) {
        return;
    }
    let mut fresh: VecDeque<(Duration, NextReply)> = planner.next_requests.drain(..).collect();
    loop {
        if a_command_is_pending(planner) {
            break;
        }
        let Some(oldest) = oldest_queued_command(planner) else {
            break;
        };
        // The first caller still listening: a parked one, then this group's.
        let reply = loop {
            if let Some(waiter) = parked.pop_front() {
                if !waiter.reply.is_closed() {
                    break Some(waiter.reply);
                }
            } else if let Some((_, reply)) = fresh.pop_front() {
                if !reply.is_closed() {
                    break Some(reply);
                }
            } else {
                break None;
            }
        };
        let Some(reply) = reply else { break };
        let now = planner.now;
        let Some(command) = planner.interaction_mut(&oldest) else {
            break;
        };
        command.start(now);
        let command = command.clone();
        planner.changed = true;
        planner.answer(reply, Ok(Some(command)));
    }
    planner.next_requests = fresh.into_iter().collect();
}

/// A command of the session is handed out and not finished: committed (and not changed by
/// this group) or changed by this group.
fn a_command_is_pending(planner: &Planner<'_>) -> bool {
    let committed = &planner.base.standing.pending_commands;
    committed.iter().any(|id| !planner.touched.contains_key(id))
        || planner
            .touched
            .values()
            .any(|i| i.is_command() && i.status == InteractionStatus::Pending)
}

/// The queued command with the lowest position, committed or created by this group.
fn oldest_queued_command(planner: &Planner<'_>) -> Option<String> {
    let committed = planner
        .base
        .standing
        .queued_commands
        .values()
        .find(|id| !planner.touched.contains_key(*id))
        .and_then(|id| planner.base.interactions.get(id));
    let this_group = planner
        .touched
        .values()
        .filter(|i| i.is_command() && i.status == InteractionStatus::Queued)
        .min_by_key(|i| i.position);
    [committed, this_group]
        .into_iter()
        .flatten()
        .min_by_key(|i| i.position)
        .map(|i| i.id.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::session::commands::EnsureSession;
    use crate::actors::session::state::testing::{answer_of, TestSession};

    fn command(id: &str, position: i64, status: InteractionStatus) -> Interaction {
        Interaction::for_test(id, "command", position, status)
    }

    /// Plans one `commands/next` against a session holding `committed`; returns the id of
    /// the command it was handed.
    fn next_against(committed: &[Interaction]) -> Option<String> {
        let mut s = TestSession::new();
        answer_of(s.run(EnsureSession { metadata: None }).0).unwrap();
        let inter = s.state.interactions_mut();
        inter.next_position = 100;
        for i in committed {
            inter.remember(i.clone());
        }
        let (answer, planned) = s.run(NextCommand {
            wait: Duration::ZERO,
        });
        let handed_out = answer_of(answer).unwrap();
        match &handed_out {
            Some(command) => {
                let write = planned.write.expect("the hand-out is written");
                assert_eq!(write.changed_interactions.len(), 1);
                assert_eq!(command.status, InteractionStatus::Pending);
                assert_eq!(command.deadline, Some(s.now + 1000));
            }
            None => assert!(planned.write.is_none()),
        }
        handed_out.map(|c| c.id.as_str().to_owned())
    }

    #[test]
    fn next_hands_out_the_oldest_queued_command() {
        use InteractionStatus::*;
        let committed = [
            command("c3", 3, Queued),
            command("c1", 1, Completed),
            command("c2", 2, Queued),
            command("c4", 4, Queued),
        ];
        assert_eq!(next_against(&committed).as_deref(), Some("c2"));
    }

    #[test]
    fn next_waits_while_a_command_is_pending() {
        use InteractionStatus::*;
        let committed = [command("c1", 1, Pending), command("c2", 2, Queued)];
        assert_eq!(next_against(&committed), None);
        assert_eq!(next_against(&[command("c1", 1, Cancelled)]), None);
    }
}
