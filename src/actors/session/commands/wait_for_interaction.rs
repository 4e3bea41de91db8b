//! `GET .../interactions/{iid}?wait=`: answer when the interaction is no longer queued or
//! pending. An open one parks its caller with the session until it completes; the caller
//! holds the receiving end, so a caller that goes away releases its place.

use super::{Answer, Command, Wanted};
use crate::actors::session::overlay::Overlay;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::Interaction;

/// Wait for an interaction to finish.
pub(crate) struct WaitForInteraction {
    pub id: InteractionId,
}

impl Command for WaitForInteraction {
    type Answer = Interaction;
    const MAY_CREATE: bool = false;
    const WAITS_ITS_OWN_TIME: bool = true;

    fn wants(&self, wanted: &mut Wanted) {
        wanted.interaction(self.id.as_str());
    }

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<Interaction>) {
        match overlay.check_interaction(self.id.as_str()) {
            Err(e) => overlay.answer(reply, Err(e)),
            Ok(i) if i.status.is_open() => {
                overlay.effects.waits.push((self.id.into_string(), reply))
            }
            Ok(i) => overlay.answer(reply, Ok(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actors::error::SessionError;
    use crate::actors::session::commands::{
        ActOnInteraction, Action, AppendEvents, CreateInteraction,
    };
    use crate::actors::session::state::testing::{answer_of, events, TestSession};
    use crate::domain::interaction::InteractionStatus;
    use crate::domain::json::JsonText;

    fn id() -> InteractionId {
        InteractionId::parse("i1").unwrap()
    }

    #[test]
    fn a_wait_on_an_open_interaction_is_answered_when_it_completes() {
        let mut s = TestSession::new();
        let start = events(json!([{"event_type": "session_start"}]));
        answer_of(s.run(AppendEvents { events: start }).0).unwrap();
        let create = CreateInteraction {
            id: id(),
            kind: "approval".into(),
            payload: JsonText::empty_object(),
            timeout_ms: 60_000,
            queued: false,
        };
        answer_of(s.run(create).0).unwrap();

        let (mut waiting, planned) = s.run(WaitForInteraction { id: id() });
        assert!(planned.write.is_none());
        assert!(waiting.try_recv().is_err(), "still open: no answer yet");

        let cancel = ActOnInteraction {
            id: id(),
            action: Action::Cancel,
        };
        answer_of(s.run(cancel).0).unwrap();
        let finished = answer_of(waiting).unwrap();
        assert_eq!(finished.status, InteractionStatus::Cancelled);

        // Finished already: answered at once.
        let (answer, _) = s.run(WaitForInteraction { id: id() });
        assert_eq!(
            answer_of(answer).unwrap().status,
            InteractionStatus::Cancelled
        );
    }

    #[test]
    fn a_wait_on_a_missing_session_or_interaction_is_not_found() {
        let mut s = TestSession::new();
        let (answer, _) = s.run(WaitForInteraction { id: id() });
        assert!(matches!(
            answer_of(answer),
            Err(SessionError::SessionNotFound(_))
        ));
        let start = events(json!([{"event_type": "session_start"}]));
        answer_of(s.run(AppendEvents { events: start }).0).unwrap();
        let (answer, _) = s.run(WaitForInteraction { id: id() });
        assert!(matches!(
            answer_of(answer),
            Err(SessionError::InteractionNotFound(_))
        ));
    }
}
