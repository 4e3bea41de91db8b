//! What the session actor queues and what it answers: an [`Op`] is one caller's request (or a
//! timer's) with the channel its answer goes to; a [`Reply`] is the answer a plan decided for
//! it, held until the group's commit; a [`GroupBuilder`] collects the operations of one group
//! and tracks what they do to the expected client sequence, so the actor knows which waiting
//! requests may join.

use std::time::Duration;

use tokio::sync::oneshot;

use super::super::messages::{
    Action, ActionOutcome, AppendOutcome, CreateInteraction, EnsureOutcome, SessionError,
};
use super::plan::{NextReply, WaitReply};
use crate::domain::event::NewEvent;
use crate::domain::ids::InteractionId;
use crate::domain::interaction::Interaction;

/// A queued operation and where its answer goes.
pub(super) enum Op {
    Ensure {
        metadata: Option<crate::domain::json::JsonText>,
        reply: oneshot::Sender<Result<EnsureOutcome, SessionError>>,
    },
    Append {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<AppendOutcome, SessionError>>,
    },
    Create {
        msg: CreateInteraction,
        reply: oneshot::Sender<Result<(Interaction, bool), SessionError>>,
    },
    Act {
        id: InteractionId,
        action: Action,
        reply: oneshot::Sender<Result<ActionOutcome, SessionError>>,
    },
    Wait {
        id: InteractionId,
        reply: WaitReply,
    },
    Next {
        wait: Duration,
        reply: NextReply,
    },
    /// A deadline timer fired.
    Timeout {
        id: String,
    },
    /// A gap in client sequences was given up: this is the next expected sequence.
    SkipTo(i64),
}

impl Op {
    /// How much of a group this takes: its events, or one.
    pub(super) fn weight(&self) -> usize {
        match self {
            Op::Append { events, .. } => events.len().max(1),
            _ => 1,
        }
    }

    /// For a request whose events carry client sequences: the lowest.
    pub(super) fn sequence_range(&self) -> Option<i64> {
        match self {
            Op::Append { events, .. } => events.iter().filter_map(|e| e.sequence).min(),
            _ => None,
        }
    }

    pub(super) fn fail(self, error: SessionError) {
        // A caller that went away (closed connection) no longer needs the answer.
        match self {
            Op::Ensure { reply, .. } => drop(reply.send(Err(error))),
            Op::Append { reply, .. } => drop(reply.send(Err(error))),
            Op::Create { reply, .. } => drop(reply.send(Err(error))),
            Op::Act { reply, .. } => drop(reply.send(Err(error))),
            Op::Wait { reply, .. } => drop(reply.send(Err(error))),
            Op::Next { reply, .. } => drop(reply.send(Err(error))),
            Op::Timeout { .. } | Op::SkipTo(_) => {}
        }
    }
}

/// An answer decided by a group, sent after its commit.
pub(super) enum Reply {
    Ensure(
        oneshot::Sender<Result<EnsureOutcome, SessionError>>,
        EnsureOutcome,
    ),
    Append(
        oneshot::Sender<Result<AppendOutcome, SessionError>>,
        Result<AppendOutcome, SessionError>,
    ),
    Create(
        oneshot::Sender<Result<(Interaction, bool), SessionError>>,
        Result<(Interaction, bool), SessionError>,
    ),
    Act(
        oneshot::Sender<Result<ActionOutcome, SessionError>>,
        Result<ActionOutcome, SessionError>,
    ),
    Wait(WaitReply, Result<Interaction, SessionError>),
    Next(NextReply, Result<Option<Interaction>, SessionError>),
}

impl Reply {
    pub(super) fn succeed(self) {
        match self {
            Reply::Ensure(tx, outcome) => drop(tx.send(Ok(outcome))),
            Reply::Append(tx, result) => drop(tx.send(result)),
            Reply::Create(tx, result) => drop(tx.send(result)),
            Reply::Act(tx, result) => drop(tx.send(result)),
            Reply::Wait(tx, result) => drop(tx.send(result)),
            Reply::Next(tx, result) => drop(tx.send(result)),
        }
    }

    pub(super) fn fail(self, error: SessionError) {
        match self {
            Reply::Ensure(tx, _) => drop(tx.send(Err(error))),
            Reply::Append(tx, _) => drop(tx.send(Err(error))),
            Reply::Create(tx, _) => drop(tx.send(Err(error))),
            Reply::Act(tx, _) => drop(tx.send(Err(error))),
            Reply::Wait(tx, _) => drop(tx.send(Err(error))),
            Reply::Next(tx, _) => drop(tx.send(Err(error))),
        }
    }

    pub(super) fn duplicates(&self) -> u64 {
        match self {
            Reply::Append(_, Ok(outcome)) => outcome.duplicates as u64,
            _ => 0,
        }
    }
}

/// A group being taken: its operations and what it does to the expected client sequence.
pub(super) struct GroupBuilder {
    pub(super) ops: Vec<Op>,
    pub(super) events: usize,
    /// The expected sequence as the group stands so far.
    pub(super) next: i64,
    /// Sequences behind the expected one when their request joined.
    pub(super) behind: Vec<i64>,
}

impl GroupBuilder {
    pub(super) fn new(next: i64) -> Self {
        Self {
            ops: Vec::new(),
            events: 0,
            next,
            behind: Vec::new(),
        }
    }

    /// Adds a request, advancing the expected sequence as the plan will.
    pub(super) fn add(&mut self, op: Op) {
        self.events += op.weight();
        if let Op::Append { events, .. } = &op {
            let mut sequences: Vec<i64> = events.iter().filter_map(|e| e.sequence).collect();
            sequences.sort_unstable();
            for s in sequences {
                if s < self.next {
                    self.behind.push(s);
                }
                self.next = self.next.max(s.saturating_add(1));
            }
        }
        self.ops.push(op);
    }
}
