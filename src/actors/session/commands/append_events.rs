//! `POST /sessions/{id}/events`: store a batch of events, atomically, creating the session if
//! needed. Events are deduplicated by their key, numbered (`seq`) in the order they are
//! applied, and applied in client `sequence` order when every event of the request has one.

use std::collections::HashMap;

use serde_json::json;

use super::{Answer, Command, Wanted};
use crate::actors::error::SessionError;
use crate::actors::key::SessionKey;
use crate::actors::session::overlay::Overlay;
use crate::domain::event::NewEvent;
use crate::domain::search::EventWords;
use crate::domain::session::{SessionStatus, SideEffect};
use crate::domain::ValidationError;
use crate::store::models::{EventRow, SearchRow};

/// Store a validated batch of events (creating the session if needed), atomically.
pub(crate) struct AppendEvents {
    pub events: Vec<NewEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AppendOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub event_count: i64,
    pub last_seq: i64,
    /// One per request event, in request order.
    pub events: Vec<EventAck>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EventAck {
    /// The stored seq; for a duplicate, the seq of the stored original.
    pub seq: i64,
    pub duplicate: bool,
}

impl Command for AppendEvents {
    type Answer = AppendOutcome;
    const MAY_CREATE: bool = true;

    fn events(&self) -> &[NewEvent] {
        &self.events
    }

    fn wants(&self, wanted: &mut Wanted) {
        for iid in self.events.iter().filter_map(|e| e.interaction_id.as_ref()) {
            wanted.interaction(iid.as_str());
        }
    }

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<AppendOutcome>) {
        let result = append(overlay, &self.events);
        if let Ok(outcome) = &result {
            overlay.changes.duplicates += outcome.duplicates as u64;
        }
        overlay.answer(reply, result);
    }
}

fn append(overlay: &mut Overlay<'_>, events: &[NewEvent]) -> Result<AppendOutcome, SessionError> {
    let order = application_order(events);
    let mut late = vec![false; events.len()];
    if let Some(conflict) = check_sequences(overlay, events, &order, &mut late) {
        // Nothing of the request is stored, as for any invalid event.
        return Err(SessionError::Invalid(conflict));
    }
    overlay.ensure_session(None);
    let mut acks: Vec<Option<EventAck>> = vec![None; events.len()];
    let mut accepted = 0;
    for &index in &order {
        let event = &events[index];
        let known = overlay.stored_seq(&event.dedup_key);
        if let Some(seq) = known {
            acks[index] = Some(EventAck {
                seq,
                duplicate: true,
            });
            continue;
        }
        let seq = store_one(overlay, event, late[index]);
        acks[index] = Some(EventAck {
            seq,
            duplicate: false,
        });
        accepted += 1;
    }
    let now = overlay.now;
    if accepted > 0 {
        overlay.mark_changed();
    }
    let Some(s) = overlay.session_mut() else {
        return Err(overlay.no_session());
    };
    if accepted > 0 {
        s.updated_at = now;
    }
    let acks: Vec<EventAck> = acks.into_iter().flatten().collect();
    Ok(AppendOutcome {
        accepted,
        duplicates: acks.len() - accepted,
        event_count: s.event_count,
        last_seq: s.last_seq,
        events: acks,
    })
}

/// Stores one new event: its seq, what it does to the session and to the interaction it
/// names, its row. Returns its seq.
fn store_one(overlay: &mut Overlay<'_>, event: &NewEvent, late: bool) -> i64 {
    let (key, now) = (overlay.key(), overlay.now);
    let session_key = overlay.changes.session_key;
    let (Some(s), Some(session_key)) = (overlay.session_mut(), session_key) else {
        return 0;
    };
    s.last_seq += 1;
    s.event_count += 1;
    let seq = s.last_seq;
    let effect = s.apply(event);
    let ended = effect == SideEffect::StatusChanged && s.status == SessionStatus::Ended;
    if let Some(body) =
        side_effect_notification(key, s.status, &s.external_conversation_id, &effect)
    {
        overlay.notify("session.updated", body);
    }
    if ended {
        overlay.cancel_open_questions();
    }
    if let Some(iid) = &event.interaction_id {
        let iid = iid.as_str();
        let ends = event.event_type.as_str() == "session_end";
        let ended = match overlay.interaction_mut(iid) {
            Some(i) => {
                i.event_count += 1;
                Some(ends && i.end_by_event(now))
            }
            None => None,
        };
        match ended {
            Some(true) => overlay.completed_now(iid),
            Some(false) => {}
            None => overlay.count_orphan_event(iid),
        }
        overlay.mark_changed();
    }
    if late {
        crate::metrics::OUT_OF_ORDER_EVENTS.inc();
    }
    let row = event_row(session_key, seq, event, late, now);
    let search = search_row(&key.scope, &row, event);
    overlay.store_event(row, search, event.sequence);
    seq
}

