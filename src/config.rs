//! Configuration: the one place that reads the environment and the command line. Every setting
//! has an environment variable and a matching flag (`orchestrator --help` lists them), is
//! validated here at start-up, and reaches the rest of the program as a plain [`Config`].

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::store::{DatabaseTarget, StoreError};

/// Errors in the configuration; the process exits with the message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error("ORCH_API_KEYS: {0}")]
    ApiKeys(String),
    #[error("refusing to listen on {0} without API keys: set ORCH_API_KEYS, listen on a loopback address, or pass --allow-insecure")]
    InsecureListen(SocketAddr),
    #[error("{0}")]
    Invalid(String),
}

/// The one scope every request is in when auth is off.
pub const DEFAULT_SCOPE: &str = "default";

/// Bearer keys and the scope each one opens. Only the keys' SHA-256 digests are kept, and a
/// presented key is compared with every one of them in constant time, so neither the answer
/// time nor a memory dump tells a key. Its `Debug` never shows a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<([u8; 32], String)>);

fn key_digest(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// `key1:scopeA,key2:scopeB`; a key may contain `:` (the last one separates the scope).
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let mut keys: HashMap<[u8; 32], String> = HashMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, scope) = entry
                .rsplit_once(':')
                .ok_or_else(|| ConfigError::ApiKeys("each entry must be key:scope".into()))?;
            if key.is_empty() || scope.is_empty() {
                return Err(ConfigError::ApiKeys("empty key or scope".into()));
            }
            if crate::domain::ids::SessionId::parse(scope).is_err() {
                return Err(ConfigError::ApiKeys(format!(
                    "scope {scope:?} must be 1-128 chars of A-Z a-z 0-9 . _ : -"
                )));
            }
            if keys.insert(key_digest(key), scope.to_owned()).is_some() {
                return Err(ConfigError::ApiKeys("a key is listed twice".into()));
            }
        }
        Ok(Self(keys.into_iter().collect()))
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The scopes the keys open, each once; `default` alone when auth is off.
    pub fn scopes(&self) -> Vec<String> {
        if !self.is_enabled() {
            return vec![DEFAULT_SCOPE.to_owned()];
        }
        let mut scopes: Vec<String> = self.0.iter().map(|(_, s)| s.clone()).collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The scope a presented key opens, if it is known. Every stored digest is compared in
    /// full whatever matches, so the time taken does not depend on the key.
    pub fn scope_of(&self, key: &str) -> Option<&str> {
        let presented = key_digest(key);
        let mut found = None;
        for (digest, scope) in &self.0 {
            let difference = digest
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(difference) == 0 {
                found = Some(scope.as_str());
            }
        }
        found
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

/// The validated configuration of one server.
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseTarget,
    pub listen: SocketAddr,
    pub api_keys: ApiKeys,
    pub limits: Limits,
    pub writer: WriterSettings,
    pub sessions: SessionSettings,
    pub db_pool_size: u32,
    /// How long a request waits for the database before it is answered 503.
    pub db_timeout: Duration,
    /// HTTP worker threads; `None` is one per core.
    pub http_workers: Option<usize>,
    /// Threads running session actors (shards of the registry); `None` is one per core.
    pub session_threads: Option<usize>,
    /// An SSE consumer that is behind and takes longer than this to accept one page of
    /// notifications is disconnected (it resumes with Last-Event-ID).
    pub stream_slow_consumer: Duration,
    /// The newest committed notifications kept in memory for streams and long-polls near the
    /// head of the outbox (0: every read goes to the database).
    pub notification_cache: usize,
    /// The most memory those notifications may take.
    pub notification_cache_bytes: usize,
    /// Host names (or `name:port`) the service answers to beyond loopback and the listen
    /// address; `*` for any.
    pub allowed_hosts: Vec<String>,
    /// Origins whose pages may change things here besides the service's own.
    pub allowed_origins: Vec<String>,
    /// Per-scope limits.
    pub scope_limits: ScopeLimits,
    /// This node's place among the nodes on one PostgreSQL database.
    pub cluster: ClusterSettings,
}

/// Cluster mode (PostgreSQL; see `crate::cluster`). A single node is a cluster of one.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Unique among the nodes on one database: 1-64 chars of `A-Z a-z 0-9 . _ : -`.
    pub node_id: String,
    /// How the other nodes reach this one; `None`: `http://` and the address it listens on.
    pub advertise_url: Option<String>,
    /// How long a partition's lease lasts without renewal (renewed every third of it).
    pub lease_ttl: Duration,
}

