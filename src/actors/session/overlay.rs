//! A group's transaction overlay: the session's queued operations applied, in order, over its
//! committed state. Each operation (its step lives with it in `commands`) reads through the
//! [`Overlay`], which answers from the group's own changes first, then from the committed
//! state, then from what the group's look-up found; and it writes into the overlay: the
//! state's [`Changes`], the rows to commit, and the [`Effects`] (answers, parked callers) that
//! may only happen after the commit. A finished overlay is a [`Plan`]. When the commit fails
//! the changes are dropped and the effects fail with its error. Nothing here does I/O, so a
//! plan is decided entirely by the committed state and the operations.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::cache::DedupCache;
use super::interactions::{InteractionState, Standing};
use super::reply::{Answer, NextRequest, Reply, WaitReply};
use crate::actors::error::SessionError;
use crate::actors::key::SessionKey;
use crate::domain::interaction::{Interaction, InteractionStatus};
use crate::domain::json::JsonText;
use crate::domain::session::Session;
use crate::store::models::{EventRow, InteractionRow, SearchRow, SessionRow};
use crate::store::sessions::SessionKeys;
use crate::store::{LeaseClaim, NewNotification, SessionWrite};

/// What the planner sees of a session that has no interactions in memory.
static NO_INTERACTIONS: BTreeMap<String, Interaction> = BTreeMap::new();
static NO_STANDING: Standing = Standing::EMPTY;

/// What a look-up found that the plan of its group needs.
#[derive(Default)]
pub(super) struct Lookups {
    /// Dedup keys of the group that the session has stored, with their seqs.
    pub stored_keys: HashMap<String, i64>,
    /// Stored events naming interactions about to be created.
    pub event_counts: HashMap<String, i64>,
    /// Stored client sequences behind the expected one, with their events' dedup keys.
    pub sequences: HashMap<i64, String>,
}

/// What lies under the overlay: the session's committed state (lent by `SessionState`), what
/// the group's look-up found, and where a session created by the group gets its key.
pub(super) struct Committed<'a> {
    pub key: &'a SessionKey,
    pub session: Option<&'a Session>,
    pub session_key: Option<i64>,
    pub interactions: Option<&'a InteractionState>,
    pub dedup: &'a DedupCache,
    /// The client `sequence` expected next.
    pub next_sequence: i64,
    pub lookups: &'a Lookups,
    pub session_keys: &'a SessionKeys,
    /// The partition lease the state was loaded under, in cluster mode.
    pub lease: Option<&'a LeaseClaim>,
}

impl<'a> Committed<'a> {
    fn interactions(&self) -> &'a BTreeMap<String, Interaction> {
        self.interactions.map_or(&NO_INTERACTIONS, |i| &i.known)
    }

    fn standing(&self) -> &'a Standing {
        self.interactions.map_or(&NO_STANDING, |i| &i.standing)
    }

    /// Stored events naming interactions that do not exist yet, by id: kept by the session
    /// when it counts them, else from the look-up.
    fn event_counts(&self) -> &'a HashMap<String, i64> {
        self.interactions
            .and_then(|i| i.orphan_events.as_ref())
            .unwrap_or(&self.lookups.event_counts)
    }
}

/// What the group changed of the session's state in memory: adopted as a whole once its
/// write has committed ([`SessionState::apply`]).
pub(super) struct Changes {
    /// The session as the group leaves it (starting as the committed one).
    pub session: Option<Session>,
    pub session_key: Option<i64>,
    /// Interactions created or changed by the group, as they stand now.
    pub interactions: HashMap<String, Interaction>,
    /// Interactions the group created, in order.
    pub created: Vec<String>,
    /// Interactions the group completed.
    pub completed: Vec<String>,
    /// Events of the group naming interactions that still do not exist, by id.
    pub orphan_events: HashMap<String, i64>,
    pub next_position: i64,
    /// The client `sequence` expected next.
    pub next_sequence: i64,
    /// The dedup keys of the events the group stored, with their seqs.
    pub new_keys: HashMap<String, i64>,
    /// Events of the group answered as duplicates.
    pub duplicates: u64,
}

