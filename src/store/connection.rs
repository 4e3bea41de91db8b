//! Database connections: which backend a URL names, how a connection is opened and tuned, the
//! r2d2 pool over both backends, and the embedded migrations run at start-up.
//!
//! The backend is chosen from the URL scheme here, never by letting diesel try each variant:
//! a Postgres that is down must surface as a Postgres error, not silently become a SQLite file.

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::StoreError;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The SQLite file used when `DATABASE_URL` is unset.
pub const DEFAULT_SQLITE_FILE: &str = "orchestrator.db";

/// One connection of either backend. The derived `MultiConnection` gives the pool a single
/// connection type; queries that the generic multi-backend cannot express (batch inserts,
/// `RETURNING`) run on the concrete inner connection through [`with_backend!`].
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs the same body against the concrete connection of whichever backend `conn` holds.
macro_rules! with_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Pg($c) => $body,
            $crate::store::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use with_backend;

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseTarget {
    /// `postgres://…`/`postgresql://…` or `sqlite://PATH` (`sqlite:///tmp/x.db` is `/tmp/x.db`);
    /// `None` means the default SQLite file in the working directory.
    pub fn parse(url: Option<&str>) -> Result<Self, StoreError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE)));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config("sqlite:// needs a file path".into()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(StoreError::Config(
            "DATABASE_URL must start with postgres://, postgresql:// or sqlite://".into(),
        ))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// A description safe for logs: never the Postgres URL, which may hold a password.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(_) => "postgres".to_owned(),
            Self::Sqlite(path) => format!("sqlite file {}", path.display()),
        }
    }

    /// Opens a connection; `lock_wait` bounds how long a SQLite statement waits for a lock
    /// held by another connection before it fails (and the request gets a 503).
    fn open(&self, lock_wait: Duration) -> Result<DbConnection, StoreError> {
        match self {
            Self::Postgres(url) => Ok(DbConnection::Pg(PgConnection::establish(url)?)),
            Self::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(&path.to_string_lossy()).map_err(|source| {
                        StoreError::OpenSqlite {
                            path: path.clone(),
                            source,
                        }
                    })?;
                // busy_timeout: readers and the writer share the file; wait (boundedly) rather
                // than fail at once. synchronous=FULL: a 2xx promises durability, also across
                // power loss.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    lock_wait.as_millis()
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// r2d2 manager that opens connections of the configured backend only.
#[derive(Debug)]
pub struct DbConnectionManager {
    target: DatabaseTarget,
    lock_wait: Duration,
}

/// How long after its last successful use a connection is handed out without a `SELECT 1`
/// first. Under load connections come back within milliseconds, so the check (a round trip on
/// PostgreSQL before every look-up and every read) is spared; one that sat idle longer, which
/// a database restart may have cut, is still tested.
pub const TRUSTED_AFTER_USE: Duration = Duration::from_secs(1);

/// A pooled connection, whether work on it failed, and when it last came back to the pool. A
/// connection whose work failed (a dead socket, a broken transaction, anything) is not trusted
/// again: it is closed when it comes back, and the pool opens a new one when needed.
pub struct TrackedConnection {
    conn: DbConnection,
    failed: bool,
    returned_at: std::time::Instant,
}

impl TrackedConnection {
    /// The work done on this connection failed: close it instead of reusing it.
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }
}

impl std::ops::Deref for TrackedConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for TrackedConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl r2d2::ManageConnection for DbConnectionManager {
    type Connection = TrackedConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<TrackedConnection, StoreError> {
        let mut conn = self.target.open(self.lock_wait)?;
        if let DbConnection::Pg(pg) = &mut conn {
            // No statement waits longer than a request may: a statement that runs, or waits
            // for a lock, past ORCH_DB_TIMEOUT_MS fails, and its request is answered 503.
            // (SQLite's lock wait is its busy_timeout, set in `open`.) Migrations run on a
            // connection of their own, without these limits.
            let ms = self.lock_wait.as_millis();
            pg.batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms};"
            ))?;
        }
        Ok(TrackedConnection {
            conn,
            failed: false,
            returned_at: std::time::Instant::now(),
        })
    }

    /// Called before a connection is handed out.
    fn is_valid(&self, conn: &mut TrackedConnection) -> Result<(), StoreError> {
        if conn.returned_at.elapsed() < TRUSTED_AFTER_USE {
            return Ok(());
        }
        ping(conn)
    }

    /// Called when a connection comes back to the pool.
    fn has_broken(&self, conn: &mut TrackedConnection) -> bool {
        conn.returned_at = std::time::Instant::now();
        conn.failed
    }
}

/// One round trip that fails when the connection no longer works.
pub fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    with_backend!(conn, |c| c.batch_execute("SELECT 1"))?;
    Ok(())
}

