//! Start-up: the service assembled from its parts and set serving. [`start`] opens the
//! database (running its migrations), starts the committer and the session registries,
//! wakes the sessions whose deadlines are due, and serves HTTP behind the connection guard,
//! the cross-site checks, admission and the request metrics; [`RunningServer`] stops it.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::rt::net::TcpStream;

use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Condition, Logger, Next};
use actix_web::{web, App};

use crate::actors::{SessionHandle, Writer};
use crate::cluster::keeper::{LeaseKeeper, Ownership};
use crate::config::Config;
use crate::http::guard::{ConnectionRules, GuardedStream};
use crate::store::{PoolSettings, StoreError};
use crate::{actors, cluster, config, dashboard, domain, http, metrics, shutdown, store};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("start-up task failed: {0}")]
    Blocking(String),
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
}

/// A running server.
pub struct RunningServer {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    /// The listening socket, shared with the server's accept thread: closed to new
    /// connections first when the server stops ([`stop_http`]).
    doorway: Doorway,
    /// The sessions, for callers that need to reach them directly (tests, diagnostics).
    pub sessions: SessionHandle,
    /// The writer, for diagnostics and tests.
    pub writer: Writer,
    shutdown: shutdown::ShutdownTrigger,
    serving: actix_rt::task::JoinHandle<std::io::Result<()>>,
    /// Held while serving a SQLite database; released when the server stops.
    sqlite_lock: std::sync::Mutex<Option<store::SqliteNodeLock>>,
    /// This node's leases on a PostgreSQL database; handed back when the server stops.
    lease_keeper: Option<Arc<LeaseKeeper>>,
    /// Hears of the other nodes' commits (PostgreSQL); stops when the server is dropped.
    _commit_listener: Option<cluster::listener::CommitListener>,
}

/// How long requests that are still running may take to finish once the server stops.
/// Long-lived requests end at once on the stop signal; what remains are writes waiting for
/// their commit, which the database's own timeouts bound well below this.
const SHUTDOWN_GRACE_SECS: u64 = 10;

/// Once the server stops, idle connections are closed (a kept-alive one would hold the stop
/// until its keep-alive ends), but a connection accepted less than this long ago is given the
/// rest of it first. Its request may already be on the wire, unread: closing the connection
/// then resets it, and its client cannot tell whether the request was served (on a busy
/// machine a connection can sit unread for over a second; tests/api/cluster/failover.rs).
/// 5 s is the keep-alive time, so a stop takes no longer than an idle connection's keep-alive
/// would have held it anyway.
const FIRST_REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the accept thread and the workers are given, once no new connection can arrive,
/// to take up the connections the kernel has already completed.
const QUEUED_CONNECTIONS_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Stops the HTTP server gracefully. actix-server's own stop closes the listening socket while
/// it stops the workers: the kernel resets the connections not yet accepted, and a worker drops
/// the ones still queued for it, unserved. A client (or a proxy) that sent its request on one
/// cannot tell whether it was served (tests/api/cluster/proxy.rs restarts nodes under load
/// behind nginx). So first the listening socket
/// stops taking new connections: a socket filter drops every packet that reaches it, so a new
/// client's SYN goes unanswered, its retry a second later is refused, and it knows nothing was
/// sent. The connections already made are accepted and taken up meanwhile, and only then does
/// actix-server stop, with every worker finishing its running requests.
async fn stop_http(handle: ServerHandle, doorway: Doorway) {
    // Classic BPF, one instruction: return 0, "keep no byte of this packet".
    const DROP_EVERYTHING: [socket2::SockFilter; 1] = [socket2::SockFilter::new(0x06, 0, 0, 0)];
    let filtered = match lock(&doorway).as_ref() {
        Some(socket) => socket.attach_filter(&DROP_EVERYTHING),
        None => Ok(()),
    };
    if let Err(e) = filtered {
        log::warn!("could not close the listening socket to new connections first: {e}");
    }
    actix_rt::time::sleep(QUEUED_CONNECTIONS_GRACE).await;
    let stopped = handle.stop(true);
    // The accept thread lets go of its copy as it stops; with this one gone the socket closes,
    // and new connections are refused at once while the workers finish.
    lock(&doorway).take();
    stopped.await;
}

