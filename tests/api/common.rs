//! Test harness: starts the real service on 127.0.0.1:0 against a fresh database (a temporary
//! SQLite file, or a new database in the PostgreSQL cluster named by ORCH_TEST_POSTGRES_URL)
//! and talks to it over HTTP.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::Method;
use diesel::{Connection, PgConnection, RunQueryDsl};
use orchestrator::config::Config;
use orchestrator::store::DatabaseTarget;
use orchestrator::RunningServer;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database of `backend`. PostgreSQL databases are made in the cluster named by
/// ORCH_TEST_POSTGRES_URL or, without it, in a throwaway cluster these tests start themselves
/// when the PostgreSQL server binaries are installed. `None` only when neither is there on a
/// developer's machine, which is said on the terminal; in CI (CI or ORCH_REQUIRE_POSTGRES set)
/// that fails instead.
pub fn fresh_database(backend: Backend) -> Option<DatabaseTarget> {
    let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
    let name = format!("orch_test_{}_{n}", std::process::id());
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm", ".lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            Some(DatabaseTarget::Sqlite(path))
        }
        Backend::Postgres => {
            let Some(admin_url) = postgres_admin_url() else {
                let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
                    || std::env::var("ORCH_REQUIRE_POSTGRES").is_ok();
                assert!(
                    !required,
                    "PostgreSQL tests are required here, but ORCH_TEST_POSTGRES_URL is not set \
                     and no PostgreSQL server binaries are installed"
                );
                return None;
            };
            let mut admin = PgConnection::establish(&admin_url)
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}"));
            // The name is unique among running test processes; one that exists was left by
            // an earlier process with the same pid (killed before its tests ended). As with
            // the SQLite files above, it is garbage.
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut admin)
                .expect("drop a leftover test database");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(base, _)| base)
                .expect("ORCH_TEST_POSTGRES_URL must end in /DBNAME");
            Some(DatabaseTarget::Postgres(format!("{base}/{name}")))
        }
    }
}

/// The cluster PostgreSQL tests make their databases in (see [`fresh_database`]).
pub fn postgres_admin_url() -> Option<String> {
    static ADMIN_URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ADMIN_URL
        .get_or_init(|| {
            if let Ok(url) = std::env::var("ORCH_TEST_POSTGRES_URL") {
                return Some(url);
            }
            let started = throwaway_cluster::start();
            // Straight to the terminal: libtest captures eprintln! of passing tests.
            let notice = match &started {
                Ok(url) => {
                    format!("NOTICE: PostgreSQL tests run on a throwaway cluster at {url}\n")
                }
                Err(why) => format!(
                    "NOTICE: PostgreSQL tests are SKIPPED: {why}. Set ORCH_TEST_POSTGRES_URL or \
                     install the PostgreSQL server (scripts/test does both)\n"
                ),
            };
            use std::io::Write;
            let _ = std::io::stderr().write_all(notice.as_bytes());
            started.ok()
        })
        .clone()
}