/// What happens once the group's write has committed, or fails with its error.
#[derive(Default)]
pub(super) struct Effects {
    /// Each caller's decided answer.
    pub replies: Vec<Reply>,
    /// `wait` callers whose interaction is still open: parked after the commit.
    pub waits: Vec<(String, WaitReply)>,
    /// `commands/next` callers not served: parked (with their wait) or answered empty.
    pub unserved_next: Vec<NextRequest>,
    /// Deadlines that fired in the group (armed again if the group cannot be committed).
    pub timeouts: Vec<String>,
}

impl Effects {
    /// Nothing of the group was committed: every caller gets `error`. Returns the deadlines
    /// that fired, for the actor to try again.
    pub fn fail(self, error: &SessionError) -> Vec<String> {
        for reply in self.replies {
            reply.fail(error.clone());
        }
        for (_, reply) in self.waits {
            let _ = reply.send(Err(error.clone()));
        }
        for request in self.unserved_next {
            let _ = request.reply.send(Err(error.clone()));
        }
        self.timeouts
    }
}

/// Everything a group decided: the changes to adopt, the write that makes them durable (none
/// when nothing of the session changed), and the effects to carry out after it.
pub(super) struct Plan {
    pub changes: Changes,
    pub write: Option<SessionWrite>,
    pub effects: Effects,
}

/// One group's overlay over the committed state.
pub(crate) struct Overlay<'a> {
    committed: Committed<'a>,
    pub(super) now: i64,
    pub(super) changes: Changes,
    pub(super) effects: Effects,
    events: Vec<EventRow>,
    /// One per row of `events`.
    search: Vec<SearchRow>,
    notifications: Vec<NewNotification>,
    /// Sequences stored by the group, with their events' dedup keys.
    applied_sequences: HashMap<i64, String>,
    /// Something of the session must be written.
    changed: bool,
}

impl<'a> Overlay<'a> {
    pub(super) fn new(committed: Committed<'a>, now: i64) -> Self {
        let changes = Changes {
            session: committed.session.cloned(),
            session_key: committed.session_key,
            interactions: HashMap::new(),
            created: Vec::new(),
            completed: Vec::new(),
            orphan_events: HashMap::new(),
            next_position: committed.interactions.map_or(1, |i| i.next_position),
            next_sequence: committed.next_sequence,
            new_keys: HashMap::new(),
            duplicates: 0,
        };
        Self {
            committed,
            now,
            changes,
            effects: Effects::default(),
            events: Vec::new(),
            search: Vec::new(),
            notifications: Vec::new(),
            applied_sequences: HashMap::new(),
            changed: false,
        }
    }

