//! The benchmark tool: starts the real `orchestrator` binary on a database, drives it over HTTP
//! with many concurrent clients, and measures in the same run, on the same database, the raw
//! insert limit (the same rows written directly, multi-row INSERTs in one transaction per
//! batch, and one row per transaction). Prints progress, then a Markdown table row per result.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- \
//!     --database-url sqlite:///tmp/bench.db --scenario single --connections 256 --seconds 10
//! ```
//! Scenarios: `single` (single-event POSTs over 1,000 sessions), `batch` (100-event POSTs),
//! `raw` (the direct-insert limit only), `interactions` (create → result round trips paced at
//! `--rate` completions/s, with the latency from sending the result to its
//! `interaction.completed` notification arriving on `/v1/stream`, against the latency of
//! committing a completion's rows directly at the same rate), and `pollers`
//! (`--connections` dashboards polling their session and its new events back to back while
//! events arrive at `--rate`/s).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use diesel::Connection;
use orchestrator::store::{self, models::EventRow, DatabaseTarget, PoolSettings};

struct Args {
    database_url: String,
    scenario: String,
    connections: usize,
    seconds: u64,
    binary: String,
    /// `interactions`: completions per second; `pollers`: events written per second.
    rate: u64,
    /// `pollers`: pause between one poller's polls (0: back to back, the capacity).
    poll_interval_ms: u64,
    /// `single`, `batch`: events per transaction of the storage-layer-alone measurement.
    storage_events_per_commit: usize,
}

fn args() -> Args {
    let mut a = Args {
        database_url: "sqlite:///tmp/orchestrator-bench.db".into(),
        scenario: "single".into(),
        connections: 256,
        seconds: 10,
        binary: "target/release/orchestrator".into(),
        rate: 1000,
        poll_interval_ms: 0,
        storage_events_per_commit: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--database-url" => a.database_url = value,
            "--scenario" => a.scenario = value,
            "--connections" => a.connections = value.parse().unwrap_or(a.connections),
            "--seconds" => a.seconds = value.parse().unwrap_or(a.seconds),
            "--binary" => a.binary = value,
            "--rate" => a.rate = value.parse().unwrap_or(a.rate),
            "--poll-interval-ms" => {
                a.poll_interval_ms = value.parse().unwrap_or(a.poll_interval_ms)
            }
            "--storage-events-per-commit" => {
                a.storage_events_per_commit =
                    value.parse().unwrap_or(a.storage_events_per_commit).max(1)
            }
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs the real binary on a free port; returns the child and its base URL.
fn spawn_server(binary: &str, database_url: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(binary)
        .env("DATABASE_URL", database_url)
        .env("ORCH_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("ORCH_API_KEYS")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary} (build it with cargo build --release): {e}")
        });
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server address");
    (child, format!("http://{addr}"))
}

/// CPU time a process has used so far (user + system), from `/proc/PID/stat`: with the
/// server's, an A/B shows a change in the work per request even when the 2-core machine's
/// scheduling noise hides it in the latencies. `NaN` where there is no `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name, which may itself hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // Linux reports clock ticks of 1/100 s (USER_HZ) on every common architecture.
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The server's own commit times, from its `/metrics` histogram: how much of a request's
/// latency is the group commit. Bucket bounds, so "≤".
async fn commit_summary(base: &str, server: u32) -> String {
    let (_, body, _) = call(
        &http_client(1),
        awc::http::Method::GET,
        format!("{base}/metrics"),
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&body);
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let mut count = 0.0;
    let mut seconds_in_commits = 0.0;
    let mut events_committed = 0.0;
    let mut writes_committed = 0.0;
    let value = |n: &str| n.trim().parse::<f64>().unwrap_or(0.0);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("orchestrator_commit_seconds_bucket{le=\"") {
            let mut parts = rest.splitn(2, "\"} ");
            let (Some(le), Some(n)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let (Ok(le), Ok(n)) = (le.parse::<f64>(), n.trim().parse::<f64>()) {
                buckets.push((le, n));
            }
        } else if let Some(n) = line.strip_prefix("orchestrator_commit_seconds_count ") {
            count = value(n);
        } else if let Some(n) = line.strip_prefix("orchestrator_commit_seconds_sum ") {
            seconds_in_commits = value(n);
        } else if let Some(n) = line.strip_prefix("orchestrator_commit_batch_events_sum ") {
            events_committed = value(n);
        } else if let Some(n) = line.strip_prefix("orchestrator_commit_batch_writes_sum ") {
            writes_committed = value(n);
        }
    }
    let bound = |q: f64| {
        buckets
            .iter()
            .find(|(_, n)| *n >= q * count)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    };
    // The total inside commits, against the run's length, says how busy the committer was;
    // per session write (one session's requests in one commit), what one costs it.
    let commits = count.max(1.0);
    format!(
        "server-side group commits: {count:.0}, p50 ≤ {} ms, p99 ≤ {} ms; {:.2} s inside \
         commits in all; per commit {:.1} session writes, {:.1} events, {:.2} ms; {:.0} µs \
         per session write; server CPU {:.2} s (user + system, over its whole run)",
        bound(0.5),
        bound(0.99),
        seconds_in_commits,
        writes_committed / commits,
        events_committed / commits,
        seconds_in_commits * 1e3 / commits,
        seconds_in_commits * 1e6 / writes_committed.max(1.0),
        cpu_seconds(server),
    )
}

