//! Load on a cluster while its nodes come and go: writers, one per session, each posting its
//! session's events one after another (sequenced, with event ids), spread round-robin over
//! the nodes that are up. Like a hook client, a writer sends an event again until it is
//! acknowledged: after a 503 with Retry-After, after a connection that could not be made (the
//! node is down; a proxy would try the next one), and after a request whose answer was lost
//! (the node died with it). Each outcome is tallied, so tests can say which they allow, and what
//! was acknowledged is checked against what is stored.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Client;

/// The base URLs of the nodes that are up; tests change it as nodes stop and start.
#[derive(Clone, Default)]
pub struct Nodes(Rc<RefCell<Vec<String>>>);

impl Nodes {
    pub fn new(urls: impl IntoIterator<Item = String>) -> Self {
        Self(Rc::new(RefCell::new(urls.into_iter().collect())))
    }

    pub fn remove(&self, url: &str) {
        self.0.borrow_mut().retain(|u| u != url);
    }

    pub fn add(&self, url: String) {
        self.0.borrow_mut().push(url);
    }

    fn pick(&self, turn: usize) -> String {
        let urls = self.0.borrow();
        urls[turn % urls.len()].clone()
    }
}

/// How the requests of a run were answered.
#[derive(Debug, Default)]
pub struct Tally {
    pub acknowledged: u64,
    /// 503 with Retry-After (`not_owner` while partitions change hands, or overloaded).
    pub retry_later: u64,
    /// No connection could be made (refused, timed out): the request was never sent.
    pub not_sent: u64,
    /// Sent, and no answer came back (the node died, or closed the connection).
    pub lost: u64,
    /// Anything else: a 503 without Retry-After, a 5xx, a 4xx. None is allowed.
    pub unexpected: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.acknowledged += other.acknowledged;
        self.retry_later += other.retry_later;
        self.not_sent += other.not_sent;
        self.lost += other.lost;
        self.unexpected.extend(other.unexpected.iter().cloned());
    }
}

/// What one writer did: every event it got acknowledged, in order, with the seq the answer
/// gave it and when.
pub struct Written {
    pub session: String,
    pub acknowledged: Vec<(String, i64, Instant)>,
    pub tally: Tally,
}

/// Writers running until [`Load::finish`].
pub struct Load {
    stop: Rc<RefCell<bool>>,
    writers: Vec<actix_rt::task::JoinHandle<Written>>,
}

/// What a node's answer was.
enum Outcome {
    Answered {
        status: u16,
        retry_after: bool,
        body: Value,
    },
    NotSent,
    Lost(String),
}

/// One POST on a connection of its own (no kept-alive connection that a stopping node might
/// close under it), telling a request never sent (no connection) from a lost answer.
async fn post(client: &awc::Client, url: String, body: &Value) -> Outcome {
    use awc::error::{ConnectError, SendRequestError};
    let sent = client
        .post(url)
        .force_close()
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await;
    let mut answer = match sent {
        Ok(answer) => answer,
        // awc reports a connection closed before the answer came as `Disconnected`; any other
        // connect error comes before anything is written.
        Err(SendRequestError::Connect(ConnectError::Disconnected)) => {
            return Outcome::Lost("closed without an answer".into())
        }
        Err(SendRequestError::Connect(_)) => return Outcome::NotSent,
        Err(e) => return Outcome::Lost(e.to_string()),
    };
    let retry_after = answer.headers().contains_key("retry-after");
    match answer.body().limit(1 << 20).await {
        Ok(bytes) => Outcome::Answered {
            status: answer.status().as_u16(),
            retry_after,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        },
        Err(e) => Outcome::Lost(e.to_string()),
    }
}

