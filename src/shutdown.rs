//! Graceful stop. actix-web's own graceful stop waits for every open request to finish, and
//! requests that are meant to stay open (SSE streams, long-polls, interaction waits,
//! `commands/next`) would hold it until its timeout. So the service owns the stop: the first
//! SIGTERM or SIGINT trips a [`Shutdown`] signal that every long-lived request watches and ends
//! on at once (streams end, waits answer what they have), then actix-web stops accepting and
//! lets the remaining requests (writes waiting for their commit) finish. A second SIGINT forces.

use tokio::sync::watch;

/// The stop signal as requests see it: cheap to clone, one per request that waits.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// Trips the [`Shutdown`] signal; held by the running server.
#[derive(Clone, Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A new, untripped signal and its trigger.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trip(&self) {
        self.0.send_replace(true);
    }

    /// Another view of the signal this trips.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the server is stopping (at once if it is already).
    pub async fn stopping(&mut self) {
        // An error means the trigger is gone, which happens only when the server is gone.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn trips_every_clone_once_and_for_all() {
        let (trigger, signal) = channel();
        let mut waiting = signal.clone();
        assert!(!signal.is_stopping());
        let waiter = actix_rt::spawn(async move { waiting.stopping().await });
        trigger.trip();
        waiter.await.unwrap();
        assert!(signal.is_stopping());
        // A request that arrives afterwards does not wait at all.
        signal.clone().stopping().await;
    }
}
