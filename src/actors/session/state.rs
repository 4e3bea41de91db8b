//! A session's committed state in memory, and the two things done with it: planning a group
//! of operations against it ([`SessionState::plan`]) and adopting a plan once its write has
//! committed ([`SessionState::apply`]). Between the two the actor looks up what memory lacks
//! ([`SessionState::needs`], [`SessionState::absorb`]) and commits the write; nothing here does
//! I/O or knows of actors, so tests drive it directly (see [`testing`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::cache::DedupCache;
use super::commands::{serve_waiting_callers, Queued, Wanted};
use super::interactions::InteractionState;
use super::interactions::ABSENT_CACHE;
use super::load::{Found, LoadedState, Needs};
use super::overlay::{Committed, Lookups, Overlay, Plan};
use super::reply::{NextRequest, Reply};
use crate::actors::key::SessionKey;
use crate::domain::session::Session;
use crate::store::sessions::SessionKeys;
use crate::store::LeaseClaim;

/// What the actor does once a plan is adopted: answer, wake, park, arm deadlines.
pub(super) struct AfterCommit {
    pub replies: Vec<Reply>,
    /// Interactions the group completed: their waiters are woken.
    pub completed: Vec<String>,
    /// `commands/next` callers not served: parked for their wait, or answered empty.
    pub unserved_next: Vec<NextRequest>,
    /// Interactions that may have gained or lost a deadline.
    pub deadlines_to_sync: Vec<String>,
}

pub(super) struct SessionState {
    /// Shared with the registry's map entry.
    pub key: Arc<SessionKey>,
    /// The committed session; `None` until it exists in the database.
    pub session: Option<Session>,
    /// The key its events are stored under; `None` until it exists.
    pub session_key: Option<i64>,
    pub dedup: DedupCache,
    /// `None` until the session has an interaction or a caller waiting for one.
    pub interactions: Option<Box<InteractionState>>,
    /// The client `sequence` expected next (committed).
    pub next_sequence: i64,
    /// The partition lease this state is loaded and written under, in cluster mode.
    pub lease: Option<LeaseClaim>,
}

impl SessionState {
    /// A session not yet loaded: as if it did not exist.
    pub fn new(key: Arc<SessionKey>, dedup_capacity: usize) -> Self {
        Self {
            key,
            session: None,
            session_key: None,
            dedup: DedupCache::new(dedup_capacity),
            interactions: None,
            next_sequence: 0,
            lease: None,
        }
    }

    /// Takes what loading read from the database.
    pub fn install(&mut self, loaded: LoadedState) {
        self.session = loaded.session;
        self.session_key = loaded.session_key;
        for (key, seq) in loaded.recent_keys.iter().rev() {
            self.dedup.insert(key, *seq);
        }
        self.dedup.complete = loaded.keys_complete;
        self.next_sequence = loaded.next_sequence;
        if loaded.max_position > 0 || !loaded.interactions_complete {
            let inter = self.interactions_mut();
            inter.complete = loaded.interactions_complete;
            inter.next_position = loaded.max_position + 1;
            for i in loaded.interactions {
                inter.remember(i);
            }
        }
        if !loaded.no_events_name_interactions {
            self.interactions_mut().orphan_events = None;
        }
    }

    /// The interaction state, made now if the session had none.
    pub fn interactions_mut(&mut self) -> &mut InteractionState {
        self.interactions.get_or_insert_with(Default::default)
    }

    /// What a group needs from the database that memory cannot answer; `behind` are its
    /// client sequences behind the expected one.
    pub fn needs(&self, group: &[Queued], behind: Vec<i64>) -> Needs {
        let mut dedup_keys = HashSet::new();
        let mut wanted = Wanted::default();
        for op in group {
            if !self.dedup.complete {
                for e in op.events() {
                    if self.dedup.get(&e.dedup_key).is_none() {
                        dedup_keys.insert(e.dedup_key.clone());
                    }
                }
            }
            op.wants(&mut wanted);
        }
        let inter = self.interactions.as_deref();
        let unknown = |id: &String| !inter.is_some_and(|i| i.known.contains_key(id));
        let complete = inter.is_none_or(|i| i.complete);
        let absent = |id: &String| inter.is_some_and(|i| i.absent.contains(id));
        let has_events = self.session.as_ref().is_some_and(|s| s.event_count > 0);
        let orphans_counted = inter.is_none_or(|i| i.orphan_events.is_some());
        Needs {
            dedup_keys: dedup_keys.into_iter().collect(),
            interaction_ids: wanted
                .interactions
                .into_iter()
                .filter(|id| unknown(id) && !complete && !absent(id))
                .collect(),
            count_events_for: wanted
                .creates
                .into_iter()
                .filter(|id| unknown(id) && has_events && !orphans_counted)
                .collect(),
            sequences: behind,
        }
    }

