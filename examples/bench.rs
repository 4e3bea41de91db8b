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
//! `raw` (the direct-insert limit only). Not yet: interaction round trips, 1,000 pollers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::Connection;
use orchestrator::store::{self, models::EventRow, DatabaseTarget, PoolSettings};

struct Args {
    database_url: String,
    scenario: String,
    connections: usize,
    seconds: u64,
    binary: String,
}

fn args() -> Args {
    let mut a = Args {
        database_url: "sqlite:///tmp/orchestrator-bench.db".into(),
        scenario: "single".into(),
        connections: 256,
        seconds: 10,
        binary: "target/release/orchestrator".into(),
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

/// Drives `connections` concurrent clients for `seconds`; each request stores `per_request`
/// new events. Returns (events stored per second, latencies in µs, non-2xx count).
async fn drive(
    base: &str,
    connections: usize,
    seconds: u64,
    per_request: usize,
) -> (f64, Vec<u64>, u64) {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(connections))
        .timeout(Duration::from_secs(60))
        .finish();
    let latencies = Rc::new(RefCell::new(Vec::new()));
    let failures = Rc::new(RefCell::new(0u64));
    let done = Rc::new(RefCell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let progress = {
        let done = done.clone();
        actix_rt::spawn(async move {
            loop {
                actix_rt::time::sleep(Duration::from_secs(1)).await;
                let n = *done.borrow();
                eprintln!(
                    "  {:>4.0}s  {n} requests, {:.0} events/s",
                    started.elapsed().as_secs_f64(),
                    n as f64 * per_request as f64 / started.elapsed().as_secs_f64()
                );
            }
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
    let scope = format!("raw-{batch}-{}", std::process::id());
    while Instant::now() < deadline {
        let rows: Vec<EventRow> = (0..batch)
            .map(|_| {
                seq += 1;
                EventRow {
                    scope: scope.clone(),
                    session_id: format!("raw-{}", (seq as usize / per_session) % 1000),
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

fn main() {
    let a = args();
    let target = DatabaseTarget::parse(Some(&a.database_url)).expect("DATABASE_URL");
    let backend = target.backend_name();
    println!("| scenario | backend | connections | events/s | p50 ms | p99 ms | p999 ms | non-2xx | raw limit rows/s | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let (scenario_batch, raw_batch) = match a.scenario.as_str() {
        "single" => (1, 500),
        "batch" => (100, 500),
        "raw" => (0, 500),
        other => {
            eprintln!("unknown scenario {other}: single, batch or raw");
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
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "raw limit: {raw_batch}-row INSERTs per transaction, {scenario_batch} rows per session, {} s",
            a.seconds
        );
        let raw = raw_limit(&target, raw_batch, scenario_batch, a.seconds);
        println!(
            "| {} | {backend} | {} | {rate:.0} | {:.1} | {:.1} | {:.1} | {failed} | {raw:.0} | {:.0} % |",
            a.scenario,
            a.connections,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
            100.0 * rate / raw
        );
    } else {
        for batch in [500, 1] {
            eprintln!(
                "raw limit: {batch}-row INSERTs per transaction, {} s",
                a.seconds
            );
            let raw = raw_limit(&target, batch, 1, a.seconds);
            println!("| raw, {batch} rows/transaction | {backend} | 1 | {raw:.0} | | | | | {raw:.0} | 100 % |");
        }
    }
}
