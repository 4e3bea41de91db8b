//! A session's interactions in memory and everything that waits on them: the
//! [`InteractionState`] (committed interactions, ids known to be absent, orphan event counts),
//! the handles of their deadline timers, `wait` callers and parked `commands/next` callers. The
//! timers themselves are the actor's (`timers`); the rules of what an interaction may do live
//! in `crate::domain::interaction` and the commands.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use actix::SpawnHandle;

use super::load::INTERACTION_CACHE;
use super::reply::{NextReply, WaitReply};
use crate::domain::interaction::{Interaction, InteractionStatus};

/// Where each interaction in [`InteractionState::known`] stands, kept in step by
/// [`InteractionState::remember`] and [`InteractionState::forget`], so that handing out the
/// next command and evicting finished interactions cost no scan of the session's history.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Standing {
    /// Queued commands by position: the oldest is handed out next.
    pub(super) queued_commands: BTreeMap<i64, String>,
    /// Commands handed out and not finished yet.
    pub(super) pending_commands: BTreeSet<String>,
    /// Finished interactions by position: the oldest are evicted first.
    finished: BTreeMap<i64, String>,
}

impl Standing {
    pub(super) const EMPTY: Standing = Standing {
        queued_commands: BTreeMap::new(),
        pending_commands: BTreeSet::new(),
        finished: BTreeMap::new(),
    };

    fn add(&mut self, i: &Interaction) {
        let id = i.id.as_str().to_owned();
        match i.status {
            InteractionStatus::Queued if i.is_command() => {
                self.queued_commands.insert(i.position, id);
            }
            InteractionStatus::Pending if i.is_command() => {
                self.pending_commands.insert(id);
            }
            InteractionStatus::Queued | InteractionStatus::Pending => {}
            _ => {
                self.finished.insert(i.position, id);
            }
        }
    }

    fn remove(&mut self, i: &Interaction) {
        self.queued_commands.remove(&i.position);
        self.pending_commands.remove(i.id.as_str());
        self.finished.remove(&i.position);
    }
}

/// Interaction ids known not to exist, remembered to spare look-ups.
pub(super) const ABSENT_CACHE: usize = 1024;

/// A caller of `commands/next` parked by an earlier group.
pub(super) struct NextWaiter {
    pub id: u64,
    pub takes: crate::domain::interaction::CommandFilter,
    pub reply: NextReply,
}

/// `commands/next` callers parked until a command can be handed out or their wait ends.
#[derive(Default)]
pub(super) struct NextWaiters {
    pub(super) queue: VecDeque<NextWaiter>,
    next_id: u64,
}

impl NextWaiters {
    /// Parks a caller last in line; returns the id its wait's end finds it by.
    pub(super) fn park(
        &mut self,
        reply: NextReply,
        takes: crate::domain::interaction::CommandFilter,
    ) -> u64 {
        // Ids only tell apart the waiters parked at the same time, so a counter that starts
        // over with an empty queue is enough.
        self.next_id += 1;
        self.queue.push_back(NextWaiter {
            id: self.next_id,
            takes,
            reply,
        });
        self.next_id
    }
}

/// The session's interactions in memory and the callers waiting on them. Made on first use and
/// boxed: most sessions never have an interaction, and inline these maps cost every live actor
/// about 100 bytes. Its absence means what [`InteractionState::default`] says.
pub(super) struct InteractionState {
    /// Committed interactions in memory: every open one, plus recent finished ones. Changed
    /// only through [`Self::remember`] and [`Self::forget`], which keep `standing` in step.
    pub(super) known: BTreeMap<String, Interaction>,
    pub(super) standing: Standing,
    /// `known` holds every interaction of the session.
    pub(super) complete: bool,
    /// Ids looked up and known not to exist (only this actor creates interactions).
    pub(super) absent: BTreeSet<String>,
    pub(super) next_position: i64,
    /// Armed deadline timers of pending interactions.
    pub(super) deadlines: BTreeMap<String, SpawnHandle>,
    /// `wait` callers by interaction id.
    pub(super) waiters: BTreeMap<String, Vec<WaitReply>>,
    /// `commands/next` callers waiting for a command; `None` while there are none.
    pub(super) next_waiters: Option<Box<NextWaiters>>,
    /// How many stored events name each interaction id that does not exist yet, so that a
    /// create starts its interaction's event count without asking the database (hooks post
    /// events before their approvals, so nearly every create would). `None` while unknown:
    /// after loading a session whose stored events name interactions; creates then count in
    /// the database.
    pub(super) orphan_events: Option<HashMap<String, i64>>,
}