/// This process's copy of the listening socket (`None` once let go).
type Doorway = Arc<std::sync::Mutex<Option<socket2::Socket>>>;

fn lock(doorway: &Doorway) -> std::sync::MutexGuard<'_, Option<socket2::Socket>> {
    // Poisoned only by a panic while held; the socket inside is still good to close.
    doorway
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RunningServer {
    /// Runs until the server stops ([`RunningServer::stop`], or a signal under
    /// [`RunningServer::serve_until_signalled`]).
    pub async fn wait(self) -> std::io::Result<()> {
        let keeper = self.lease_keeper.clone();
        let served = self.serving.await.map_err(std::io::Error::other);
        leave_cluster(keeper).await;
        served?
    }

    /// Stops gracefully: ends streams and long waits, stops accepting, lets running requests
    /// finish. Returns once the server has stopped.
    pub async fn stop(&self) {
        self.shutdown.trip();
        stop_http(self.handle.clone(), self.doorway.clone()).await;
        if let Ok(mut lock) = self.sqlite_lock.lock() {
            lock.take();
        }
        leave_cluster(self.lease_keeper.clone()).await;
    }

    /// Serves until SIGTERM or SIGINT, then stops gracefully; a second SIGINT (Ctrl-C) while
    /// stopping exits at once.
    pub async fn serve_until_signalled(self) -> std::io::Result<()> {
        use actix_rt::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (handle, doorway) = (self.handle.clone(), self.doorway.clone());
        let (trigger, mut stopping) = (self.shutdown.clone(), self.shutdown_signal());
        actix_rt::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => log::info!("SIGTERM: stopping"),
                _ = interrupt.recv() => log::info!("SIGINT: stopping (Ctrl-C again to force)"),
                _ = stopping.stopping() => {}
            }
            trigger.trip();
            actix_rt::spawn(stop_http(handle, doorway));
            if interrupt.recv().await.is_some() {
                log::warn!("second SIGINT: exiting without waiting for running requests");
                std::process::exit(130);
            }
        });
        self.wait().await
    }

    fn shutdown_signal(&self) -> shutdown::Shutdown {
        self.shutdown.subscribe()
    }
}

/// Hands this node's partitions back, once it no longer serves: the other nodes take them at
/// once instead of when the leases expire.
async fn leave_cluster(keeper: Option<Arc<LeaseKeeper>>) {
    if let Some(keeper) = keeper {
        let _ = web::block(move || keeper.leave()).await;
    }
}

