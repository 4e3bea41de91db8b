//! Process-wide Prometheus metrics: one registry, the collectors the code increments, and the
//! text rendering served at `/metrics`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// Registers a collector defined from static names; those are valid by construction, which
/// the metrics test checks by rendering every one of them.
fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = REGISTRY.register(Box::new(collector.clone())) {
        log::error!("metric registration failed: {e}");
    }
    collector
}

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("static metric definition"))
}

pub static EVENTS_STORED: LazyLock<IntCounter> =
    LazyLock::new(|| counter("orchestrator_events_stored_total", "Events committed"));
pub static DUPLICATES_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_duplicate_events_total",
        "Events recognised as duplicates and not stored again",
    )
});
pub static NOTIFICATIONS_WRITTEN: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_notifications_total",
        "Notifications committed to the outbox",
    )
});
pub static CONVERSATION_CONFLICTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_conversation_conflicts_total",
        "conversation_started events whose conversation id differed from the linked one",
    )
});
pub static LIVE_SESSION_ACTORS: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "orchestrator_live_session_actors",
            "Session actors in memory",
        )
        .expect("static metric definition"),
    )
});
pub static PARTITIONS_OWNED: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "orchestrator_partitions_owned",
            "Session partitions whose lease this node holds (PostgreSQL)",
        )
        .expect("static metric definition"),
    )
});
pub static LEASES_TAKEN: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_leases_taken_total",
        "Partition leases this node took over (each with a new epoch)",
    )
});
pub static LEASES_RENEWED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_leases_renewed_total",
        "Partition leases this node renewed",
    )
});
pub static LEASES_LOST: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_leases_lost_total",
        "Partition leases that expired before this node renewed them",
    )
});
pub static FENCED_COMMITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_fenced_commits_total",
        "Session writes refused at commit: planned under a partition lease this node no longer held",
    )
});
pub static FORWARDED_REQUESTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_forwarded_requests_total",
        "Requests sent on to the node holding their session's partition, and answered",
    )
});
pub static FORWARDS_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_forwards_failed_total",
        "Requests whose session's owner could not be reached (answered 503 not_owner)",
    )
});
pub static SEARCH_INDEX_BEHIND: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "orchestrator_search_index_behind",
            "Events committed but not yet in the full-text search index, after its last pass",
        )
        .expect("static metric definition"),
    )
});
pub static WRITER_QUEUE_DEPTH: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "orchestrator_writer_queue_depth",
            "Session writes waiting for or in a commit",
        )
        .expect("static metric definition"),
    )
});
pub static THROTTLED_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_throttled_requests_total",
                "Requests answered 429 because their scope was over a limit, by limit",
            ),
            &["limit"],
        )
        .expect("static metric definition"),
    )
});
pub static REORDER_HELD_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "orchestrator_reorder_held_bytes",
            "Bytes of event data held back for reordering, all sessions together",
        )
        .expect("static metric definition"),
    )
});
pub static WAL_CHECKPOINTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_wal_checkpoints_total",
                "SQLite WAL checkpoints run beside the committer, by result (ok, failed)",
            ),
            &["result"],
        )
        .expect("static metric definition"),
    )
});
pub static INTERACTIONS_COMPLETED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_interactions_completed_total",
                "Interactions completed, by cause (result, event, timeout, cancel)",
            ),
            &["completed_by"],
        )
        .expect("static metric definition"),
    )
});
pub static REORDER_GAPS_SKIPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_reorder_gaps_skipped_total",
        "Gaps in client sequence numbers given up (timeout or buffer cap)",
    )
});
pub static OUT_OF_ORDER_EVENTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_out_of_order_events_total",
        "Events stored after their sequence gap was given up",
    )
});
pub static STUCK_SESSIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_stuck_sessions_total",
        "Session actors found by the periodic sweep with a write in flight for over 30 s",
    )
});
pub static SPLIT_COMMITS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_split_commits_total",
        "Group commits that failed because of a write in them and were retried in two halves",
    )
});
pub static SLOW_STREAMS_DISCONNECTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "orchestrator_slow_streams_disconnected_total",
        "SSE consumers disconnected for taking too long to accept a page while behind",
    )
});
pub static SESSION_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_session_reads_total",
                "Session reads (GET session, event polls) by where they were answered from",
            ),
            &["source"],
        )
        .expect("static metric definition"),
    )
});
pub static NOTIFICATION_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_notification_reads_total",
                "Notification pages read (listings, long-polls, streams) by where they came from",
            ),
            &["source"],
        )
        .expect("static metric definition"),
    )
});
pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "orchestrator_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("static metric definition"),
    )
});

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    register(
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .expect("static metric definition"),
    )
}

pub static COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "orchestrator_commit_seconds",
        "Time to commit one group-commit transaction",
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ],
    )
});
pub static BATCH_WRITES: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "orchestrator_commit_batch_writes",
        "Session writes committed per transaction",
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
    )
});
pub static BATCH_EVENTS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "orchestrator_commit_batch_events",
        "Events committed per transaction",
        vec![0.0, 1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 20000.0],
    )
});
pub static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "orchestrator_http_request_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["route"],
        )
        .expect("static metric definition"),
    )
});

/// Forces every collector into the registry, so `/metrics` lists them from the start.
pub fn init() {
    for c in [
        &EVENTS_STORED,
        &DUPLICATES_DROPPED,
        &NOTIFICATIONS_WRITTEN,
        &CONVERSATION_CONFLICTS,
        &REORDER_GAPS_SKIPPED,
        &OUT_OF_ORDER_EVENTS,
        &STUCK_SESSIONS,
        &SPLIT_COMMITS,
        &SLOW_STREAMS_DISCONNECTED,
        &LEASES_TAKEN,
        &LEASES_RENEWED,
        &LEASES_LOST,
        &FENCED_COMMITS,
        &FORWARDED_REQUESTS,
        &FORWARDS_FAILED,
    ] {
        LazyLock::force(c);
    }
    LazyLock::force(&PARTITIONS_OWNED);
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&REORDER_HELD_BYTES);
    for source in ["memory", "database"] {
        SESSION_READS.with_label_values(&[source]);
        NOTIFICATION_READS.with_label_values(&[source]);
    }
    for limit in ["rate", "in_flight", "bytes", "waits"] {
        THROTTLED_REQUESTS.with_label_values(&[limit]);
    }
    for result in ["ok", "failed"] {
        WAL_CHECKPOINTS.with_label_values(&[result]);
    }
    for cause in ["result", "event", "timeout", "cancel"] {
        // Listed at zero from the start, so dashboards see every cause.
        INTERACTIONS_COMPLETED.with_label_values(&[cause]);
    }
    LazyLock::force(&LIVE_SESSION_ACTORS);
    for h in [&COMMIT_SECONDS, &BATCH_WRITES, &BATCH_EVENTS] {
        LazyLock::force(h);
    }
    LazyLock::force(&HTTP_SECONDS);
    LazyLock::force(&WRITER_QUEUE_DEPTH);
    LazyLock::force(&SEARCH_INDEX_BEHIND);
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf) {
        log::error!("rendering metrics failed: {e}");
    }
    String::from_utf8(buf).unwrap_or_default()
}