/// The order a request's events are applied in: by `sequence` when they all carry one,
/// otherwise as sent.
fn application_order(events: &[NewEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    if events.iter().all(|e| e.sequence.is_some()) {
        order.sort_by_key(|&i| events[i].sequence);
    }
    order
}

/// Finds an event whose `sequence` is already taken by a different event; `None` when the
/// request is fine. Also marks which events arrive late (after their gap was given up).
fn check_sequences(
    overlay: &Overlay<'_>,
    events: &[NewEvent],
    order: &[usize],
    late: &mut [bool],
) -> Option<ValidationError> {
    let mut next = overlay.changes.next_sequence;
    let mut in_request: HashMap<i64, &str> = HashMap::new();
    for &i in order {
        let Some(s) = events[i].sequence else {
            continue;
        };
        let key = events[i].dedup_key.as_str();
        if s < next {
            let holder = in_request
                .get(&s)
                .copied()
                .or_else(|| overlay.sequence_holder(s));
            match holder {
                Some(other) if other != key => {
                    return Some(ValidationError {
                        index: Some(i),
                        field: Some("sequence".into()),
                        detail: format!(
                            "events[{i}].sequence: {s} is already taken by a different event"
                        ),
                    });
                }
                Some(_) => {}
                None => late[i] = true,
            }
        }
        in_request.insert(s, key);
        next = next.max(s.saturating_add(1));
    }
    None
}

/// Logs what an event did to its session; returns the `session.updated` body when it changed
/// what a follower sees.
fn side_effect_notification(
    key: &SessionKey,
    status: SessionStatus,
    conversation: &Option<String>,
    effect: &SideEffect,
) -> Option<serde_json::Value> {
    match effect {
        SideEffect::StatusChanged | SideEffect::ConversationLinked => Some(json!({
            "status": status.as_str(),
            "external_conversation_id": conversation,
        })),
        SideEffect::ConversationConflict { kept, offered } => {
            crate::metrics::CONVERSATION_CONFLICTS.inc();
            crate::log_limited!(
                log::Level::Warn,
                "session {}/{}: conversation_started offers conversation id {offered:?} but \
                 {kept:?} is linked; keeping {kept:?}",
                key.scope,
                key.session_id
            );
            None
        }
        SideEffect::InvalidStatus(status) => {
            crate::log_limited!(
                log::Level::Warn,
                "session {}/{}: session_status_changed with invalid status {status:?}; stored, \
                 status unchanged",
                key.scope,
                key.session_id
            );
            None
        }
        SideEffect::MissingConversationId => {
            crate::log_limited!(
                log::Level::Warn,
                "session {}/{}: conversation_started without data.conversation_id; stored, no \
                 effect",
                key.scope,
                key.session_id
            );
            None
        }
        // `store_one` completes the named interaction itself.
        SideEffect::EndsInteraction(_) | SideEffect::None => None,
    }
}

fn event_row(
    session_key: i64,
    seq: i64,
    event: &NewEvent,
    out_of_order: bool,
    now: i64,
) -> EventRow {
    EventRow {
        session_key,
        seq,
        event_id: event.event_id.as_ref().map(|id| id.as_str().to_owned()),
        dedup_key: event.dedup_key.clone(),
        event_type: event.event_type.as_str().to_owned(),
        occurred_at_us: event.occurred_at_us,
        received_at: now,
        interaction_id: event
            .interaction_id
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        sequence: event.sequence,
        out_of_order,
        data: event.data_json(),
    }
}

fn search_row(scope: &str, row: &EventRow, event: &NewEvent) -> SearchRow {
    let EventWords { tool, words } = EventWords::of(event);
    SearchRow {
        scope: scope.to_owned(),
        session_key: row.session_key,
        seq: row.seq,
        received_at: row.received_at,
        event_type: row.event_type.clone(),
        tool,
        words,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actors::session::commands::internal;
    use crate::actors::session::commands::Queued;
    use crate::actors::session::state::testing::{answer_of, events, TestSession};

    fn seqs(outcome: &AppendOutcome) -> Vec<(i64, bool)> {
        outcome
            .events
            .iter()
            .map(|a| (a.seq, a.duplicate))
            .collect()
    }

    #[test]
    fn ending_the_session_cancels_its_open_questions_and_keeps_its_commands() {
        use crate::actors::session::commands::create_interaction::CreateInteraction;
        use crate::domain::ids::InteractionId;
        use crate::domain::interaction::InteractionStatus;
        use crate::domain::json::JsonText;
        let mut s = TestSession::new();
        answer_of(
            s.run(AppendEvents {
                events: events(json!([{"event_type": "SessionStart"}])),
            })
            .0,
        )
        .unwrap();
        let create = |id: &str, kind: &str, queued: bool| CreateInteraction {
            id: InteractionId::parse(id).unwrap(),
            kind: kind.into(),
            payload: JsonText::empty_object(),
            timeout_ms: 60_000,
            queued,
        };
        for (id, kind, queued) in [
            ("perm-1", "approval", false),
            ("q-1", "question", false),
            ("cmd-1", "command", true),
        ] {
            answer_of(s.run(create(id, kind, queued)).0).unwrap();
        }
        let end = events(json!([{"event_type": "SessionEnd", "data": {"reason": "exit"}}]));
        let (answer, planned) = s.run(AppendEvents { events: end });
        answer_of(answer).unwrap();
        let kinds = planned.notification_kinds();
        let completions = kinds
            .iter()
            .filter(|k| **k == "interaction.completed")
            .count();
        assert_eq!(completions, 2, "{kinds:?}");
        let status = |id: &str| {
            let known = &s.state.interactions.as_ref().expect("interactions").known;
            known.get(id).map(|i| i.status)
        };
        assert_eq!(status("perm-1"), Some(InteractionStatus::Cancelled));
        assert_eq!(status("q-1"), Some(InteractionStatus::Cancelled));
        assert_eq!(
            status("cmd-1"),
            Some(InteractionStatus::Queued),
            "a command stays queued"
        );
        let counts = s.state.session.as_ref().unwrap().interactions;
        assert_eq!((counts.pending, counts.cancelled), (1, 2));
        // Ending it again cancels nothing more.
        let again = events(json!([{"event_type": "session_end"}]));
        let (_, planned) = s.run(AppendEvents { events: again });
        assert!(!planned
            .notification_kinds()
            .contains(&"interaction.completed"));
    }

    #[test]
    fn a_repeated_event_is_stored_once_and_answered_with_the_stored_seq() {
        let mut s = TestSession::new();
        let batch = events(json!([
            {"event_type": "tool_use", "event_id": "a"},
            {"event_type": "tool_use", "event_id": "b"},
            {"event_type": "tool_use", "event_id": "a"},
        ]));
        let (answer, planned) = s.run(AppendEvents { events: batch });
        let outcome = answer_of(answer).unwrap();
        assert_eq!(seqs(&outcome), [(1, false), (2, false), (1, true)]);
        assert_eq!((outcome.accepted, outcome.duplicates), (2, 1));
        let write = planned.write.expect("a write");
        assert_eq!(write.events.len(), 2);
        assert!(write.create, "the first event creates the session");
        assert_eq!(
            planned_kinds(&write),
            ["session.created", "events.appended"]
        );

        // Later, alone: nothing is written at all.
        let again = events(json!([{"event_type": "tool_use", "event_id": "b"}]));
        let (answer, planned) = s.run(AppendEvents { events: again });
        assert_eq!(seqs(&answer_of(answer).unwrap()), [(2, true)]);
        assert!(planned.write.is_none());
    }

    #[test]
    fn a_key_no_longer_in_memory_is_looked_up_and_still_a_duplicate() {
        let mut s = TestSession::remembering(2);
        let batch = events(json!([
            {"event_type": "t", "event_id": "a"},
            {"event_type": "t", "event_id": "b"},
            {"event_type": "t", "event_id": "c"},
        ]));
        answer_of(s.run(AppendEvents { events: batch }).0).unwrap();
        let again = events(json!([{"event_type": "t", "event_id": "a"}]));
        let needs = s.state.needs(
            &[Queued::ask(AppendEvents {
                events: again.clone(),
            })
            .0],
            Vec::new(),
        );
        assert_eq!(
            needs.dedup_keys,
            ["e:a"],
            "evicted from memory: asked of the database"
        );
        let (answer, planned) = s.run(AppendEvents { events: again });
        assert_eq!(seqs(&answer_of(answer).unwrap()), [(1, true)]);
        assert!(planned.write.is_none());
    }

    fn planned_kinds(write: &crate::store::SessionWrite) -> Vec<&'static str> {
        write.notifications.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn events_that_all_carry_a_sequence_are_applied_in_its_order() {
        let mut s = TestSession::new();
        let batch = events(json!([
            {"event_type": "c", "sequence": 2},
            {"event_type": "a", "sequence": 0},
            {"event_type": "b", "sequence": 1},
        ]));
        let (answer, planned) = s.run(AppendEvents { events: batch });
        // Answers stay in request order; seqs follow the sequences.
        assert_eq!(
            seqs(&answer_of(answer).unwrap()),
            [(3, false), (1, false), (2, false)]
        );
        let stored: Vec<&str> = planned
            .write
            .as_ref()
            .unwrap()
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(stored, ["a", "b", "c"]);
        assert_eq!(s.state.next_sequence, 3);
    }

    #[test]
    fn a_sequence_taken_by_another_event_refuses_the_whole_request() {
        let mut s = TestSession::new();
        let first = events(json!([{"event_type": "a", "event_id": "a", "sequence": 0}]));
        answer_of(s.run(AppendEvents { events: first }).0).unwrap();

        let clash = events(json!([
            {"event_type": "b", "event_id": "b", "sequence": 1},
            {"event_type": "x", "event_id": "x", "sequence": 0},
        ]));
        let (answer, planned) = s.run(AppendEvents { events: clash });
        match answer_of(answer) {
            Err(SessionError::Invalid(e)) => {
                assert_eq!(e.index, Some(1));
                assert_eq!(e.field.as_deref(), Some("sequence"));
            }
            other => panic!("expected a 422, got {other:?}"),
        }
        assert!(planned.write.is_none(), "nothing of it is stored");
        assert_eq!(s.state.session.as_ref().unwrap().event_count, 1);

        // The same event again under its sequence is a duplicate, not a clash.
        let repeat = events(json!([{"event_type": "a", "event_id": "a", "sequence": 0}]));
        let (answer, _) = s.run(AppendEvents { events: repeat });
        assert_eq!(seqs(&answer_of(answer).unwrap()), [(1, true)]);
    }

    #[test]
    fn an_event_behind_a_gap_given_up_is_stored_out_of_order() {
        let mut s = TestSession::new();
        let (late, answer) = Queued::ask(AppendEvents {
            events: events(json!([{"event_type": "late", "sequence": 3}])),
        });
        let planned = s.run_group(vec![internal::gap_given_up(5), late]);
        answer_of(answer).unwrap();
        let row = &planned.write.unwrap().events[0];
        assert!(row.out_of_order);
        assert_eq!(row.sequence, Some(3));
        assert_eq!(
            s.state.next_sequence, 5,
            "the late event does not move it back"
        );
    }
}
