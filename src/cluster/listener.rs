//! Wake-ups between nodes. A long-poll or stream on one node waits for news in that node's
//! notification feed, which only its own commits fill. Each node announces its commits after
//! they commit (`store::leases::announce_commit`, PostgreSQL `NOTIFY`), and this thread
//! listens on a connection of its own and hints the feed with the newest id it hears of: the
//! waiting readers wake and read the rows from the database. It is only a hint: a lost one
//! costs a reader its wait, never a row, since readers read the database when the feed does not
//! hold what they ask for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

use crate::store::leases::COMMITS_CHANNEL;
use crate::store::NotificationFeed;

/// How often the connection is checked for announcements (without a query: libpq reads what
/// has arrived).
const POLL: Duration = Duration::from_millis(20);

/// The listening thread; stops when dropped.
pub struct CommitListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CommitListener {
    /// Listens on the database at `url` and hints `feed`.
    pub fn start(url: String, feed: Arc<NotificationFeed>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("commit-listener".into())
                .spawn(move || listen(&url, &feed, &stop))
                .expect("spawn the commit listener")
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CommitListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }
}

/// Connects, listens, hints; connects again after a failure.
fn listen(url: &str, feed: &NotificationFeed, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let listening = PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!("LISTEN {COMMITS_CHANNEL}"))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())?;
                Ok(conn)
            });
        let mut conn = match listening {
            Ok(conn) => conn,
            Err(e) => {
                crate::log_limited!(
                    log::Level::Warn,
                    "cannot listen for other nodes' commits ({e}); their readers wait longer"
                );
                std::thread::park_timeout(Duration::from_secs(1));
                continue;
            }
        };
        // Until told to stop, or until the connection fails (then a new one).
        while !stop.load(Ordering::Relaxed) {
            match heard_up_to(&mut conn) {
                Ok(Some(newest)) => feed.hint(newest),
                Ok(None) => {}
                Err(e) => {
                    crate::log_limited!(
                        log::Level::Warn,
                        "the connection listening for other nodes' commits failed: {e}"
                    );
                    break;
                }
            }
            std::thread::park_timeout(POLL);
        }
    }
}

/// The newest notification id announced since the last look, if any.
fn heard_up_to(conn: &mut PgConnection) -> diesel::QueryResult<Option<i64>> {
    let mut newest = None;
    for heard in conn.notifications_iter() {
        newest = newest.max(heard?.payload.parse::<i64>().ok());
    }
    Ok(newest)
}
