//! What the session actor queues and what it answers: an [`Op`] is one caller's request (or a
//! timer's) with the channel its answer goes to; a [`Reply`] is the answer a plan decided for
//! it, of any operation's type, held until the group's commit; a [`GroupBuilder`] collects the operations of one group
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
        reply: Answer<EnsureOutcome>,
    },
    Append {
        events: Vec<NewEvent>,
        reply: Answer<AppendOutcome>,
    },
    Create {
        msg: CreateInteraction,
        reply: Answer<(Interaction, bool)>,
    },
    Act {
        id: InteractionId,
        action: Action,
        reply: Answer<ActionOutcome>,
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

/// Where one caller's answer goes.
pub(super) type Answer<T> = oneshot::Sender<Result<T, SessionError>>;

/// An answer decided by a group, sent after its commit, or replaced by the commit's error.
/// One type for every operation: it holds the caller's channel and the decided result, of
/// whatever type that operation answers.
pub(super) struct Reply(Box<dyn Decided + Send>);

impl Reply {
    pub(super) fn new<T: Send + 'static>(to: Answer<T>, result: Result<T, SessionError>) -> Self {
        Self(Box::new(DecidedAnswer { to, result }))
    }

    pub(super) fn succeed(self) {
        self.0.send(None);
    }

    pub(super) fn fail(self, error: SessionError) {
        self.0.send(Some(error));
    }
}

trait Decided {
    /// Sends the decided result, or `failure` in its place.
    fn send(self: Box<Self>, failure: Option<SessionError>);
}

struct DecidedAnswer<T> {
    to: Answer<T>,
    result: Result<T, SessionError>,
}

impl<T: Send> Decided for DecidedAnswer<T> {
    fn send(self: Box<Self>, failure: Option<SessionError>) {
        let answer = match failure {
            Some(error) => Err(error),
            None => self.result,
        };
        // A caller that went away (closed connection) no longer needs the answer.
        drop(self.to.send(answer));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_sends_its_decided_result_or_the_commits_error() {
        let (to, mut answer) = oneshot::channel::<Result<u32, SessionError>>();
        Reply::new(to, Ok(7)).succeed();
        assert!(matches!(answer.try_recv(), Ok(Ok(7))));

        let (to, mut answer) = oneshot::channel::<Result<String, SessionError>>();
        Reply::new(to, Ok("decided".to_owned())).fail(SessionError::Overloaded);
        assert!(matches!(
            answer.try_recv(),
            Ok(Err(SessionError::Overloaded))
        ));

        // A caller that went away costs nothing.
        let (to, answer) = oneshot::channel::<Result<(), SessionError>>();
        drop(answer);
        Reply::new(to, Ok(())).succeed();
    }
}
