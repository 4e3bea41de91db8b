//! The race harness: seeded random interleavings over 200 sessions in each of two scopes that
//! use the same session ids. Sessions are created by racing first requests (PUTs and events);
//! then shuffled sequenced events (with duplicates), batches that overlap each other, batches
//! holding one invalid event, results racing `session_end` events, concurrent decisions from
//! several tabs, cancels and short deadlines are all in flight at once, while idle actors
//! passivate and restart. Afterwards a checker verifies the invariants I1–I10 of
//! docs/architecture.md from the query API and the notifications. (I2 here is "acknowledged
//! means stored"; surviving a SIGKILL is the crash test's, tests/api/durability.rs.)
//! It runs against one server on each backend, and across the three nodes of a cluster on one
//! PostgreSQL (100 sessions per scope there), each request sent to the next node.
//! A failure prints its seed; `ORCH_RACE_SEED=<seed> cargo test race_harness` replays it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use orchestrator::config::ApiKeys;
use serde_json::{json, Value};

use crate::common::{
    both_backends, fresh_database, Backend, Client, RemoveOnDrop, Resp, ServerProcess, TestApp,
};
use crate::interactions::assert_consistent;

/// Sessions per scope; both scopes use the same ids.
const SESSIONS: usize = 200;
/// Sessions per scope across a cluster's nodes: three debug servers share two cores.
const CLUSTER_SESSIONS: usize = 100;
const SEQUENCED: i64 = 8;
/// (bearer key, scope); event ids carry the scope so a leak across scopes shows.
const SCOPES: [(&str, &str); 2] = [("key-red", "red"), ("key-blue", "blue")];
/// Unsequenced event ids per session that batches draw from, so batches overlap.
const BATCH_POOL: u64 = 8;
/// The mixed phase, first request to last answer: no request may hang (I10).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// xorshift64*: small, seeded, good enough to shuffle.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
enum Call {
    Event {
        scope: usize,
        sid: String,
        body: Value,
        event_id: String,
    },
    /// Valid events only; ids may repeat inside the batch and across batches.
    Batch {
        scope: usize,
        sid: String,
        body: Value,
        ids: Vec<String>,
    },
    /// New events of which the one at `bad_index` is invalid: nothing may be stored.
    BadBatch {
        scope: usize,
        sid: String,
        body: Value,
        bad_index: usize,
    },
    Decide {
        scope: usize,
        sid: String,
        iid: String,
        verb: &'static str,
        body: Value,
    },
}

impl Call {
    fn target(&self) -> (usize, String, Value) {
        match self {
            Call::Event {
                scope, sid, body, ..
            }
            | Call::Batch {
                scope, sid, body, ..
            }
            | Call::BadBatch {
                scope, sid, body, ..
            } => (*scope, format!("/v1/sessions/{sid}/events"), body.clone()),
            Call::Decide {
                scope,
                sid,
                iid,
                verb,
                body,
            } => (
                *scope,
                format!("/v1/sessions/{sid}/interactions/{iid}/{verb}"),
                body.clone(),
            ),
        }
    }
}

fn unsequenced(event_id: &str, second: u64) -> Value {
    json!({"event_type": "tool_use", "timestamp": format!("2026-11-22T10:01:{:02}Z", second % 60),
           "event_id": event_id, "data": {"id": event_id}})
}

/// An acknowledged batch: the seqs it stored as new, and its event ids.
struct StoredBatch {
    new_seqs: Vec<i64>,
    ids: HashSet<String>,
}

/// What one scope's calls were answered, gathered for the checks.
#[derive(Default)]
struct Answers {
    /// Per session: event ids acknowledged with 2xx, with the seq the answer reported.
    acknowledged: HashMap<String, HashMap<String, i64>>,
    /// Per session: every acknowledged batch.
    batches: HashMap<String, Vec<StoredBatch>>,
    /// (session, interaction) → how many decisions answered `completed_now: true`.
    completions: HashMap<(String, String), usize>,
}