    /// Takes the interactions a look-up found into memory (they are committed truth) and
    /// returns what the plan needs besides. Found dedup keys go to the plan, not into the
    /// bounded cache: inserting them there could evict a key the plan relies on.
    pub fn absorb(&mut self, found: Found) -> Lookups {
        if !found.interactions.is_empty() || !found.absent.is_empty() {
            let inter = self.interactions_mut();
            for i in found.interactions {
                inter.remember(i);
            }
            if inter.absent.len() + found.absent.len() > ABSENT_CACHE {
                inter.absent.clear();
            }
            inter.absent.extend(found.absent);
        }
        Lookups {
            stored_keys: found.dedup.into_iter().collect(),
            event_counts: found.event_counts,
            sequences: found.sequences,
        }
    }

    /// Plans `group`, in order, against the committed state; a session it creates gets its
    /// key from `session_keys`. The state itself is unchanged but for `commands/next` callers
    /// it parked earlier, which the plan may serve.
    pub fn plan(
        &mut self,
        group: Vec<Queued>,
        lookups: &Lookups,
        session_keys: &SessionKeys,
        now: i64,
    ) -> Plan {
        // Out of the state while the group reads it; back below if any are still waiting.
        let mut parked = self
            .interactions
            .as_deref_mut()
            .and_then(|i| i.next_waiters.take());
        let mut overlay = Overlay::new(self.committed(lookups, session_keys), now);
        for op in group {
            op.plan(&mut overlay);
        }
        let mut none_parked = VecDeque::new();
        serve_waiting_callers(
            &mut overlay,
            parked.as_mut().map_or(&mut none_parked, |p| &mut p.queue),
        );
        let plan = overlay.finish();
        if let Some(parked) = parked.filter(|p| !p.queue.is_empty()) {
            self.interactions_mut().next_waiters = Some(parked);
        }
        plan
    }