/// Migrates the database, starts the actors and the HTTP server, which serves from then on.
/// Must run inside an actix system.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    metrics::init();
    let target = config.database.clone();
    let sqlite_lock = match &target {
        store::DatabaseTarget::Sqlite(path) => Some(store::SqliteNodeLock::take(path)?),
        store::DatabaseTarget::Postgres(_) => None,
    };
    let read_settings = PoolSettings {
        max_size: config.db_pool_size,
        connection_timeout: config.db_timeout,
    };
    // Two pools, so that a flood of reads (any tenant's) cannot take the connections that
    // session actors load with and the committer writes with: those have their own, sized like
    // the readers' plus the committer's, one for SQLite's checkpointer or PostgreSQL's search
    // indexer, and one for PostgreSQL's lease keeper.
    let session_settings = PoolSettings {
        max_size: config.db_pool_size + 3,
        connection_timeout: config.db_timeout,
    };
    let (pool, session_pool, session_keys) = web::block(move || {
        let pool = store::connect(&target, &read_settings)?;
        let session_pool = store::open_pool(&target, &session_settings)?;
        let session_keys = store::with_connection(&session_pool, |conn| {
            Ok::<_, StoreError>(match conn {
                // Nodes of a cluster take keys in blocks, so that no two give out the same.
                store::DbConnection::Pg(pg) => {
                    let (start, end) =
                        store::leases::reserve_session_keys(pg, cluster::SESSION_KEY_BLOCK)?;
                    store::sessions::SessionKeys::in_block(start, end)
                }
                store::DbConnection::Sqlite(_) => {
                    store::sessions::SessionKeys::starting_at(store::sessions::next_key(conn)?)
                }
            })
        })?;
        Ok::<_, StoreError>((pool, session_pool, Arc::new(session_keys)))
    })
    .await
    .map_err(|e| StartError::Blocking(e.to_string()))??;
    log::info!("database ready: {}", config.database.describe());

    let (shutdown_trigger, shutdown) = shutdown::channel();
    let feed = std::sync::Arc::new(store::NotificationFeed::new(
        config.notification_cache,
        config.notification_cache_bytes,
    ));
    let wal_checkpoints = matches!(config.database, store::DatabaseTarget::Sqlite(_));
    let writer_settings = config::WriterSettings {
        commit_timeout: config.db_timeout,
        ..config.writer.clone()
    };
    let writer = Writer::start(
        session_pool.clone(),
        writer_settings,
        feed.clone(),
        wal_checkpoints,
    );
    // On PostgreSQL the node's leases decide which sessions it serves; filled by the lease
    // keeper before the server serves.
    let ownership = matches!(config.database, store::DatabaseTarget::Postgres(_))
        .then(|| Arc::new(Ownership::default()));
    let member = ownership.clone().map(|ownership| {
        Arc::new(cluster::Member {
            node_id: config.cluster.node_id.as_str().into(),
            ownership,
            lease_ttl: config.cluster.lease_ttl,
        })
    });
    let session_threads = config.session_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let sessions = SessionHandle::start(
        session_pool.clone(),
        writer.clone(),
        config.sessions.clone(),
        session_keys.clone(),
        session_threads,
        config.db_timeout,
        member.clone(),
    );
    let listener = listen(config.listen).map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let doorway = listener
        .try_clone()
        .map(|shared| Arc::new(std::sync::Mutex::new(Some(socket2::Socket::from(shared)))))
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    // A single node on PostgreSQL is a cluster of one: it holds every partition's lease.
    let lease_keeper = match ownership.clone() {
        None => None,
        Some(ownership) => {
            let advertise_url = config
                .cluster
                .advertise_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}"));
            log::info!(
                "cluster node {} (reached at {advertise_url}), leases of {} ms",
                config.cluster.node_id,
                config.cluster.lease_ttl.as_millis()
            );
            let (pool, settings) = (session_pool.clone(), config.cluster.clone());
            let keys = session_keys.clone();
            let on_taken = take_over_deadlines(session_pool.clone(), sessions.clone());
            let keeper = web::block(move || {
                LeaseKeeper::start(pool, settings, advertise_url, ownership, keys, on_taken)
            })
            .await
            .map_err(|e| StartError::Blocking(e.to_string()))?
            .map_err(StartError::Cluster)?;
            Some(Arc::new(keeper))
        }
    };
    // Readers here wake for the other nodes' commits, and the others for this node's (as long
    // as it does not hold every partition: then there is nobody to tell).
    let commit_listener = match (&config.database, &ownership) {
        (store::DatabaseTarget::Postgres(url), Some(ownership)) => {
            let ownership = ownership.clone();
            writer.announce_commits(Arc::new(move || !ownership.holds_all()));
            Some(cluster::listener::CommitListener::start(
                url.clone(),
                feed.clone(),
            ))
        }
        _ => None,
    };
    // After the first lease round: on PostgreSQL only the sessions this node holds wake here.
    wake_sessions_with_deadlines(&session_pool, &sessions).await?;
    let state = web::Data::new(http::AppState {
        sessions: sessions.clone(),
        writer: writer.clone(),
        pool,
        api_keys: config.api_keys.clone(),
        limits: config.limits.clone(),
        db_timeout: config.db_timeout,
        default_interaction_timeout_ms: config.sessions.default_interaction_timeout_ms,
        notification_feed: feed,
        stream_slow_consumer: config.stream_slow_consumer,
        shutdown,
        stream_tokens: http::StreamTokens::default(),
        site_policy: http::cross_site::SitePolicy::new(
            config.listen,
            &config.allowed_hosts,
            &config.allowed_origins,
        ),
        admission: http::admission::Admission::new(
            config.scope_limits.clone(),
            config.api_keys.scopes(),
        ),
        claude_code_joins: Default::default(),
        cluster: member,
    });

    let access_log = log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
    let connection_rules = Arc::new(ConnectionRules::new(config.limits.body_timeout));
    let app = {
        let connection_rules = connection_rules.clone();
        move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(http::admission::admit))
                .wrap(from_fn(http::cross_site::enforce))
                .wrap(from_fn(observe_requests))
                .wrap(from_fn(http::answer_head_like_get))
                // Request id, method, path, status and time; never the query string (it may
                // carry a stream token), other headers (keys) or bodies. Left out when RUST_LOG
                // would drop its lines: it formats them either way.
                .wrap(Condition::new(
                    access_log,
                    Logger::new("%{x-request-id}o %{method}xi %U %s %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                ))
                .configure(|cfg| http::guard::configure(cfg, &connection_rules))
                .configure(dashboard::configure)
                .configure(http::configure)
        }
    };
    // Signals are handled by `serve_until_signalled`, which ends long-lived requests first.
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECS);
    if let Some(workers) = config.http_workers {
        builder = builder.workers(workers);
    }
    let idle_connections_close = builder.graceful_shutdown_signal();
    // A client that accepts nothing (its receive window stays shut) is cut off by the kernel
    // after this long: an SSE consumer that never reads is not polled by actix, so no timer of
    // ours would see it. Healthy idle connections have nothing unacknowledged and stay.
    let accept_timeout = config.stream_slow_consumer;
    let server = builder
        .listen("orchestrator", listener, move || {
            let rules = connection_rules.clone();
            let closing = idle_connections_close.clone();
            let http = HttpService::build()
                // Called as a connection is accepted: once the server stops, the connection is
                // closed when idle, but not before it has had its grace to send a request.
                .graceful_shutdown_signal(move || {
                    let closing = closing.clone();
                    let accepted = actix_rt::time::Instant::now();
                    async move {
                        closing.notified().await;
                        actix_rt::time::sleep_until(accepted + FIRST_REQUEST_GRACE).await;
                    }
                })
                // The guard times slow heads out and answers them; the codec's own timer, which
                // answers with an empty 408, is off.
                .client_request_timeout(std::time::Duration::ZERO)
                // As actix-web's own server: a closing connection waits 1 s for the client.
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                // A client that closes its side ends its request: the handler future is
                // dropped, which releases long waits (interaction waits, commands/next,
                // long-polls) at once instead of keeping their waiters until they time out.
                .h1_allow_half_closed(false)
                .local_addr(addr)
                // No handler asks for the connection's host or local address (what AppConfig
                // carries), so the default one serves.
                .h1(map_config(
                    app().into_factory().map_err(|e| e.error_response()),
                    |_| AppConfig::default(),
                ));
            fn_service(move |tcp: TcpStream| {
                // Stream messages and small answers go out at once. With Nagle's algorithm a
                // message written while the previous one is unacknowledged waited for the
                // client's delayed ACK: 40 ms added to 1-2% of notifications.
                if let Err(e) = tcp.set_nodelay(true) {
                    log::warn!("cannot set TCP_NODELAY: {e}");
                }
                if let Err(e) =
                    socket2::SockRef::from(&tcp).set_tcp_user_timeout(Some(accept_timeout))
                {
                    log::warn!("cannot set TCP_USER_TIMEOUT: {e}");
                }
                let peer = tcp.peer_addr().ok();
                std::future::ready(Ok((GuardedStream::new(tcp, rules.clone()), peer)))
            })
            .and_then(http)
        })
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    if !config.api_keys.is_enabled() && !addr.ip().is_loopback() {
        log::warn!(
            "listening on {addr}, beyond this machine, with auth off: anyone who can reach it \
             can read and change every session; set ORCH_API_KEYS"
        );
    }
    let server: Server = server.run();
    let handle = server.handle();
    Ok(RunningServer {
        addr,
        handle,
        doorway,
        sessions,
        writer,
        shutdown: shutdown_trigger,
        serving: actix_rt::spawn(server),
        sqlite_lock: std::sync::Mutex::new(sqlite_lock),
        lease_keeper,
        _commit_listener: commit_listener,
    })
}

