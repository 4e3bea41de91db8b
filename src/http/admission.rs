//! Per-scope admission: one tenant cannot take the machine from another. Every `/v1` request
//! is admitted by its scope's gate ([`admit`]) before its body is read or parsed, so a request
//! over a limit costs little:
//! - **in flight**: at most `ORCH_SCOPE_MAX_IN_FLIGHT` short requests of a scope run at once.
//!   One over it waits for a slot, in arrival order, up to `ORCH_SCOPE_QUEUE_MS`; a closed-loop
//!   client that floods is thereby slowed to the pace its slots allow instead of being answered
//!   at once (which it would answer with the next request);
//! - **requests per second**: at most `ORCH_SCOPE_MAX_REQUESTS_PER_SEC` short requests of a
//!   scope start per second (a second's worth at once); each reserves its turn, and one whose
//!   turn is further away than the queue time is refused at once. This is what keeps a scope
//!   that floods cheap requests to its share of the CPU;
//! - **bytes per second**: request bodies of a scope are counted as they arrive against
//!   `ORCH_SCOPE_MAX_BYTES_PER_SEC` (a token bucket holding a second's worth). A scope in
//!   debt waits for it to clear, up to the same queue time;
//! - **waits**: long-polls, interaction waits and streams hold no slot while they wait, but a
//!   scope may have at most `ORCH_SCOPE_MAX_WAITS` of them open.
//!
//! Beyond a limit the answer is 429 `too_many_requests` with a Retry-After. Requests whose
//! credentials open no scope share one gate, so a flood of bad keys cannot starve a tenant
//! either. Health, metrics, documentation and the dashboard's files pass ungated.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, HttpMessage, ResponseError};
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::CallerScope;
use super::AppState;
use crate::config::ScopeLimits;
use crate::http::error::{ApiError, EdgeRefusal};
use actix_web::http::StatusCode;

/// Why a request was not admitted (HTTP 429). Turned into problem JSON at the edge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    #[error(
        "scope {scope} starts more than {limit} requests per second; retry in {retry_after} s"
    )]
    Rate {
        scope: String,
        limit: u64,
        retry_after: u64,
    },
    #[error("scope {scope} has {limit} requests in flight; retry shortly")]
    InFlight { scope: String, limit: usize },
    #[error("scope {scope} sends more than {limit} bytes per second; retry in {retry_after} s")]
    Bytes {
        scope: String,
        limit: u64,
        retry_after: u64,
    },
    #[error("scope {scope} has {limit} long waits and streams open")]
    Waits { scope: String, limit: usize },
}

/// 429 problem JSON, with the seconds to wait.
impl EdgeRefusal for Throttled {
    fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    fn code(&self) -> &'static str {
        "too_many_requests"
    }

    fn title(&self) -> &'static str {
        "Too many requests"
    }

    fn retry_after(&self) -> Option<u64> {
        Some(match self {
            Self::Bytes { retry_after, .. } | Self::Rate { retry_after, .. } => *retry_after,
            _ => 1,
        })
    }
}

impl From<Throttled> for ApiError {
    fn from(throttled: Throttled) -> Self {
        Self::Refused(Box::new(throttled))
    }
}

/// The gates of every scope, made at start-up: scopes are the configured ones, so the map
/// never grows.
pub struct Admission {
    limits: ScopeLimits,
    gates: HashMap<String, Arc<Gate>>,
    /// Requests whose credentials open no scope.
    unknown: Arc<Gate>,
}

/// The scope name the gate of requests without a valid key is reported under.
const UNKNOWN_SCOPE: &str = "(unauthenticated)";

impl Admission {
    pub fn new(limits: ScopeLimits, scopes: impl IntoIterator<Item = String>) -> Self {
        let gate = |name: String| Arc::new(Gate::new(name, &limits));
        let gates = scopes.into_iter().map(|s| (s.clone(), gate(s))).collect();
        Self {
            unknown: gate(UNKNOWN_SCOPE.to_owned()),
            gates,
            limits,
        }
    }

    fn gate(&self, scope: Option<&str>) -> Arc<Gate> {
        scope
            .and_then(|s| self.gates.get(s))
            .unwrap_or(&self.unknown)
            .clone()
    }
}

/// One scope's limits in use.
#[derive(Debug)]
struct Gate {
    scope: String,
    slots: Arc<Semaphore>,
    /// Requests waiting for a slot: bounded, so waiting requests cannot pile up without end.
    queued: AtomicUsize,
    waits: AtomicUsize,
    /// Request body bytes.
    bucket: Mutex<Bucket>,
    /// Requests started.
    starts: Mutex<Bucket>,
}