impl ClusterSettings {
    /// A node id of its own and the default lease.
    pub fn new() -> Self {
        Self {
            node_id: format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            advertise_url: None,
            lease_ttl: Duration::from_secs(10),
        }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// Request limits (contract §1).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    /// A request body must have arrived in full within this; beyond it the answer is 408.
    pub body_timeout: Duration,
    /// The most a listing page may hold (its rows' large columns and an overhead per row);
    /// a page that would hold more ends early and says where to go on.
    pub max_page_bytes: usize,
}

/// What one scope may use at once (see `http::admission`).
#[derive(Clone, Debug)]
pub struct ScopeLimits {
    /// Short requests of one scope running at once.
    pub max_in_flight: usize,
    /// Long-polls, interaction waits and streams of one scope open at once.
    pub max_waits: usize,
    /// Request body bytes per second one scope may send (a second's worth may come at once).
    pub bytes_per_sec: u64,
    /// Short requests one scope may start per second (a second's worth at once).
    pub requests_per_sec: u64,
    /// How long a request over a limit may wait for it before it is answered 429.
    pub queue_wait: Duration,
}

impl Default for ScopeLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_waits: 4096,
            bytes_per_sec: 64 * 1024 * 1024,
            requests_per_sec: 50_000,
            queue_wait: Duration::from_secs(2),
        }
    }
}

/// Group-commit settings of the writer.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// Session writes that may wait for a commit; beyond it callers get 503 `overloaded`.
    pub queue_capacity: usize,
    /// Session writes committed in one transaction at most.
    pub max_batch: usize,
    /// A commit taking longer than this counts as stalled (readiness fails), and a failed one
    /// that took less is retried in smaller groups when its writes may be the cause. The
    /// service sets it to the database timeout.
    pub commit_timeout: Duration,
}

/// Session actor settings.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// An actor with nothing to do for this long is stopped; it reloads on demand.
    pub idle_timeout: Duration,
    /// Dedup keys each live session keeps in memory; older ones are checked in the database.
    pub dedup_cache: usize,
    /// Deadline of an interaction that does not ask for its own `timeout_ms`.
    pub default_interaction_timeout_ms: i64,
    /// How long an event ahead of a gap in client `sequence` numbers waits for it.
    pub reorder_gap: Duration,
    /// Events one session may hold back for reordering; beyond it gaps are given up at once.
    pub reorder_max_per_session: usize,
    /// Events all sessions together may hold back for reordering.
    pub reorder_max_total: usize,
    /// Bytes of event data one session may hold back for reordering.
    pub reorder_max_bytes_per_session: usize,
    /// Bytes of event data all sessions together may hold back for reordering.
    pub reorder_max_bytes_total: usize,
    /// Live session actors kept in memory; past it the least recently used idle ones are
    /// passivated.
    pub max_live_sessions: usize,
}

impl Config {
    /// Defaults for everything but the database, as a test or an embedding program wants them.
    pub fn new(database: DatabaseTarget) -> Self {
        Self {
            database,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_keys: ApiKeys::default(),
            limits: Limits {
                max_body_bytes: 4 * 1024 * 1024,
                max_batch_events: 1000,
                body_timeout: Duration::from_secs(10),
                max_page_bytes: 8 * 1024 * 1024,
            },
            writer: WriterSettings {
                queue_capacity: 10_000,
                max_batch: 512,
                commit_timeout: Duration::from_secs(5),
            },
            sessions: SessionSettings {
                idle_timeout: Duration::from_secs(300),
                dedup_cache: 1024,
                default_interaction_timeout_ms: 30_000,
                reorder_gap: Duration::from_millis(2000),
                reorder_max_per_session: 1000,
                reorder_max_total: 100_000,
                reorder_max_bytes_per_session: 16 * 1024 * 1024,
                reorder_max_bytes_total: 256 * 1024 * 1024,
                max_live_sessions: 100_000,
            },
            session_threads: None,
            db_pool_size: 8,
            db_timeout: Duration::from_secs(5),
            http_workers: None,
            stream_slow_consumer: Duration::from_secs(30),
            notification_cache: 8192,
            notification_cache_bytes: 4 * 1024 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            scope_limits: ScopeLimits::default(),
            cluster: ClusterSettings::new(),
        }
    }