/// Sessions come into being by racing first requests: two PUTs and two events per session,
/// in both scopes at once. Exactly one creation each (I8) is checked by the notifications
/// later; here, at most one PUT may be told it created the session.
async fn create_sessions_by_racing(clients: &[Client], seed: u64, sessions: usize) {
    let mut first = Vec::new();
    for scope in 0..clients.len() {
        for s in 0..sessions {
            for n in 0..2 {
                first.push((scope, s, n, true));
                first.push((scope, s, n, false));
            }
        }
    }
    let answers = join_all(first.iter().map(|&(scope, s, n, put)| {
        let client = &clients[scope];
        let tag = SCOPES[scope].1;
        async move {
            if put {
                let body = json!({"metadata": {"by": format!("put-{n}")}});
                client.put(format!("/v1/sessions/race-{s}"), body).await
            } else {
                let event_id = format!("{tag}:race-{s}-open-{n}");
                let body = unsequenced(&event_id, n);
                client
                    .post(format!("/v1/sessions/race-{s}/events"), body)
                    .await
            }
        }
    }))
    .await;
    let mut created_by_put: HashMap<(usize, usize), usize> = HashMap::new();
    for (&(scope, s, _, put), r) in first.iter().zip(&answers) {
        assert!(
            r.status == 200 || r.status == 201,
            "seed {seed}: first request for race-{s}: {}",
            r.text
        );
        if put && r.status == 201 {
            *created_by_put.entry((scope, s)).or_default() += 1;
        }
    }
    assert!(
        created_by_put.values().all(|&n| n <= 1),
        "seed {seed}: two PUTs were both told they created a session"
    );

    // Two long-lived interactions and one with a short deadline per session.
    let setup = (0..clients.len()).flat_map(|scope| {
        (0..sessions).map(move |s| {
            let client = &clients[scope];
            let short = 50 + (seed.wrapping_mul(s as u64 + 7) % 350) as i64;
            async move {
                for (iid, timeout) in [("i0", 60_000), ("i1", 60_000), ("i2", short)] {
                    let body =
                        json!({"interaction_id": iid, "kind": "approval", "timeout_ms": timeout});
                    let r = client
                        .post(format!("/v1/sessions/race-{s}/interactions"), body)
                        .await;
                    assert_eq!(r.status, 201, "{}", r.text);
                }
            }
        })
    });
    join_all(setup).await;
}

/// Every call of one session, in the order generated (the caller shuffles).
fn session_calls(rng: &mut Rng, scope: usize, sid: &str, calls: &mut Vec<Call>) {
    let tag = SCOPES[scope].1;
    for n in 0..SEQUENCED {
        let event_id = format!("{tag}:{sid}-q{n}");
        let body = json!({"event_type": "hook", "timestamp": "2026-11-22T10:00:00Z",
                          "event_id": event_id, "sequence": n, "data": {"n": n}});
        let copies = if rng.chance(25) { 2 } else { 1 };
        for _ in 0..copies {
            calls.push(Call::Event {
                scope,
                sid: sid.to_owned(),
                body: body.clone(),
                event_id: event_id.clone(),
            });
        }
    }
    // Batches over a small pool of ids: they overlap each other, and now and then repeat an
    // id inside themselves.
    for _ in 0..3 {
        let len = 2 + rng.below(4);
        let ids: Vec<String> = (0..len)
            .map(|_| format!("{tag}:{sid}-b{}", rng.below(BATCH_POOL)))
            .collect();
        let events: Vec<Value> = ids
            .iter()
            .map(|id| unsequenced(id, id.len() as u64))
            .collect();
        calls.push(Call::Batch {
            scope,
            sid: sid.to_owned(),
            body: json!({ "events": events }),
            ids,
        });
    }
    if rng.chance(50) {
        let len = 2 + rng.below(3) as usize;
        let bad_index = rng.below(len as u64) as usize;
        let events: Vec<Value> = (0..len)
            .map(|j| {
                let mut event = unsequenced(&format!("{tag}:{sid}-bad-{j}"), j as u64);
                if j == bad_index {
                    event["timestamp"] = json!("not a time");
                }
                event
            })
            .collect();
        calls.push(Call::BadBatch {
            scope,
            sid: sid.to_owned(),
            body: json!({ "events": events }),
            bad_index,
        });
    }
    for iid in ["i0", "i1", "i2"] {
        // session_end events naming the interaction: copies of one, and distinct ones.
        for second in [1, 1, 2 + rng.below(50) as u32] {
            let event_id = format!("{tag}:{sid}-{iid}-end-{second}");
            let body = json!({"event_type": "session_end", "interaction_id": iid,
                              "timestamp": format!("2026-11-22T10:00:{:02}Z", second),
                              "event_id": event_id});
            if rng.chance(70) {
                calls.push(Call::Event {
                    scope,
                    sid: sid.to_owned(),
                    body,
                    event_id,
                });
            }
        }
        let decide = |verb, body| Call::Decide {
            scope,
            sid: sid.to_owned(),
            iid: iid.into(),
            verb,
            body,
        };
        calls.push(decide(
            "result",
            json!({"status": "ok", "output": {"from": iid}}),
        ));
        for tab in 0..rng.below(4) {
            calls.push(if rng.chance(50) {
                decide("resolve", json!({"response": {"tab": tab}}))
            } else {
                decide("reject", json!({"reason": format!("tab {tab}")}))
            });
        }
        if rng.chance(20) {
            calls.push(decide("cancel", json!({})));
        }
    }
}

