//! The reorder buffer: requests whose events carry client `sequence` numbers ahead of a gap wait
//! here (their HTTP requests stay open) until the gap fills, the gap timeout passes, or a cap is
//! reached. A request is the unit: a batch is trusted to be in order within itself and waits as
//! a whole while its lowest sequence is ahead of the next expected one. What waits is capped in
//! events and in bytes, per session and over all sessions; a request that would go over a cap
//! gives up the gaps before it at once instead of waiting (its events and the late ones are
//! then stored flagged `out_of_order`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Queued;

pub(super) struct Buffered {
    pub op: Queued,
    /// Lowest and highest sequence in the request.
    pub min: i64,
    pub held: Held,
    pub arrived: Instant,
}

/// What a request holds back while it waits: its events, and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Held {
    pub events: usize,
    pub bytes: usize,
}

impl Held {
    fn plus(self, other: Held) -> Held {
        Held {
            events: self.events + other.events,
            bytes: self.bytes + other.bytes,
        }
    }

    /// Whether this is more than `cap` allows in events or in bytes.
    pub fn exceeds(self, cap: Held) -> bool {
        self.events > cap.events || self.bytes > cap.bytes
    }
}

/// What all sessions hold back together, for the global caps.
#[derive(Debug, Default)]
pub struct ReorderTotals {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

impl ReorderTotals {
    pub(super) fn now(&self) -> Held {
        Held {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub(super) fn add(&self, held: Held) {
        self.events.fetch_add(held.events, Ordering::Relaxed);
        let bytes = self.bytes.fetch_add(held.bytes, Ordering::Relaxed) + held.bytes;
        crate::metrics::REORDER_HELD_BYTES.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub(super) fn remove(&self, held: Held) {
        self.events.fetch_sub(held.events, Ordering::Relaxed);
        let bytes = self.bytes.fetch_sub(held.bytes, Ordering::Relaxed) - held.bytes;
        crate::metrics::REORDER_HELD_BYTES.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

#[derive(Default)]
pub(super) struct ReorderBuffer {
    /// `None` while nothing waits, as in most sessions: every live actor holds a buffer, and
    /// an empty `Vec` inline cost each of them 16 bytes more than the pointer.
    #[allow(clippy::box_collection)] // the point: 8 bytes inline instead of 24
    waiting: Option<Box<Vec<Buffered>>>,
}

impl ReorderBuffer {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none()
    }

    /// Events and bytes held back, for the caps. Counted when asked (at most the per-session
    /// cap of requests), so the empty buffer every actor holds is one pointer.
    pub fn held(&self) -> Held {
        self.iter().fold(Held::default(), |sum, b| sum.plus(b.held))
    }

    /// Whether holding `more` back too would go over a per-session or a global cap.
    pub fn would_exceed(
        &self,
        more: Held,
        totals: &ReorderTotals,
        per_session: Held,
        total: Held,
    ) -> bool {
        self.held().plus(more).exceeds(per_session) || totals.now().plus(more).exceeds(total)
    }

    fn iter(&self) -> impl Iterator<Item = &Buffered> {
        self.waiting.iter().flat_map(|w| w.iter())
    }

    pub fn push(&mut self, op: Queued, min: i64, held: Held) {
        self.waiting
            .get_or_insert_with(Default::default)
            .push(Buffered {
                op,
                min,
                held,
                arrived: Instant::now(),
            });
    }

    /// The waiting request with the lowest sequence, if nothing is missing before it.
    pub fn take_ready(&mut self, next: i64) -> Option<Buffered> {
        let waiting = self.waiting.as_mut()?;
        let (index, _) = waiting
            .iter()
            .enumerate()
            .filter(|(_, b)| b.min <= next)
            .min_by_key(|(_, b)| b.min)?;
        let taken = waiting.swap_remove(index);
        if waiting.is_empty() {
            self.waiting = None;
        }
        Some(taken)
    }

    pub fn has_ready(&self, next: i64) -> bool {
        self.iter().any(|b| b.min <= next)
    }

    /// The lowest sequence waiting.
    pub fn lowest(&self) -> Option<i64> {
        self.iter().map(|b| b.min).min()
    }

    /// The lowest sequence among requests that have waited `gap` or longer.
    pub fn lowest_expired(&self, gap: Duration) -> Option<i64> {
        self.iter()
            .filter(|b| b.arrived.elapsed() >= gap)
            .map(|b| b.min)
            .min()
    }

    /// When the longest-waiting request's gap expires.
    pub fn next_expiry(&self, gap: Duration) -> Option<Duration> {
        self.iter()
            .map(|b| gap.saturating_sub(b.arrived.elapsed()))
            .min()
    }

    pub fn drain(&mut self) -> Vec<Buffered> {
        self.waiting.take().map(|w| *w).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_is_exceeded_in_events_or_in_bytes() {
        let cap = Held {
            events: 10,
            bytes: 1000,
        };
        assert!(!Held {
            events: 10,
            bytes: 1000
        }
        .exceeds(cap));
        assert!(Held {
            events: 11,
            bytes: 0
        }
        .exceeds(cap));
        assert!(
            Held {
                events: 1,
                bytes: 1001
            }
            .exceeds(cap),
            "one large event"
        );
        let totals = ReorderTotals::default();
        totals.add(Held {
            events: 3,
            bytes: 900,
        });
        let buffer = ReorderBuffer::default();
        let one = Held {
            events: 1,
            bytes: 100,
        };
        assert!(!buffer.would_exceed(one, &totals, cap, cap));
        assert!(
            buffer.would_exceed(
                Held {
                    events: 1,
                    bytes: 101
                },
                &totals,
                cap,
                cap
            ),
            "over the total"
        );
        totals.remove(Held {
            events: 3,
            bytes: 900,
        });
        assert_eq!(totals.now(), Held::default());
    }
}
