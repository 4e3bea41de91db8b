//! Where callers' answers go: each command's reply channel ([`Answer`]), and the answer a
//! group decided for it ([`Reply`]), held until the group's commit and then sent, or replaced
//! by the commit's error.

use tokio::sync::oneshot;

use crate::actors::error::SessionError;
use crate::domain::interaction::Interaction;

/// Where one caller's answer goes.
pub(crate) type Answer<T> = oneshot::Sender<Result<T, SessionError>>;
/// A `wait` caller's channel.
pub(super) type WaitReply = Answer<Interaction>;
/// A `commands/next` caller's channel.
pub(super) type NextReply = Answer<Option<Interaction>>;

/// A `commands/next` caller: how long it waits, which commands it takes, where its answer goes.
pub(super) struct NextRequest {
    pub wait: std::time::Duration,
    pub takes: crate::domain::interaction::CommandFilter,
    pub reply: NextReply,
}

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
