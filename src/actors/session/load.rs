//! What a session actor reads from the database: its state when it starts, and, before a
//! group is planned, whatever the group needs that is not in memory (old dedup keys,
//! interactions beyond the in-memory ones, event counts for interactions about to be created).
//! These run on the blocking pool, never on the actor's thread.

use std::collections::HashMap;

use crate::actors::key::SessionKey;
use crate::domain::interaction::Interaction;
use crate::domain::session::Session;
use crate::store::models::{InteractionRow, SessionRow};
use crate::store::{self, DbConnection, DbPool, StoreError};

/// Interactions a session keeps in memory beyond its open ones.
pub(super) const INTERACTION_CACHE: usize = 256;

pub(super) struct LoadedState {
    pub session: Option<Session>,
    /// The key its events are stored under.
    pub session_key: Option<i64>,
    /// Newest first.
    pub recent_keys: Vec<(String, i64)>,
    /// The keys above are all the session has.
    pub keys_complete: bool,
    /// Every open interaction, and all of them when there are few.
    pub interactions: Vec<Interaction>,
    pub interactions_complete: bool,
    pub max_position: i64,
    /// The client `sequence` expected next: one past the highest stored.
    pub next_sequence: i64,
    /// No stored event names an interaction, so none names one that does not exist yet:
    /// the actor can count such events itself from here on.
    pub no_events_name_interactions: bool,
}

pub(super) fn load_state(
    pool: &DbPool,
    key: &SessionKey,
    dedup_cache: usize,
) -> Result<LoadedState, StoreError> {
    store::with_connection(pool, |conn| load_state_on(conn, key, dedup_cache))
}

fn load_state_on(
    conn: &mut DbConnection,
    key: &SessionKey,
    dedup_cache: usize,
) -> Result<LoadedState, StoreError> {
    let (scope, id) = (key.scope.as_str(), key.session_id.as_str());
    let row = store::sessions::find(conn, scope, id)?;
    let session_key = row.as_ref().map(|r| r.session_key);
    let session = row.map(SessionRow::into_session).transpose()?;
    let Some(session) = session else {
        return Ok(LoadedState {
            session: None,
            session_key: None,
            recent_keys: Vec::new(),
            keys_complete: true,
            interactions: Vec::new(),
            interactions_complete: true,
            max_position: 0,
            next_sequence: 0,
            no_events_name_interactions: true,
        });
    };
    let recent_keys = store::events::recent_dedup_keys(conn, scope, id, dedup_cache as i64)?;
    let max_position = store::interactions::max_position(conn, scope, id)?;
    let next_sequence =
        store::events::max_sequence(conn, scope, id)?.map_or(0, |s| s.saturating_add(1));
    let no_events_name_interactions = !store::events::any_names_interaction(conn, scope, id)?;
    let interactions_complete = max_position <= INTERACTION_CACHE as i64;
    let rows = if interactions_complete {
        store::interactions::list(conn, scope, id, None, INTERACTION_CACHE as i64)?
    } else {
        store::interactions::open_for_session(conn, scope, id)?
    };
    Ok(LoadedState {
        keys_complete: session.event_count <= dedup_cache as i64,
        session: Some(session),
        session_key,
        recent_keys,
        interactions: rows
            .into_iter()
            .map(InteractionRow::into_interaction)
            .collect::<Result<_, _>>()?,
        interactions_complete,
        max_position,
        next_sequence,
        no_events_name_interactions,
    })
}

/// What a group needs from the database before it can be planned.
#[derive(Default)]
pub(super) struct Needs {
    pub dedup_keys: Vec<String>,
    pub interaction_ids: Vec<String>,
    /// Ids about to be created: how many stored events already name them (asked only while
    /// the actor does not keep that count itself, see `InteractionState::orphan_events`).
    pub count_events_for: Vec<String>,
    /// Client sequences behind the expected one: stored already, or late?
    pub sequences: Vec<i64>,
}

impl Needs {
    pub fn is_empty(&self) -> bool {
        self.dedup_keys.is_empty()
            && self.interaction_ids.is_empty()
            && self.count_events_for.is_empty()
            && self.sequences.is_empty()
    }
}

#[derive(Default)]
pub(super) struct Found {
    pub dedup: Vec<(String, i64)>,
    pub interactions: Vec<Interaction>,
    /// Looked up and not there.
    pub absent: Vec<String>,
    pub event_counts: HashMap<String, i64>,
    /// Stored client sequences among those asked, with the dedup key of their event.
    pub sequences: HashMap<i64, String>,
}

pub(super) fn look_up(pool: &DbPool, key: &SessionKey, needs: Needs) -> Result<Found, StoreError> {
    store::with_connection(pool, |conn| look_up_on(conn, key, needs))
}

fn look_up_on(
    conn: &mut DbConnection,
    key: &SessionKey,
    needs: Needs,
) -> Result<Found, StoreError> {
    let (scope, id) = (key.scope.as_str(), key.session_id.as_str());
    let mut found = Found::default();
    if !needs.dedup_keys.is_empty() {
        found.dedup = store::events::find_dedup_keys(conn, scope, id, &needs.dedup_keys)?;
    }
    if !needs.interaction_ids.is_empty() {
        let rows = store::interactions::find_many(conn, scope, id, &needs.interaction_ids)?;
        found.interactions = rows
            .into_iter()
            .map(InteractionRow::into_interaction)
            .collect::<Result<_, _>>()?;
        found.absent = needs
            .interaction_ids
            .into_iter()
            .filter(|i| !found.interactions.iter().any(|f| f.id.as_str() == i))
            .collect();
    }
    if !needs.sequences.is_empty() {
        for (seq, key) in store::events::find_sequences(conn, scope, id, &needs.sequences)? {
            if let Some(seq) = seq {
                found.sequences.insert(seq, key);
            }
        }
    }
    let to_count: Vec<String> = needs
        .count_events_for
        .into_iter()
        .filter(|i| !found.interactions.iter().any(|f| f.id.as_str() == i))
        .collect();
    if !to_count.is_empty() {
        for (iid, n) in store::interactions::event_counts(conn, scope, id, &to_count)? {
            if let Some(iid) = iid {
                found.event_counts.insert(iid, n);
            }
        }
    }
    Ok(found)
}
