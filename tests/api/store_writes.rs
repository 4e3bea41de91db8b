//! The group-commit transaction below HTTP, on both backends: every column it writes reads
//! back as written (NULLs and values alike), updates change what they should and nothing else,
//! and a failing statement leaves nothing of its batch behind. PostgreSQL and SQLite build
//! these statements differently (arrays through `UNNEST` against multi-row `VALUES`), so
//! both are held to the same rows.

use std::time::Duration;

use orchestrator::store::models::{EventRow, InteractionRow, SessionRow};
use orchestrator::store::{
    self, commit_batch, events, interactions, notifications, sessions, DbPool, NewNotification,
    PoolSettings, SessionWrite,
};

use crate::common::{both_backends, fresh_database, Backend, RemoveOnDrop};

/// A pool on a fresh database, and the guard that removes the database after the test.
fn pool(backend: Backend) -> Option<(DbPool, RemoveOnDrop)> {
    let target = fresh_database(backend)?;
    let settings = PoolSettings {
        max_size: 2,
        connection_timeout: Duration::from_secs(5),
    };
    let pool = store::connect(&target, &settings).expect("connect and migrate");
    Some((pool, RemoveOnDrop(target)))
}

/// The key of test session `s<N>`: N + 1.
fn key_of(id: &str) -> i64 {
    id[1..].parse::<i64>().expect("a test session id is s<N>") + 1
}

fn session(id: &str, conversation: Option<&str>) -> SessionRow {
    SessionRow {
        session_key: key_of(id),
        scope: "tenant-a".into(),
        session_id: id.into(),
        status: "active".into(),
        external_conversation_id: conversation.map(str::to_owned),
        metadata: r#"{"k":"v é"}"#.into(),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_001,
        event_count: 2,
        last_seq: 2,
        interactions_pending: 1,
        interactions_completed: 0,
        interactions_timed_out: 0,
        interactions_cancelled: 0,
        facts: r#"{"project":"/home/dev/acme","activity":"working"}"#.into(),
    }
}

