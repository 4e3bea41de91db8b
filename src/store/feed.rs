//! The newest committed notifications, in memory. The committer publishes each commit's
//! notification rows here right after the commit (and only then wakes the watchers), so live
//! SSE streams and long-polls read the head of the outbox without a blocking-pool hop and a
//! database query per commit; a reader further behind than the feed holds reads the
//! database as before. The feed holds exactly what the database holds above the id it
//! covers from: rows enter only once committed, in id order, and after a failed commit (which
//! may still have reached the database) it forgets everything until the next commit tells it
//! where it stands again. In a cluster the other nodes' commits are not in it: a commit of
//! this node's that does not follow on from the last starts it over, and another node's
//! announced commit ([`NotificationFeed::hint`]) makes it forget what it holds.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

use super::models::NotificationRow;

pub struct NotificationFeed {
    recent: Mutex<Recent>,
    /// The newest committed notification id, for whoever waits for news.
    newest: watch::Sender<i64>,
    capacity: usize,
    /// The most the rows may take, counted by [`row_bytes`].
    max_bytes: usize,
}

#[derive(Default)]
struct Recent {
    /// Committed rows, ids ascending and without gaps.
    rows: VecDeque<NotificationRow>,
    /// Every committed notification with a greater id is in `rows`; `None` while unknown
    /// (before the first commit, and after a failed one).
    complete_after: Option<i64>,
    /// What `rows` take, by [`row_bytes`].
    bytes: usize,
}

/// What a row takes in memory: its strings and the row itself.
fn row_bytes(row: &NotificationRow) -> usize {
    std::mem::size_of::<NotificationRow>()
        + row.scope.len()
        + row.session_id.len()
        + row.kind.len()
        + row.body.len()
}