/// Prints `status()` every second until aborted.
fn spawn_progress(status: impl Fn() -> String + 'static) -> actix_rt::task::JoinHandle<()> {
    let started = Instant::now();
    actix_rt::spawn(async move {
        loop {
            actix_rt::time::sleep(Duration::from_secs(1)).await;
            eprintln!("  {:>4.0}s  {}", started.elapsed().as_secs_f64(), status());
        }
    })
}

fn http_client(connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(connections))
        .timeout(Duration::from_secs(60))
        .finish()
}

/// Sends one request (a JSON body when given); answers whether it got a 2xx, the body, and
/// the latency in µs.
async fn call(
    client: &awc::Client,
    method: awc::http::Method,
    url: String,
    body: Option<String>,
) -> (bool, Vec<u8>, u64) {
    let t = Instant::now();
    let request = client.request(method, url);
    let sent = match body {
        Some(body) => {
            request
                .insert_header(("Content-Type", "application/json"))
                .send_body(body)
                .await
        }
        None => request.send().await,
    };
    let (ok, bytes) = match sent {
        Ok(mut res) => match res.body().limit(64 << 20).await {
            Ok(bytes) => (res.status().is_success(), bytes.to_vec()),
            Err(_) => (false, Vec::new()),
        },
        Err(_) => (false, Vec::new()),
    };
    (ok, bytes, t.elapsed().as_micros() as u64)
}

fn sorted(latencies: &RefCell<Vec<u64>>) -> Vec<u64> {
    let mut v = latencies.take();
    v.sort_unstable();
    v
}

/// Creates sessions `{prefix}-0` .. `{prefix}-{count - 1}` with one event `p{i}` each, before
/// the clock starts.
async fn seed_sessions(client: &awc::Client, base: &str, prefix: &str, count: usize) {
    for first in (0..count).step_by(100) {
        let seeds = (first..(first + 100).min(count)).map(|i| {
            let url = format!("{base}/v1/sessions/{prefix}-{i}/events");
            let body = format!(
                r#"{{"event_type":"session_start","timestamp":"2026-11-22T10:00:00Z","event_id":"p{i}"}}"#
            );
            async move { call(client, awc::http::Method::POST, url, Some(body)).await }
        });
        let answers = futures_util::future::join_all(seeds).await;
        assert!(
            answers.iter().all(|a| a.0),
            "seeding {prefix} sessions failed"
        );
    }
}

/// What the `interactions` scenario measured.
struct RoundTrips {
    completions_per_second: f64,
    create: Vec<u64>,
    result: Vec<u64>,
    /// From sending the result to its `interaction.completed` arriving on the stream.
    notified: Vec<u64>,
    failed: u64,
    /// Completed interactions whose notification never arrived.
    missing: usize,
}