fn event(session_id: &str, seq: i64, filled: bool) -> EventRow {
    EventRow {
        session_key: key_of(session_id),
        seq,
        event_id: filled.then(|| format!("ev-{seq}")),
        dedup_key: format!("e:{seq}"),
        event_type: "tool_use".into(),
        occurred_at_us: 1_700_000_000_000_123 + seq,
        received_at: 1_700_000_000_000 + seq,
        interaction_id: filled.then(|| "i-1".to_owned()),
        sequence: filled.then_some(seq * 10),
        out_of_order: filled,
        data: format!(r#"{{"n":{seq},"s":"line\nbreak"}}"#),
    }
}

fn interaction(id: &str, position: i64) -> InteractionRow {
    InteractionRow {
        scope: "tenant-a".into(),
        session_id: "s1".into(),
        interaction_id: id.into(),
        kind: "approval".into(),
        payload: r#"{"q":"deploy?"}"#.into(),
        status: "pending".into(),
        outcome: None,
        result: None,
        completed_by: None,
        decided_by: None,
        position,
        created_at: 1_700_000_000_002,
        timeout_ms: 30_000,
        deadline: Some(1_700_000_030_002),
        completed_at: None,
        event_count: 0,
    }
}

fn notification(kind: &'static str) -> NewNotification {
    NewNotification {
        kind,
        at: 1_700_000_000_003,
        body: r#"{"event_count":2}"#.into(),
    }
}

async fn every_column_reads_back_as_written(backend: Backend) {
    let Some((pool, _remove)) = pool(backend) else {
        return;
    };
    let mut conn = pool.get().unwrap();

    let mut first = SessionWrite::new(session("s1", None), true);
    first.events = vec![event("s1", 1, false), event("s1", 2, true)];
    first.new_interactions = vec![interaction("i-1", 1), interaction("i-2", 2)];
    first.notifications = vec![
        notification("session.created"),
        notification("events.appended"),
    ];
    let mut second = SessionWrite::new(session("s2", Some("conv-9")), true);
    second.events = vec![event("s2", 1, true)];
    second.notifications = vec![notification("session.created")];
    let committed = commit_batch(&mut conn, &[first.clone(), second.clone()], 41).unwrap();
    assert_eq!(
        committed.next_id, 44,
        "three notifications numbered from 41"
    );

    for expected in [&first.session, &second.session] {
        let stored = sessions::find(&mut conn, "tenant-a", &expected.session_id).unwrap();
        assert_eq!(stored.as_ref(), Some(expected));
    }
    let filter = events::EventFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        events::list(&mut conn, "tenant-a", "s1", &filter, usize::MAX)
            .map(|(rows, _)| rows)
            .unwrap(),
        first.events
    );
    assert_eq!(
        events::list(&mut conn, "tenant-a", "s2", &filter, usize::MAX)
            .map(|(rows, _)| rows)
            .unwrap(),
        second.events
    );
    for expected in &first.new_interactions {
        let stored =
            interactions::find(&mut conn, "tenant-a", "s1", &expected.interaction_id).unwrap();
        assert_eq!(stored.as_ref(), Some(expected));
    }
    let stored = notifications::list(&mut conn, "tenant-a", 0, None, 10, usize::MAX).unwrap();
    assert_eq!(
        committed.notifications, stored,
        "the rows handed to the notification feed are the rows stored"
    );
    let summary: Vec<_> = stored
        .iter()
        .map(|n| {
            (
                n.id,
                n.session_id.as_str(),
                n.kind.as_str(),
                n.at,
                n.body.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                41,
                "s1",
                "session.created",
                1_700_000_000_003,
                r#"{"event_count":2}"#
            ),
            (
                42,
                "s1",
                "events.appended",
                1_700_000_000_003,
                r#"{"event_count":2}"#
            ),
            (
                43,
                "s2",
                "session.created",
                1_700_000_000_003,
                r#"{"event_count":2}"#
            ),
        ]
    );

    // The next group: the session and one interaction change, the other interaction stays.
    let mut changed_session = session("s1", Some("conv-1"));
    changed_session.status = "ended".into();
    changed_session.updated_at += 50;
    changed_session.event_count = 3;
    changed_session.last_seq = 3;
    changed_session.interactions_pending = 0;
    changed_session.interactions_completed = 1;
    let mut completed = interaction("i-1", 1);
    completed.status = "completed".into();
    completed.outcome = Some("approved".into());
    completed.result = Some("null".into());
    completed.completed_by = Some("result".into());
    completed.deadline = None;
    completed.completed_at = Some(1_700_000_000_050);
    completed.event_count = 1;
    // Metadata and payloads never change after creation: the rows of an update carry none
    // (as the session actor writes them), and what is stored stays.
    let mut update = SessionWrite::new(
        SessionRow {
            metadata: String::new(),
            ..changed_session.clone()
        },
        false,
    );
    update.events = vec![event("s1", 3, true)];
    update.changed_interactions = vec![InteractionRow {
        payload: String::new(),
        ..completed.clone()
    }];
    update.notifications = vec![notification("interaction.completed")];
    assert_eq!(commit_batch(&mut conn, &[update], 44).unwrap().next_id, 45);

    let stored = sessions::find(&mut conn, "tenant-a", "s1").unwrap();
    assert_eq!(stored, Some(changed_session));
    let stored = interactions::find(&mut conn, "tenant-a", "s1", "i-1").unwrap();
    assert_eq!(stored, Some(completed));
    let untouched = interactions::find(&mut conn, "tenant-a", "s1", "i-2").unwrap();
    assert_eq!(untouched.as_ref(), Some(&first.new_interactions[1]));
    assert_eq!(
        events::list(&mut conn, "tenant-a", "s1", &filter, usize::MAX)
            .map(|(rows, _)| rows)
            .unwrap()
            .len(),
        3
    );
}

