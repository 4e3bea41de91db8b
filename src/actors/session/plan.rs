//! Planning a group: the session's queued operations applied, in order, to a working copy of
//! its committed state (the [`Planner`]). Each operation's own step lives with it in
//! `commands`; this is what they share: the working copy, the notifications, the decided
//! answers ([`Reply`]) and the [`Plan`] they add up to. The plan holds the write to commit and
//! every answer, to be sent only after the commit; if the commit fails the working copy is
//! simply dropped. Nothing here does I/O, so a plan is decided entirely by the committed state
//! and the operations.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::cache::DedupCache;
use super::interactions::Standing;
use super::reply::{Answer, NextRequest, Reply, WaitReply};
use crate::actors::error::SessionError;
use crate::actors::key::SessionKey;
use crate::domain::interaction::{Interaction, InteractionStatus};
use crate::domain::json::JsonText;
use crate::domain::session::Session;
use crate::store::models::{EventRow, InteractionRow, SearchRow, SessionRow};
use crate::store::sessions::SessionKeys;
use crate::store::{NewNotification, SessionWrite};

/// Read-only views of the committed state a plan starts from.
pub(super) struct Committed<'a> {
    pub key: &'a SessionKey,
    pub session: Option<&'a Session>,
    /// The key the session's events are stored under, when it exists.
    pub session_key: Option<i64>,
    /// Where a session created by the group gets its key.
    pub session_keys: &'a SessionKeys,
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
    pub session_key: Option<i64>,
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
    pub unserved_next: Vec<NextRequest>,
    /// Deadlines that fired in this group (re-armed if the group cannot be committed).
    pub timeouts: Vec<String>,
    pub next_sequence: i64,
}

/// The working copy of one group. Its fields are what the operations' steps change.
pub(crate) struct Planner<'a> {
    pub(super) base: Committed<'a>,
    pub(super) now: i64,
    pub(super) session: Option<Session>,
    pub(super) session_key: Option<i64>,
    /// Interactions created or changed by this group, as they stand now.
    pub(super) touched: HashMap<String, Interaction>,
    pub(super) created: Vec<String>,
    pub(super) completed: Vec<String>,
    /// Events of this group naming interactions that do not exist (yet).
    pub(super) orphan_events: HashMap<String, i64>,
    pub(super) next_position: i64,
    pub(super) rows: Vec<EventRow>,
    /// One per row of `rows`.
    pub(super) search_rows: Vec<SearchRow>,
    pub(super) new_keys: HashMap<String, i64>,
    notifications: Vec<NewNotification>,
    replies: Vec<Reply>,
    pub(super) duplicates: u64,
    pub(super) waits: Vec<(String, WaitReply)>,
    pub(super) next_requests: Vec<NextRequest>,
    pub(super) timeouts: Vec<String>,
    /// Something of the session must be written.
    pub(super) changed: bool,
    pub(super) next_sequence: i64,
    /// Sequences stored by this group, with their events' dedup keys.
    pub(super) applied_sequences: HashMap<i64, String>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(base: Committed<'a>, now: i64) -> Self {
        Self {
            session: base.session.cloned(),
            session_key: base.session_key,
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
            search_rows: Vec::new(),
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

    /// Decides a caller's answer; it is sent when the group has committed.
    pub(super) fn answer<T: Send + 'static>(
        &mut self,
        reply: Answer<T>,
        result: Result<T, SessionError>,
    ) {
        self.replies.push(Reply::new(reply, result));
    }

    /// The error for an operation on a session that does not exist.
    pub(super) fn no_session(&self) -> SessionError {
        SessionError::SessionNotFound(self.base.key.session_id.to_string())
    }

    pub(super) fn interaction(&self, id: &str) -> Option<&Interaction> {
        self.touched
            .get(id)
            .or_else(|| self.base.interactions.get(id))
    }

    /// Cancels every open interaction that is not a command: the session has ended, so nobody
    /// waits for their answer any more (a queued command may still be wanted if the session
    /// resumes). Each is completed and notified once, as a cancel would.
    pub(super) fn cancel_open_questions(&mut self) {
        let open: std::collections::BTreeSet<String> = self
            .base
            .interactions
            .keys()
            .chain(self.touched.keys())
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

    /// The interaction as this group has it, copied into the group on first change.
    pub(super) fn interaction_mut(&mut self, id: &str) -> Option<&mut Interaction> {
        if !self.touched.contains_key(id) {
            let committed = self.base.interactions.get(id)?.clone();
            self.touched.insert(id.to_owned(), committed);
        }
        self.touched.get_mut(id)
    }

    /// The interaction, or why an operation on it is refused: its session or itself is missing.
    pub(super) fn check_interaction(&self, id: &str) -> Result<Interaction, SessionError> {
        if self.session.is_none() {
            return Err(self.no_session());
        }
        self.interaction(id)
            .cloned()
            .ok_or_else(|| SessionError::InteractionNotFound(id.to_owned()))
    }

    pub(super) fn notify(&mut self, kind: &'static str, body: serde_json::Value) {
        self.notifications.push(NewNotification {
            kind,
            at: self.now,
            body: body.to_string(),
        });
    }

    /// The session, created now (with its `session.created` notification) if it does not
    /// exist. Returns whether it was created.
    pub(super) fn ensure_session(&mut self, metadata: Option<JsonText>) -> bool {
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
        self.session_key = Some(self.base.session_keys.next());
        self.notify("session.created", json!({ "status": status }));
        self.changed = true;
        true
    }

    /// Counts a completion once: session counters, the one `interaction.completed`, waiters.
    pub(super) fn completed_now(&mut self, id: &str) {
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
    pub(super) fn forget_if_unchanged(&mut self, id: &str) {
        if self.created.iter().any(|c| c == id) {
            return;
        }
        if self.touched.get(id) == self.base.interactions.get(id) {
            self.touched.remove(id);
        } else {
            self.changed = true;
        }
    }

    pub(super) fn finish(mut self) -> Plan {
        let write = match (&self.session, self.session_key, self.changed) {
            (Some(s), Some(session_key), true) => {
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
                    session: SessionRow::from_session(s, session_key, self.base.session.is_none()),
                    create: self.base.session.is_none(),
                    events: std::mem::take(&mut self.rows),
                    search: std::mem::take(&mut self.search_rows),
                    new_interactions,
                    changed_interactions,
                    notifications: std::mem::take(&mut self.notifications),
                })
            }
            _ => None,
        };
        Plan {
            session: self.session,
            session_key: self.session_key,
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