    pub(super) fn key(&self) -> &'a SessionKey {
        self.committed.key
    }

    /// The session as the group has it so far.
    pub(super) fn session(&self) -> Option<&Session> {
        self.changes.session.as_ref()
    }

    pub(super) fn session_mut(&mut self) -> Option<&mut Session> {
        self.changes.session.as_mut()
    }

    /// The error for an operation on a session that does not exist.
    pub(super) fn no_session(&self) -> SessionError {
        SessionError::SessionNotFound(self.key().session_id.to_string())
    }

    /// Something of the session changed and must be written.
    pub(super) fn mark_changed(&mut self) {
        self.changed = true;
    }

    pub(super) fn is_changed(&self) -> bool {
        self.changed
    }

    /// Decides a caller's answer; it is sent when the group has committed.
    pub(super) fn answer<T: Send + 'static>(
        &mut self,
        reply: Answer<T>,
        result: Result<T, SessionError>,
    ) {
        self.effects.replies.push(Reply::new(reply, result));
    }

    pub(super) fn notify(&mut self, kind: &'static str, body: serde_json::Value) {
        self.notifications.push(NewNotification {
            kind,
            at: self.now,
            body: body.to_string(),
        });
    }

    /// The seq an event with this dedup key is stored under: by this group, or before it
    /// (remembered by the session, or found by the look-up).
    pub(super) fn stored_seq(&self, dedup_key: &str) -> Option<i64> {
        self.changes
            .new_keys
            .get(dedup_key)
            .copied()
            .or_else(|| self.committed.dedup.get(dedup_key))
            .or_else(|| self.committed.lookups.stored_keys.get(dedup_key).copied())
    }

    /// The dedup key of the event stored with this client sequence, by this group or before
    /// it; `None` when none was (a late arrival).
    pub(super) fn sequence_holder(&self, sequence: i64) -> Option<&str> {
        self.applied_sequences
            .get(&sequence)
            .or_else(|| self.committed.lookups.sequences.get(&sequence))
            .map(String::as_str)
    }

    /// Adds an event's rows to the write, and what they take: its dedup key, and its client
    /// sequence (the next one expected moves past it).
    pub(super) fn store_event(&mut self, row: EventRow, search: SearchRow, sequence: Option<i64>) {
        if let Some(sequence) = sequence {
            self.changes.next_sequence = self.changes.next_sequence.max(sequence.saturating_add(1));
            self.applied_sequences
                .insert(sequence, row.dedup_key.clone());
        }
        self.changes.new_keys.insert(row.dedup_key.clone(), row.seq);
        self.events.push(row);
        self.search.push(search);
    }

    /// The interaction as the group has it so far.
    pub(super) fn interaction(&self, id: &str) -> Option<&Interaction> {
        self.changes
            .interactions
            .get(id)
            .or_else(|| self.committed.interactions().get(id))
    }

    /// The interaction as this group has it, copied into the group on first change.
    pub(super) fn interaction_mut(&mut self, id: &str) -> Option<&mut Interaction> {
        if !self.changes.interactions.contains_key(id) {
            let committed = self.committed.interactions().get(id)?.clone();
            self.changes.interactions.insert(id.to_owned(), committed);
        }
        self.changes.interactions.get_mut(id)
    }

    /// The interaction, or why an operation on it is refused: its session or itself is missing.
    pub(super) fn check_interaction(&self, id: &str) -> Result<Interaction, SessionError> {
        if self.session().is_none() {
            return Err(self.no_session());
        }
        self.interaction(id)
            .cloned()
            .ok_or_else(|| SessionError::InteractionNotFound(id.to_owned()))
    }

    /// The committed interactions the group has not changed, with `ids` from the committed
    /// state's standing (its pending or queued commands).
    pub(super) fn unchanged<'i>(
        &'i self,
        ids: impl Iterator<Item = &'i String> + 'i,
    ) -> impl Iterator<Item = &'i Interaction> + 'i {
        ids.filter(|id| !self.changes.interactions.contains_key(*id))
            .filter_map(|id| self.committed.interactions().get(id))
    }

    /// Where the committed interactions stand (queued and pending commands).
    pub(super) fn standing(&self) -> &'a Standing {
        self.committed.standing()
    }

    /// Adds an interaction created by this group (its position taken from the overlay).
    pub(super) fn create_interaction(&mut self, interaction: Interaction) {
        let id = interaction.id.as_str().to_owned();
        self.changes.next_position = self.changes.next_position.max(interaction.position + 1);
        self.changes.interactions.insert(id.clone(), interaction);
        self.changes.created.push(id);
        self.changed = true;
    }

    /// Stored events (before this group or in it) that name `id`, which does not exist yet:
    /// they become the new interaction's own.
    pub(super) fn take_prior_events(&mut self, id: &str) -> i64 {
        self.committed.event_counts().get(id).copied().unwrap_or(0)
            + self.changes.orphan_events.remove(id).unwrap_or(0)
    }

    /// An event of this group names `id`, which does not exist (yet).
    pub(super) fn count_orphan_event(&mut self, id: &str) {
        *self.changes.orphan_events.entry(id.to_owned()).or_default() += 1;
    }

    /// Cancels every open interaction that is not a command: the session has ended, so nobody
    /// waits for their answer any more (a queued command may still be wanted if the session
    /// resumes). Each is completed and notified once, as a cancel would.
    pub(super) fn cancel_open_questions(&mut self) {
        let open: std::collections::BTreeSet<String> = self
            .committed
            .interactions()
            .keys()
            .chain(self.changes.interactions.keys())
            .filter(|id| {
                self.interaction(id)
                    .is_some_and(|i| i.status.is_open() && !i.is_command())
            })
            .cloned()
            .collect();
        let now = self.now;
        for id in open {
            let cancelled = self
                .interaction_mut(&id)
                .is_some_and(|i| i.cancel(now) == Ok(true));
            if cancelled {
                self.completed_now(&id);
            }
            self.forget_if_unchanged(&id);
        }
    }

    /// The session, created now (with its `session.created` notification) if it does not
    /// exist. Returns whether it was created.
    pub(super) fn ensure_session(&mut self, metadata: Option<JsonText>) -> bool {
        if self.changes.session.is_some() {
            return false;
        }
        let key = self.key();
        let s = Session::new(
            key.scope.clone(),
            key.session_id.clone(),
            metadata.unwrap_or_else(JsonText::empty_object),
            self.now,
        );
        let status = s.status.as_str();
        self.changes.session = Some(s);
        self.changes.session_key = Some(self.committed.session_keys.next());
        self.notify("session.created", json!({ "status": status }));
        self.changed = true;
        true
    }

    /// Counts a completion once: session counters, the one `interaction.completed`, waiters.
    pub(super) fn completed_now(&mut self, id: &str) {
        let Some(i) = self.interaction(id).cloned() else {
            return;
        };
        if let Some(s) = self.changes.session.as_mut() {
            let counts = &mut s.interactions;
            counts.pending -= 1;
            match i.status {
                InteractionStatus::Completed => counts.completed += 1,
                InteractionStatus::TimedOut => counts.timed_out += 1,
                InteractionStatus::Cancelled => counts.cancelled += 1,
                InteractionStatus::Queued | InteractionStatus::Pending => {}
            }
        }
        self.notify(
            "interaction.completed",
            json!({
                "interaction_id": id,
                "status": i.status.as_str(),
                "outcome": i.outcome.map(|o| o.as_str()),
                "completed_by": i.completed_by.map(|c| c.as_str()),
            }),
        );
        self.changes.completed.push(id.to_owned());
    }

    /// Drops a changed copy that ended up equal to the committed one (nothing to write).
    pub(super) fn forget_if_unchanged(&mut self, id: &str) {
        if self.changes.created.iter().any(|c| c == id) {
            return;
        }
        if self.changes.interactions.get(id) == self.committed.interactions().get(id) {
            self.changes.interactions.remove(id);
        } else {
            self.changed = true;
        }
    }

    /// The plan: the changes, the write that makes them durable, and the effects.
    pub(super) fn finish(mut self) -> Plan {
        let creates_session = self.committed.session.is_none();
        let write = match (
            &self.changes.session,
            self.changes.session_key,
            self.changed,
        ) {
            (Some(s), Some(session_key), true) => {
                if !self.events.is_empty() {
                    let body = json!({"event_count": s.event_count, "last_seq": s.last_seq});
                    self.notify("events.appended", body);
                }
                let changes = &self.changes;
                let s = changes.session.as_ref().expect("matched above");
                let (scope, sid) = (s.scope.as_str(), s.session_id.as_str());
                let row = |id: &String, created: bool| {
                    changes
                        .interactions
                        .get(id)
                        .map(|i| InteractionRow::from_interaction(scope, sid, i, created))
                };
                let new_interactions = changes
                    .created
                    .iter()
                    .filter_map(|id| row(id, true))
                    .collect();
                let changed_interactions = changes
                    .interactions
                    .keys()
                    .filter(|id| !changes.created.contains(id))
                    .filter_map(|id| row(id, false))
                    .collect();
                Some(SessionWrite {
                    session: SessionRow::from_session(s, session_key, creates_session),
                    create: creates_session,
                    events: std::mem::take(&mut self.events),
                    search: std::mem::take(&mut self.search),
                    new_interactions,
                    changed_interactions,
                    notifications: std::mem::take(&mut self.notifications),
                    lease: self.committed.lease.cloned(),
                })
            }
            _ => None,
        };
        Plan {
            changes: self.changes,
            write,
            effects: self.effects,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::actors::session::state::SessionState;
    use crate::domain::ids::SessionId;

    fn key() -> Arc<SessionKey> {
        Arc::new(SessionKey {
            scope: "scope".into(),
            session_id: SessionId::parse("s").expect("a valid id"),
        })
    }

    /// A committed session with `open` pending interactions (ids as given; `cmd…` ones are
    /// commands), the counters to match.
    fn committed_session(open: &[&str]) -> SessionState {
        let mut state = SessionState::new(key(), 16);
        let mut session = Session::new(
            "scope".into(),
            key().session_id.clone(),
            JsonText::empty_object(),
            1,
        );
        session.interactions.pending = open.len() as i64;
        state.session = Some(session);
        state.session_key = Some(7);
        for (at, id) in open.iter().enumerate() {
            let kind = if id.starts_with("cmd") {
                "command"
            } else {
                "approval"
            };
            let interaction =
                Interaction::for_test(id, kind, at as i64 + 1, InteractionStatus::Pending);
            state.interactions_mut().remember(interaction);
            state.interactions_mut().next_position = at as i64 + 2;
        }
        state
    }

    fn overlay<'a>(
        state: &'a SessionState,
        lookups: &'a Lookups,
        keys: &'a SessionKeys,
    ) -> Overlay<'a> {
        Overlay::new(state.committed(lookups, keys), 100)
    }

    fn event_row(seq: i64, dedup_key: &str) -> (EventRow, SearchRow) {
        let row = EventRow {
            session_key: 7,
            seq,
            event_id: None,
            dedup_key: dedup_key.into(),
            event_type: "x".into(),
            occurred_at_us: 0,
            received_at: 100,
            interaction_id: None,
            sequence: None,
            out_of_order: false,
            data: "null".into(),
        };
        let search = SearchRow {
            scope: "scope".into(),
            session_key: 7,
            seq,
            received_at: 100,
            event_type: "x".into(),
            tool: None,
            words: String::new(),
        };
        (row, search)
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.write
            .iter()
            .flat_map(|w| w.notifications.iter().map(|n| n.kind))
            .collect()
    }

    #[test]
    fn a_change_is_read_back_first_and_the_committed_state_is_untouched() {
        let state = committed_session(&["a"]);
        let (lookups, keys) = (Lookups::default(), SessionKeys::starting_at(1));
        let mut group = overlay(&state, &lookups, &keys);
        assert_eq!(
            group.interaction("a").map(|i| i.status),
            Some(InteractionStatus::Pending)
        );
        let cancelled = group.interaction_mut("a").map(|i| i.cancel(100));
        assert_eq!(cancelled, Some(Ok(true)));
        group.completed_now("a");
        group.forget_if_unchanged("a");
        assert_eq!(
            group.interaction("a").map(|i| i.status),
            Some(InteractionStatus::Cancelled)
        );
        let committed = state.interactions.as_deref().and_then(|i| i.known.get("a"));
        assert_eq!(
            committed.map(|i| i.status),
            Some(InteractionStatus::Pending)
        );
        let plan = group.finish();
        assert_eq!(plan.changes.completed, ["a"]);
        let counts = &plan
            .changes
            .session
            .as_ref()
            .expect("the session")
            .interactions;
        assert_eq!((counts.pending, counts.cancelled), (0, 1));
        assert_eq!(kinds(&plan), ["interaction.completed"]);
        let write = plan.write.expect("a write");
        assert_eq!(write.changed_interactions.len(), 1);
        assert!(!write.create && write.new_interactions.is_empty());
    }

    #[test]
    fn a_copy_that_ends_up_as_committed_is_not_written() {
        let state = committed_session(&["a"]);
        let (lookups, keys) = (Lookups::default(), SessionKeys::starting_at(1));
        let mut group = overlay(&state, &lookups, &keys);
        assert!(group.interaction_mut("a").is_some());
        group.forget_if_unchanged("a");
        assert!(!group.is_changed());
        let plan = group.finish();
        assert!(plan.write.is_none() && plan.changes.interactions.is_empty());
    }

    #[test]
    fn a_session_is_created_once_with_its_key_and_notification() {
        let state = SessionState::new(key(), 16);
        let (lookups, keys) = (Lookups::default(), SessionKeys::starting_at(41));
        let mut group = overlay(&state, &lookups, &keys);
        assert!(group.session().is_none());
        assert!(group.ensure_session(None));
        assert!(!group.ensure_session(None));
        let plan = group.finish();
        assert_eq!(plan.changes.session_key, Some(41));
        assert_eq!(kinds(&plan), ["session.created"]);
        assert!(plan.write.expect("a write").create);
    }

    #[test]
    fn a_stored_event_is_found_in_the_group_then_in_memory_then_in_the_look_up() {
        let mut state = committed_session(&[]);
        state.dedup.insert("remembered", 2);
        let mut lookups = Lookups::default();
        lookups.stored_keys.insert("looked-up".into(), 1);
        lookups.sequences.insert(0, "looked-up".into());
        let keys = SessionKeys::starting_at(1);
        let mut group = overlay(&state, &lookups, &keys);
        let (row, search) = event_row(3, "new");
        group.store_event(row, search, Some(5));
        assert_eq!(group.stored_seq("new"), Some(3));
        assert_eq!(group.stored_seq("remembered"), Some(2));
        assert_eq!(group.stored_seq("looked-up"), Some(1));
        assert_eq!(group.stored_seq("never"), None);
        assert_eq!(group.sequence_holder(5), Some("new"));
        assert_eq!(group.sequence_holder(0), Some("looked-up"));
        assert_eq!(group.sequence_holder(4), None);
        group.mark_changed();
        let plan = group.finish();
        assert_eq!(plan.changes.next_sequence, 6);
        assert_eq!(kinds(&plan), ["events.appended"]);
        let write = plan.write.expect("a write");
        assert_eq!((write.events.len(), write.search.len()), (1, 1));
    }

    #[test]
    fn an_ended_session_cancels_its_open_questions_but_not_its_commands() {
        let state = committed_session(&["ask", "cmd1"]);
        let (lookups, keys) = (Lookups::default(), SessionKeys::starting_at(1));
        let mut group = overlay(&state, &lookups, &keys);
        group.cancel_open_questions();
        assert_eq!(
            group.interaction("ask").map(|i| i.status),
            Some(InteractionStatus::Cancelled)
        );
        assert_eq!(
            group.interaction("cmd1").map(|i| i.status),
            Some(InteractionStatus::Pending)
        );
        let plan = group.finish();
        assert_eq!(plan.changes.completed, ["ask"]);
        assert!(!plan.changes.interactions.contains_key("cmd1"));
    }

    #[test]
    fn an_interaction_named_before_it_exists_takes_its_events_when_created() {
        let mut state = committed_session(&["a"]);
        // The session does not keep count of such events: the look-up counted them.
        state.interactions_mut().orphan_events = None;
        let mut lookups = Lookups::default();
        lookups.event_counts.insert("later".into(), 2);
        let keys = SessionKeys::starting_at(1);
        let mut group = overlay(&state, &lookups, &keys);
        group.count_orphan_event("later");
        assert_eq!(group.take_prior_events("later"), 3);
        let position = group.changes.next_position;
        assert_eq!(position, 2, "after the committed interaction");
        let mut later =
            Interaction::for_test("later", "approval", position, InteractionStatus::Pending);
        later.event_count = 3;
        group.create_interaction(later);
        let plan = group.finish();
        assert_eq!(plan.changes.next_position, 3);
        assert_eq!(plan.changes.created, ["later"]);
        assert!(plan.changes.orphan_events.is_empty());
        assert_eq!(plan.write.expect("a write").new_interactions.len(), 1);
    }

    #[test]
    fn failed_effects_answer_every_caller_and_give_back_the_fired_deadlines() {
        let (reply, mut answer) = oneshot::channel::<Result<(), SessionError>>();
        let (wait, mut waited) = oneshot::channel();
        let effects = Effects {
            replies: vec![Reply::new(reply, Ok(()))],
            waits: vec![("a".into(), wait)],
            unserved_next: Vec::new(),
            timeouts: vec!["b".into()],
        };
        assert_eq!(effects.fail(&SessionError::Overloaded), ["b"]);
        assert!(matches!(
            answer.try_recv(),
            Ok(Err(SessionError::Overloaded))
        ));
        assert!(matches!(
            waited.try_recv(),
            Ok(Err(SessionError::Overloaded))
        ));
    }
}
