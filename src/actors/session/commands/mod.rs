//! The operations a session performs, one type per operation. Each file holds one: the
//! request the HTTP layer builds, what it answers, how a group plans it against the session's
//! state, and its unit tests. Adding an operation means adding a file here and listing it below.
//!
//! A caller hands a [`Command`] to [`crate::actors::SessionHandle::ask`], which pairs it with
//! the caller's reply channel ([`Queued::ask`]) and delivers it to the session's actor. The actor
//! queues it and, in its group's turn, lets it plan itself ([`Command::plan`]); the answer it
//! decides is sent after the group's commit. The actor queues two steps of its own the same way
//! ([`internal`]): a deadline that passed and a sequence gap given up.

mod act_on_interaction;
mod append_events;
mod create_interaction;
mod ensure_session;
pub(super) mod internal;
mod next_command;
#[cfg(any(test, feature = "test-hooks"))]
mod panic_for_test;
mod wait_for_interaction;

use std::collections::HashSet;

use tokio::sync::oneshot;

use super::overlay::Overlay;
pub(crate) use super::reply::Answer;
use crate::actors::error::SessionError;
use crate::domain::event::NewEvent;

pub(crate) use act_on_interaction::{ActOnInteraction, Action};
pub(crate) use append_events::AppendEvents;
pub(crate) use create_interaction::CreateInteraction;
pub(crate) use ensure_session::EnsureSession;
pub(super) use next_command::serve_waiting_callers;
pub(crate) use next_command::NextCommand;
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use panic_for_test::PanicForTest;
pub(crate) use wait_for_interaction::WaitForInteraction;

/// One operation on a session.
pub(crate) trait Command: Send + Sized + 'static {
    /// What the caller gets when the operation succeeds.
    type Answer: Send + 'static;

    /// It may be the first request of a session (and so start an actor when the session is
    /// unknown). One that may not is answered "not found" without starting an actor when the
    /// session does not exist.
    const MAY_CREATE: bool;

    /// The caller waits as long as the operation itself says (a long poll), not the handle's
    /// deadline for a commit.
    const WAITS_ITS_OWN_TIME: bool = false;

    /// The events it stores: they set its weight in a group, its client sequences and the
    /// dedup keys its group looks up.
    fn events(&self) -> &[NewEvent] {
        &[]
    }

    /// Notes what else its group must look up before it can be planned.
    fn wants(&self, _wanted: &mut Wanted) {}

    /// Applies the operation to the group's working copy and decides its answer.
    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<Self::Answer>);
}

/// Interactions a group names, collected before its look-up.
#[derive(Default)]
pub(crate) struct Wanted {
    pub(super) interactions: HashSet<String>,
    /// Of those, the ones it may create.
    pub(super) creates: HashSet<String>,
}

impl Wanted {
    pub(super) fn interaction(&mut self, id: &str) {
        self.interactions.insert(id.to_owned());
    }

    pub(super) fn creation(&mut self, id: &str) {
        self.interaction(id);
        self.creates.insert(id.to_owned());
    }
}

/// An operation in the session actor's queue: a caller's command with its reply channel, or a
/// step of the actor's own.
pub(crate) struct Queued(Box<dyn Step>);

impl Queued {
    /// Pairs `command` with a new reply channel; its answer arrives on the receiver.
    pub(crate) fn ask<C: Command>(
        command: C,
    ) -> (Self, oneshot::Receiver<Result<C::Answer, SessionError>>) {
        let (reply, answer) = oneshot::channel();
        (Self(Box::new(Asked { command, reply })), answer)
    }

    fn of(step: impl Step + 'static) -> Self {
        Self(Box::new(step))
    }

    pub(super) fn events(&self) -> &[NewEvent] {
        self.0.events()
    }

    /// How much of a group it takes: its events, or one.
    pub(super) fn weight(&self) -> usize {
        self.events().len().max(1)
    }

    /// What it holds back while it waits for reordering: its events, and their bytes (the
    /// data's text and a fixed share for the rest of each event).
    pub(super) fn held(&self) -> super::reorder::Held {
        let events = self.events();
        super::reorder::Held {
            events: self.weight(),
            bytes: events
                .iter()
                .map(|e| e.data.as_ref().map_or(0, |d| d.as_str().len()) + 256)
                .sum(),
        }
    }

    /// The lowest client sequence among its events.
    pub(super) fn lowest_sequence(&self) -> Option<i64> {
        self.events().iter().filter_map(|e| e.sequence).min()
    }

    pub(super) fn wants(&self, wanted: &mut Wanted) {
        self.0.wants(wanted);
    }

    pub(super) fn plan(self, overlay: &mut Overlay<'_>) {
        self.0.plan(overlay);
    }

    /// Answers its caller with `error` instead; nothing of it was planned.
    pub(crate) fn fail(self, error: SessionError) {
        self.0.fail(error);
    }
}

/// What the actor's queue needs of an operation, whatever its answer type.
trait Step: Send {
    fn events(&self) -> &[NewEvent] {
        &[]
    }
    fn wants(&self, _wanted: &mut Wanted) {}
    fn plan(self: Box<Self>, overlay: &mut Overlay<'_>);
    fn fail(self: Box<Self>, error: SessionError);
}

struct Asked<C: Command> {
    command: C,
    reply: Answer<C::Answer>,
}

impl<C: Command> Step for Asked<C> {
    fn events(&self) -> &[NewEvent] {
        self.command.events()
    }

    fn wants(&self, wanted: &mut Wanted) {
        self.command.wants(wanted);
    }

    fn plan(self: Box<Self>, overlay: &mut Overlay<'_>) {
        let Asked { command, reply } = *self;
        command.plan(overlay, reply);
    }

    fn fail(self: Box<Self>, error: SessionError) {
        // A caller that went away (closed connection) no longer needs the answer.
        drop(self.reply.send(Err(error)));
    }
}