/// Runs `work` on a pooled connection; if it fails, the connection is closed rather than
/// handed out again (see [`TrackedConnection`]).
pub fn with_connection<T>(
    pool: &DbPool,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.get()?;
    let result = work(&mut conn);
    if result.is_err() {
        conn.mark_failed();
    }
    result
}

pub type DbPool = r2d2::Pool<DbConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<DbConnectionManager>;

/// Pages of its database the committer's SQLite connection may keep in memory (KiB; SQLite's
/// default is 2 MiB). Only the committer writes, so its cache stays valid between commits;
/// with the default, the indexes of a busy database no longer fit and every commit re-reads
/// the index pages it updates.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Tunes a connection that the committer keeps for its writes. On SQLite its commits no
/// longer checkpoint the WAL themselves (the commit that crossed 1,000 pages used to copy them
/// all and fsync the file before answering): [`checkpoint`] does it on another thread. Its
/// statement journals stay in memory: before the INSERTs became `OR ROLLBACK` (which needs
/// none) every multi-row INSERT kept one, and past 64 KiB SQLite spilled it into a temporary
/// file, created, written page by page and deleted in every commit (a third of the commit's
/// `pwrite` calls); what still needs one must not go back to that.
pub fn prepare_writer_connection(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute(&format!(
            "PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 10000; \
             PRAGMA temp_store = MEMORY;"
        ))?;
    }
    Ok(())
}

/// SQLite: copies the committed WAL pages into the database file, without waiting for readers
/// or the writer (PASSIVE), so the WAL can start over. PostgreSQL: nothing to do.
pub fn checkpoint(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
    }
    Ok(())
}

/// Pool settings that matter for behaviour under faults.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request waits for a connection, or (SQLite) for a lock, before it is
    /// answered 503.
    pub connection_timeout: Duration,
}

/// Prepares the database (WAL for SQLite, migrations) and builds the pool.
pub fn connect(target: &DatabaseTarget, settings: &PoolSettings) -> Result<DbPool, StoreError> {
    let mut first = target.open(settings.connection_timeout)?;
    match &mut first {
        DbConnection::Sqlite(c) => {
            // WAL is a property of the file: set it once, before concurrent connections exist,
            // or their first statements race each other into "database is locked".
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| StoreError::Migration(e.to_string()))?;
        }
        DbConnection::Pg(c) => migrate_postgres(c)?,
    }
    drop(first);
    open_pool(target, settings)
}

/// The advisory lock the nodes of a cluster take to migrate one at a time ("orchmigr").
const MIGRATIONS_LOCK: i64 = 0x6f72_6368_6d69_6772;

/// Runs the pending migrations under [`MIGRATIONS_LOCK`]: nodes started together on a new
/// database would otherwise each create the same tables, and all but one fail to start. A
/// node that finds the lock taken waits for it (the lock ends with its holder's connection,
/// also when that node dies), then finds nothing left to do.
fn migrate_postgres(c: &mut PgConnection) -> Result<(), StoreError> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let taken: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS taken")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATIONS_LOCK)
        .get_result(c)?;
    if !taken.taken {
        log::info!("another node is migrating the database; waiting for it");
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATIONS_LOCK)
            .execute(c)?;
    }
    let migrated = c
        .run_pending_migrations(POSTGRES_MIGRATIONS)
        .map(drop)
        .map_err(|e| StoreError::Migration(e.to_string()));
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATIONS_LOCK)
        .execute(c)?;
    migrated
}

/// Prepares a database with the migrations older than `version` (e.g. `2026-11-30-000007`): a
/// test writes rows the way an older binary did, then [`connect`] upgrades them. Not used by
/// the service.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub fn migrate_before(target: &DatabaseTarget, version: &str) -> Result<(), StoreError> {
    fn run<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        c: &mut C,
        source: EmbeddedMigrations,
        version: &str,
    ) -> Result<(), StoreError> {
        let pending = c
            .pending_migrations(source)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        // Versions are the folder names' dates and numbers without dashes.
        let before = version.replace('-', "");
        let older = pending
            .iter()
            .filter(|m| m.name().version().to_string().replace('-', "") < before);
        for migration in older {
            c.run_migration(migration.as_ref())
                .map_err(|e| StoreError::Migration(e.to_string()))?;
        }
        Ok(())
    }
    match &mut target.open(Duration::from_secs(10))? {
        DbConnection::Sqlite(c) => {
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
            run(c, SQLITE_MIGRATIONS, version)
        }
        DbConnection::Pg(c) => run(c, POSTGRES_MIGRATIONS, version),
    }
}

