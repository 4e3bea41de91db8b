//! A session's state and the side effects events have on it (contract §5). The session actor
//! applies these rules one event at a time, in `seq` order; they are pure so they can be tested
//! without a database.

use super::event::NewEvent;
use super::ids::SessionId;
use super::json::JsonText;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Idle,
    Ended,
}

impl SessionStatus {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "idle" => Some(Self::Idle),
            "ended" => Some(Self::Ended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Ended => "ended",
        }
    }
}

/// How many of the session's interactions are in each state; kept equal to the rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InteractionCounts {
    pub pending: i64,
    pub completed: i64,
    pub timed_out: i64,
    pub cancelled: i64,
}

/// A session as the service knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub scope: String,
    pub session_id: SessionId,
    pub status: SessionStatus,
    pub external_conversation_id: Option<String>,
    /// Set when the session is created, never changed.
    pub metadata: JsonText,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Last activity, milliseconds since the epoch; the session list is ordered by it.
    pub updated_at: i64,
    pub event_count: i64,
    pub last_seq: i64,
    pub interactions: InteractionCounts,
    /// What its events say about it: project, model, title, activity.
    pub facts: super::activity::SessionFacts,
}

impl Session {
    /// A session created now, by a PUT or by its first event. It starts `active`: something is
    /// talking to it.
    pub fn new(scope: String, session_id: SessionId, metadata: JsonText, now: i64) -> Self {
        Self {
            scope,
            session_id,
            status: SessionStatus::Active,
            external_conversation_id: None,
            metadata,
            created_at: now,
            updated_at: now,
            event_count: 0,
            last_seq: 0,
            interactions: InteractionCounts::default(),
            facts: Default::default(),
        }
    }

    /// Applies one event's side effect and says what happened, for notifications and logs.
    /// Claude Code's own `SessionStart` (a new, resumed, cleared or compacted session) and
    /// `SessionEnd` hook events, stored as sent by `orchestrator hook` or by its HTTP hooks,
    /// start and end the session like `session_start` and `session_end`.
    pub fn apply(&mut self, event: &NewEvent) -> SideEffect {
        self.facts.observe(event);
        match event.event_type.as_str() {
            "session_start" | "SessionStart" => self.set_status(SessionStatus::Active),
            "SessionEnd" => self.set_status(SessionStatus::Ended),
            "session_status_changed" => match event.data_str("status") {
                Some(s) => match SessionStatus::parse(&s) {
                    Some(status) => self.set_status(status),
                    None => SideEffect::InvalidStatus(s),
                },
                None => SideEffect::InvalidStatus("<missing>".to_owned()),
            },
            "session_end" => match &event.interaction_id {
                None => self.set_status(SessionStatus::Ended),
                Some(id) => SideEffect::EndsInteraction(id.as_str().to_owned()),
            },
            "conversation_started" => match event.data_str("conversation_id") {
                None => SideEffect::MissingConversationId,
                Some(offered) => match &self.external_conversation_id {
                    None => {
                        self.external_conversation_id = Some(offered);
                        SideEffect::ConversationLinked
                    }
                    Some(kept) if *kept == offered => SideEffect::None,
                    Some(kept) => SideEffect::ConversationConflict {
                        kept: kept.clone(),
                        offered,
                    },
                },
            },
            _ => SideEffect::None,
        }
    }

    fn set_status(&mut self, status: SessionStatus) -> SideEffect {
        if self.status == status {
            return SideEffect::None;
        }
        self.status = status;
        SideEffect::StatusChanged
    }
}