    /// Reads flags and environment; exits with usage on `--help` or a malformed flag.
    pub fn from_env_and_args() -> Result<(Self, String), ConfigError> {
        Cli::parse().into_config()
    }
}

/// Coordinates the sessions of AI coding agents over HTTP.
#[derive(Debug, Parser)]
#[command(
    name = "orchestrator",
    version,
    about,
    after_help = "Claude Code hooks: `orchestrator hook --help` (see the README, \"Use with Claude Code\")."
)]
struct Cli {
    /// postgres://…, postgresql://… or sqlite://PATH; unset: ./orchestrator.db (SQLite)
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Address (or host name) and port to listen on
    #[arg(long, env = "ORCH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Bearer keys and their scopes: key1:scopeA,key2:scopeB (unset: auth off, scope "default")
    #[arg(long, env = "ORCH_API_KEYS", hide_env_values = true)]
    api_keys: Option<String>,
    /// Allow listening on a non-loopback address with auth off (true/false, 1/0, yes/no, on/off)
    #[arg(long, env = "ORCH_ALLOW_INSECURE", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    allow_insecure: bool,
    /// Host names the service answers to beyond loopback and the listen address, comma
    /// separated: name or name:port, `*` for any (e.g. the name a proxy forwards)
    #[arg(long, env = "ORCH_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Origins whose web pages may change things here besides the service's own, comma
    /// separated (e.g. https://dashboard.example.com)
    #[arg(long, env = "ORCH_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Short requests one scope may have running at once (beyond: they wait, then 429)
    #[arg(long, env = "ORCH_SCOPE_MAX_IN_FLIGHT", default_value_t = 256)]
    scope_max_in_flight: usize,
    /// Long-polls, interaction waits and streams one scope may have open at once
    #[arg(long, env = "ORCH_SCOPE_MAX_WAITS", default_value_t = 4096)]
    scope_max_waits: usize,
    /// Request body bytes per second one scope may send (beyond: requests wait, then 429)
    #[arg(long, env = "ORCH_SCOPE_MAX_BYTES_PER_SEC", default_value_t = 64 * 1024 * 1024)]
    scope_max_bytes_per_sec: u64,
    /// Short requests one scope may start per second (beyond: they wait their turn, then 429)
    #[arg(
        long,
        env = "ORCH_SCOPE_MAX_REQUESTS_PER_SEC",
        default_value_t = 50_000
    )]
    scope_max_requests_per_sec: u64,
    /// Milliseconds a request over its scope's limits may wait before it is answered 429
    #[arg(long, env = "ORCH_SCOPE_QUEUE_MS", default_value_t = 2000)]
    scope_queue_ms: u64,
    /// Largest request body in bytes (larger: 413)
    #[arg(long, env = "ORCH_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most events in one batch (more: 413)
    #[arg(long, env = "ORCH_MAX_BATCH_EVENTS", default_value_t = 1000)]
    max_batch_events: usize,
    /// Milliseconds a request body may take to arrive in full (longer: 408)
    #[arg(long, env = "ORCH_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    body_timeout_ms: u64,
    /// Largest listing page in bytes; a page that would hold more ends early (and says so)
    #[arg(long, env = "ORCH_MAX_PAGE_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_page_bytes: usize,
    /// Session writes that may wait for a commit before callers get 503 overloaded
    #[arg(long, env = "ORCH_WRITER_QUEUE", default_value_t = 10_000)]
    writer_queue: usize,
    /// Session writes committed in one transaction at most
    #[arg(long, env = "ORCH_WRITER_MAX_BATCH", default_value_t = 512)]
    writer_max_batch: usize,
    /// Seconds a session actor may sit idle before it is passivated
    #[arg(long, env = "ORCH_SESSION_IDLE_SECS", default_value_t = 300)]
    session_idle_secs: u64,
    /// Dedup keys each live session keeps in memory
    #[arg(long, env = "ORCH_DEDUP_CACHE", default_value_t = 1024)]
    dedup_cache: usize,
    /// Default interaction deadline in milliseconds (1 to 86400000)
    #[arg(long, env = "ORCH_INTERACTION_TIMEOUT_MS", default_value_t = 30_000)]
    interaction_timeout_ms: i64,
    /// Milliseconds an event ahead of a gap in client sequence numbers waits for it
    #[arg(long, env = "ORCH_REORDER_GAP_MS", default_value_t = 2000)]
    reorder_gap_ms: u64,
    /// Events one session may hold back for reordering (beyond: gaps given up at once)
    #[arg(long, env = "ORCH_REORDER_MAX_PER_SESSION", default_value_t = 1000)]
    reorder_max_per_session: usize,
    /// Events all sessions together may hold back for reordering
    #[arg(long, env = "ORCH_REORDER_MAX_TOTAL", default_value_t = 100_000)]
    reorder_max_total: usize,
    /// Bytes of event data one session may hold back for reordering (beyond: gaps given up)
    #[arg(long, env = "ORCH_REORDER_MAX_BYTES_PER_SESSION", default_value_t = 16 * 1024 * 1024)]
    reorder_max_bytes_per_session: usize,
    /// Bytes of event data all sessions together may hold back for reordering
    #[arg(long, env = "ORCH_REORDER_MAX_BYTES_TOTAL", default_value_t = 256 * 1024 * 1024)]
    reorder_max_bytes_total: usize,
    /// Database connections in the pool
    #[arg(long, env = "ORCH_DB_POOL_SIZE", default_value_t = 8)]
    db_pool_size: u32,
    /// Milliseconds a request waits for a database connection before 503
    #[arg(long, env = "ORCH_DB_TIMEOUT_MS", default_value_t = 5000)]
    db_timeout_ms: u64,
    /// Milliseconds an SSE consumer that is behind may take to accept one page (500
    /// notifications) before it is disconnected; it resumes with Last-Event-ID
    #[arg(long, env = "ORCH_STREAM_SLOW_MS", default_value_t = 30_000)]
    stream_slow_ms: u64,
    /// Newest committed notifications kept in memory for live streams and long-polls
    /// (0: every read goes to the database)
    #[arg(long, env = "ORCH_NOTIFICATION_CACHE", default_value_t = 8192)]
    notification_cache: usize,
    /// The most memory those notifications may take, in bytes
    #[arg(long, env = "ORCH_NOTIFICATION_CACHE_BYTES", default_value_t = 4 * 1024 * 1024)]
    notification_cache_bytes: usize,
    /// HTTP worker threads (default: one per core)
    #[arg(long, env = "ORCH_HTTP_WORKERS")]
    http_workers: Option<usize>,
    /// Threads that run session actors; a session always runs on the same one (default: one
    /// per core)
    #[arg(long, env = "ORCH_SESSION_THREADS")]
    session_threads: Option<usize>,
    /// Session actors kept in memory; past it the least recently used idle ones are stopped
    /// (they reload on their next request)
    #[arg(long, env = "ORCH_MAX_LIVE_SESSIONS", default_value_t = 100_000)]
    max_live_sessions: usize,
    /// This node's id among the nodes on one PostgreSQL database [default: a random one]
    #[arg(long, env = "ORCH_NODE_ID")]
    node_id: Option<String>,
    /// How the other nodes reach this one [default: http:// and the listen address]
    #[arg(long, env = "ORCH_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// How long a partition's lease lasts without renewal, in ms (at least 300)
    #[arg(long, env = "ORCH_LEASE_TTL_MS", default_value_t = 10_000)]
    lease_ttl_ms: u64,
    /// Log filter, env_logger syntax (e.g. info, orchestrator=debug)
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