/// Checks each answer against what the contract allows and gathers what the checks need.
fn gather_answers(seed: u64, calls: &[Call], responses: &[Resp]) -> Vec<Answers> {
    let mut answers: Vec<Answers> = SCOPES.iter().map(|_| Answers::default()).collect();
    for (call, r) in calls.iter().zip(responses) {
        match call {
            Call::Event {
                scope,
                sid,
                event_id,
                ..
            } => {
                assert!(
                    r.status == 201 || r.status == 200,
                    "seed {seed}: {call:?} -> {}",
                    r.text
                );
                let seq = r.body["events"][0]["seq"].as_i64().unwrap();
                let known = answers[*scope]
                    .acknowledged
                    .entry(sid.clone())
                    .or_default()
                    .insert(event_id.clone(), seq);
                assert!(
                    !matches!(known, Some(before) if before != seq),
                    "seed {seed}: {sid} {event_id} acknowledged as seq {known:?} and {seq}"
                );
            }
            Call::Batch {
                scope, sid, ids, ..
            } => {
                assert!(
                    r.status == 201 || r.status == 200,
                    "seed {seed}: {call:?} -> {}",
                    r.text
                );
                let acks = r.body["events"].as_array().unwrap();
                assert_eq!(acks.len(), ids.len(), "seed {seed}: {}", r.text);
                let mut new_seqs = Vec::new();
                let session = answers[*scope].acknowledged.entry(sid.clone()).or_default();
                for (id, ack) in ids.iter().zip(acks) {
                    let seq = ack["seq"].as_i64().unwrap();
                    // Repeated ids in one batch report one seq: the first copy's.
                    let known = session.insert(id.clone(), seq);
                    assert!(
                        !matches!(known, Some(before) if before != seq),
                        "seed {seed}: {sid} {id} acknowledged as seq {known:?} and {seq}"
                    );
                    if ack["duplicate"] == false {
                        new_seqs.push(seq);
                    }
                }
                let ids = ids.iter().cloned().collect();
                answers[*scope]
                    .batches
                    .entry(sid.clone())
                    .or_default()
                    .push(StoredBatch { new_seqs, ids });
            }
            Call::BadBatch { bad_index, .. } => {
                assert_eq!(r.status, 422, "seed {seed}: {call:?} -> {}", r.text);
                assert_eq!(r.body["code"], "validation_failed", "{}", r.text);
                assert_eq!(r.body["index"], *bad_index, "seed {seed}: {}", r.text);
            }
            Call::Decide {
                scope, sid, iid, ..
            } => {
                assert!(
                    r.status == 200 || r.status == 409,
                    "seed {seed}: {call:?} -> {}",
                    r.text
                );
                if r.status == 200 && r.body["completed_now"] == true {
                    *answers[*scope]
                        .completions
                        .entry((sid.clone(), iid.clone()))
                        .or_default() += 1;
                }
            }
        }
    }
    answers
}

