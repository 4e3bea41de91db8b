//! `POST .../commands/next?wait_ms=`: hand out the oldest queued command the caller takes,
//! while no other command of the session is pending, waiting up to `wait` for one. Callers are
//! served in arrival order: those parked by earlier groups first; a caller that takes only
//! prompts lets one that takes anything go first for a command that is not a prompt. A command
//! is never handed to a caller that has gone away, because the actor, not the caller, ends each
//! wait.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Answer, Command};
use crate::actors::session::interactions::NextWaiter;
use crate::actors::session::overlay::Overlay;
use crate::actors::session::reply::NextRequest;
use crate::domain::interaction::{CommandFilter, Interaction, InteractionStatus};

/// Hand out the next command this caller takes, waiting up to `wait`. `None` when none became
/// available in time.
pub(crate) struct NextCommand {
    pub wait: Duration,
    pub takes: CommandFilter,
}

impl Command for NextCommand {
    type Answer = Option<Interaction>;
    const MAY_CREATE: bool = false;
    const WAITS_ITS_OWN_TIME: bool = true;

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<Option<Interaction>>) {
        if overlay.session().is_none() {
            let error = overlay.no_session();
            return overlay.answer(reply, Err(error));
        }
        // Served once the whole group is planned: a command created later in the group counts.
        overlay.effects.unserved_next.push(NextRequest {
            wait: self.wait,
            takes: self.takes,
            reply,
        });
    }
}

/// Hands queued commands to waiting callers (parked ones first, then this group's) while no
/// other command of the session is pending: each time, the first caller in line that takes
/// one of the queued commands gets the oldest of those it takes. Callers left are the
/// group's to park or answer.
pub(in crate::actors::session) fn serve_waiting_callers(
    overlay: &mut Overlay<'_>,
    parked: &mut VecDeque<NextWaiter>,
) {
    if overlay.session().is_none()
        || (parked.is_empty() && overlay.effects.unserved_next.is_empty())
    {
        return;
    }
    let mut fresh: VecDeque<NextRequest> = overlay.effects.unserved_next.drain(..).collect();
    loop {
        if a_command_is_pending(overlay) {
            break;
        }
        let queued = queued_commands(overlay);
        if queued.is_empty() {
            break;
        }
        // Callers that have gone away are dropped, not served.
        parked.retain(|waiter| !waiter.reply.is_closed());
        fresh.retain(|request| !request.reply.is_closed());
        let oldest_taken_by = |takes: CommandFilter| {
            queued
                .iter()
                .find(|c| takes.takes(c))
                .map(|c| c.id.as_str().to_owned())
        };
        let served = match parked
            .iter()
            .position(|w| oldest_taken_by(w.takes).is_some())
        {
            Some(at) => parked.remove(at).map(|w| (w.takes, w.reply)),
            None => fresh
                .iter()
                .position(|r| oldest_taken_by(r.takes).is_some())
                .and_then(|at| fresh.remove(at))
                .map(|r| (r.takes, r.reply)),
        };
        let Some((takes, reply)) = served else { break };
        let Some(oldest) = oldest_taken_by(takes) else {
            break;
        };
        let now = overlay.now;
        let Some(command) = overlay.interaction_mut(&oldest) else {
            break;
        };
        command.start(now);
        let command = command.clone();
        overlay.mark_changed();
        overlay.answer(reply, Ok(Some(command)));
    }
    overlay.effects.unserved_next = fresh.into_iter().collect();
}

/// A command of the session is handed out and not finished: committed (and not changed by
/// this group) or changed by this group.
fn a_command_is_pending(overlay: &Overlay<'_>) -> bool {
    let committed = &overlay.standing().pending_commands;
    overlay.unchanged(committed.iter()).next().is_some()
        || overlay
            .changes
            .interactions
            .values()
            .any(|i| i.is_command() && i.status == InteractionStatus::Pending)
}

/// The queued commands, committed or created by this group, oldest first.
fn queued_commands<'p>(overlay: &'p Overlay<'_>) -> Vec<&'p Interaction> {
    let committed = overlay.unchanged(overlay.standing().queued_commands.values());
    let this_group = overlay
        .changes
        .interactions
        .values()
        .filter(|i| i.is_command() && i.status == InteractionStatus::Queued);
    let mut queued: Vec<&Interaction> = committed.chain(this_group).collect();
    queued.sort_by_key(|i| i.position);
    queued
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
        next_taking(committed, CommandFilter::Any)
    }

    fn prompt(id: &str, position: i64) -> Interaction {
        let mut command = command(id, position, InteractionStatus::Queued);
        command.payload = crate::domain::json::JsonText::from_value(
            &serde_json::json!({"prompt": "now write the tests"}),
        );
        command
    }

    fn next_taking(committed: &[Interaction], takes: CommandFilter) -> Option<String> {
        let mut s = TestSession::new();
        answer_of(s.run(EnsureSession { metadata: None }).0).unwrap();
        let inter = s.state.interactions_mut();
        inter.next_position = 100;
        for i in committed {
            inter.remember(i.clone());
        }
        let (answer, planned) = s.run(NextCommand {
            wait: Duration::ZERO,
            takes,
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

    #[test]
    fn a_prompt_taker_gets_the_oldest_prompt_and_leaves_other_commands() {
        use InteractionStatus::*;
        let committed = [
            command("run-1", 1, Queued),
            prompt("say-2", 2),
            prompt("say-3", 3),
        ];
        assert_eq!(
            next_taking(&committed, CommandFilter::Prompts).as_deref(),
            Some("say-2")
        );
        assert_eq!(
            next_taking(&committed, CommandFilter::Any).as_deref(),
            Some("run-1"),
            "an executor still takes them in order"
        );
        let blank = {
            let mut c = command("blank", 1, Queued);
            c.payload =
                crate::domain::json::JsonText::from_value(&serde_json::json!({"prompt": ""}));
            c
        };
        assert_eq!(
            next_taking(
                &[command("run-1", 1, Queued), blank],
                CommandFilter::Prompts
            ),
            None
        );
        // One command at a time per session, prompts included.
        let busy = [command("run-1", 1, Pending), prompt("say-2", 2)];
        assert_eq!(next_taking(&busy, CommandFilter::Prompts), None);
    }
}