impl Default for InteractionState {
    /// A session without interactions: all of them (none) are known, the first gets position 1.
    fn default() -> Self {
        Self {
            known: BTreeMap::new(),
            standing: Standing::default(),
            complete: true,
            absent: BTreeSet::new(),
            next_position: 1,
            deadlines: BTreeMap::new(),
            waiters: BTreeMap::new(),
            next_waiters: None,
            orphan_events: Some(HashMap::new()),
        }
    }
}

impl InteractionState {
    /// Keeps a committed interaction in memory (replacing an older copy).
    pub(super) fn remember(&mut self, interaction: Interaction) {
        let id = interaction.id.as_str().to_owned();
        if let Some(old) = self.known.get(&id) {
            self.standing.remove(old);
        }
        self.standing.add(&interaction);
        self.known.insert(id, interaction);
    }

    /// Drops an interaction from memory (it stays committed in the database).
    pub(super) fn forget(&mut self, id: &str) {
        if let Some(old) = self.known.remove(id) {
            self.standing.remove(&old);
        }
    }

    /// Keeps memory bounded: finished interactions beyond the cache are dropped, oldest
    /// first (they are looked up again when needed).
    pub(super) fn evict_finished(&mut self) {
        while self.standing.finished.len() > INTERACTION_CACHE {
            let Some((_, id)) = self.standing.finished.pop_first() else {
                break;
            };
            self.forget(&id);
            self.complete = false;
        }
    }

    /// Keeps the orphan counts in step with a committed group: the interactions it created
    /// took theirs, and its events naming ids that still do not exist add to them. Past
    /// [`ABSENT_CACHE`] ids the counts are dropped, and creates count in the database again.
    pub(super) fn adopt_orphan_events(&mut self, created: &[String], new: HashMap<String, i64>) {
        let Some(counts) = self.orphan_events.as_mut() else {
            return;
        };
        for id in created {
            counts.remove(id);
        }
        for (id, n) in new {
            *counts.entry(id).or_default() += n;
        }
        if counts.len() > ABSENT_CACHE {
            self.orphan_events = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interaction(id: &str, kind: &str, position: i64, status: InteractionStatus) -> Interaction {
        Interaction::for_test(id, kind, position, status)
    }

    #[test]
    fn the_standing_follows_every_change() {
        use InteractionStatus::*;
        let mut state = InteractionState::default();
        state.remember(interaction("c1", "command", 1, Queued));
        state.remember(interaction("c2", "command", 2, Queued));
        state.remember(interaction("a1", "approval", 3, Pending));
        assert_eq!(
            state.standing.queued_commands.values().collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert!(
            state.standing.pending_commands.is_empty(),
            "approvals are not commands"
        );

        state.remember(interaction("c1", "command", 1, Pending));
        assert_eq!(state.standing.queued_commands.len(), 1);
        assert!(state.standing.pending_commands.contains("c1"));

        state.remember(interaction("c1", "command", 1, Completed));
        state.remember(interaction("a1", "approval", 3, TimedOut));
        assert!(state.standing.pending_commands.is_empty());
        assert_eq!(
            state.standing.finished.values().collect::<Vec<_>>(),
            ["c1", "a1"]
        );

        state.forget("c1");
        state.forget("c2");
        state.forget("missing");
        assert_eq!(state.known.len(), 1);
        assert!(state.standing.queued_commands.is_empty());
        assert_eq!(state.standing.finished.values().collect::<Vec<_>>(), ["a1"]);
    }
}
