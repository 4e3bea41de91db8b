//! `POST /sessions/{id}/interactions` and `/commands`: create an approval or question
//! (`pending` at once, with a deadline) or a command (`queued` until `commands/next` hands it
//! out). Idempotent by id: a repeated create answers the interaction as it stands.

use serde_json::json;

use super::{Answer, Command, Wanted};
use crate::actors::error::SessionError;
use crate::actors::session::overlay::Overlay;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::{Interaction, InteractionStatus};
use crate::domain::json::JsonText;

/// Create an interaction (idempotent by id).
#[derive(Debug)]
pub(crate) struct CreateInteraction {
    pub id: InteractionId,
    pub kind: String,
    pub payload: JsonText,
    pub timeout_ms: i64,
    pub queued: bool,
}

/// The interaction as it stands, and whether this call created it (201) or found it (200).
pub(crate) type Created = (Interaction, bool);

impl Command for CreateInteraction {
    type Answer = Created;
    const MAY_CREATE: bool = false;

    fn wants(&self, wanted: &mut Wanted) {
        wanted.creation(self.id.as_str());
    }

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<Created>) {
        let result = create(overlay, self);
        overlay.answer(reply, result);
    }
}

fn create(overlay: &mut Overlay<'_>, msg: CreateInteraction) -> Result<Created, SessionError> {
    if overlay.session().is_none() {
        return Err(overlay.no_session());
    }
    if let Some(existing) = overlay.interaction(msg.id.as_str()) {
        return Ok((existing.clone(), false));
    }
    let id = msg.id.as_str().to_owned();
    // Hooks post events naming an approval before they create it: those count as its own.
    let prior_events = overlay.take_prior_events(&id);
    let now = overlay.now;
    let interaction = Interaction {
        id: msg.id,
        kind: msg.kind,
        payload: msg.payload,
        status: if msg.queued {
            InteractionStatus::Queued
        } else {
            InteractionStatus::Pending
        },
        outcome: None,
        result: None,
        completed_by: None,
        decided_by: None,
        position: overlay.changes.next_position,
        created_at: now,
        timeout_ms: msg.timeout_ms,
        deadline: (!msg.queued).then_some(now + msg.timeout_ms),
        completed_at: None,
        event_count: prior_events,
    };
    if let Some(s) = overlay.session_mut() {
        s.interactions.pending += 1;
        s.updated_at = now;
    }
    overlay.notify(
        "interaction.created",
        json!({
            "interaction_id": id,
            "kind": interaction.kind,
            "status": interaction.status.as_str(),
        }),
    );
    overlay.create_interaction(interaction.clone());
    Ok((interaction, true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actors::session::commands::AppendEvents;
    use crate::actors::session::state::testing::{answer_of, events, TestSession};

    fn approval(id: &str) -> CreateInteraction {
        CreateInteraction {
            id: InteractionId::parse(id).unwrap(),
            kind: "approval".into(),
            payload: JsonText::empty_object(),
            timeout_ms: 5_000,
            queued: false,
        }
    }

    #[test]
    fn a_create_needs_its_session() {
        let mut s = TestSession::new();
        let (answer, planned) = s.run(approval("i1"));
        assert!(matches!(
            answer_of(answer),
            Err(SessionError::SessionNotFound(_))
        ));
        assert!(planned.write.is_none());
    }

    #[test]
    fn a_repeated_create_finds_the_first_and_events_sent_before_it_count() {
        let mut s = TestSession::new();
        let early = events(json!([
            {"event_type": "permission_request", "interaction_id": "i1"},
            {"event_type": "tool_use", "interaction_id": "i1"},
        ]));
        answer_of(s.run(AppendEvents { events: early }).0).unwrap();

        let (answer, planned) = s.run(approval("i1"));
        let (created, is_new) = answer_of(answer).unwrap();
        assert!(is_new);
        assert_eq!(created.status, InteractionStatus::Pending);
        assert_eq!(
            created.event_count, 2,
            "the events posted before it are its own"
        );
        assert_eq!(created.deadline, Some(created.created_at + 5_000));
        assert_eq!(planned.notification_kinds(), ["interaction.created"]);

        let (answer, planned) = s.run(approval("i1"));
        let (found, is_new) = answer_of(answer).unwrap();
        assert!(!is_new);
        assert_eq!(found, created);
        assert!(planned.write.is_none());
        assert_eq!(s.state.session.as_ref().unwrap().interactions.pending, 1);
    }

    #[test]
    fn a_command_is_queued_without_a_deadline() {
        let mut s = TestSession::new();
        answer_of(
            s.run(crate::actors::session::commands::EnsureSession { metadata: None })
                .0,
        )
        .unwrap();
        let command = CreateInteraction {
            kind: "command".into(),
            queued: true,
            ..approval("c1")
        };
        let (created, _) = answer_of(s.run(command).0).unwrap();
        assert_eq!(created.status, InteractionStatus::Queued);
        assert_eq!(created.deadline, None);
        assert_eq!(created.position, 1);
    }
}