async fn a_failing_statement_stores_nothing_of_its_batch(backend: Backend) {
    let Some((pool, _remove)) = pool(backend) else {
        return;
    };
    let mut conn = pool.get().unwrap();
    let mut first = SessionWrite::new(session("s1", None), true);
    first.events = vec![event("s1", 1, false)];
    first.notifications = vec![notification("session.created")];
    commit_batch(&mut conn, &[first], 1).unwrap();

    // A new session, fine on its own, shares a batch with an event whose seq is taken.
    let mut fresh = SessionWrite::new(session("s3", None), true);
    fresh.events = vec![event("s3", 1, true)];
    fresh.notifications = vec![notification("session.created")];
    let mut clash = SessionWrite::new(session("s1", None), false);
    clash.events = vec![event("s1", 1, true)];
    let failed = commit_batch(&mut conn, &[fresh, clash], 2);
    assert!(failed.is_err(), "a primary-key clash fails the batch");

    assert_eq!(sessions::find(&mut conn, "tenant-a", "s3").unwrap(), None);
    let all = notifications::list(&mut conn, "tenant-a", 0, None, 10, usize::MAX).unwrap();
    assert_eq!(all.len(), 1, "no notification of the failed batch");

    // Creating a session twice is refused too, never turned into an update.
    let again = SessionWrite::new(session("s1", Some("other")), true);
    assert!(commit_batch(&mut conn, &[again], 2).is_err());
    let stored = sessions::find(&mut conn, "tenant-a", "s1")
        .unwrap()
        .unwrap();
    assert_eq!(stored.external_conversation_id, None);

    // The connection is still good for the next batch (on SQLite the failed statements
    // rolled back their transaction themselves: `INSERT OR ROLLBACK`).
    let next = SessionWrite::new(session("s4", None), true);
    commit_batch(&mut conn, std::slice::from_ref(&next), 2).unwrap();
    let stored = sessions::find(&mut conn, "tenant-a", "s4").unwrap();
    assert_eq!(stored.as_ref(), Some(&next.session));
}

/// More rows than one statement takes (SQLite writes them in chunks of 64 and the rest one by
/// one): all of them land, each once, with its own values.
async fn a_large_batch_reads_back_whole(backend: Backend) {
    let Some((pool, _remove)) = pool(backend) else {
        return;
    };
    let mut conn = pool.get().unwrap();
    let sessions: Vec<SessionWrite> = (0..70)
        .map(|s| {
            let id = format!("s{s}");
            let mut w = SessionWrite::new(session(&id, None), true);
            // 70 sessions × 3 events: 210 events, 70 sessions and 140 notifications.
            w.events = (1..=3).map(|seq| event(&id, seq, seq % 2 == 0)).collect();
            w.notifications = vec![
                notification("session.created"),
                notification("events.appended"),
            ];
            w
        })
        .collect();
    let expected = sessions.clone();
    assert_eq!(commit_batch(&mut conn, &sessions, 1).unwrap().next_id, 141);

    let filter = events::EventFilter {
        limit: 10,
        ..Default::default()
    };
    for w in &expected {
        let id = &w.session.session_id;
        assert_eq!(
            sessions::find(&mut conn, "tenant-a", id).unwrap().as_ref(),
            Some(&w.session)
        );
        assert_eq!(
            events::list(&mut conn, "tenant-a", id, &filter, usize::MAX)
                .map(|(rows, _)| rows)
                .unwrap(),
            w.events
        );
    }
    let stored = notifications::list(&mut conn, "tenant-a", 0, None, 500, usize::MAX).unwrap();
    let ids: Vec<i64> = stored.iter().map(|n| n.id).collect();
    assert_eq!(ids, (1..=140).collect::<Vec<_>>());
    assert!(stored
        .iter()
        .enumerate()
        .all(|(i, n)| n.session_id == format!("s{}", i / 2)));
}