/// `workers` clients create approvals over 200 sessions and post their results, the i-th
/// result not before `i / rate` seconds, while one SSE consumer times each completion's
/// notification.
async fn interactions(base: &str, workers: usize, seconds: u64, rate: u64) -> RoundTrips {
    use awc::http::Method;
    let client = http_client(workers + 1);
    let sent: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();
    let notified: Rc<RefCell<Vec<u64>>> = Rc::default();
    let mut stream = client
        .get(format!("{base}/v1/stream"))
        .timeout(Duration::from_secs(24 * 3600))
        .send()
        .await
        .expect("the notification stream");
    seed_sessions(&client, base, "ix", 200).await;
    assert!(stream.status().is_success(), "stream: {}", stream.status());
    let consumer = {
        let (sent, notified) = (sent.clone(), notified.clone());
        actix_rt::spawn(async move {
            let mut buffer = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let arrived = Instant::now();
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                    let message: Vec<u8> = buffer.drain(..end + 2).collect();
                    let message = String::from_utf8_lossy(&message);
                    if !message.contains("event: interaction.completed\n") {
                        continue;
                    }
                    let data = message.lines().find_map(|l| l.strip_prefix("data: "));
                    let body: serde_json::Value = data
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    let sent_at = body["interaction_id"]
                        .as_str()
                        .and_then(|id| sent.borrow_mut().remove(id));
                    if let Some(sent_at) = sent_at {
                        let latency = arrived.duration_since(sent_at).as_micros() as u64;
                        notified.borrow_mut().push(latency);
                    }
                }
            }
        })
    };
    let create: Rc<RefCell<Vec<u64>>> = Rc::default();
    let result: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (next, completed, failed) = (
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let interval = 1.0 / rate.max(1) as f64;
    let progress = {
        let (completed, notified) = (completed.clone(), notified.clone());
        spawn_progress(move || {
            format!(
                "{} completed, {} notified",
                completed.get(),
                notified.borrow().len()
            )
        })
    };
    let clients = (0..workers).map(|_| {
        let (client, sent, create, result) =
            (client.clone(), sent.clone(), create.clone(), result.clone());
        let (next, completed, failed) = (next.clone(), completed.clone(), failed.clone());
        let base = base.to_owned();
        async move {
            while Instant::now() < deadline {
                let i = next.get();
                next.set(i + 1);
                let (session, id) = (format!("ix-{}", i % 200), format!("b{i}"));
                let url = format!("{base}/v1/sessions/{session}/interactions");
                let body = format!(
                    r#"{{"interaction_id":"{id}","kind":"approval","payload":{{"n":{i}}}}}"#
                );
                let (ok, _, micros) = call(&client, Method::POST, url, Some(body)).await;
                create.borrow_mut().push(micros);
                if !ok {
                    failed.set(failed.get() + 1);
                    continue;
                }
                let due = started + Duration::from_secs_f64(interval * i as f64);
                actix_rt::time::sleep_until(due.into()).await;
                sent.borrow_mut().insert(id.clone(), Instant::now());
                let url = format!("{base}/v1/sessions/{session}/interactions/{id}/result");
                let body = format!(r#"{{"status":"ok","output":{{"n":{i}}}}}"#);
                let (ok, _, micros) = call(&client, Method::POST, url, Some(body)).await;
                result.borrow_mut().push(micros);
                if ok {
                    completed.set(completed.get() + 1);
                } else {
                    failed.set(failed.get() + 1);
                    sent.borrow_mut().remove(&id);
                }
            }
        }
    });
    futures_util::future::join_all(clients).await;
    let elapsed = started.elapsed().as_secs_f64();
    // Notifications still on their way get a few seconds; whatever is left never came.
    let grace = Instant::now() + Duration::from_secs(5);
    while !sent.borrow().is_empty() && Instant::now() < grace {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    progress.abort();
    consumer.abort();
    let missing = sent.borrow().len();
    RoundTrips {
        completions_per_second: completed.get() as f64 / elapsed,
        create: sorted(&create),
        result: sorted(&result),
        notified: sorted(&notified),
        failed: failed.get(),
        missing,
    }
}

/// What the `pollers` scenario measured.
struct Polls {
    polls_per_second: f64,
    latencies: Vec<u64>,
    failed: u64,
    events_per_second: f64,
}

/// `pollers` dashboards, each watching its own session: GET the session, and when its
/// `last_seq` moved, GET the new events (`after_seq`), then pause for `pause` (zero: back to
/// back). Meanwhile 16 writers post single events over those sessions at `rate` per second.
async fn pollers(base: &str, pollers: usize, seconds: u64, rate: u64, pause: Duration) -> Polls {
    use awc::http::Method;
    let client = http_client(pollers + 16);
    let event = |session: usize, n: u64| {
        (
            format!("{base}/v1/sessions/poll-{session}/events"),
            format!(
                r#"{{"event_type":"tool_use","timestamp":"2026-11-22T10:00:00Z","event_id":"p{n}","data":{{"n":{n}}}}}"#
            ),
        )
    };
    // The seeds took event ids p0..; the writers continue after them.
    seed_sessions(&client, base, "poll", pollers).await;
    let latencies: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (failed, written, next) = (
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
        Rc::new(Cell::new(0u64)),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let progress = {
        let (latencies, written) = (latencies.clone(), written.clone());
        spawn_progress(move || {
            format!(
                "{} polls, {} events written",
                latencies.borrow().len(),
                written.get()
            )
        })
    };
    let interval = 1.0 / rate.max(1) as f64;
    let writers = (0..16).map(|_| {
        let (client, written, next) = (client.clone(), written.clone(), next.clone());
        async move {
            while Instant::now() < deadline {
                let j = next.get();
                next.set(j + 1);
                actix_rt::time::sleep_until(
                    (started + Duration::from_secs_f64(interval * j as f64)).into(),
                )
                .await;
                let (url, body) = event(j as usize % pollers, pollers as u64 + j);
                if call(&client, Method::POST, url, Some(body)).await.0 {
                    written.set(written.get() + 1);
                }
            }
        }
    });
    let readers = (0..pollers).map(|p| {
        let (client, latencies, failed) = (client.clone(), latencies.clone(), failed.clone());
        let base = base.to_owned();
        async move {
            let mut seen = 0;
            // Spread over the pause, as independent dashboards are; all at once would measure
            // a burst of `pollers` requests every pause instead.
            actix_rt::time::sleep(pause.mul_f64(p as f64 / pollers as f64)).await;
            while Instant::now() < deadline {
                let url = format!("{base}/v1/sessions/poll-{p}");
                let (ok, body, micros) = call(&client, Method::GET, url, None).await;
                latencies.borrow_mut().push(micros);
                let session: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let last_seq = session["last_seq"].as_i64();
                if !ok || last_seq.is_none() {
                    failed.set(failed.get() + 1);
                    continue;
                }
                let last_seq = last_seq.unwrap_or(0);
                if last_seq > seen {
                    let url =
                        format!("{base}/v1/sessions/poll-{p}/events?after_seq={seen}&limit=1000");
                    let (ok, _, micros) = call(&client, Method::GET, url, None).await;
                    latencies.borrow_mut().push(micros);
                    if ok {
                        seen = last_seq;
                    } else {
                        failed.set(failed.get() + 1);
                    }
                }
                if !pause.is_zero() {
                    actix_rt::time::sleep(pause).await;
                }
            }
        }
    });
    futures_util::future::join(
        futures_util::future::join_all(writers),
        futures_util::future::join_all(readers),
    )
    .await;
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = sorted(&latencies);
    Polls {
        polls_per_second: latencies.len() as f64 / elapsed,
        latencies,
        failed: failed.get(),
        events_per_second: written.get() as f64 / elapsed,
    }
}

/// Drives `connections` concurrent clients for `seconds`; each request stores `per_request`
/// new events. Returns (events stored per second, latencies in µs, non-2xx count).
async fn drive(
    base: &str,
    connections: usize,
    seconds: u64,
    per_request: usize,
) -> (f64, Vec<u64>, u64) {
    let client = http_client(connections);
    let latencies = Rc::new(RefCell::new(Vec::new()));
    let failures = Rc::new(RefCell::new(0u64));
    let done = Rc::new(RefCell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let progress = {
        let done = done.clone();
        spawn_progress(move || {
            let n = *done.borrow();
            let rate = n as f64 * per_request as f64 / started.elapsed().as_secs_f64();
            format!("{n} requests, {rate:.0} events/s")
        })
    };
    let workers = (0..connections).map(|w| {
        let (client, latencies, failures, done) =
            (client.clone(), latencies.clone(), failures.clone(), done.clone());
        let base = base.to_owned();
        async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let session = format!("bench-{}", (w as u64 * 7919 + n) % 1000);
                let event = |i: usize| {
                    format!(
                        r#"{{"event_type":"tool_use","timestamp":"2026-11-22T10:00:00Z","event_id":"w{w}-{n}-{i}","data":{{"tool":"Bash","n":{n}}}}}"#
                    )
                };
                let body = if per_request == 1 {
                    event(0)
                } else {
                    format!(r#"{{"events":[{}]}}"#, (0..per_request).map(event).collect::<Vec<_>>().join(","))
                };
                let t = Instant::now();
                let ok = match client
                    .post(format!("{base}/v1/sessions/{session}/events"))
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body)
                    .await
                {
                    Ok(mut res) => {
                        let _ = res.body().await;
                        res.status().is_success()
                    }
                    Err(_) => false,
                };
                latencies.borrow_mut().push(t.elapsed().as_micros() as u64);
                *done.borrow_mut() += 1;
                if !ok {
                    *failures.borrow_mut() += 1;
                }
            }
        }
    });
    futures_util::future::join_all(workers).await;
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.take();
    lat.sort_unstable();
    let failed = *failures.borrow();
    let ok = lat.len() as u64 - failed;
    (ok as f64 * per_request as f64 / elapsed, lat, failed)
}

/// The raw limit: the service's event rows inserted directly, `batch` rows per transaction,
/// for `seconds`, laid out like the scenario's (`per_session` consecutive rows per session,
/// sessions rotating over 1,000): index locality decides much of the cost. Rows per second.
fn raw_limit(target: &DatabaseTarget, batch: usize, per_session: usize, seconds: u64) -> f64 {
    let settings = PoolSettings {
        max_size: 1,
        connection_timeout: Duration::from_secs(10),
    };
    let pool = store::connect(target, &settings).expect("database");
    let mut conn = pool.get().expect("connection");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut written = 0u64;
    let mut seq = 0i64;
    // 1,000 keys of its own per batch size, above every session's, so runs never collide.
    let raw_keys = store::sessions::next_key(&mut conn).expect("session keys")
        + 1_000_000
        + 1_000 * batch as i64;
    while Instant::now() < deadline {
        let rows: Vec<EventRow> = (0..batch)
            .map(|_| {
                seq += 1;
                EventRow {
                    // Events need no session row.
                    session_key: raw_keys + ((seq as usize / per_session) % 1000) as i64,
                    seq,
                    event_id: Some(format!("r{seq}")),
                    dedup_key: format!("e:r{seq}"),
                    event_type: "tool_use".into(),
                    occurred_at_us: 1_795_000_000_000_000,
                    received_at: 1_795_000_000_000,
                    interaction_id: None,
                    sequence: None,
                    out_of_order: false,
                    data: format!(r#"{{"tool":"Bash","n":{seq}}}"#),
                }
            })
            .collect();
        conn.transaction(|tx| store::events::insert_many(tx, &rows))
            .expect("raw insert");
        written += batch as u64;
    }
    written as f64 / started.elapsed().as_secs_f64()
}

/// A connection tuned like the service's committer, and the id its next notification gets:
/// what the direct-commit measurements write with.
fn committer_connection(target: &DatabaseTarget) -> (store::PooledConnection, i64) {
    let settings = PoolSettings {
        max_size: 1,
        connection_timeout: Duration::from_secs(10),
    };
    let pool = store::connect(target, &settings).expect("database");
    let mut conn = pool.get().expect("connection");
    store::prepare_writer_connection(&mut conn).expect("writer connection");
    let next_id = store::notifications::max_id(&mut conn).expect("max id") + 1;
    (conn, next_id)
}

/// Sessions `{prefix}-0` .. `{prefix}-{count - 1}` of `scope`, created at `now` in one
/// commit; answers their rows and the next notification id.
fn create_sessions(
    conn: &mut store::PooledConnection,
    next_id: i64,
    scope: &str,
    prefix: &str,
    count: usize,
    now: i64,
) -> (Vec<orchestrator::store::models::SessionRow>, i64) {
    use orchestrator::store::models::SessionRow;
    use orchestrator::store::SessionWrite;
    let first_key = store::sessions::next_key(conn).expect("session keys");
    let sessions: Vec<SessionRow> = (0..count)
        .map(|n| SessionRow::new_active(scope, &format!("{prefix}-{n}"), first_key + n as i64, now))
        .collect();
    let creates: Vec<SessionWrite> = sessions
        .iter()
        .map(|session| SessionWrite::new(session.clone(), true))
        .collect();
    let next_id = store::commit_batch(conn, &creates, next_id)
        .expect("sessions")
        .next_id;
    (sessions, next_id)
}

/// The storage layer alone: the rows the service writes for the scenario's requests (each
/// session write's events, its `events.appended` notification and its session row) committed
/// directly through the service's own group-commit code on a connection tuned like the
/// committer's, `events_per_commit` per transaction (500 unless `--storage-events-per-commit`
/// says otherwise: the service's own commit size, from its summary, isolates what commit size
/// costs from what sharing the cores costs), sessions rotating over 1,000 as in the scenario.
/// Against [`raw_limit`] (events alone) it shows what the contract's other rows cost; against
/// the service, what HTTP and the actors cost. Events per second.
fn storage_limit(
    target: &DatabaseTarget,
    events_per_write: usize,
    events_per_commit: usize,
    seconds: u64,
) -> f64 {
    use orchestrator::store::{NewNotification, SessionWrite};
    let (mut conn, next_id) = committer_connection(target);
    let scope = format!("storage-{events_per_write}-{}", std::process::id());
    let now = 1_795_000_000_000i64;
    let (mut sessions, mut next_id) =
        create_sessions(&mut conn, next_id, &scope, "bench", 1000, now);
    let writes_per_commit = (events_per_commit / events_per_write).max(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (mut written, mut n) = (0u64, 0usize);
    while Instant::now() < deadline {
        let writes: Vec<SessionWrite> = (0..writes_per_commit)
            .map(|_| {
                n += 1;
                let session = &mut sessions[(n * 7919) % 1000];
                let events = (0..events_per_write)
                    .map(|_| {
                        session.last_seq += 1;
                        let seq = session.last_seq;
                        EventRow {
                            session_key: session.session_key,
                            seq,
                            event_id: Some(format!("s{n}-{seq}")),
                            dedup_key: format!("e:s{n}-{seq}"),
                            event_type: "tool_use".into(),
                            occurred_at_us: 1_795_000_000_000_000,
                            received_at: now,
                            interaction_id: None,
                            sequence: None,
                            out_of_order: false,
                            data: format!(r#"{{"tool":"Bash","n":{n}}}"#),
                        }
                    })
                    .collect();
                session.event_count = session.last_seq;
                session.updated_at += 1;
                let body = format!(
                    r#"{{"event_count":{},"last_seq":{}}}"#,
                    session.event_count, session.last_seq
                );
                SessionWrite {
                    events,
                    notifications: vec![NewNotification {
                        kind: "events.appended",
                        at: now,
                        body,
                    }],
                    ..SessionWrite::new(session.clone(), false)
                }
            })
            .collect();
        next_id = store::commit_batch(&mut conn, &writes, next_id)
            .expect("storage commit")
            .next_id;
        written += (writes_per_commit * events_per_write) as u64;
    }
    written as f64 / started.elapsed().as_secs_f64()
}

/// The latency floor under the `interactions` scenario: each completion's rows (the changed
/// interaction, its `interaction.completed` notification, the session row) committed directly,
/// one transaction each, through the service's own group-commit code on a connection tuned like
/// the committer's, paced at `rate` completions/s (each after its own create commit, as in the
/// scenario) for `seconds`, on the same database. A notification cannot arrive before its
/// commit is durable, so these latencies bound the scenario's from below. Microseconds, sorted.
fn raw_completion_commits(target: &DatabaseTarget, rate: u64, seconds: u64) -> Vec<u64> {
    use orchestrator::store::models::InteractionRow;
    use orchestrator::store::{NewNotification, SessionWrite};
    let (mut conn, next_id) = committer_connection(target);
    let scope = format!("raw-commits-{}", std::process::id());
    let now = 1_795_000_000_000i64;
    let (mut sessions, mut next_id) = create_sessions(&mut conn, next_id, &scope, "ix", 200, now);
    let mut commit = |conn: &mut store::PooledConnection, write: SessionWrite| {
        let committed =
            store::commit_batch(conn, std::slice::from_ref(&write), next_id).expect("raw commit");
        next_id = committed.next_id;
    };
    let notification = |kind: &'static str, body: String| NewNotification {
        kind,
        at: now,
        body,
    };
    let mut latencies = Vec::new();
    let started = Instant::now();
    let interval = 1.0 / rate.max(1) as f64;
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let session = &mut sessions[i as usize % 200];
        let id = format!("b{i}");
        let mut interaction = InteractionRow {
            scope: scope.clone(),
            session_id: session.session_id.clone(),
            interaction_id: id.clone(),
            kind: "approval".into(),
            payload: format!(r#"{{"n":{i}}}"#),
            status: "pending".into(),
            outcome: None,
            result: None,
            completed_by: None,
            position: i as i64 + 1,
            created_at: now,
            timeout_ms: 30_000,
            deadline: Some(now + 30_000),
            completed_at: None,
            event_count: 0,
            decided_by: None,
        };
        session.interactions_pending += 1;
        let created = SessionWrite {
            new_interactions: vec![interaction.clone()],
            notifications: vec![notification(
                "interaction.created",
                format!(r#"{{"interaction_id":"{id}","kind":"approval","status":"pending"}}"#),
            )],
            ..SessionWrite::new(session.clone(), false)
        };
        commit(&mut conn, created);
        let due = started + Duration::from_secs_f64(interval * i as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        interaction.status = "completed".into();
        interaction.outcome = Some("ok".into());
        interaction.result = Some(format!(r#"{{"n":{i}}}"#));
        interaction.completed_by = Some("result".into());
        interaction.completed_at = Some(now);
        session.interactions_pending -= 1;
        session.interactions_completed += 1;
        let completed = SessionWrite {
            changed_interactions: vec![interaction],
            notifications: vec![notification(
                "interaction.completed",
                format!(
                    r#"{{"interaction_id":"{id}","status":"completed","outcome":"ok","completed_by":"result"}}"#
                ),
            )],
            ..SessionWrite::new(session.clone(), false)
        };
        let t = Instant::now();
        commit(&mut conn, completed);
        latencies.push(t.elapsed().as_micros() as u64);
        i += 1;
    }
    latencies.sort_unstable();
    latencies
}

fn main() {
    let a = args();
    let target = DatabaseTarget::parse(Some(&a.database_url)).expect("DATABASE_URL");
    let backend = target.backend_name();
    let ms = |sorted: &[u64], p| percentile(sorted, p);
    match a.scenario.as_str() {
        "interactions" => {
            let (mut child, base) = spawn_server(&a.binary, &a.database_url);
            eprintln!(
                "interactions on {backend}: {} clients, {} completions/s for {} s, against {base}",
                a.connections, a.rate, a.seconds
            );
            let r = actix_rt::System::new().block_on(interactions(
                &base,
                a.connections,
                a.seconds,
                a.rate,
            ));
            let commits = actix_rt::System::new().block_on(commit_summary(&base, child.id()));
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "raw: one completion per transaction, {} per second, {} s",
                a.rate, a.seconds
            );
            let raw = raw_completion_commits(&target, a.rate, a.seconds);
            println!("| scenario | backend | clients | completions/s | create p50/p99 ms | result p50/p99 ms | result → notification p50 / p99 / p999 ms | non-2xx | notifications missing | raw completion commit p50 / p99 / p999 ms |");
            println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            println!(
                "| interactions at {}/s | {backend} | {} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {} | {} | {:.1} / {:.1} / {:.1} |",
                a.rate,
                a.connections,
                r.completions_per_second,
                ms(&r.create, 0.5),
                ms(&r.create, 0.99),
                ms(&r.result, 0.5),
                ms(&r.result, 0.99),
                ms(&r.notified, 0.5),
                ms(&r.notified, 0.99),
                ms(&r.notified, 0.999),
                r.failed,
                r.missing,
                ms(&raw, 0.5),
                ms(&raw, 0.99),
                ms(&raw, 0.999)
            );
            println!("\n{commits}");
            return;
        }
        "pollers" => {
            let (mut child, base) = spawn_server(&a.binary, &a.database_url);
            eprintln!(
                "pollers on {backend}: {} pollers, {} events/s written, {} s, against {base}",
                a.connections, a.rate, a.seconds
            );
            let interval = Duration::from_millis(a.poll_interval_ms);
            let r = actix_rt::System::new().block_on(pollers(
                &base,
                a.connections,
                a.seconds,
                a.rate,
                interval,
            ));
            let commits = actix_rt::System::new().block_on(commit_summary(&base, child.id()));
            let _ = child.kill();
            let _ = child.wait();
            println!("| scenario | backend | pollers | polls/s | p50 ms | p99 ms | p999 ms | non-2xx | events written/s |");
            println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            println!(
                "| pollers, {} | {backend} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
                match a.poll_interval_ms {
                    0 => "back to back".to_owned(),
                    ms => format!("every {ms} ms"),
                },
                a.connections,
                r.polls_per_second,
                ms(&r.latencies, 0.5),
                ms(&r.latencies, 0.99),
                ms(&r.latencies, 0.999),
                r.failed,
                r.events_per_second
            );
            println!("\n{commits}");
            return;
        }
        _ => {}
    }
    println!("| scenario | backend | connections | events/s | p50 ms | p99 ms | p999 ms | non-2xx | raw limit rows/s (500 rows/transaction) | ratio | raw rows/s (1 row/transaction) | ratio | storage layer alone ({} events/transaction), events/s | ratio |", a.storage_events_per_commit);
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let (scenario_batch, raw_batch) = match a.scenario.as_str() {
        "single" => (1, 500),
        "batch" => (100, 500),
        "raw" => (0, 500),
        other => {
            eprintln!("unknown scenario {other}: single, batch, raw, interactions or pollers");
            std::process::exit(2);
        }
    };
    if scenario_batch > 0 {
        let (mut child, base) = spawn_server(&a.binary, &a.database_url);
        eprintln!(
            "{} on {backend}, {} connections, {} s, against {base}",
            a.scenario, a.connections, a.seconds
        );
        let (rate, lat, failed) = actix_rt::System::new().block_on(drive(
            &base,
            a.connections,
            a.seconds,
            scenario_batch,
        ));
        let commits = actix_rt::System::new().block_on(commit_summary(&base, child.id()));
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "raw limit: {raw_batch}-row INSERTs per transaction, {scenario_batch} rows per session, {} s",
            a.seconds
        );
        let raw = raw_limit(&target, raw_batch, scenario_batch, a.seconds);
        // The other bound the issue asks for: what a client committing each row by itself
        // gets. Shorter: it only sets the scale.
        let single_seconds = a.seconds.min(4);
        eprintln!("raw limit: 1 row per transaction, {single_seconds} s");
        let raw_single = raw_limit(&target, 1, 1, single_seconds);
        eprintln!(
            "storage layer alone: the service's rows for {scenario_batch}-event writes, {} s",
            a.seconds
        );
        let storage = storage_limit(
            &target,
            scenario_batch,
            a.storage_events_per_commit,
            a.seconds,
        );
        println!(
            "| {} | {backend} | {} | {rate:.0} | {:.1} | {:.1} | {:.1} | {failed} | {raw:.0} | {:.0} % | {raw_single:.0} | {:.0} % | {storage:.0} | {:.0} % |",
            a.scenario,
            a.connections,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
            100.0 * rate / raw,
            100.0 * rate / raw_single,
            100.0 * rate / storage
        );
        println!("\n{commits}");
    } else {
        for batch in [500, 1] {
            eprintln!(
                "raw limit: {batch}-row INSERTs per transaction, {} s",
                a.seconds
            );
            let raw = raw_limit(&target, batch, 1, a.seconds);
            println!("| raw, {batch} rows/transaction | {backend} | 1 | {raw:.0} | | | | | {raw:.0} | 100 % | | | | |");
        }
    }
}