impl Cli {
    fn into_config(self) -> Result<(Config, String), ConfigError> {
        let positive = |name: &str, value: usize| {
            if value == 0 {
                Err(ConfigError::Invalid(format!("{name} must be at least 1")))
            } else {
                Ok(value)
            }
        };
        let mut config = Config::new(DatabaseTarget::parse(self.database_url.as_deref())?);
        config.listen = resolve_listen(&self.listen)?;
        config.api_keys = ApiKeys::parse(self.api_keys.as_deref().unwrap_or(""))?;
        config.limits.max_body_bytes = positive("ORCH_MAX_BODY_BYTES", self.max_body_bytes)?;
        config.limits.max_batch_events = positive("ORCH_MAX_BATCH_EVENTS", self.max_batch_events)?;
        config.limits.body_timeout = Duration::from_millis(positive(
            "ORCH_BODY_TIMEOUT_MS",
            self.body_timeout_ms as usize,
        )? as u64);
        config.limits.max_page_bytes = positive("ORCH_MAX_PAGE_BYTES", self.max_page_bytes)?;
        config.writer.queue_capacity = positive("ORCH_WRITER_QUEUE", self.writer_queue)?;
        config.writer.max_batch = positive("ORCH_WRITER_MAX_BATCH", self.writer_max_batch)?;
        config.sessions.idle_timeout = Duration::from_secs(self.session_idle_secs.max(1));
        config.sessions.dedup_cache = positive("ORCH_DEDUP_CACHE", self.dedup_cache)?;
        if !(1..=crate::domain::interaction::MAX_TIMEOUT_MS).contains(&self.interaction_timeout_ms)
        {
            return Err(ConfigError::Invalid(
                "ORCH_INTERACTION_TIMEOUT_MS must be from 1 to 86400000".into(),
            ));
        }
        config.sessions.default_interaction_timeout_ms = self.interaction_timeout_ms;
        config.sessions.reorder_gap = Duration::from_millis(self.reorder_gap_ms);
        config.sessions.reorder_max_per_session =
            positive("ORCH_REORDER_MAX_PER_SESSION", self.reorder_max_per_session)?;
        config.sessions.reorder_max_total =
            positive("ORCH_REORDER_MAX_TOTAL", self.reorder_max_total)?;
        config.sessions.reorder_max_bytes_per_session = positive(
            "ORCH_REORDER_MAX_BYTES_PER_SESSION",
            self.reorder_max_bytes_per_session,
        )?;
        config.sessions.reorder_max_bytes_total =
            positive("ORCH_REORDER_MAX_BYTES_TOTAL", self.reorder_max_bytes_total)?;
        config.db_pool_size = positive("ORCH_DB_POOL_SIZE", self.db_pool_size as usize)? as u32;
        config.db_timeout = Duration::from_millis(self.db_timeout_ms.max(1));
        config.http_workers = self.http_workers.filter(|n| *n > 0);
        config.session_threads = self.session_threads.filter(|n| *n > 0);
        config.sessions.max_live_sessions =
            positive("ORCH_MAX_LIVE_SESSIONS", self.max_live_sessions)?;
        config.stream_slow_consumer = Duration::from_millis(self.stream_slow_ms);
        config.notification_cache = self.notification_cache;
        config.notification_cache_bytes = self.notification_cache_bytes;
        config.allowed_hosts = self.allowed_hosts;
        config.allowed_origins = self.allowed_origins;
        config.scope_limits = ScopeLimits {
            max_in_flight: positive("ORCH_SCOPE_MAX_IN_FLIGHT", self.scope_max_in_flight)?,
            max_waits: positive("ORCH_SCOPE_MAX_WAITS", self.scope_max_waits)?,
            bytes_per_sec: positive(
                "ORCH_SCOPE_MAX_BYTES_PER_SEC",
                usize::try_from(self.scope_max_bytes_per_sec).unwrap_or(usize::MAX),
            )? as u64,
            requests_per_sec: positive(
                "ORCH_SCOPE_MAX_REQUESTS_PER_SEC",
                usize::try_from(self.scope_max_requests_per_sec).unwrap_or(usize::MAX),
            )? as u64,
            queue_wait: Duration::from_millis(self.scope_queue_ms),
        };
        config.cluster = cluster_settings(self.node_id, self.advertise_url, self.lease_ttl_ms)?;
        if !config.api_keys.is_enabled()
            && !config.listen.ip().is_loopback()
            && !self.allow_insecure
        {
            return Err(ConfigError::InsecureListen(config.listen));
        }
        Ok((config, self.log))
    }
}

