//! Planning a group: the session actor's queued operations applied, in order, to a working
//! copy of its committed state. The result is the write to commit and every answer, to be sent
//! only after the commit; if the commit fails the working copy is simply dropped. Nothing here
//! does I/O, so a plan is decided entirely by the committed state and the operations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde_json::json;

use super::super::messages::{
    Action, ActionOutcome, AppendOutcome, CreateInteraction, EnsureOutcome, EventAck, SessionError,
    SessionKey,
};
use super::cache::DedupCache;
use super::interactions::Standing;
use super::ops::{Answer, Op, Reply};
use crate::domain::event::NewEvent;
use crate::domain::interaction::{Interaction, InteractionStatus, Refusal};
use crate::domain::json::JsonText;
use crate::domain::session::{Session, SessionStatus, SideEffect};
use crate::store::models::{EventRow, InteractionRow, SessionRow};
use crate::store::{NewNotification, SessionWrite};

pub(super) type WaitReply = Answer<Interaction>;
pub(super) type NextReply = Answer<Option<Interaction>>;

/// A caller of `commands/next` that is still waiting.
pub(super) struct NextWaiter {
    pub id: u64,
    pub reply: NextReply,
}

/// Read-only views of the committed state a plan starts from.
pub(super) struct Committed<'a> {
    pub key: &'a SessionKey,
    pub session: Option<&'a Session>,
    pub interactions: &'a BTreeMap<String, Interaction>,
    /// Where the committed interactions stand (queued and pending commands).
    pub standing: &'a Standing,
    pub dedup: &'a DedupCache,
    pub next_position: i64,
    /// Dedup keys of this group found in the database (beyond the cache), with their seqs.
    pub stored_keys: &'a HashMap<String, i64>,
    /// Stored events naming interactions that do not exist yet, by id (kept by the actor, or
    /// from the look-up).
    pub event_counts: &'a HashMap<String, i64>,
    /// The client `sequence` expected next.
    pub next_sequence: i64,
    /// Stored sequences behind the expected one, with their events' dedup keys (look-up).
    pub stored_sequences: &'a HashMap<i64, String>,
}

/// Everything a group decided.
pub(super) struct Plan {
    pub session: Option<Session>,
    pub write: Option<SessionWrite>,
    pub replies: Vec<Reply>,
    /// Events of this group answered as duplicates.
    pub duplicates: u64,
    pub new_keys: Vec<(String, i64)>,
    /// Interactions as they stand after the group (created or changed).
    pub interactions: HashMap<String, Interaction>,
    pub completed: Vec<String>,
    /// Interactions this group created, in order.
    pub created: Vec<String>,
    /// Events of this group naming interactions that still do not exist, by id.
    pub orphan_events: HashMap<String, i64>,
    pub next_position: i64,
    /// `wait` callers whose interaction is still open: parked after the commit.
    pub waits: Vec<(String, WaitReply)>,
    /// `commands/next` callers not served: parked (with their wait) or answered empty.
    pub unserved_next: Vec<(Duration, NextReply)>,
    /// Deadlines that fired in this group (re-armed if the group cannot be committed).
    pub timeouts: Vec<String>,
    pub next_sequence: i64,
}

pub(super) struct Planner<'a> {
    base: Committed<'a>,
    now: i64,
    session: Option<Session>,
    touched: HashMap<String, Interaction>,
    created: Vec<String>,
    completed: Vec<String>,
    /// Events of this group naming interactions that do not exist (yet).
    orphan_events: HashMap<String, i64>,
    next_position: i64,
    rows: Vec<crate::store::models::EventRow>,
    new_keys: HashMap<String, i64>,
    notifications: Vec<NewNotification>,
    replies: Vec<Reply>,
    duplicates: u64,
    waits: Vec<(String, WaitReply)>,
    next_requests: Vec<(Duration, NextReply)>,
    timeouts: Vec<String>,
    changed: bool,
    next_sequence: i64,
    /// Sequences stored by this group, with their events' dedup keys.
    applied_sequences: HashMap<i64, String>,
}

impl<'a> Planner<'a> {
    pub fn new(base: Committed<'a>, now: i64) -> Self {
        Self {
            session: base.session.cloned(),
            next_position: base.next_position,
            next_sequence: base.next_sequence,
            applied_sequences: HashMap::new(),
            base,
            now,
            touched: HashMap::new(),
            created: Vec::new(),
            completed: Vec::new(),
            orphan_events: HashMap::new(),
            rows: Vec::new(),
            new_keys: HashMap::new(),
            notifications: Vec::new(),
            replies: Vec::new(),
            duplicates: 0,
            waits: Vec::new(),
            next_requests: Vec::new(),
            timeouts: Vec::new(),
            changed: false,
        }
    }

