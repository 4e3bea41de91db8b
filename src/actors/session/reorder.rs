//! The reorder buffer: requests whose events carry client `sequence` numbers ahead of a gap wait
//! here (their HTTP requests stay open) until the gap fills, the gap timeout passes, or a cap is
//! reached. A request is the unit: a batch is trusted to be in order within itself and waits as
//! a whole while its lowest sequence is ahead of the next expected one.

use std::time::{Duration, Instant};

use super::Queued;

pub(super) struct Buffered {
    pub op: Queued,
    /// Lowest and highest sequence in the request.
    pub min: i64,
    pub events: usize,
    pub arrived: Instant,
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

    /// Events held back, for the caps. Counted when asked (at most the per-session cap of
    /// requests), so the empty buffer every actor holds is one pointer.
    pub fn events(&self) -> usize {
        self.iter().map(|b| b.events).sum()
    }

    fn iter(&self) -> impl Iterator<Item = &Buffered> {
        self.waiting.iter().flat_map(|w| w.iter())
    }

    pub fn push(&mut self, op: Queued, min: i64, events: usize) {
        self.waiting
            .get_or_insert_with(Default::default)
            .push(Buffered {
                op,
                min,
                events,
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