async fn write(session: String, nodes: Nodes, stop: Rc<RefCell<bool>>, offset: usize) -> Written {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut written = Written {
        session: session.clone(),
        acknowledged: Vec::new(),
        tally: Tally::default(),
    };
    let mut turn = offset;
    let mut n = 0u32;
    while !*stop.borrow() {
        let event_id = format!("{session}-e{n}");
        let body = json!({"event_type": "step", "timestamp": "2026-12-05T10:00:00Z",
                          "event_id": event_id, "sequence": n});
        loop {
            turn += 1;
            let url = format!("{}/v1/sessions/{session}/events", nodes.pick(turn));
            match post(&client, url, &body).await {
                Outcome::Answered {
                    status: 200 | 201,
                    body,
                    ..
                } => {
                    let seq = body["last_seq"].as_i64().expect("last_seq");
                    written.acknowledged.push((event_id, seq, Instant::now()));
                    written.tally.acknowledged += 1;
                    break;
                }
                Outcome::Answered {
                    status: 503,
                    retry_after: true,
                    ..
                } => written.tally.retry_later += 1,
                Outcome::Answered { status, body, .. } => {
                    written.tally.unexpected.push(format!("{status} {body}"))
                }
                Outcome::NotSent => written.tally.not_sent += 1,
                Outcome::Lost(why) => {
                    eprintln!("{session}: answer lost ({why})");
                    written.tally.lost += 1;
                }
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        n += 1;
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    written
}

impl Load {
    /// `sessions` writers, named `{prefix}-{i}`, on `nodes`.
    pub fn start(nodes: &Nodes, prefix: &str, sessions: usize) -> Self {
        let stop = Rc::new(RefCell::new(false));
        let writers = (0..sessions)
            .map(|i| {
                actix_rt::spawn(write(
                    format!("{prefix}-{i}"),
                    nodes.clone(),
                    stop.clone(),
                    i,
                ))
            })
            .collect();
        Self { stop, writers }
    }

    /// Stops the writers once their current event is acknowledged.
    pub async fn finish(self) -> Vec<Written> {
        *self.stop.borrow_mut() = true;
        let mut done = Vec::new();
        for writer in self.writers {
            done.push(writer.await.expect("a writer"));
        }
        done
    }
}

/// Every writer's requests, tallied together.
pub fn total(written: &[Written]) -> Tally {
    let mut tally = Tally::default();
    for w in written {
        tally.add(&w.tally);
    }
    tally
}

/// Nothing lost, nothing doubled, nothing out of order: each session holds exactly the events
/// its writer had acknowledged, each once, under the seq its answer gave, in the order sent
/// (seqs 1, 2, …), and its counters agree; as read through `reader`.
pub async fn assert_stored_as_acknowledged(reader: &Client, written: &[Written]) {
    for w in written {
        let events = reader.all_events(&w.session).await;
        let stored: Vec<(String, i64)> = events
            .iter()
            .map(|e| {
                (
                    e["event_id"].as_str().unwrap().to_owned(),
                    e["seq"].as_i64().unwrap(),
                )
            })
            .collect();
        let acknowledged: Vec<(String, i64)> = w
            .acknowledged
            .iter()
            .map(|(id, seq, _)| (id.clone(), *seq))
            .collect();
        assert_eq!(stored, acknowledged, "{}", w.session);
        let expected_seqs: Vec<i64> = (1..=stored.len() as i64).collect();
        let seqs: Vec<i64> = stored.iter().map(|(_, seq)| *seq).collect();
        assert_eq!(seqs, expected_seqs, "{}: gap-free", w.session);
        let session = reader.get(format!("/v1/sessions/{}", w.session)).await.body;
        assert_eq!(
            (
                session["event_count"].as_i64(),
                session["last_seq"].as_i64()
            ),
            (Some(stored.len() as i64), Some(stored.len() as i64)),
            "{}: {session}",
            w.session
        );
    }
}

/// For each session, when it was first acknowledged after `since` (None: never).
pub fn first_acknowledged_after(written: &[Written], since: Instant) -> HashMap<String, Duration> {
    written
        .iter()
        .filter_map(|w| {
            let first = w.acknowledged.iter().find(|(_, _, at)| *at > since)?;
            Some((w.session.clone(), first.2 - since))
        })
        .collect()
}