    fn interaction(&self, id: &str) -> Option<&Interaction> {
        self.touched
            .get(id)
            .or_else(|| self.base.interactions.get(id))
    }

    fn interaction_mut(&mut self, id: &str) -> Option<&mut Interaction> {
        if !self.touched.contains_key(id) {
            let committed = self.base.interactions.get(id)?.clone();
            self.touched.insert(id.to_owned(), committed);
        }
        self.touched.get_mut(id)
    }

    fn notify(&mut self, kind: &'static str, body: serde_json::Value) {
        self.notifications.push(NewNotification {
            kind,
            at: self.now,
            body: body.to_string(),
        });
    }

    /// The session, created now (with its `session.created` notification) if it does not exist.
    fn ensure_session(&mut self, metadata: Option<JsonText>) -> bool {
        if self.session.is_some() {
            return false;
        }
        let s = Session::new(
            self.base.key.scope.clone(),
            self.base.key.session_id.clone(),
            metadata.unwrap_or_else(JsonText::empty_object),
            self.now,
        );
        let status = s.status.as_str();
        self.session = Some(s);
        self.notify("session.created", json!({ "status": status }));
        self.changed = true;
        true
    }

    /// Counts a completion once: session counters, the one `interaction.completed`, waiters.
    fn completed_now(&mut self, id: &str) {
        let Some(i) = self.interaction(id).cloned() else {
            return;
        };
        if let Some(s) = self.session.as_mut() {
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
        self.completed.push(id.to_owned());
    }

    /// Drops a touched copy that ended up equal to the committed one (nothing to write).
    fn forget_if_unchanged(&mut self, id: &str) {
        if self.created.iter().any(|c| c == id) {
            return;
        }
        if self.touched.get(id) == self.base.interactions.get(id) {
            self.touched.remove(id);
        } else {
            self.changed = true;
        }
    }

    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Ensure { metadata, reply } => {
                let created = self.ensure_session(metadata);
                let session = self.session.clone().expect("ensured above");
                self.replies
                    .push(Reply::new(reply, Ok(EnsureOutcome { session, created })));
            }
            Op::Append { events, reply } => self.append(events, reply),
            Op::Create { msg, reply } => {
                let result = self.create(msg);
                self.replies.push(Reply::new(reply, result));
            }
            Op::Act { id, action, reply } => {
                let result = self.act(id.as_str(), action);
                self.replies.push(Reply::new(reply, result));
            }
            Op::Wait { id, reply } => match self.check_interaction(id.as_str()) {
                Err(e) => self.replies.push(Reply::new(reply, Err(e))),
                Ok(i) if i.status.is_open() => self.waits.push((id.into_string(), reply)),
                Ok(i) => self.replies.push(Reply::new(reply, Ok(i))),
            },
            Op::Next { wait, reply } => match self.session {
                None => self.replies.push(Reply::new(
                    reply,
                    Err(SessionError::SessionNotFound(
                        self.base.key.session_id.to_string(),
                    )),
                )),
                Some(_) => self.next_requests.push((wait, reply)),
            },
            Op::SkipTo(sequence) => self.next_sequence = self.next_sequence.max(sequence),
            Op::Timeout { id } => {
                let now = self.now;
                let fired = self.interaction_mut(&id).is_some_and(|i| i.time_out(now));
                if fired {
                    self.completed_now(&id);
                }
                self.forget_if_unchanged(&id);
                self.timeouts.push(id);
            }
        }
    }

    fn check_interaction(&self, id: &str) -> Result<Interaction, SessionError> {
        if self.session.is_none() {
            return Err(SessionError::SessionNotFound(
                self.base.key.session_id.to_string(),
            ));
        }
        self.interaction(id)
            .cloned()
            .ok_or_else(|| SessionError::InteractionNotFound(id.to_owned()))
    }

    /// Where a sequence behind the expected one stands: stored by this group or before (with
    /// its event's dedup key), or never stored (a late arrival).
    fn holder_of(&self, sequence: i64) -> Option<&String> {
        self.applied_sequences
            .get(&sequence)
            .or_else(|| self.base.stored_sequences.get(&sequence))
    }

    /// The order a request's events are applied in: by `sequence` when they all carry one,
    /// otherwise as sent.
    fn application_order(events: &[crate::domain::event::NewEvent]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..events.len()).collect();
        if events.iter().all(|e| e.sequence.is_some()) {
            order.sort_by_key(|&i| events[i].sequence);
        }
        order
    }

    /// Finds an event whose `sequence` is already taken by a different event; `None` when
    /// the request is fine. Also marks which events arrive late (after their gap was given up).
    fn check_sequences(
        &self,
        events: &[crate::domain::event::NewEvent],
        order: &[usize],
        late: &mut [bool],
    ) -> Option<crate::domain::ValidationError> {
        let mut next = self.next_sequence;
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
                    .or_else(|| self.holder_of(s).map(String::as_str));
                match holder {
                    Some(other) if other != key => {
                        return Some(crate::domain::ValidationError {
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

    fn append(
        &mut self,
        events: Vec<crate::domain::event::NewEvent>,
        reply: Answer<AppendOutcome>,
    ) {
        let order = Self::application_order(&events);
        let mut late = vec![false; events.len()];
        if let Some(conflict) = self.check_sequences(&events, &order, &mut late) {
            // Nothing of the request is stored, as for any invalid event.
            self.replies
                .push(Reply::new(reply, Err(SessionError::Invalid(conflict))));
            return;
        }
        self.ensure_session(None);
        let mut acks: Vec<Option<EventAck>> = vec![None; events.len()];
        let mut accepted = 0;
        for &index in &order {
            let event = &events[index];
            let known = self
                .new_keys
                .get(&event.dedup_key)
                .copied()
                .or_else(|| self.base.dedup.get(&event.dedup_key))
                .or_else(|| self.base.stored_keys.get(&event.dedup_key).copied());
            if let Some(seq) = known {
                acks[index] = Some(EventAck {
                    seq,
                    duplicate: true,
                });
                continue;
            }
            let (key, now) = (self.base.key, self.now);
            let Some(s) = self.session.as_mut() else {
                return;
            };
            s.last_seq += 1;
            s.event_count += 1;
            let seq = s.last_seq;
            let effect = s.apply(event);
            let session_snapshot = (s.status, s.external_conversation_id.clone());
            note_side_effect(
                key,
                &session_snapshot,
                &effect,
                now,
                &mut self.notifications,
            );
            if let Some(iid) = &event.interaction_id {
                let iid = iid.as_str();
                let ends = event.event_type.as_str() == "session_end";
                let ended = match self.interaction_mut(iid) {
                    Some(i) => {
                        i.event_count += 1;
                        Some(ends && i.end_by_event(now))
                    }
                    None => None,
                };
                match ended {
                    Some(true) => self.completed_now(iid),
                    Some(false) => {}
                    None => *self.orphan_events.entry(iid.to_owned()).or_default() += 1,
                }
                self.changed = true;
            }
            if let Some(sequence) = event.sequence {
                self.next_sequence = self.next_sequence.max(sequence.saturating_add(1));
                self.applied_sequences
                    .insert(sequence, event.dedup_key.clone());
            }
            if late[index] {
                crate::metrics::OUT_OF_ORDER_EVENTS.inc();
            }
            self.new_keys.insert(event.dedup_key.clone(), seq);
            self.rows.push(event_row(key, seq, event, late[index], now));
            acks[index] = Some(EventAck {
                seq,
                duplicate: false,
            });
            accepted += 1;
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if accepted > 0 {
            s.updated_at = self.now;
            self.changed = true;
        }
        let acks: Vec<EventAck> = acks.into_iter().flatten().collect();
        let outcome = AppendOutcome {
            accepted,
            duplicates: acks.len() - accepted,
            event_count: s.event_count,
            last_seq: s.last_seq,
            events: acks,
        };
        self.duplicates += outcome.duplicates as u64;
        self.replies.push(Reply::new(reply, Ok(outcome)));
    }

    fn create(&mut self, msg: CreateInteraction) -> Result<(Interaction, bool), SessionError> {
        if self.session.is_none() {
            return Err(SessionError::SessionNotFound(
                self.base.key.session_id.to_string(),
            ));
        }
        if let Some(existing) = self.interaction(msg.id.as_str()) {
            return Ok((existing.clone(), false));
        }
        let id = msg.id.as_str().to_owned();
        let prior_events = self.base.event_counts.get(&id).copied().unwrap_or(0)
            + self.orphan_events.remove(&id).unwrap_or(0);
        let interaction = Interaction {
            id: msg.id,
            kind: msg.kind,
            payload: msg.payload.clone(),
            status: if msg.queued {
                InteractionStatus::Queued
            } else {
                InteractionStatus::Pending
            },
            outcome: None,
            result: None,
            completed_by: None,
            position: self.next_position,
            created_at: self.now,
            timeout_ms: msg.timeout_ms,
            deadline: (!msg.queued).then_some(self.now + msg.timeout_ms),
            completed_at: None,
            event_count: prior_events,
        };
        self.next_position += 1;
        if let Some(s) = self.session.as_mut() {
            s.interactions.pending += 1;
            s.updated_at = self.now;
        }
        self.notify(
            "interaction.created",
            json!({
                "interaction_id": id,
                "kind": interaction.kind,
                "status": interaction.status.as_str(),
            }),
        );
        self.touched.insert(id.clone(), interaction.clone());
        self.created.push(id);
        self.changed = true;
        Ok((interaction, true))
    }

    fn act(&mut self, id: &str, action: Action) -> Result<ActionOutcome, SessionError> {
        self.check_interaction(id)?;
        let now = self.now;
        let Some(i) = self.interaction_mut(id) else {
            return Err(SessionError::InteractionNotFound(id.to_owned()));
        };
        let result = match action {
            Action::Decide(decision) => i.decide(decision, now),
            Action::Cancel => i.cancel(now),
        };
        let interaction = i.clone();
        self.forget_if_unchanged(id);
        match result {
            Ok(completed_now) => {
                if completed_now {
                    self.completed_now(id);
                }
                if let Some(s) = self.session.as_mut().filter(|_| self.changed) {
                    s.updated_at = now;
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
                    interaction: Box::new(interaction),
                })
            }
        }
    }

    /// Hands queued commands to waiting `next` callers (earlier waiters first) while no other
    /// command of the session is pending.
    pub fn serve_next(&mut self, parked: &mut VecDeque<NextWaiter>) {
        if self.session.is_none() || (parked.is_empty() && self.next_requests.is_empty()) {
            return;
        }
        let mut fresh: VecDeque<(Duration, NextReply)> = self.next_requests.drain(..).collect();
        loop {
            if self.a_command_is_pending() {
                break;
            }
            let Some(oldest) = self.oldest_queued_command() else {
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
            let now = self.now;
            let Some(command) = self.interaction_mut(&oldest) else {
                break;
            };
            command.start(now);
            let command = command.clone();
            self.changed = true;
            self.replies.push(Reply::new(reply, Ok(Some(command))));
        }
        self.next_requests = fresh.into_iter().collect();
    }

    /// A command of the session is handed out and not finished: committed (and not changed
    /// by this group) or changed by this group.
    fn a_command_is_pending(&self) -> bool {
        let committed = &self.base.standing.pending_commands;
        committed.iter().any(|id| !self.touched.contains_key(id))
            || self
                .touched
                .values()
                .any(|i| i.is_command() && i.status == InteractionStatus::Pending)
    }

    /// The queued command with the lowest position, committed or created by this group.
    fn oldest_queued_command(&self) -> Option<String> {
        let committed = self
            .base
            .standing
            .queued_commands
            .values()
            .find(|id| !self.touched.contains_key(*id))
            .and_then(|id| self.base.interactions.get(id));
        let this_group = self
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

    pub fn finish(mut self) -> Plan {
        let write = match (&self.session, self.changed) {
            (Some(s), true) => {
                if !self.rows.is_empty() {
                    let body = json!({"event_count": s.event_count, "last_seq": s.last_seq});
                    self.notify("events.appended", body);
                }
                let s = self.session.as_ref().expect("matched above");
                let (scope, sid) = (s.scope.as_str(), s.session_id.as_str());
                let row = |id: &String, created: bool| {
                    self.touched
                        .get(id)
                        .map(|i| InteractionRow::from_interaction(scope, sid, i, created))
                };
                let new_interactions = self.created.iter().filter_map(|id| row(id, true)).collect();
                let changed_interactions = self
                    .touched
                    .keys()
                    .filter(|id| !self.created.contains(id))
                    .filter_map(|id| row(id, false))
                    .collect();
                Some(SessionWrite {
                    session: SessionRow::from_session(s, self.base.session.is_none()),
                    create: self.base.session.is_none(),
                    events: std::mem::take(&mut self.rows),
                    new_interactions,
                    changed_interactions,
                    notifications: std::mem::take(&mut self.notifications),
                })
            }
            _ => None,
        };
        Plan {
            session: self.session,
            write,
            replies: self.replies,
            duplicates: self.duplicates,
            new_keys: self.new_keys.into_iter().collect(),
            interactions: self.touched,
            completed: self.completed,
            created: self.created,
            orphan_events: self.orphan_events,
            next_position: self.next_position,
            waits: self.waits,
            unserved_next: self.next_requests,
            timeouts: self.timeouts,
            next_sequence: self.next_sequence,
        }
    }
}

/// Logs and notifies what an event did to its session.
fn note_side_effect(
    key: &SessionKey,
    state: &(SessionStatus, Option<String>),
    effect: &SideEffect,
    now: i64,
    notifications: &mut Vec<NewNotification>,
) {
    match effect {
        SideEffect::StatusChanged | SideEffect::ConversationLinked => {
            notifications.push(NewNotification {
                kind: "session.updated",
                at: now,
                body: json!({
                    "status": state.0.as_str(),
                    "external_conversation_id": state.1,
                })
                .to_string(),
            });
        }
        SideEffect::ConversationConflict { kept, offered } => {
            crate::metrics::CONVERSATION_CONFLICTS.inc();
            log::warn!(
                "session {}/{}: conversation_started offers conversation id {offered:?} but \
                 {kept:?} is linked; keeping {kept:?}",
                key.scope,
                key.session_id
            );
        }
        SideEffect::InvalidStatus(status) => log::warn!(
            "session {}/{}: session_status_changed with invalid status {status:?}; stored, \
             status unchanged",
            key.scope,
            key.session_id
        ),
        SideEffect::MissingConversationId => log::warn!(
            "session {}/{}: conversation_started without data.conversation_id; stored, no effect",
            key.scope,
            key.session_id
        ),
        // `Planner::append` completes the named interaction itself.
        SideEffect::EndsInteraction(_) | SideEffect::None => {}
    }
}

fn event_row(
    key: &SessionKey,
    seq: i64,
    event: &NewEvent,
    out_of_order: bool,
    now: i64,
) -> EventRow {
    EventRow {
        scope: key.scope.clone(),
        session_id: key.session_id.as_str().to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::session::interactions::InteractionState;
    use crate::domain::ids::SessionId;
    use tokio::sync::oneshot;

    fn key() -> SessionKey {
        SessionKey {
            scope: "s".into(),
            session_id: SessionId::parse("plan").unwrap(),
        }
    }

    fn command(id: &str, position: i64, status: InteractionStatus) -> Interaction {
        Interaction::for_test(id, "command", position, status)
    }

    /// Plans one `commands/next` against `committed` and returns what it was handed.
    fn next_against(committed: &[Interaction]) -> Option<String> {
        let key = key();
        let metadata = crate::domain::json::JsonText::empty_object();
        let session = Session::new("s".into(), key.session_id.clone(), metadata, 0);
        let mut state = InteractionState::default();
        for i in committed {
            state.remember(i.clone());
        }
        let dedup = DedupCache::new(8);
        let empty_keys = HashMap::new();
        let empty_counts = HashMap::new();
        let empty_sequences = HashMap::new();
        let mut planner = Planner::new(
            Committed {
                key: &key,
                session: Some(&session),
                interactions: &state.known,
                standing: &state.standing,
                dedup: &dedup,
                next_position: 100,
                stored_keys: &empty_keys,
                event_counts: &empty_counts,
                next_sequence: 0,
                stored_sequences: &empty_sequences,
            },
            5,
        );
        let (reply, mut answer) = oneshot::channel();
        planner.apply(Op::Next {
            wait: Duration::ZERO,
            reply,
        });
        planner.serve_next(&mut VecDeque::new());
        let plan = planner.finish();
        let handed_out = plan
            .interactions
            .values()
            .find(|i| i.is_command() && i.status == InteractionStatus::Pending);
        plan.replies.into_iter().for_each(Reply::succeed);
        match answer.try_recv() {
            Ok(Ok(Some(command))) => {
                assert_eq!(Some(&command), handed_out, "the change is in the plan");
                assert_eq!(command.deadline, Some(5 + 1000));
                Some(command.id.as_str().to_owned())
            }
            // Not served: left to the actor to park or answer empty.
            Err(_) => {
                assert!(plan.unserved_next.len() == 1 && handed_out.is_none());
                None
            }
            other => panic!("unexpected answer {other:?}"),
        }
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