/// I1, I3–I8 for one session of one scope, and I9 for its events and notifications.
/// Answers whether the session still has an open interaction (which keeps its actor live).
async fn check_session(
    client: &Client,
    tag: &str,
    sid: &str,
    answers: &Answers,
    seed: u64,
) -> bool {
    let events = client.all_events(sid).await;
    // I1: seq unique and strictly increasing.
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: {tag}/{sid} seqs {seqs:?}"
    );
    // I3: each distinct event stored once. I9: only this scope's events.
    let stored: HashMap<&str, i64> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e["seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        stored.len(),
        events.len(),
        "seed {seed}: {tag}/{sid} stored an event twice"
    );
    for id in stored.keys() {
        assert!(
            id.starts_with(&format!("{tag}:{sid}-")),
            "seed {seed}: {tag}/{sid} holds {id}, another scope's or session's event"
        );
        // I6: nothing of a refused batch.
        assert!(
            !id.contains("-bad-"),
            "seed {seed}: {tag}/{sid} stored {id} of a refused batch"
        );
    }
    // I2 and I3: every acknowledged event is there, under the seq its answer reported (the
    // original's, for a duplicate).
    for (id, seq) in &answers.acknowledged[sid] {
        assert_eq!(
            stored.get(id.as_str()),
            Some(seq),
            "seed {seed}: {tag}/{sid} {id} acknowledged as seq {seq}"
        );
    }
    // I6: a batch was applied whole: no other event's seq falls among the ones it stored.
    for StoredBatch { new_seqs, ids } in answers.batches.get(sid).into_iter().flatten() {
        let (Some(lo), Some(hi)) = (new_seqs.iter().min(), new_seqs.iter().max()) else {
            continue;
        };
        for e in events
            .iter()
            .filter(|e| (*lo..=*hi).contains(&e["seq"].as_i64().unwrap()))
        {
            assert!(
                ids.contains(e["event_id"].as_str().unwrap()),
                "seed {seed}: {tag}/{sid} {e} landed inside a batch's seqs {new_seqs:?}"
            );
        }
    }
    // I4: counters equal rows.
    let session = client.get(format!("/v1/sessions/{sid}")).await.body;
    assert_eq!(
        session["event_count"].as_u64().unwrap() as usize,
        events.len(),
        "seed {seed}: {tag}/{sid}"
    );
    assert_eq!(
        session["last_seq"].as_i64().unwrap(),
        *seqs.last().unwrap_or(&0)
    );
    // I7: sequenced events not flagged late are in sequence order.
    let in_order: Vec<i64> = events
        .iter()
        .filter(|e| !e["sequence"].is_null() && e["out_of_order"] == false)
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        in_order.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: {tag}/{sid} order {in_order:?}"
    );
    // I5 and counters: one interaction.completed per completed interaction, counters = rows.
    assert_consistent(client, sid).await;
    let mut open = false;
    for iid in ["i0", "i1", "i2"] {
        let i = client
            .get(format!("/v1/sessions/{sid}/interactions/{iid}"))
            .await
            .body;
        open |= i["status"] == "pending" || i["status"] == "queued";
        let winners = answers
            .completions
            .get(&(sid.to_owned(), iid.to_owned()))
            .copied()
            .unwrap_or(0);
        assert!(
            winners <= 1,
            "seed {seed}: {tag}/{sid}/{iid} completed {winners} times"
        );
        let by = i["completed_by"].as_str();
        if matches!(by, Some("result") | Some("cancel")) {
            assert_eq!(winners, 1, "seed {seed}: {tag}/{sid}/{iid} {i}");
        }
        if i["status"] == "completed" && by == Some("event") {
            // The result, sent to every interaction, still fills the slot unless it lost
            // to a different decision that arrived first after the event.
            assert!(!i["outcome"].is_null());
        }
    }
    let notes = client.all_notifications(Some(sid)).await;
    // I8: created once.
    let created = notes
        .iter()
        .filter(|n| n["type"] == "session.created")
        .count();
    assert_eq!(created, 1, "seed {seed}: {tag}/{sid}");
    // I4 at every commit: each events.appended counts exactly the events stored up to it.
    let mut last = 0;
    for n in notes.iter().filter(|n| n["type"] == "events.appended") {
        let last_seq = n["last_seq"].as_i64().unwrap();
        assert!(last_seq > last, "seed {seed}: {tag}/{sid} {n}");
        last = last_seq;
        let up_to = seqs.iter().filter(|&&s| s <= last_seq).count();
        assert_eq!(
            n["event_count"].as_u64().unwrap() as usize,
            up_to,
            "seed {seed}: {tag}/{sid} {n}"
        );
    }
    assert_eq!(last, *seqs.last().unwrap_or(&0), "seed {seed}: {tag}/{sid}");
    open
}