/// A listening socket on `addr`, as actix-web's own server makes it (address reuse, a backlog
/// of 1024).
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Schedules a wake-up of every session with a pending interaction at its earliest deadline,
/// so deadlines that passed while the server was down fire now (once: the actor's timeout is a
/// committed state change) and later ones fire on time. No session is loaded before then.
async fn wake_sessions_with_deadlines(
    pool: &store::DbPool,
    sessions: &SessionHandle,
) -> Result<(), StartError> {
    let (pool, sessions) = (pool.clone(), sessions.clone());
    let woken = web::block(move || wake_pending_deadlines(&pool, &sessions, |_| true))
        .await
        .map_err(|e| StartError::Blocking(e.to_string()))??;
    if woken > 0 {
        log::info!(
            "{woken} sessions have pending interactions; each wakes at its earliest deadline"
        );
    }
    Ok(())
}

/// Has every session with pending interactions that `wanted` picks woken at its earliest
/// deadline; how many. Blocks on the database.
fn wake_pending_deadlines(
    pool: &store::DbPool,
    sessions: &SessionHandle,
    wanted: impl Fn(&actors::messages::SessionKey) -> bool,
) -> Result<usize, StoreError> {
    let deadlines = store::with_connection(pool, |conn| {
        Ok::<_, StoreError>(store::interactions::earliest_deadlines(conn)?)
    })?;
    let mut woken = 0;
    for (scope, session_id, deadline) in deadlines {
        match domain::ids::SessionId::parse(&session_id) {
            Ok(session_id) => {
                let key = actors::messages::SessionKey { scope, session_id };
                if wanted(&key) {
                    sessions.wake_at(key, deadline);
                    woken += 1;
                }
            }
            Err(e) => log::error!("stored session id {session_id:?} is invalid: {e}"),
        }
    }
    Ok(woken)
}

