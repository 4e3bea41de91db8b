//! Nodes going away under load: killed (SIGKILL) or restarted one after another (SIGTERM, then
//! started again with the same id), while writers post through the nodes that are up. Nothing
//! acknowledged is lost, nothing is stored twice, and the sessions are writable again soon.

use std::time::{Duration, Instant};

use crate::common::{fresh_database, Backend, RemoveOnDrop};

use super::load::{self, Load, Nodes};
use super::*;

/// Writers in these tests, one session each.
const WRITERS: usize = 12;

/// A node killed under load: its in-flight requests die with it (their clients send them
/// again), its partitions are taken over once its leases expire, and afterwards every session
/// holds exactly the events acknowledged, once each, in order.
#[actix_rt::test]
async fn a_node_killed_under_load_loses_and_doubles_nothing() {
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let [a, b, c] = three_nodes(&database).await;
    let nodes = Nodes::new([&a, &b, &c].map(|n| n.http.base_url.clone()));
    let load = Load::start(&nodes, "w", WRITERS);
    actix_rt::time::sleep(Duration::from_secs(3)).await;

    let killed_sessions: Vec<String> = (0..WRITERS)
        .map(|i| format!("w-{i}"))
        .filter(|sid| owner_of(&database, sid).as_deref() == Some("node-c"))
        .collect();
    assert!(
        !killed_sessions.is_empty(),
        "node-c holds some writer's session"
    );
    nodes.remove(&c.http.base_url);
    c.kill();
    let killed = Instant::now();
    until_owned(&[&a, &b], &[128, 128], Duration::from_secs(30)).await;
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let written = load.finish().await;

    let tally = load::total(&written);
    eprintln!("kill -9 under load: {tally:?}");
    if !tally.unexpected.is_empty() {
        print_warnings(&[&a, &b]);
    }
    assert!(tally.unexpected.is_empty(), "{:?}", tally.unexpected);
    load::assert_stored_as_acknowledged(&a.http, &written).await;
    // Each of the killed node's sessions took writes again once its lease expired.
    let back = load::first_acknowledged_after(&written, killed);
    let slowest = killed_sessions
        .iter()
        .map(|sid| {
            *back
                .get(sid)
                .unwrap_or_else(|| panic!("{sid} never written again"))
        })
        .max()
        .unwrap();
    eprintln!(
        "the killed node's {} sessions were writable again after {slowest:?} (lease {LEASE_TTL_MS} ms)",
        killed_sessions.len()
    );
    // The lease's time and the keeper's next round, plus room for a loaded machine.
    assert!(
        slowest < Duration::from_millis(LEASE_TTL_MS) + Duration::from_secs(8),
        "{slowest:?}"
    );
}

/// Every node restarted in turn under load, as an upgrade does: each stops cleanly (handing
/// its partitions over) and starts again with its id. Clients see only acknowledgements, 503s
/// with Retry-After, and refused connections while a node is down (which a proxy sends on to
/// another node); no answer is lost and nothing acknowledged is.
#[actix_rt::test]
async fn a_rolling_restart_under_load_fails_nothing() {
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let mut running = Vec::from(three_nodes(&database).await);
    let nodes = Nodes::new(running.iter().map(|n| n.http.base_url.clone()));
    let load = Load::start(&nodes, "r", WRITERS);
    actix_rt::time::sleep(Duration::from_secs(2)).await;

    for id in ["node-a", "node-b", "node-c"] {
        let old = running.remove(0);
        let url = old.http.base_url.clone();
        old.signal("TERM");
        let stopped = Instant::now();
        assert!(old.exited().await.success());
        nodes.remove(&url);
        let new = node(&database, id);
        nodes.add(new.http.base_url.clone());
        running.push(new);
        let refs: Vec<&ServerProcess> = running.iter().collect();
        until_spread(&refs, Duration::from_secs(30)).await;
        eprintln!(
            "{id} restarted; the partitions spread again {:?} after its stop",
            stopped.elapsed()
        );
        actix_rt::time::sleep(Duration::from_secs(1)).await;
    }
    let written = load.finish().await;

    let tally = load::total(&written);
    eprintln!("rolling restart under load: {tally:?}");
    if !tally.unexpected.is_empty() || tally.lost > 0 {
        let refs: Vec<&ServerProcess> = running.iter().collect();
        print_warnings(&refs);
    }
    assert!(tally.unexpected.is_empty(), "{:?}", tally.unexpected);
    assert_eq!(tally.lost, 0, "answers lost during a clean restart");
    load::assert_stored_as_acknowledged(&running[0].http, &written).await;
}