/// What the harness runs against: one server in this process, or the nodes of a cluster with
/// each request sent to the next node.
enum Service {
    One(Box<TestApp>),
    Cluster(Vec<ServerProcess>),
}

impl Service {
    fn base_urls(&self) -> Vec<String> {
        match self {
            Service::One(app) => vec![app.base_url.clone()],
            Service::Cluster(nodes) => nodes.iter().map(|n| n.http.base_url.clone()).collect(),
        }
    }

    /// Session actors started so far (each generation counts), where the service tells.
    async fn started_actors(&self) -> Option<u64> {
        match self {
            Service::One(app) => Some(app.started_session_actors().await),
            Service::Cluster(_) => None,
        }
    }

    /// Session actors in memory now, over every node.
    async fn live_actors(&self) -> usize {
        match self {
            Service::One(app) => app.live_session_actors().await,
            Service::Cluster(nodes) => {
                let mut live = 0.0;
                for node in nodes {
                    live += crate::cluster::metric(node, "orchestrator_live_session_actors").await;
                }
                live as usize
            }
        }
    }
}

fn seed() -> u64 {
    let seed: u64 = std::env::var("ORCH_RACE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    eprintln!("race harness seed: {seed} (replay with ORCH_RACE_SEED={seed})");
    seed
}

async fn randomized_interleavings_keep_the_invariants(backend: Backend) {
    let Some(app) = TestApp::start_with(backend, |c| {
        let keys: Vec<String> = SCOPES.iter().map(|(k, s)| format!("{k}:{s}")).collect();
        c.api_keys = ApiKeys::parse(&keys.join(",")).unwrap();
        c.sessions.reorder_gap = Duration::from_millis(300);
        // Invariants, not deadlines, are under test: on a CI machine running every test at
        // once an answer can take longer than the default 5 s, and a 503 would fail the run.
        c.db_timeout = Duration::from_secs(60);
        // Actors whose work is done passivate within the run, so later requests race their
        // successors' start (and the registry's hand-over from one generation to the next).
        c.sessions.idle_timeout = Duration::from_millis(100);
    })
    .await
    else {
        return;
    };
    run(&Service::One(Box::new(app)), seed(), SESSIONS).await;
}

/// The harness across three nodes on one PostgreSQL, each client's requests spread over them
/// in turn: most requests are forwarded to the session's owner, and the notifications are paged
/// through every node.
#[actix_rt::test]
async fn across_nodes() {
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let keys: Vec<String> = SCOPES.iter().map(|(k, s)| format!("{k}:{s}")).collect();
    let keys = keys.join(",");
    // As the single server's settings above; actors idle for a second passivate.
    let settings = [
        ("ORCH_API_KEYS", keys.as_str()),
        ("ORCH_REORDER_GAP_MS", "300"),
        ("ORCH_DB_TIMEOUT_MS", "60000"),
        ("ORCH_SESSION_IDLE_SECS", "1"),
    ];
    let nodes = crate::cluster::three_nodes_with(&database, &settings).await;
    run(
        &Service::Cluster(Vec::from(nodes)),
        seed(),
        CLUSTER_SESSIONS,
    )
    .await;
}

async fn run(service: &Service, seed: u64, sessions: usize) {
    let clients: Vec<Client> = SCOPES
        .iter()
        .map(|(key, _)| {
            let mut client = Client::spread(service.base_urls());
            client.key = Some((*key).to_owned());
            client
        })
        .collect();
    let mut rng = Rng(seed | 1);

    create_sessions_by_racing(&clients, seed, sessions).await;

    let mut calls = Vec::new();
    for scope in 0..SCOPES.len() {
        for s in 0..sessions {
            session_calls(&mut rng, scope, &format!("race-{s}"), &mut calls);
        }
    }
    // Shuffle everything together, and stagger the starts a little.
    for i in (1..calls.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        calls.swap(i, j);
    }
    let delays: Vec<u64> = calls.iter().map(|_| rng.below(40)).collect();
    let run = join_all(calls.iter().zip(delays).map(|(call, delay)| {
        let clients = &clients;
        async move {
            actix_rt::time::sleep(Duration::from_millis(delay)).await;
            let (scope, path, body) = call.target();
            clients[scope].post(path, body).await
        }
    }));
    // I10: every request is answered in time.
    let responses = actix_rt::time::timeout(RUN_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: requests still open after {RUN_LIMIT:?}"));

    let all_sessions = sessions * SCOPES.len();
    eprintln!(
        "race harness: {} requests for {all_sessions} sessions",
        calls.len()
    );
    if let Some(started) = service.started_actors().await {
        eprintln!("race harness: {started} session actors started");
        assert!(
            started > all_sessions as u64,
            "seed {seed}: no actor was passivated and restarted during the run"
        );
    }

    // Every answer is one the contract allows; nothing 5xx.
    let answers = gather_answers(seed, &calls, &responses);
    // Let short deadlines and gap timeouts pass.
    actix_rt::time::sleep(Duration::from_millis(800)).await;

    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut with_open_interactions = 0;
    for (scope, (client, answers)) in clients.iter().zip(&answers).enumerate() {
        let tag = SCOPES[scope].1;
        for s in 0..sessions {
            let sid = format!("race-{s}");
            if check_session(client, tag, &sid, answers, seed).await {
                with_open_interactions += 1;
            }
        }
        // I9: the scope lists its own sessions and notifications only.
        let listed = client.get("/v1/sessions?limit=1000").await.body;
        assert_eq!(
            listed["sessions"].as_array().unwrap().len(),
            sessions,
            "seed {seed}: {tag}"
        );
        let all = client.all_notifications(None).await;
        let ids: Vec<i64> = all.iter().map(|n| n["id"].as_i64().unwrap()).collect();
        // Ids strictly increase in the scope, and no notification shows in both scopes.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "seed {seed}: {tag}");
        assert!(
            ids.iter().all(|id| seen_ids.insert(*id)),
            "seed {seed}: a notification listed in two scopes"
        );
        let created = all
            .iter()
            .filter(|n| n["type"] == "session.created")
            .count();
        assert_eq!(created, sessions, "seed {seed}: {tag}");
    }
    // I10, memory: once their work is done, actors passivate (idle timeout 100 ms, swept every
    // 50 ms); only a session with an open interaction keeps one, for its deadline. Other tests
    // share the two cores, so the sweeps are given time rather than a tight bound.
    let mut live = service.live_actors().await;
    for _ in 0..100 {
        if live <= with_open_interactions {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        live = service.live_actors().await;
    }
    assert!(
        live <= with_open_interactions,
        "seed {seed}: {live} actors still live, {with_open_interactions} sessions have work left"
    );
}

both_backends!(randomized_interleavings_keep_the_invariants);