/// What a node does with partitions it takes over from another: their sessions' pending
/// deadlines are armed here, as at start-up (the sessions may not be used again soon).
fn take_over_deadlines(pool: store::DbPool, sessions: SessionHandle) -> cluster::keeper::OnTaken {
    Arc::new(move |taken: &[u32], partitions: u32| {
        let taken: std::collections::HashSet<u32> = taken.iter().copied().collect();
        let in_taken = |key: &actors::messages::SessionKey| {
            let partition =
                cluster::partition::partition_of(&key.scope, key.session_id.as_str(), partitions);
            taken.contains(&partition)
        };
        match wake_pending_deadlines(&pool, &sessions, in_taken) {
            Ok(0) => {}
            Ok(woken) => log::info!("{woken} sessions taken over have pending deadlines; armed"),
            Err(e) => log::warn!("deadlines of partitions taken over not armed ({e}); they fire when their sessions are next used"),
        }
    })
}

/// Gives every request an id (the caller's `X-Request-Id` when it is sane, else a new one),
/// echoed in the response and the log line, and counts and times it by route pattern (not by
/// path: ids would explode the label set).
async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let started = std::time::Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut response = next.call(req).await?;
    let stopping = response
        .request()
        .app_data::<web::Data<http::AppState>>()
        .is_some_and(|state| state.shutdown.is_stopping());
    if stopping {
        // An idle kept-alive connection would hold the stop until its keep-alive ends.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    let route = response
        .request()
        .app_data::<http::RoutePattern>()
        .map_or("unmatched", |pattern| pattern.0);
    metrics::HTTP_REQUESTS
        .with_label_values(&[route, response.status().as_str()])
        .inc();
    metrics::HTTP_SECONDS
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}
