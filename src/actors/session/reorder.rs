//! The reorder buffer: requests whose events carry client `sequence` numbers ahead of a gap wait
//! here (their HTTP requests stay open) until the gap fills, the gap timeout passes, or a cap is
//! reached. A request is the unit: a batch is trusted to be in order within itself and waits as
//! a whole while its lowest sequence is ahead of the next expected one.

use std::time::{Duration, Instant};

use super::Op;

pub(super) struct Buffered {
    pub op: Op,
    /// Lowest and highest sequence in the request.
    pub min: i64,
    pub events: usize,
    pub arrived: Instant,
}

#[derive(Default)]
pub(super) struct ReorderBuffer {
    waiting: Vec<Buffered>,
    /// Events held back, for the caps.
    pub events: usize,
}

impl ReorderBuffer {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn push(&mut self, op: Op, min: i64, events: usize) {
        self.events += events;
        self.waiting.push(Buffered {
            op,
            min,
            events,
            arrived: Instant::now(),
        });
    }

    /// The waiting request with the lowest sequence, if nothing is missing before it.
    pub fn take_ready(&mut self, next: i64) -> Option<Buffered> {
        let (index, _) = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, b)| b.min <= next)
            .min_by_key(|(_, b)| b.min)?;
        let taken = self.waiting.swap_remove(index);
        self.events -= taken.events;
        Some(taken)
    }

    pub fn has_ready(&self, next: i64) -> bool {
        self.waiting.iter().any(|b| b.min <= next)
    }

    /// The lowest sequence waiting.
    pub fn lowest(&self) -> Option<i64> {
        self.waiting.iter().map(|b| b.min).min()
    }

    /// The lowest sequence among requests that have waited `gap` or longer.
    pub fn lowest_expired(&self, gap: Duration) -> Option<i64> {
        self.waiting
            .iter()
            .filter(|b| b.arrived.elapsed() >= gap)
            .map(|b| b.min)
            .min()
    }

    /// When the longest-waiting request's gap expires.
    pub fn next_expiry(&self, gap: Duration) -> Option<Duration> {
        self.waiting
            .iter()
            .map(|b| gap.saturating_sub(b.arrived.elapsed()))
            .min()
    }

    pub fn drain(&mut self) -> Vec<Buffered> {
        self.events = 0;
        std::mem::take(&mut self.waiting)
    }
}