/// A database written before events were keyed by their session's integer key: after the
/// upgrade every event is still its own session's (two scopes use the same session id), and
/// new sessions get keys above the ones the upgrade gave.
async fn events_stored_before_session_keys_stay_with_their_sessions(backend: Backend) {
    use diesel::RunQueryDsl;
    let Some(target) = fresh_database(backend) else {
        return;
    };
    store::migrate_before(&target, "2026-11-30-000007").expect("the schema before session keys");
    let settings = PoolSettings {
        max_size: 1,
        connection_timeout: Duration::from_secs(5),
    };
    let old = store::open_pool(&target, &settings).unwrap();
    let rows_of_the_old_binary = [
        "INSERT INTO sessions (scope, session_id, status, metadata, created_at, updated_at, \
         event_count, last_seq) VALUES ('tenant-a', 'same', 'active', '{}', 1, 1, 2, 2), \
         ('tenant-b', 'same', 'active', '{}', 2, 2, 1, 1)",
        "INSERT INTO events (scope, session_id, seq, event_id, dedup_key, event_type, \
         occurred_at_us, received_at, interaction_id, sequence, out_of_order, data) VALUES \
         ('tenant-a', 'same', 1, 'a1', 'e:a1', 'tool_use', 1, 1, NULL, NULL, FALSE, '{\"n\":\"a1\"}'), \
         ('tenant-a', 'same', 2, 'a2', 'e:a2', 'tool_use', 2, 2, 'i-1', 7, FALSE, '{\"n\":\"a2\"}'), \
         ('tenant-b', 'same', 1, 'b1', 'e:b1', 'tool_use', 3, 3, NULL, NULL, FALSE, '{\"n\":\"b1\"}')",
    ];
    {
        let mut conn = old.get().unwrap();
        for sql in rows_of_the_old_binary {
            match &mut **conn {
                store::DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c),
                store::DbConnection::Pg(c) => diesel::sql_query(sql).execute(c),
            }
            .unwrap();
        }
    }
    drop(old);
    let pool = store::connect(&target, &settings).expect("the upgrade");
    let _remove = RemoveOnDrop(target);
    let mut conn = pool.get().unwrap();
    let filter = events::EventFilter {
        limit: 10,
        ..Default::default()
    };
    let ids_of = |conn: &mut store::PooledConnection, scope: &str| -> Vec<String> {
        events::list(conn, scope, "same", &filter, usize::MAX)
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.event_id.unwrap())
            .collect()
    };
    assert_eq!(ids_of(&mut conn, "tenant-a"), ["a1", "a2"]);
    assert_eq!(ids_of(&mut conn, "tenant-b"), ["b1"]);
    let a = sessions::find(&mut conn, "tenant-a", "same")
        .unwrap()
        .unwrap();
    let b = sessions::find(&mut conn, "tenant-b", "same")
        .unwrap()
        .unwrap();
    assert_ne!(a.session_key, b.session_key);
    assert!(sessions::next_key(&mut conn).unwrap() > a.session_key.max(b.session_key));
    // The look-ups a session actor makes after loading find the upgraded rows.
    assert_eq!(
        events::find_dedup_keys(
            &mut conn,
            "tenant-a",
            "same",
            &["e:a2".into(), "e:b1".into()]
        )
        .unwrap(),
        [("e:a2".to_owned(), 2)]
    );
    assert_eq!(
        events::max_sequence(&mut conn, "tenant-a", "same").unwrap(),
        Some(7)
    );
    assert!(!events::any_names_interaction(&mut conn, "tenant-b", "same").unwrap());
}

both_backends!(
    events_stored_before_session_keys_stay_with_their_sessions,
    every_column_reads_back_as_written,
    a_failing_statement_stores_nothing_of_its_batch,
    a_large_batch_reads_back_whole,
);