/// Another pool on a database that [`connect`] has prepared: no migrations.
pub fn open_pool(target: &DatabaseTarget, settings: &PoolSettings) -> Result<DbPool, StoreError> {
    let pool = r2d2::Pool::builder()
        .max_size(settings.max_size)
        .connection_timeout(settings.connection_timeout)
        // A database that is down at start-up is an error now, not a hang on first request.
        .min_idle(Some(1))
        .error_handler(Box::new(LimitedLog))
        .build(DbConnectionManager {
            target: target.clone(),
            lock_wait: settings.connection_timeout,
        })?;
    Ok(pool)
}

/// r2d2 logs every failed connection attempt, several a second per pool while the database is
/// down; they go through the limited log instead.
#[derive(Debug)]
struct LimitedLog;

impl r2d2::HandleError<StoreError> for LimitedLog {
    fn handle_error(&self, error: StoreError) {
        crate::log_limited!(log::Level::Error, "cannot connect to the database: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseTarget::parse(None).unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("sqlite:///tmp/x.db")).unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("sqlite://rel.db")).unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("rel.db"))
        );
        assert!(matches!(
            DatabaseTarget::parse(Some("postgresql://u@h/db")).unwrap(),
            DatabaseTarget::Postgres(_)
        ));
        assert!(DatabaseTarget::parse(Some("mysql://x")).is_err());
        assert!(DatabaseTarget::parse(Some("sqlite://")).is_err());
    }

    /// A one-connection pool on a new, migrated SQLite file named after `name`.
    fn sqlite_pool(name: &str) -> (DbPool, PathBuf) {
        let path = std::env::temp_dir().join(format!("orch-{name}-{}.db", std::process::id()));
        let settings = PoolSettings {
            max_size: 1,
            connection_timeout: Duration::from_secs(5),
        };
        let pool = connect(&DatabaseTarget::Sqlite(path.clone()), &settings).unwrap();
        (pool, path)
    }

    fn remove_sqlite(pool: DbPool, path: &std::path::Path) {
        drop(pool);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// A per-connection setting tells a reused connection from a new one.
    fn cache_size(conn: &mut DbConnection) -> i64 {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;
        use diesel::RunQueryDsl;
        let DbConnection::Sqlite(c) = conn else {
            unreachable!("a SQLite pool");
        };
        diesel::select(sql::<BigInt>(
            "(SELECT cache_size FROM pragma_cache_size())",
        ))
        .get_result(c)
        .unwrap()
    }

    #[test]
    fn a_connection_whose_work_failed_is_closed_not_reused() {
        let (pool, path) = sqlite_pool("pool");
        let mark = |conn: &mut DbConnection| -> Result<(), StoreError> {
            conn.batch_execute("PRAGMA cache_size = -1234")?;
            Ok(())
        };
        with_connection(&pool, mark).unwrap();
        let reused = with_connection(&pool, |conn| Ok(cache_size(conn))).unwrap();
        assert_eq!(reused, -1234, "a connection whose work succeeded is reused");

        let failed: Result<(), StoreError> = with_connection(&pool, |conn| {
            conn.batch_execute("SELECT * FROM no_such_table")?;
            Ok(())
        });
        assert!(failed.is_err());
        let fresh = with_connection(&pool, |conn| Ok(cache_size(conn))).unwrap();
        assert_ne!(fresh, -1234, "the failed connection was handed out again");
        remove_sqlite(pool, &path);
    }

    #[test]
    fn the_writer_connection_keeps_its_cache_and_journals_in_memory() {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;
        use diesel::RunQueryDsl;

        let path = std::env::temp_dir().join(format!("orch-writer-{}.db", std::process::id()));
        let target = DatabaseTarget::Sqlite(path.clone());
        let mut conn = target.open(Duration::from_secs(1)).unwrap();
        prepare_writer_connection(&mut conn).unwrap();
        let DbConnection::Sqlite(c) = &mut conn else {
            unreachable!("a SQLite target opens a SQLite connection");
        };
        let mut pragma = |name: &str| -> i64 {
            diesel::select(sql::<BigInt>(&format!(
                "(SELECT {name} FROM pragma_{name}())"
            )))
            .get_result(c)
            .unwrap()
        };
        assert_eq!(pragma("temp_store"), 2, "MEMORY");
        assert_eq!(pragma("cache_size"), -WRITER_CACHE_KIB);
        drop(conn);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn sqlite_notifications_are_keyed_by_their_rowid() {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;
        use diesel::RunQueryDsl;

        let (pool, path) = sqlite_pool("rowid");
        let indexes = with_connection(&pool, |conn| {
            let DbConnection::Sqlite(c) = conn else {
                unreachable!("a SQLite pool");
            };
            // An id that is not the rowid gets an automatic unique index.
            Ok(diesel::select(sql::<BigInt>(
                "(SELECT count(*) FROM pragma_index_list('notifications') \
                  WHERE origin = 'pk')",
            ))
            .get_result::<i64>(c)?)
        })
        .unwrap();
        assert_eq!(indexes, 0);
        remove_sqlite(pool, &path);
    }
}