    /// What a group's overlay reads underneath its changes.
    pub(super) fn committed<'a>(
        &'a self,
        lookups: &'a Lookups,
        session_keys: &'a SessionKeys,
    ) -> Committed<'a> {
        Committed {
            key: &self.key,
            session: self.session.as_ref(),
            session_key: self.session_key,
            interactions: self.interactions.as_deref(),
            dedup: &self.dedup,
            next_sequence: self.next_sequence,
            lookups,
            session_keys,
            lease: self.lease.as_ref(),
        }
    }

    /// Adopts a plan whose write has committed (or that had none): the state advances to its
    /// changes. Returns what the actor still has to do.
    pub fn apply(&mut self, plan: Plan) -> AfterCommit {
        let Plan {
            changes, effects, ..
        } = plan;
        crate::metrics::DUPLICATES_DROPPED.inc_by(changes.duplicates);
        for id in &changes.completed {
            if let Some(i) = changes.interactions.get(id) {
                crate::metrics::INTERACTIONS_COMPLETED
                    .with_label_values(&[i.completed_by.map_or("unknown", |c| c.as_str())])
                    .inc();
            }
        }
        self.session = changes.session;
        self.session_key = changes.session_key;
        // In seq order, so the bounded cache keeps the newest keys.
        let mut new_keys: Vec<(String, i64)> = changes.new_keys.into_iter().collect();
        new_keys.sort_by_key(|(_, seq)| *seq);
        for (key, seq) in new_keys {
            self.dedup.insert(&key, seq);
        }
        let touches_interactions = !changes.interactions.is_empty()
            || !effects.waits.is_empty()
            || !changes.orphan_events.is_empty();
        // Only these can have gained or lost a deadline: the rest were synced when they
        // last changed (or when the actor loaded them).
        let mut deadlines_to_sync = effects.timeouts;
        if touches_interactions || self.interactions.is_some() {
            let inter = self.interactions_mut();
            inter.adopt_orphan_events(&changes.created, changes.orphan_events);
            for (id, interaction) in changes.interactions {
                inter.absent.remove(&id);
                deadlines_to_sync.push(id);
                inter.remember(interaction);
            }
            inter.next_position = changes.next_position;
            for (id, reply) in effects.waits {
                inter.waiters.entry(id).or_default().push(reply);
            }
        }
        self.next_sequence = changes.next_sequence;
        AfterCommit {
            replies: effects.replies,
            completed: changes.completed,
            unserved_next: effects.unserved_next,
            deadlines_to_sync,
        }
    }

    /// Answers the callers waiting for `id` with the interaction as committed.
    pub fn wake_waiters(&mut self, id: &str) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        let Some(waiters) = inter.waiters.remove(id) else {
            return;
        };
        if let Some(i) = inter.known.get(id) {
            for reply in waiters {
                let _ = reply.send(Ok(i.clone()));
            }
        }
    }

    /// Keeps memory bounded: finished interactions beyond the cache are dropped, oldest
    /// first (they are looked up again when needed).
    pub fn evict_finished_interactions(&mut self) {
        if let Some(inter) = self.interactions.as_deref_mut() {
            inter.evict_finished();
        }
    }

    /// Drops waiters whose callers went away (closed connections), so they cannot pile up.
    pub fn prune_waiters(&mut self) {
        let Some(inter) = self.interactions.as_deref_mut() else {
            return;
        };
        inter.waiters.retain(|_, replies| {
            replies.retain(|r| !r.is_closed());
            !replies.is_empty()
        });
        if let Some(parked) = inter.next_waiters.as_mut() {
            parked.queue.retain(|w| !w.reply.is_closed());
            if parked.queue.is_empty() {
                inter.next_waiters = None;
            }
        }
    }

    /// Nobody waits on an interaction of the session.
    pub fn has_no_waiters(&self) -> bool {
        self.interactions
            .as_deref()
            .is_none_or(|i| i.waiters.is_empty() && i.next_waiters.is_none())
    }

    /// The earliest deadline of the session's pending interactions.
    pub fn earliest_deadline(&self) -> Option<i64> {
        let inter = self.interactions.as_deref()?;
        inter
            .deadlines
            .keys()
            .filter_map(|id| inter.known.get(id))
            .filter_map(|i| i.deadline)
            .min()
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! Groups planned and committed against a [`SessionState`] in memory, as the actor would,
    //! without an actor or a database: for the unit tests of each command.

    use tokio::sync::oneshot;

    use super::*;
    use crate::actors::error::SessionError;
    use crate::actors::session::commands::Command;
    use crate::actors::session::group::GroupBuilder;
    use crate::domain::ids::SessionId;
    use crate::store::models::EventRow;
    use crate::store::SessionWrite;

    pub(in crate::actors::session) struct TestSession {
        pub state: SessionState,
        pub now: i64,
        session_keys: SessionKeys,
        /// Every event committed so far: the database the look-ups read.
        stored: Vec<EventRow>,
    }

    /// What one group wrote.
    pub(in crate::actors::session) struct Planned {
        pub write: Option<SessionWrite>,
    }

    impl Planned {
        pub fn notification_kinds(&self) -> Vec<&'static str> {
            self.write
                .iter()
                .flat_map(|w| w.notifications.iter().map(|n| n.kind))
                .collect()
        }
    }

    impl TestSession {
        pub fn new() -> Self {
            Self::remembering(64)
        }

        /// A session whose memory holds at most `dedup_keys` dedup keys.
        pub fn remembering(dedup_keys: usize) -> Self {
            let key = SessionKey {
                scope: "scope".into(),
                session_id: SessionId::parse("test").expect("a valid id"),
            };
            Self {
                state: SessionState::new(Arc::new(key), dedup_keys),
                now: 1_000,
                session_keys: SessionKeys::starting_at(1),
                stored: Vec::new(),
            }
        }

        /// Plans and commits one command as a group of its own.
        pub fn run<C: Command>(
            &mut self,
            command: C,
        ) -> (oneshot::Receiver<Result<C::Answer, SessionError>>, Planned) {
            let (queued, answer) = Queued::ask(command);
            (answer, self.run_group(vec![queued]))
        }

        /// Takes `ops` as the actor takes a group, looks up what it needs in the events the
        /// test has committed, plans it, commits it and answers as the actor does.
        pub fn run_group(&mut self, ops: Vec<Queued>) -> Planned {
            let mut group = GroupBuilder::new(self.state.next_sequence);
            for op in ops {
                group.add(op);
            }
            let needs = self.state.needs(&group.ops, group.behind);
            assert!(
                needs.interaction_ids.is_empty() && needs.count_events_for.is_empty(),
                "every interaction is in memory"
            );
            let stored = |wanted: &dyn Fn(&EventRow) -> bool| {
                self.stored
                    .iter()
                    .filter(|e| wanted(e))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let found = Found {
                dedup: stored(&|e| needs.dedup_keys.contains(&e.dedup_key))
                    .into_iter()
                    .map(|e| (e.dedup_key, e.seq))
                    .collect(),
                sequences: stored(&|e| e.sequence.is_some_and(|s| needs.sequences.contains(&s)))
                    .into_iter()
                    .filter_map(|e| Some((e.sequence?, e.dedup_key)))
                    .collect(),
                ..Found::default()
            };
            let lookups = self.state.absorb(found);
            self.now += 1;
            let mut plan = self
                .state
                .plan(group.ops, &lookups, &self.session_keys, self.now);
            let write = plan.write.take();
            if let Some(write) = &write {
                self.stored.extend(write.events.iter().cloned());
            }
            let after = self.state.apply(plan);
            after.replies.into_iter().for_each(Reply::succeed);
            for id in &after.completed {
                self.state.wake_waiters(id);
            }
            for request in after.unserved_next {
                let _ = request.reply.send(Ok(None));
            }
            Planned { write }
        }
    }

    /// Events as a client would post them (`timestamp` filled in when missing).
    pub(in crate::actors::session) fn events(
        list: serde_json::Value,
    ) -> Vec<crate::domain::event::NewEvent> {
        let mut list = list;
        for event in list.as_array_mut().expect("an array of events") {
            if event.get("timestamp").is_none() {
                event["timestamp"] = "2026-11-30T12:00:00Z".into();
            }
        }
        let body = serde_json::json!({ "events": list }).to_string();
        let raw = serde_json::value::RawValue::from_string(body).expect("JSON");
        crate::domain::event::parse_body(&raw, 100).expect("valid events")
    }

    /// The answer a caller got; panics if it got none.
    pub(in crate::actors::session) fn answer_of<T>(
        mut answer: oneshot::Receiver<Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        answer.try_recv().expect("an answer was sent")
    }
}
