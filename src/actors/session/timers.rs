//! The session actor's timers: the deadlines of pending interactions, which queue a
//! `deadline_passed` step when they fire, and the ends of parked `commands/next` waits, which
//! the actor owns so that a command is never handed to a caller already told "nothing".

use std::time::Duration;

use actix::prelude::*;

use super::commands::internal;
use super::reply::NextRequest;
use super::SessionActor;
use crate::domain::interaction::InteractionStatus;
use crate::domain::time::now_millis;

impl SessionActor {
    pub(super) fn park_next(&mut self, request: NextRequest, ctx: &mut Context<Self>) {
        let NextRequest { wait, takes, reply } = request;
        if wait.is_zero() || reply.is_closed() {
            let _ = reply.send(Ok(None));
            return;
        }
        let parked = self
            .state
            .interactions_mut()
            .next_waiters
            .get_or_insert_with(Default::default);
        let id = parked.park(reply, takes);
        // The actor owns the wait's end, so a command is never handed to a caller that has
        // already been told "nothing".
        ctx.run_later(wait, move |actor, _| {
            let Some(inter) = actor.state.interactions.as_deref_mut() else {
                return;
            };
            let Some(parked) = inter.next_waiters.as_mut() else {
                return;
            };
            if let Some(pos) = parked.queue.iter().position(|w| w.id == id) {
                if let Some(waiter) = parked.queue.remove(pos) {
                    let _ = waiter.reply.send(Ok(None));
                }
            }
            if parked.queue.is_empty() {
                inter.next_waiters = None;
            }
        });
    }

    /// Arms the deadline timer of a pending interaction, or disarms a finished one's.
    pub(super) fn sync_deadline(&mut self, id: &str, at_least: Duration, ctx: &mut Context<Self>) {
        let Some(inter) = self.state.interactions.as_deref_mut() else {
            return;
        };
        let deadline = inter
            .known
            .get(id)
            .filter(|i| i.status == InteractionStatus::Pending)
            .and_then(|i| i.deadline);
        match deadline {
            Some(deadline) if !inter.deadlines.contains_key(id) => {
                let remaining = Duration::from_millis((deadline - now_millis()).max(0) as u64);
                let id_owned = id.to_owned();
                let handle = ctx.run_later(remaining.max(at_least), move |actor, ctx| {
                    if let Some(inter) = actor.state.interactions.as_deref_mut() {
                        inter.deadlines.remove(&id_owned);
                    }
                    actor.enqueue(internal::deadline_passed(id_owned), ctx);
                });
                inter.deadlines.insert(id.to_owned(), handle);
            }
            None => {
                if let Some(handle) = inter.deadlines.remove(id) {
                    ctx.cancel_future(handle);
                }
            }
            Some(_) => {}
        }
    }

    /// [`Self::sync_deadline`] for every interaction in memory (after loading them).
    pub(super) fn sync_deadlines(&mut self, ctx: &mut Context<Self>) {
        let Some(inter) = self.state.interactions.as_deref() else {
            return;
        };
        let ids: Vec<String> = inter.known.keys().cloned().collect();
        for id in ids {
            self.sync_deadline(&id, Duration::ZERO, ctx);
        }
    }
}
