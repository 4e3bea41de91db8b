//! Storage: the one schema shared by PostgreSQL and SQLite, row types, plain query functions
//! (connection in, `QueryResult` out) and the group-commit transaction. Nothing here knows
//! about actors or HTTP; blocking calls into this module happen only on sync threads.

mod connection;
pub mod events;
mod feed;
pub mod interactions;
pub mod leases;
pub mod models;
mod node_lock;
pub mod notifications;
pub mod page;
pub mod schema;
pub mod search;
pub mod sessions;
mod statements;
mod write;

#[cfg(any(test, feature = "test-hooks"))]
pub use connection::migrate_before;
pub(crate) use connection::with_backend;
pub use connection::{
    checkpoint, connect, open_pool, ping, prepare_writer_connection, with_connection,
    DatabaseTarget, DbConnection, DbConnectionManager, DbPool, PoolSettings, PooledConnection,
    DEFAULT_SQLITE_FILE, TRUSTED_AFTER_USE,
};
pub use feed::NotificationFeed;
pub use node_lock::SqliteNodeLock;
pub use write::{commit_batch, Committed, LeaseClaim, NewNotification, SessionWrite};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("cannot open the SQLite file {}: {source}", path.display())]
    OpenSqlite {
        path: std::path::PathBuf,
        source: diesel::ConnectionError,
    },
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error(
        "another orchestrator{} is serving the SQLite database {}: SQLite runs as one node \
         (stop that one, or use PostgreSQL to run several)",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default(),
        path.display()
    )]
    InUse {
        path: std::path::PathBuf,
        holder: Option<u32>,
    },
    /// Writes planned under partition leases this node no longer holds at that epoch: nothing
    /// was committed.
    #[error("partition leases lost: {0:?}")]
    Fenced(Vec<u32>),
}