/// The cluster settings, checked: a node id of the id alphabet, an `http(s)://` URL, a lease
/// long enough to be renewed in time.
fn cluster_settings(
    node_id: Option<String>,
    advertise_url: Option<String>,
    lease_ttl_ms: u64,
) -> Result<ClusterSettings, ConfigError> {
    let mut settings = ClusterSettings::new();
    if let Some(id) = node_id {
        crate::domain::ids::SessionId::parse(&id)
            .ok()
            .filter(|_| id.len() <= 64)
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "ORCH_NODE_ID must be 1-64 chars of A-Z a-z 0-9 . _ : -".into(),
                )
            })?;
        settings.node_id = id;
    }
    if let Some(url) = advertise_url {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.len() > 2048 {
            return Err(ConfigError::Invalid(
                "ORCH_ADVERTISE_URL must be an http:// or https:// URL".into(),
            ));
        }
        settings.advertise_url = Some(url.trim_end_matches('/').to_owned());
    }
    if lease_ttl_ms < 300 {
        return Err(ConfigError::Invalid(
            "ORCH_LEASE_TTL_MS must be at least 300".into(),
        ));
    }
    settings.lease_ttl = Duration::from_millis(lease_ttl_ms);
    Ok(settings)
}

/// `host:port` where host is an IP address or a name; a name is resolved once, at start-up,
/// and the server listens on its first address.
fn resolve_listen(spec: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let invalid = |why: String| ConfigError::Invalid(format!("ORCH_LISTEN {spec:?}: {why}"));
    spec.to_socket_addrs()
        .map_err(|e| invalid(format!("{e} (expected host:port)")))?
        .next()
        .ok_or_else(|| invalid("the host name has no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["orchestrator"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?
            .into_config()
            .map(|(c, _)| c)
    }

    #[test]
    fn parses_api_keys() {
        let keys = ApiKeys::parse("k1:a, k:2:b").unwrap();
        assert_eq!(keys.scope_of("k1"), Some("a"));
        assert_eq!(keys.scope_of("k:2"), Some("b"));
        assert_eq!(keys.scope_of("nope"), None);
        assert!(!ApiKeys::parse("").unwrap().is_enabled());
        assert!(ApiKeys::parse("novalue").is_err());
        assert!(ApiKeys::parse("k:").is_err());
        assert!(ApiKeys::parse("k:a,k:b").is_err());
        assert!(ApiKeys::parse("k:bad scope").is_err());
        assert!(!format!("{keys:?}").contains("k1"));
    }

    #[test]
    fn refuses_open_non_loopback_listening_without_keys() {
        assert!(matches!(
            cli(&["--listen", "0.0.0.0:8080"]),
            Err(ConfigError::InsecureListen(_))
        ));
        assert!(cli(&["--listen", "0.0.0.0:8080", "--allow-insecure"]).is_ok());
        assert!(cli(&["--listen", "0.0.0.0:8080", "--api-keys", "k:s"]).is_ok());
        assert!(cli(&["--listen", "127.0.0.1:9000"]).is_ok());
    }

    #[test]
    fn accepts_the_usual_spellings_of_a_flag() {
        for yes in ["1", "true", "yes", "on", "TRUE"] {
            let config = cli(&[
                "--listen",
                "0.0.0.0:8080",
                &format!("--allow-insecure={yes}"),
            ]);
            assert!(config.is_ok(), "{yes}");
        }
        for no in ["0", "false", "no", "off"] {
            let config = cli(&[
                "--listen",
                "0.0.0.0:8080",
                &format!("--allow-insecure={no}"),
            ]);
            assert!(
                matches!(config, Err(ConfigError::InsecureListen(_))),
                "{no}"
            );
        }
        assert!(cli(&["--allow-insecure=maybe"]).is_err());
    }

    #[test]
    fn listens_on_host_names() {
        let config = cli(&["--listen", "localhost:8083"]).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 8083);
        let err = cli(&["--listen", "localhost"]).err().unwrap().to_string();
        assert!(err.contains("ORCH_LISTEN"), "{err}");
        assert!(cli(&["--listen", "no-such-host.invalid:80"]).is_err());
    }

    #[test]
    fn rejects_zero_limits() {
        assert!(cli(&["--max-batch-events", "0"]).is_err());
        assert!(cli(&["--writer-queue", "0"]).is_err());
    }

    #[test]
    fn cluster_settings_are_checked() {
        let c = cli(&[
            "--node-id",
            "node-a",
            "--advertise-url",
            "http://10.0.0.5:8080/",
            "--lease-ttl-ms",
            "3000",
        ])
        .unwrap();
        assert_eq!(c.cluster.node_id, "node-a");
        assert_eq!(
            c.cluster.advertise_url.as_deref(),
            Some("http://10.0.0.5:8080")
        );
        assert_eq!(c.cluster.lease_ttl, Duration::from_millis(3000));
        let default = cli(&[]).unwrap().cluster;
        assert!(default.node_id.starts_with("node-") && default.advertise_url.is_none());
        assert_ne!(
            default.node_id,
            cli(&[]).unwrap().cluster.node_id,
            "random per node"
        );
        assert_eq!(default.lease_ttl, Duration::from_secs(10));
        for bad in [
            &["--node-id", "a b"][..],
            &["--node-id", ""],
            &["--node-id", &"n".repeat(65)],
            &["--advertise-url", "10.0.0.5:8080"],
            &["--lease-ttl-ms", "299"],
        ] {
            assert!(cli(bad).is_err(), "{bad:?}");
        }
    }
}
