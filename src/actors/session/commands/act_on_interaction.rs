//! Results, decisions and cancels: `POST .../result`, `.../resolve`, `.../reject`,
//! `.../cancel`. The interaction's rules (`crate::domain::interaction`) say whether the
//! action completes it, repeats what completed it, or is refused (409); a completion is
//! counted and notified exactly once however many callers race for it.

use super::{Answer, Command, Wanted};
use crate::actors::error::SessionError;
use crate::actors::session::overlay::Overlay;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::{Decision, Interaction, Refusal};

/// What a caller asks of an interaction.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Decide(Decision),
    Cancel,
}

/// Apply a result, decision or cancel. The answer says whether this call completed it.
pub(crate) struct ActOnInteraction {
    pub id: InteractionId,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub(crate) struct ActionOutcome {
    pub completed_now: bool,
    pub interaction: Interaction,
}

impl Command for ActOnInteraction {
    type Answer = ActionOutcome;
    const MAY_CREATE: bool = false;

    fn wants(&self, wanted: &mut Wanted) {
        wanted.interaction(self.id.as_str());
    }

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<ActionOutcome>) {
        let result = act(overlay, self.id.as_str(), self.action);
        overlay.answer(reply, result);
    }
}

fn act(overlay: &mut Overlay<'_>, id: &str, action: Action) -> Result<ActionOutcome, SessionError> {
    overlay.check_interaction(id)?;
    let now = overlay.now;
    let Some(i) = overlay.interaction_mut(id) else {
        return Err(SessionError::InteractionNotFound(id.to_owned()));
    };
    let result = match action {
        Action::Decide(decision) => i.decide(decision, now),
        Action::Cancel => i.cancel(now),
    };
    let interaction = i.clone();
    overlay.forget_if_unchanged(id);
    match result {
        Ok(completed_now) => {
            if completed_now {
                overlay.completed_now(id);
            }
            if overlay.is_changed() {
                if let Some(s) = overlay.session_mut() {
                    s.updated_at = now;
                }
            }
            Ok(ActionOutcome {
                completed_now,
                interaction,
            })
        }
        Err(refusal) => {
            let (code, detail) = match refusal {
                Refusal::AlreadyCompleted(d) => ("already_completed", d),
                Refusal::NotStarted(d) => ("not_started", d),
            };
            Err(SessionError::Conflict {
                code,
                detail,
                session_id: overlay.key().session_id.to_string(),
                interaction: Box::new(interaction),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actors::session::commands::{AppendEvents, CreateInteraction, Queued};
    use crate::actors::session::state::testing::{answer_of, events, TestSession};
    use crate::domain::interaction::InteractionStatus;
    use crate::domain::json::JsonText;

    fn approval(s: &mut TestSession, id: &str) {
        let (answer, _) = s.run(AppendEvents {
            events: events(json!([{"event_type": "session_start"}])),
        });
        answer_of(answer).unwrap();
        let (answer, _) = s.run(CreateInteraction {
            id: InteractionId::parse(id).unwrap(),
            kind: "approval".into(),
            payload: JsonText::empty_object(),
            timeout_ms: 60_000,
            queued: false,
        });
        assert!(answer_of(answer).unwrap().1, "created");
    }

    fn resolve(id: &str, response: &str) -> ActOnInteraction {
        ActOnInteraction {
            id: InteractionId::parse(id).unwrap(),
            action: Action::Decide(Decision::Resolve {
                response: JsonText::parse(response.into()).unwrap(),
                by: None,
            }),
        }
    }

    #[test]
    fn two_tabs_resolving_at_once_complete_it_once() {
        let mut s = TestSession::new();
        approval(&mut s, "i1");
        let (first, first_answer) = Queued::ask(resolve("i1", r#"{"allow":true}"#));
        let (same, same_answer) = Queued::ask(resolve("i1", r#"{"allow":true}"#));
        let (other, other_answer) = Queued::ask(resolve("i1", r#"{"allow":false}"#));
        let planned = s.run_group(vec![first, same, other]);

        assert!(answer_of(first_answer).unwrap().completed_now);
        let repeat = answer_of(same_answer).unwrap();
        assert!(
            !repeat.completed_now,
            "the same decision again is accepted, not counted"
        );
        match answer_of(other_answer) {
            Err(SessionError::Conflict { code, .. }) => assert_eq!(code, "already_completed"),
            other => panic!("expected a 409, got {other:?}"),
        }
        assert_eq!(planned.notification_kinds(), ["interaction.completed"]);
        let counts = &s.state.session.as_ref().unwrap().interactions;
        assert_eq!((counts.pending, counts.completed), (0, 1));
    }

    #[test]
    fn a_result_and_the_session_end_that_cross_complete_it_once() {
        let mut s = TestSession::new();
        approval(&mut s, "i1");
        let (end, end_answer) = Queued::ask(AppendEvents {
            events: events(json!([{"event_type": "session_end", "interaction_id": "i1"}])),
        });
        let result = ActOnInteraction {
            id: InteractionId::parse("i1").unwrap(),
            action: Action::Decide(Decision::Result {
                ok: true,
                output: JsonText::parse(r#""done""#.into()).unwrap(),
            }),
        };
        let (result, result_answer) = Queued::ask(result);
        let planned = s.run_group(vec![end, result]);

        answer_of(end_answer).unwrap();
        let outcome = answer_of(result_answer).unwrap();
        assert!(!outcome.completed_now, "the end event completed it first");
        assert_eq!(outcome.interaction.status, InteractionStatus::Completed);
        assert_eq!(
            outcome.interaction.result.as_ref().map(JsonText::as_str),
            Some(r#""done""#),
            "the result still fills the slot"
        );
        let completions = planned
            .notification_kinds()
            .into_iter()
            .filter(|k| *k == "interaction.completed")
            .count();
        assert_eq!(completions, 1);
        assert_eq!(s.state.session.as_ref().unwrap().interactions.completed, 1);
    }

    #[test]
    fn an_unknown_interaction_is_not_found_and_a_cancelled_one_takes_no_result() {
        let mut s = TestSession::new();
        approval(&mut s, "i1");
        let (answer, _) = s.run(resolve("nope", "{}"));
        assert!(matches!(
            answer_of(answer),
            Err(SessionError::InteractionNotFound(_))
        ));
        let cancel = ActOnInteraction {
            id: InteractionId::parse("i1").unwrap(),
            action: Action::Cancel,
        };
        assert!(answer_of(s.run(cancel).0).unwrap().completed_now);
        match answer_of(s.run(resolve("i1", "{}")).0) {
            Err(SessionError::Conflict { code, .. }) => assert_eq!(code, "already_completed"),
            other => panic!("expected a 409, got {other:?}"),
        }
    }
}