impl Gate {
    fn new(scope: String, limits: &ScopeLimits) -> Self {
        Self {
            scope,
            slots: Arc::new(Semaphore::new(limits.max_in_flight)),
            queued: AtomicUsize::new(0),
            waits: AtomicUsize::new(0),
            bucket: Mutex::new(Bucket::full(limits.bytes_per_sec, Instant::now())),
            starts: Mutex::new(Bucket::full(limits.requests_per_sec, Instant::now())),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn starts(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.starts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A token bucket of bytes that may go into debt: a body is admitted while the bucket is not
/// in debt and is charged as it arrives, so one large body is never refused for its size
/// alone, and the next requests wait until the rate has paid for it.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    /// Bytes available; negative when in debt.
    tokens: f64,
    rate: f64,
    capacity: f64,
    updated: Instant,
}

/// Seconds of the rate the bucket holds when full: the burst a quiet scope may send at once.
const BURST_SECS: f64 = 1.0;

impl Bucket {
    fn full(rate: u64, now: Instant) -> Self {
        let rate = rate as f64;
        Self {
            tokens: rate * BURST_SECS,
            rate,
            capacity: rate * BURST_SECS,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// How long until the bucket is out of debt; zero when it is not in debt.
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    fn charge(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    /// Takes `cost` now and says how long until it is paid for: the caller's turn.
    fn reserve(&mut self, cost: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= cost;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Gives back what a reservation that was not used took.
    fn refund(&mut self, cost: f64) {
        self.tokens = (self.tokens + cost).min(self.capacity);
    }
}

/// What a request is, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Not gated: health, metrics, documentation, the dashboard's files.
    Free,
    /// Holds a slot while it runs.
    Short,
    /// Waits for something to happen (long-poll, interaction wait, stream): counted apart.
    Wait,
}

fn kind_of(path: &str, query: &str) -> Kind {
    if !path.starts_with("/v1/") {
        return Kind::Free;
    }
    let waits_for_news = form_urlencoded::parse(query.as_bytes())
        .any(|(name, value)| name == "wait_ms" && !value.trim_start_matches('0').is_empty());
    // Claude Code's HTTP hook may hold its answer until a person decides.
    let holds = path == "/v1/hooks/claude-code";
    if path == "/v1/stream" || path.ends_with("/wait") || waits_for_news || holds {
        Kind::Wait
    } else {
        Kind::Short
    }
}

/// Releases what a request holds when its answer has been sent (a stream's body may outlive
/// its handler by hours): its slot, or its place among the scope's waits.
#[derive(Debug)]
pub struct Admitted {
    _slot: Option<OwnedSemaphorePermit>,
    wait_of: Option<Arc<Gate>>,
}

impl Admitted {
    /// Holds nothing: for requests that are not gated.
    fn none() -> Self {
        Self {
            _slot: None,
            wait_of: None,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(gate) = &self.wait_of {
            gate.waits.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Admits `kind` of request into `gate`, waiting up to `queue_wait` for a slot and for the
/// byte budget.
async fn enter(gate: Arc<Gate>, kind: Kind, limits: &ScopeLimits) -> Result<Admitted, Throttled> {
    if kind == Kind::Wait {
        let open = gate.waits.fetch_add(1, Ordering::Relaxed);
        let scope = gate.scope.clone();
        let admitted = Admitted {
            _slot: None,
            wait_of: Some(gate),
        };
        if open >= limits.max_waits {
            return Err(Throttled::Waits {
                scope,
                limit: limits.max_waits,
            });
        }
        return Ok(admitted);
    }
    let deadline = tokio::time::Instant::now() + limits.queue_wait;
    let turn = gate.starts().reserve(1.0, Instant::now());
    if !turn.is_zero() {
        if turn > limits.queue_wait {
            gate.starts().refund(1.0);
            return Err(Throttled::Rate {
                scope: gate.scope.clone(),
                limit: limits.requests_per_sec,
                retry_after: turn.as_secs().max(1),
            });
        }
        tokio::time::sleep(turn).await;
    }
    let slot = match gate.slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            let in_flight = || Throttled::InFlight {
                scope: gate.scope.clone(),
                limit: limits.max_in_flight,
            };
            // Counted out when this future ends, also when it is dropped (its client gone).
            let _queued = Queued::enter(&gate.queued);
            if _queued.ahead >= 4 * limits.max_in_flight {
                return Err(in_flight());
            }
            let acquired =
                tokio::time::timeout_at(deadline, gate.slots.clone().acquire_owned()).await;
            match acquired {
                Ok(Ok(slot)) => slot,
                _ => return Err(in_flight()),
            }
        }
    };
    loop {
        let debt = gate.bucket().wait(Instant::now());
        if debt.is_zero() {
            break;
        }
        if tokio::time::Instant::now() + debt > deadline {
            return Err(Throttled::Bytes {
                scope: gate.scope.clone(),
                limit: limits.bytes_per_sec,
                retry_after: debt.as_secs().max(1),
            });
        }
        tokio::time::sleep(debt).await;
    }
    Ok(Admitted {
        _slot: Some(slot),
        wait_of: None,
    })
}

/// A place among the requests waiting for a slot, given back when dropped.
struct Queued<'a> {
    count: &'a AtomicUsize,
    /// How many were waiting before this one.
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let ahead = count.fetch_add(1, Ordering::Relaxed);
        Self { count, ahead }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The request body, charged to its scope's byte budget as it arrives.
struct CountedPayload {
    inner: Payload,
    gate: Arc<Gate>,
}

impl Stream for CountedPayload {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.gate.bucket().charge(chunk.len(), Instant::now());
        }
        polled
    }
}

/// A response body that holds its request's admission until it has been sent.
pub struct HeldBody<B> {
    body: Pin<Box<B>>,
    _admitted: Admitted,
}

impl<B> HeldBody<B> {
    fn new(body: B, admitted: Admitted) -> Self {
        Self {
            body: Box::pin(body),
            _admitted: admitted,
        }
    }
}

impl<B: MessageBody> MessageBody for HeldBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.body.as_mut().poll_next(cx)
    }
}

/// The middleware: finds the caller's scope (and leaves it for the handler's
/// [`CallerScope`]), admits the request into its gate or answers 429, and counts its body.
pub async fn admit<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<HeldBody<B>>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next
            .call(req)
            .await?
            .map_body(|_, body| EitherBody::left(HeldBody::new(body, Admitted::none()))));
    };
    let kind = kind_of(req.path(), req.query_string());
    if kind == Kind::Free {
        return Ok(next
            .call(req)
            .await?
            .map_body(|_, body| EitherBody::left(HeldBody::new(body, Admitted::none()))));
    }
    let scope = super::auth::scope_of_request(req.request(), &state);
    if let Some(scope) = &scope {
        req.extensions_mut().insert(scope.clone());
    }
    let gate = state
        .admission
        .gate(scope.as_ref().map(|s: &CallerScope| s.0.as_str()));
    let admitted = match enter(gate.clone(), kind, &state.admission.limits).await {
        Ok(admitted) => admitted,
        Err(throttled) => {
            crate::metrics::THROTTLED_REQUESTS
                .with_label_values(&[throttled.kind()])
                .inc();
            let answer = ApiError::from(throttled).error_response();
            return Ok(req.into_response(answer).map_into_right_body());
        }
    };
    let payload = req.take_payload();
    req.set_payload(Payload::Stream {
        payload: Box::pin(CountedPayload {
            inner: payload,
            gate,
        }),
    });
    let response = next.call(req).await?;
    Ok(response.map_body(|_, body| EitherBody::left(HeldBody::new(body, admitted))))
}

impl Throttled {
    /// Its label in the metrics.
    fn kind(&self) -> &'static str {
        match self {
            Self::Rate { .. } => "rate",
            Self::InFlight { .. } => "in_flight",
            Self::Bytes { .. } => "bytes",
            Self::Waits { .. } => "waits",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn requests_are_told_apart_by_path_and_wait() {
        assert_eq!(kind_of("/healthz", ""), Kind::Free);
        assert_eq!(kind_of("/", ""), Kind::Free);
        assert_eq!(kind_of("/dashboard/app.js", ""), Kind::Free);
        assert_eq!(kind_of("/v1/sessions/s/events", ""), Kind::Short);
        assert_eq!(kind_of("/v1/notifications", "limit=5"), Kind::Short);
        assert_eq!(kind_of("/v1/notifications", "wait_ms=0"), Kind::Short);
        assert_eq!(
            kind_of("/v1/notifications", "after=3&wait_ms=5000"),
            Kind::Wait
        );
        assert_eq!(
            kind_of("/v1/sessions/s/commands/next", "wait_ms=100"),
            Kind::Wait
        );
        assert_eq!(
            kind_of("/v1/sessions/s/interactions/i/wait", ""),
            Kind::Wait
        );
        assert_eq!(kind_of("/v1/stream", "token=x"), Kind::Wait);
    }

    #[test]
    fn the_bucket_admits_while_out_of_debt_and_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(1000, start);
        assert_eq!(bucket.wait(start), Duration::ZERO);
        bucket.charge(1000, start);
        assert_eq!(bucket.wait(start), Duration::ZERO, "the burst is paid for");
        bucket.charge(2000, start);
        assert_eq!(
            bucket.wait(start),
            Duration::from_secs(2),
            "2000 bytes of debt"
        );
        assert_eq!(
            bucket.wait(start + Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(bucket.wait(start + Duration::from_secs(2)), Duration::ZERO);
        let full = bucket.wait(start + Duration::from_secs(100));
        assert_eq!(full, Duration::ZERO);
        assert_eq!(bucket.tokens, 1000.0, "never more than the burst");
    }

    fn limits(max_in_flight: usize, max_waits: usize) -> ScopeLimits {
        ScopeLimits {
            max_in_flight,
            max_waits,
            bytes_per_sec: 1000,
            requests_per_sec: 1_000_000,
            queue_wait: Duration::from_millis(50),
        }
    }

    #[test]
    fn reservations_take_turns_at_the_rate() {
        let start = Instant::now();
        let mut starts = Bucket::full(10, start);
        for _ in 0..10 {
            assert_eq!(starts.reserve(1.0, start), Duration::ZERO, "the burst");
        }
        assert_eq!(starts.reserve(1.0, start), Duration::from_millis(100));
        assert_eq!(starts.reserve(1.0, start), Duration::from_millis(200));
        starts.refund(1.0);
        assert_eq!(
            starts.reserve(1.0, start),
            Duration::from_millis(200),
            "refunded"
        );
    }

    #[actix_rt::test]
    async fn a_scope_over_its_rate_waits_its_turn_or_is_refused() {
        let limits = ScopeLimits {
            requests_per_sec: 100,
            queue_wait: Duration::from_millis(100),
            ..limits(1000, 8)
        };
        let gate = Arc::new(Gate::new("a".into(), &limits));
        let mut admitted = Vec::new();
        for _ in 0..100 {
            admitted.push(enter(gate.clone(), Kind::Short, &limits).await.unwrap());
        }
        let started = Instant::now();
        admitted.push(enter(gate.clone(), Kind::Short, &limits).await.unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(9),
            "it waited its turn"
        );
        drop(admitted);
        // Thirty at once: turns 10 ms apart, those more than 100 ms away refused.
        let answers = futures_util::future::join_all(
            (0..30).map(|_| enter(gate.clone(), Kind::Short, &limits)),
        )
        .await;
        let refused = answers
            .iter()
            .filter(|a| matches!(a, Err(Throttled::Rate { .. })))
            .count();
        assert!((15..=25).contains(&refused), "{refused} refused");
    }

    #[actix_rt::test]
    async fn a_scope_over_its_slots_waits_then_is_throttled() {
        let limits = limits(2, 1);
        let gate = Arc::new(Gate::new("a".into(), &limits));
        let first = enter(gate.clone(), Kind::Short, &limits).await.unwrap();
        let _second = enter(gate.clone(), Kind::Short, &limits).await.unwrap();
        let third = enter(gate.clone(), Kind::Short, &limits).await;
        assert!(
            matches!(third, Err(Throttled::InFlight { .. })),
            "{third:?}"
        );
        // A slot freed while a request waits is its.
        let waiting = enter(gate.clone(), Kind::Short, &limits);
        drop(first);
        assert!(waiting.await.is_ok());
        // Waits are counted apart and do not take slots.
        let open = enter(gate.clone(), Kind::Wait, &limits).await.unwrap();
        assert!(matches!(
            enter(gate.clone(), Kind::Wait, &limits).await,
            Err(Throttled::Waits { .. })
        ));
        drop(open);
        assert!(enter(gate.clone(), Kind::Wait, &limits).await.is_ok());
    }

    #[actix_rt::test]
    async fn a_waiter_whose_client_left_gives_its_place_back() {
        let limits = limits(1, 8);
        let gate = Arc::new(Gate::new("a".into(), &limits));
        let _held = enter(gate.clone(), Kind::Short, &limits).await.unwrap();
        for _ in 0..10 {
            // Polled once, so it queues, then dropped as a disconnected client's would be.
            let mut waiting = Box::pin(enter(gate.clone(), Kind::Short, &limits));
            let woken = futures_util::task::noop_waker();
            let polled = waiting.as_mut().poll(&mut Context::from_waker(&woken));
            assert!(polled.is_pending());
            assert_eq!(gate.queued.load(Ordering::Relaxed), 1);
        }
        assert_eq!(gate.queued.load(Ordering::Relaxed), 0);
    }

    #[actix_rt::test]
    async fn a_scope_in_byte_debt_is_throttled_and_others_are_not() {
        let limits = limits(8, 8);
        let a = Arc::new(Gate::new("a".into(), &limits));
        let b = Arc::new(Gate::new("b".into(), &limits));
        a.bucket().charge(10_000, Instant::now());
        let refused = enter(a.clone(), Kind::Short, &limits).await;
        match refused {
            Err(Throttled::Bytes { retry_after, .. }) => assert!(retry_after >= 5),
            other => panic!("{other:?}"),
        }
        assert!(enter(b, Kind::Short, &limits).await.is_ok());
    }
}