impl NotificationFeed {
    /// A feed keeping the newest `capacity` notifications, at most `max_bytes` of them (0:
    /// none, every read goes to the database).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            recent: Mutex::new(Recent::default()),
            newest: watch::channel(0).0,
            capacity,
            max_bytes,
        }
    }

    /// The newest committed notification id, changing with each commit that wrote any.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.newest.subscribe()
    }

    /// Takes one commit's notifications (committed, ids ascending and consecutive) and wakes
    /// the watchers. The rows are in the feed before anyone hears of them, so a reader woken
    /// by this commit finds them. Where the commit's ids start is read from its rows: in a
    /// cluster, other nodes' commits take ids between this node's, and a commit whose first
    /// id does not follow the feed's last starts the feed over.
    pub fn publish(&self, rows: Vec<NotificationRow>) {
        let (Some(first_id), Some(newest)) =
            (rows.first().map(|r| r.id), rows.last().map(|r| r.id))
        else {
            // A commit without notifications changes nothing.
            return;
        };
        if self.capacity > 0 {
            let mut recent = self.lock();
            let follows_on = recent
                .complete_after
                .is_some_and(|after| recent.rows.back().map_or(after, |r| r.id) == first_id - 1);
            if !follows_on {
                // Only the database knows what lies before this commit.
                recent.rows.clear();
                recent.bytes = 0;
                recent.complete_after = Some(first_id - 1);
            }
            recent.bytes += rows.iter().map(row_bytes).sum::<usize>();
            recent.rows.extend(rows);
            while recent.rows.len() > self.capacity || recent.bytes > self.max_bytes {
                let Some(evicted) = recent.rows.pop_front() else {
                    break;
                };
                recent.bytes -= row_bytes(&evicted);
                recent.complete_after = Some(evicted.id);
            }
        }
        self.advance(newest);
    }

    /// Another node committed notifications up to `newest`: readers near the head wake, and
    /// read those from the database, since this feed does not hold them.
    pub fn hint(&self, newest: i64) {
        let holds_it = self.lock().rows.back().is_some_and(|r| r.id >= newest);
        if !holds_it {
            self.forget();
        }
        self.advance(newest);
    }

    /// Makes `newest` the newest committed id, waking the watchers, unless a newer one is known.
    fn advance(&self, newest: i64) {
        self.newest.send_if_modified(|current| {
            let newer = newest > *current;
            if newer {
                *current = newest;
            }
            newer
        });
    }

    /// A commit failed and may or may not have reached the database: the feed no longer knows
    /// the head of the outbox until the next commit.
    pub fn forget(&self) {
        *self.lock() = Recent::default();
    }

    /// Notifications of `scope` (and `session_id`, when given) with ids above `after`, oldest
    /// first, at most `limit`; `None` when the feed does not hold everything above `after`,
    /// and the database must answer.
    pub fn read(
        &self,
        scope: &str,
        after: i64,
        session_id: Option<&str>,
        limit: usize,
        max_bytes: usize,
    ) -> Option<Vec<NotificationRow>> {
        let recent = self.lock();
        let complete_after = recent.complete_after?;
        if after < complete_after {
            return None;
        }
        // Ids are consecutive, so the first row above `after` is found by subtraction.
        let skip = recent.rows.front().map_or(0, |first| {
            usize::try_from(after - first.id + 1).unwrap_or(0)
        });
        let matching: Vec<&NotificationRow> = recent
            .rows
            .iter()
            .skip(skip)
            .filter(|r| r.scope == scope && session_id.is_none_or(|s| r.session_id == s))
            .take(limit)
            .collect();
        // As a listing: the leading rows that fit in the budget, always the first.
        let sizes: Vec<i64> = matching.iter().map(|r| r.body.len() as i64).collect();
        let fit = super::page::rows_within(&sizes, max_bytes);
        Some(matching[..fit].iter().map(|r| (*r).clone()).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        match self.recent.lock() {
            Ok(recent) => recent,
            // A panic while the lock was held may have left the rows half-updated: forget
            // them, and the database answers until the next commit.
            Err(poisoned) => {
                let mut recent = poisoned.into_inner();
                *recent = Recent::default();
                self.recent.clear_poison();
                recent
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, scope: &str, session: &str) -> NotificationRow {
        NotificationRow {
            id,
            scope: scope.into(),
            session_id: session.into(),
            kind: "events.appended".into(),
            at: 0,
            body: "{}".into(),
        }
    }

    fn ids(rows: Option<Vec<NotificationRow>>) -> Option<Vec<i64>> {
        rows.map(|rows| rows.into_iter().map(|r| r.id).collect())
    }

    #[test]
    fn covers_from_its_first_commit_and_filters_by_scope_and_session() {
        let feed = NotificationFeed::new(100, 1 << 20);
        let newest = feed.subscribe();
        assert_eq!(
            ids(feed.read("a", 0, None, 10, usize::MAX)),
            None,
            "nothing known yet"
        );
        feed.publish(vec![
            row(11, "a", "s1"),
            row(12, "b", "s1"),
            row(13, "a", "s2"),
        ]);
        assert_eq!(*newest.borrow(), 13);
        assert_eq!(
            ids(feed.read("a", 9, None, 10, usize::MAX)),
            None,
            "10 may exist"
        );
        assert_eq!(
            ids(feed.read("a", 10, None, 10, usize::MAX)),
            Some(vec![11, 13])
        );
        assert_eq!(
            ids(feed.read("a", 11, None, 10, usize::MAX)),
            Some(vec![13])
        );
        assert_eq!(
            ids(feed.read("a", 10, Some("s2"), 10, usize::MAX)),
            Some(vec![13])
        );
        assert_eq!(
            ids(feed.read("b", 10, None, 10, usize::MAX)),
            Some(vec![12])
        );
        assert_eq!(ids(feed.read("a", 10, None, 1, usize::MAX)), Some(vec![11]));
        assert_eq!(ids(feed.read("a", 13, None, 10, usize::MAX)), Some(vec![]));
        assert_eq!(
            ids(feed.read("a", 50, None, 10, usize::MAX)),
            Some(vec![]),
            "ahead: nothing"
        );
    }

    #[test]
    fn evicts_the_oldest_and_then_sends_older_cursors_to_the_database() {
        let feed = NotificationFeed::new(3, 1 << 20);
        feed.publish(vec![row(1, "a", "s"), row(2, "a", "s")]);
        feed.publish(vec![row(3, "a", "s"), row(4, "a", "s")]);
        assert_eq!(
            ids(feed.read("a", 0, None, 10, usize::MAX)),
            None,
            "1 was evicted"
        );
        assert_eq!(
            ids(feed.read("a", 1, None, 10, usize::MAX)),
            Some(vec![2, 3, 4])
        );
        // A commit without notifications changes nothing.
        feed.publish(Vec::new());
        assert_eq!(
            ids(feed.read("a", 1, None, 10, usize::MAX)),
            Some(vec![2, 3, 4])
        );
    }

    #[test]
    fn evicts_the_oldest_beyond_its_bytes() {
        let one = row_bytes(&row(1, "a", "s"));
        let feed = NotificationFeed::new(100, 3 * one);
        feed.publish(vec![row(1, "a", "s"), row(2, "a", "s")]);
        feed.publish(vec![row(3, "a", "s"), row(4, "a", "s")]);
        assert_eq!(
            ids(feed.read("a", 1, None, 10, usize::MAX)),
            Some(vec![2, 3, 4])
        );
        assert_eq!(
            ids(feed.read("a", 0, None, 10, usize::MAX)),
            None,
            "1 was evicted"
        );
        let mut large = row(5, "a", "s");
        large.body = "x".repeat(3 * one);
        feed.publish(vec![large]);
        assert_eq!(
            ids(feed.read("a", 4, None, 10, usize::MAX)),
            None,
            "too large to keep"
        );
        feed.publish(vec![row(6, "a", "s")]);
        assert_eq!(ids(feed.read("a", 5, None, 10, usize::MAX)), Some(vec![6]));
    }

    #[test]
    fn a_read_takes_the_leading_rows_that_fit_its_bytes_and_always_the_first() {
        let feed = NotificationFeed::new(100, 1 << 20);
        let mut rows: Vec<_> = (1..=4).map(|id| row(id, "a", "s")).collect();
        rows[0].body = "x".repeat(1000);
        feed.publish(rows);
        let per_row = 2 + crate::store::page::ROW_OVERHEAD as usize;
        assert_eq!(ids(feed.read("a", 0, None, 10, 10)), Some(vec![1]), "alone");
        assert_eq!(
            ids(feed.read("a", 1, None, 10, 2 * per_row)),
            Some(vec![2, 3])
        );
        assert_eq!(
            ids(feed.read("a", 1, None, 10, usize::MAX)),
            Some(vec![2, 3, 4])
        );
    }

    #[test]
    fn after_a_failed_commit_it_starts_over_at_the_next_one() {
        let feed = NotificationFeed::new(10, 1 << 20);
        let newest = feed.subscribe();
        feed.publish(vec![row(1, "a", "s")]);
        feed.forget();
        assert_eq!(ids(feed.read("a", 1, None, 10, usize::MAX)), None);
        // The failed commit did reach the database with ids 2 and 3; the committer re-read
        // the highest id and goes on from 4.
        feed.publish(vec![row(4, "a", "s")]);
        assert_eq!(
            ids(feed.read("a", 1, None, 10, usize::MAX)),
            None,
            "2 and 3 are not here"
        );
        assert_eq!(ids(feed.read("a", 3, None, 10, usize::MAX)), Some(vec![4]));
        assert_eq!(*newest.borrow(), 4);
        // A commit that does not follow on (another node's took the ids between) also starts
        // over.
        feed.publish(vec![row(9, "a", "s")]);
        assert_eq!(ids(feed.read("a", 4, None, 10, usize::MAX)), None);
        assert_eq!(ids(feed.read("a", 8, None, 10, usize::MAX)), Some(vec![9]));
    }

    /// In a cluster other nodes' commits take ids between this node's: a commit whose first
    /// id skips past the feed's last does not extend it, or readers would skip the others'.
    #[test]
    fn a_commit_after_another_nodes_starts_over() {
        let feed = NotificationFeed::new(10, 1 << 20);
        feed.publish(vec![row(1, "a", "s"), row(2, "a", "s")]);
        // Ids 3 and 4 went to another node's commit.
        feed.publish(vec![row(5, "a", "s"), row(6, "a", "s")]);
        assert_eq!(
            ids(feed.read("a", 2, None, 10, usize::MAX)),
            None,
            "3 and 4 are in the database only"
        );
        assert_eq!(
            ids(feed.read("a", 4, None, 10, usize::MAX)),
            Some(vec![5, 6])
        );
        feed.publish(vec![row(7, "a", "s")]);
        assert_eq!(
            ids(feed.read("a", 4, None, 10, usize::MAX)),
            Some(vec![5, 6, 7])
        );
    }

    #[test]
    fn with_no_capacity_every_read_goes_to_the_database_and_watchers_still_wake() {
        let feed = NotificationFeed::new(0, 1 << 20);
        let newest = feed.subscribe();
        feed.publish(vec![row(1, "a", "s")]);
        assert_eq!(ids(feed.read("a", 0, None, 10, usize::MAX)), None);
        assert_eq!(ids(feed.read("a", 1, None, 10, usize::MAX)), None);
        assert_eq!(*newest.borrow(), 1);
    }
}