/// What an event did to its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SideEffect {
    None,
    StatusChanged,
    ConversationLinked,
    /// A different conversation id than the one linked: kept as it was, warned about.
    ConversationConflict {
        kept: String,
        offered: String,
    },
    /// `session_status_changed` with a status that is not one; the event is still stored.
    InvalidStatus(String),
    /// `conversation_started` without a string `data.conversation_id`; stored, no effect.
    MissingConversationId,
    /// `session_end` naming an interaction: completes it (interactions own that rule).
    EndsInteraction(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::parse_body;
    use serde_json::{json, Value};

    fn event(v: Value) -> NewEvent {
        let mut v = v;
        v["timestamp"] = json!("2026-11-22T10:00:00Z");
        parse_body(&serde_json::value::to_raw_value(&v).unwrap(), 10)
            .unwrap()
            .remove(0)
    }

    fn session() -> Session {
        Session::new(
            "default".into(),
            SessionId::parse("s").unwrap(),
            JsonText::empty_object(),
            1,
        )
    }

    #[test]
    fn claude_codes_session_events_start_and_end_the_session() {
        let mut s = session();
        let end = event(json!({"event_type": "SessionEnd", "data": {"reason": "exit"}}));
        assert_eq!(s.apply(&end), SideEffect::StatusChanged);
        assert_eq!(s.status, SessionStatus::Ended);
        assert_eq!(s.apply(&end), SideEffect::None, "once");
        let resume = event(json!({"event_type": "SessionStart", "data": {"source": "resume"}}));
        assert_eq!(s.apply(&resume), SideEffect::StatusChanged);
        assert_eq!(
            s.status,
            SessionStatus::Active,
            "a resumed session is open again"
        );
    }

    #[test]
    fn status_events_move_the_status_once() {
        let mut s = session();
        assert_eq!(
            s.apply(&event(json!({"event_type": "session_start"}))),
            SideEffect::None
        );
        assert_eq!(
            s.apply(&event(json!({"event_type": "session_end"}))),
            SideEffect::StatusChanged
        );
        assert_eq!(s.status, SessionStatus::Ended);
        assert_eq!(
            s.apply(&event(json!({"event_type": "session_start"}))),
            SideEffect::StatusChanged
        );
        assert_eq!(s.status, SessionStatus::Active);
        let idle =
            event(json!({"event_type": "session_status_changed", "data": {"status": "idle"}}));
        assert_eq!(s.apply(&idle), SideEffect::StatusChanged);
        assert_eq!(s.status, SessionStatus::Idle);
    }

    #[test]
    fn invalid_status_changes_nothing() {
        let mut s = session();
        let bad = event(json!({"event_type": "session_status_changed", "data": {"status": "zzz"}}));
        assert_eq!(s.apply(&bad), SideEffect::InvalidStatus("zzz".into()));
        let missing = event(json!({"event_type": "session_status_changed"}));
        assert!(matches!(s.apply(&missing), SideEffect::InvalidStatus(_)));
        assert_eq!(s.status, SessionStatus::Active);
    }

    #[test]
    fn session_end_with_interaction_leaves_the_status() {
        let mut s = session();
        let end = event(json!({"event_type": "session_end", "interaction_id": "i1"}));
        assert_eq!(s.apply(&end), SideEffect::EndsInteraction("i1".into()));
        assert_eq!(s.status, SessionStatus::Active);
    }

    #[test]
    fn conversation_id_is_linked_once_and_kept_on_conflict() {
        let mut s = session();
        let c = |id: &str| {
            event(json!({"event_type": "conversation_started", "data": {"conversation_id": id}}))
        };
        assert_eq!(s.apply(&c("a")), SideEffect::ConversationLinked);
        assert_eq!(s.apply(&c("a")), SideEffect::None);
        assert_eq!(
            s.apply(&c("b")),
            SideEffect::ConversationConflict {
                kept: "a".into(),
                offered: "b".into()
            }
        );
        assert_eq!(s.external_conversation_id.as_deref(), Some("a"));
        let none = event(json!({"event_type": "conversation_started"}));
        assert_eq!(s.apply(&none), SideEffect::MissingConversationId);
    }

    #[test]
    fn other_events_have_no_effect() {
        let mut s = session();
        let before = s.clone();
        assert_eq!(
            s.apply(&event(json!({"event_type": "tool_use"}))),
            SideEffect::None
        );
        assert_eq!(s, before);
    }
}