/// A PostgreSQL cluster of the tests' own, in a temporary directory, removed when the test
/// process exits however it exits (the parent-death signal reaches the shell that owns it).
mod throwaway_cluster {
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn bin_dir() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        dirs.sort_by_key(|d| {
            let version = d.parent().and_then(|v| v.file_name()).unwrap_or_default();
            version.to_string_lossy().parse::<u32>().unwrap_or(0)
        });
        dirs.pop()
    }

    /// initdb refuses to run as root; as root the cluster belongs to the postgres user.
    fn as_owner(program: &std::path::Path) -> Command {
        if unsafe { libc::geteuid() } == 0 {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    pub fn start() -> Result<String, String> {
        let bin = bin_dir().ok_or("no PostgreSQL server binaries in /usr/lib/postgresql")?;
        let dir = std::env::temp_dir().join(format!("orch-test-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if unsafe { libc::geteuid() } == 0 {
            Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?;
        }
        let data = dir.join("data");
        let initdb = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let owner = if unsafe { libc::geteuid() } == 0 {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let (pg_ctl, dir_s, data_s) = (
            bin.join("pg_ctl").display().to_string(),
            dir.display().to_string(),
            data.display().to_string(),
        );
        // The shell starts the cluster and, on SIGTERM (sent when the thread that spawned it,
        // which lives as long as the test process, dies), stops it and removes its files.
        let script = format!(
            "trap '{owner}{pg_ctl} -D {data_s} -m immediate stop >/dev/null 2>&1; rm -rf {dir_s}; kill $sleeper 2>/dev/null; exit 0' TERM
             {owner}{pg_ctl} -D {data_s} -l {dir_s}/log -w -t 60 \
                 -o '-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' \
                 start >/dev/null 2>&1 || exit 1
             echo started
             exec >/dev/null 2>&1 </dev/null
             while :; do sleep 3600 & sleeper=$!; wait $sleeper; done"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("throwaway-postgres".into())
            .spawn(move || {
                let mut shell = Command::new("sh");
                shell.arg("-c").arg(script).stdout(Stdio::piped());
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    shell.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                let spawned = shell.spawn();
                let _ = tx.send(spawned.map_err(|e| e.to_string()).and_then(|mut child| {
                    use std::io::Read;
                    let mut line = [0u8; 8];
                    let read = child.stdout.take().map(|mut out| out.read(&mut line));
                    match read {
                        Some(Ok(n)) if n > 0 => Ok(()),
                        _ => Err("pg_ctl start failed".to_owned()),
                    }
                }));
                // The shell's parent-death signal is tied to this thread: it must outlive
                // every test.
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())??;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            use diesel::Connection;
            match diesel::PgConnection::establish(&url) {
                Ok(_) => return Ok(url),
                Err(e) if Instant::now() > deadline => return Err(format!("{url}: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

pub struct TestApp {
    pub http: Client,
    pub database: DatabaseTarget,
    pub server: RunningServer,
    /// Leave the SQLite file in place on drop (it is handed to a restarted server).
    keep_database: bool,
}

impl std::ops::Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.http
    }
}

/// An HTTP client bound to one server (or spread over several), with the helpers the tests
/// share.
pub struct Client {
    pub base_url: String,
    client: awc::Client,
    /// Sent as the bearer key when set.
    pub key: Option<String>,
    /// The servers requests go to in turn, when more than `base_url`: the nodes of a cluster.
    spread: Vec<String>,
    turn: std::cell::Cell<usize>,
    /// Each request on a connection of its own, not kept alive after it.
    own_connections: bool,
}

impl Client {
    pub fn new(base_url: String) -> Self {
        // Connections are dropped before the server's 5 s keep-alive can close them: a
        // connection reused just as the server closes it fails with `Disconnected`. The idle
        // time alone is not enough on a loaded machine: it counts from when the client has
        // read the answer, the server's from when it wrote it, and a starved test task reads
        // late. A connection is therefore also never used more than 3 s after it was opened.
        let connector = awc::Connector::new()
            .conn_keep_alive(Duration::from_secs(2))
            .conn_lifetime(Duration::from_secs(3));
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(90))
            .finish();
        Self {
            base_url,
            client,
            key: None,
            spread: Vec::new(),
            turn: std::cell::Cell::new(0),
            own_connections: false,
        }
    }

    /// A client sending each request to the next of `base_urls` in turn, as a round-robin
    /// proxy in front of a cluster would, each on a connection of its own. Thousands of
    /// requests at once on a loaded machine otherwise meet the race every kept-alive HTTP/1.1
    /// connection has: the server closes an idle connection as the client sends on it, and the
    /// answer is lost (`Connect(Disconnected)`); that is not what the harnesses test.
    pub fn spread(base_urls: Vec<String>) -> Self {
        let mut client = Self::new(base_urls[0].clone());
        client.spread = base_urls;
        client.own_connections = true;
        client
    }

    /// Where a request for `path` goes: the next server in turn.
    fn url(&self, path: String) -> String {
        if self.spread.is_empty() {
            return format!("{}{path}", self.base_url);
        }
        let turn = self.turn.get();
        self.turn.set(turn.wrapping_add(1));
        format!("{}{path}", self.spread[turn % self.spread.len()])
    }
}

/// A response: status, headers that tests look at, and the body as JSON (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
    pub text: String,
}

/// The key of session `sid` in the default scope, for messages sent to the sessions directly.
pub fn default_scope_key(sid: &str) -> orchestrator::actors::messages::SessionKey {
    orchestrator::actors::messages::SessionKey {
        scope: "default".into(),
        session_id: orchestrator::domain::ids::SessionId::parse(sid).unwrap(),
    }
}

impl TestApp {
    /// Tells the registry that generation `generation` of `sid`'s actor is idle: the registry
    /// stops routing to it and the actor drains, as when its idle timeout passes.
    pub async fn passivate(&self, sid: &str, generation: u64) {
        let msg = orchestrator::actors::messages::Passivate {
            key: default_scope_key(sid).into(),
            generation,
            received: None,
            wake_at: None,
        };
        self.server.sessions.passivate(msg).await;
    }

    /// Session actors in memory now (over all shards).
    pub async fn live_session_actors(&self) -> usize {
        self.server.sessions.live_count().await
    }

    /// Session actors started since the server started (each generation counts).
    pub async fn started_session_actors(&self) -> u64 {
        self.server.sessions.started_count()
    }

    /// Starts the service on a fresh database with default settings.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts the service on a fresh database, letting the test adjust the configuration.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let database = fresh_database(backend)?;
        Some(Self::start_on(database, adjust).await)
    }

    /// Starts the service on an existing database (to test restarts).
    pub async fn start_on(database: DatabaseTarget, adjust: impl FnOnce(&mut Config)) -> TestApp {
        // RUST_LOG=… shows the server's log in failing tests.
        let _ = env_logger::builder().is_test(true).try_init();
        let mut config = Config::new(database.clone());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.http_workers = Some(2);
        adjust(&mut config);
        let server = orchestrator::start(config).await.expect("server starts");
        let http = Client::new(format!("http://{}", server.addr));
        TestApp {
            http,
            database,
            server,
            keep_database: false,
        }
    }

    /// Stops the server (gracefully) and gives back its database, e.g. to start another on it.
    pub async fn stop(mut self) -> DatabaseTarget {
        self.keep_database = true;
        self.server.stop().await;
        self.database.clone()
    }
}

impl Client {
    /// Sends a request; `key` overrides the app's bearer key. The path is taken by value so
    /// the returned future borrows only the app.
    pub fn request(
        &self,
        method: Method,
        path: impl Into<String>,
        body: Option<Vec<u8>>,
        key: Option<&str>,
    ) -> impl std::future::Future<Output = Resp> + '_ {
        let url = self.url(path.into());
        let key = key.map(str::to_owned).or_else(|| self.key.clone());
        async move {
            let mut req = self.client.request(method, url);
            if self.own_connections {
                req = req.force_close();
            }
            if let Some(key) = key {
                req = req.insert_header(("Authorization", format!("Bearer {key}")));
            }
            let mut res = match body {
                Some(bytes) => req
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(bytes)
                    .await
                    .expect("request sent"),
                None => req.send().await.expect("request sent"),
            };
            let bytes = res.body().limit(64 << 20).await.expect("response body");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let header = |name: &str| {
                res.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            Resp {
                status: res.status().as_u16(),
                content_type: header("content-type").unwrap_or_default(),
                retry_after: header("retry-after"),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                text,
            }
        }
    }

    /// Like `post`, but a failed connection (server killed mid-request) is `None`, not a panic.
    pub fn try_post(
        &self,
        path: impl Into<String>,
        body: Value,
    ) -> impl std::future::Future<Output = Option<Resp>> + '_ {
        let url = self.url(path.into());
        async move {
            let mut res = self
                .client
                .post(url)
                .insert_header(("Content-Type", "application/json"))
                .send_body(body.to_string())
                .await
                .ok()?;
            let bytes = res.body().limit(64 << 20).await.ok()?;
            Some(Resp {
                status: res.status().as_u16(),
                content_type: String::new(),
                retry_after: None,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }
    }

    pub fn get(&self, path: impl Into<String>) -> impl std::future::Future<Output = Resp> + '_ {
        self.request(Method::GET, path, None, None)
    }

    pub fn put(
        &self,
        path: impl Into<String>,
        body: Value,
    ) -> impl std::future::Future<Output = Resp> + '_ {
        self.request(Method::PUT, path, Some(body.to_string().into_bytes()), None)
    }

    pub fn post(
        &self,
        path: impl Into<String>,
        body: Value,
    ) -> impl std::future::Future<Output = Resp> + '_ {
        self.request(
            Method::POST,
            path,
            Some(body.to_string().into_bytes()),
            None,
        )
    }

    pub fn post_raw(
        &self,
        path: impl Into<String>,
        body: &[u8],
    ) -> impl std::future::Future<Output = Resp> + '_ {
        self.request(Method::POST, path, Some(body.to_vec()), None)
    }

    /// Opens `/v1/stream` and reads `count` SSE messages: (id, event, data). Keep-alive
    /// comments are skipped; fails after 30 s.
    pub async fn sse(
        &self,
        query: &str,
        last_event_id: Option<i64>,
        count: usize,
    ) -> Vec<(i64, String, Value)> {
        let mut seen = 0;
        self.sse_until(query, last_event_id, move |_| {
            seen += 1;
            seen >= count
        })
        .await
    }

    /// Reads SSE messages until `last` says the one just read is the last.
    pub async fn sse_until(
        &self,
        query: &str,
        last_event_id: Option<i64>,
        mut last: impl FnMut(&(i64, String, Value)) -> bool,
    ) -> Vec<(i64, String, Value)> {
        use futures_util::StreamExt;
        let mut req = self
            .client
            .get(format!("{}/v1/stream{query}", self.base_url));
        if let Some(key) = &self.key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        if let Some(id) = last_event_id {
            req = req.insert_header(("Last-Event-ID", id.to_string()));
        }
        let read = async {
            let mut res = req.send().await.expect("stream opened");
            assert_eq!(res.status().as_u16(), 200);
            let content_type = res.headers().get("content-type").unwrap().to_str().unwrap();
            assert_eq!(content_type, "text/event-stream");
            let mut buf = String::new();
            let mut messages = Vec::new();
            'read: loop {
                let Some(chunk) = res.next().await else {
                    // The server ended the stream.
                    break 'read;
                };
                let chunk = chunk.expect("chunk");
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buf.find("\n\n") {
                    let message: String = buf.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, None, None);
                    for line in message.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse::<i64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str::<Value>(v).unwrap());
                        }
                    }
                    if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                        let message = (id, event, data);
                        let done = last(&message);
                        messages.push(message);
                        if done {
                            break 'read;
                        }
                    }
                }
            }
            messages
        };
        actix_rt::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("SSE messages within 30 s")
    }

    /// Every event of a session, oldest first.
    pub async fn all_events(&self, session: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let r = self
                .get(format!(
                    "/v1/sessions/{session}/events?limit=1000&after_seq={after}"
                ))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let page = r.body["events"].as_array().unwrap().clone();
            if page.is_empty() {
                return events;
            }
            after = page.last().unwrap()["seq"].as_i64().unwrap();
            events.extend(page);
        }
    }

    pub async fn all_events_len(&self, session: String) -> usize {
        self.all_events(&session).await.len()
    }

    /// Every notification of the scope (optionally of one session), oldest first.
    pub async fn all_notifications(&self, session: Option<&str>) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let filter = session
                .map(|s| format!("&session_id={s}"))
                .unwrap_or_default();
            let r = self
                .get(format!(
                    "/v1/notifications?limit=1000&after={after}{filter}"
                ))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let page = r.body["notifications"].as_array().unwrap().clone();
            if page.is_empty() {
                return all;
            }
            after = r.body["next_after"].as_i64().unwrap();
            all.extend(page);
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent now; the runtime ends with the test anyway.
        drop(self.server.handle.stop(false));
        if !self.keep_database {
            remove_database(&self.database);
        }
    }
}

/// Removes its database when dropped, at the end of a test or when it panics: for tests that
/// use [`fresh_database`] without a [`TestApp`] (which removes its own).
pub struct RemoveOnDrop(pub DatabaseTarget);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        remove_database(&self.0);
    }
}

/// Removes a database that [`fresh_database`] made, best effort: the SQLite files, or the
/// PostgreSQL database (forcibly, as a stopping server may still hold connections), so a
/// developer's cluster does not collect one database per test run.
fn remove_database(database: &DatabaseTarget) {
    match database {
        DatabaseTarget::Sqlite(path) => {
            // Only files under the temp dir, which this harness named, are removed.
            if path.starts_with(std::env::temp_dir()) {
                let path: PathBuf = path.clone();
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
        DatabaseTarget::Postgres(url) => {
            let (Some(admin_url), Some((_, name))) = (postgres_admin_url(), url.rsplit_once('/'))
            else {
                return;
            };
            if !name.starts_with("orch_test_") {
                return;
            }
            if let Ok(mut admin) = PgConnection::establish(&admin_url) {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = diesel::sql_query(drop).execute(&mut admin) {
                    eprintln!("could not remove test database {name}: {e}");
                }
            }
        }
    }
}

/// An event with the fields most tests need.
pub fn event(event_type: &str, second: u32) -> Value {
    serde_json::json!({
        "event_type": event_type,
        "timestamp": format!("2026-11-22T10:{:02}:{:02}Z", second / 60, second % 60),
    })
}

/// Generates one test per backend for each scenario `async fn name(backend: Backend)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use both_backends;

/// A server process started, not yet known to serve.
pub struct Launched {
    child: std::process::Child,
    address: std::sync::mpsc::Receiver<String>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Launched {
    /// Waits until the process serves (it prints its address); fails with its log if it
    /// exits or takes over a minute.
    pub fn serving(mut self) -> ServerProcess {
        let started = std::time::Instant::now();
        loop {
            match self.address.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    return ServerProcess {
                        child: self.child,
                        http: Client::new(format!("http://{addr}")),
                        log: self.log,
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    if started.elapsed() < Duration::from_secs(60) =>
                {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        // Let the log reader take in the last lines.
                        std::thread::sleep(Duration::from_millis(200));
                        panic!(
                            "the server exited ({status}) before serving:\n{}",
                            self.log.lock().unwrap().join("\n")
                        );
                    }
                }
                Err(_) => panic!(
                    "the server did not print its address:\n{}",
                    self.log.lock().unwrap().join("\n")
                ),
            }
        }
    }
}

/// The real `orchestrator` binary on a database, for tests that kill it (SIGKILL) and restart.
pub struct ServerProcess {
    child: std::process::Child,
    pub http: Client,
    /// Every line the process has written to its log so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    pub fn spawn(database: &DatabaseTarget) -> ServerProcess {
        Self::spawn_with(database, &[])
    }

    /// [`ServerProcess::spawn`] with extra environment variables.
    pub fn spawn_with(database: &DatabaseTarget, env: &[(&str, &str)]) -> ServerProcess {
        Self::spawn_limited(database, env, None)
    }

    /// [`ServerProcess::spawn_with`], its writable data memory limited to `data_bytes`
    /// (RLIMIT_DATA: heap and other private writable mappings) when given: an allocation
    /// beyond it fails and the process aborts, as under a container's memory limit.
    pub fn spawn_limited(
        database: &DatabaseTarget,
        env: &[(&str, &str)],
        data_bytes: Option<u64>,
    ) -> ServerProcess {
        Self::launch(database, env, data_bytes).serving()
    }

    /// Starts the process without waiting for it to serve: several started at once race
    /// each other through their start-up.
    pub fn launch(
        database: &DatabaseTarget,
        env: &[(&str, &str)],
        data_bytes: Option<u64>,
    ) -> Launched {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let url = match database {
            DatabaseTarget::Postgres(url) => url.clone(),
            DatabaseTarget::Sqlite(path) => format!("sqlite://{}", path.display()),
        };
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        command
            .env_remove("ORCH_API_KEYS")
            .env("DATABASE_URL", url)
            .env("ORCH_LISTEN", "127.0.0.1:0")
            // One node per database unless a test names its nodes: a restarted process is the
            // same node and resumes its partitions (see `store::leases::resume`).
            .env("ORCH_NODE_ID", "the-node")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped());
        if let Some(limit) = data_bytes {
            let limit = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn orchestrator");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        // Keeps draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        Launched {
            child,
            address: rx,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, ...); the process may be gone already.
    pub fn signal(&self, name: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit without blocking the test's other tasks.
    pub async fn exited(mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("exit status") {
                return status;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        // It may be gone already (an earlier SIGTERM); the exit status is what matters.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().expect("exit status")
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
