//! SQLite runs as one node: a second server on the same file, in the same process or another,
//! is refused at start with an error that says why, and the file is free again once the first
//! server stops or dies.

use std::time::{Duration, Instant};

use orchestrator::config::Config;
use orchestrator::store::DatabaseTarget;

use crate::common::{fresh_database, Backend, RemoveOnDrop, ServerProcess, TestApp};

#[actix_rt::test]
async fn a_second_server_on_one_sqlite_file_is_refused_until_the_first_stops() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let mut config = Config::new(app.database.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let Err(refused) = orchestrator::start(config).await else {
        panic!("a second server started on the same SQLite file");
    };
    let message = refused.to_string();
    assert!(message.contains("SQLite runs as one node"), "{message}");
    assert!(
        message.contains(&format!("(process {})", std::process::id())),
        "{message}"
    );
    // The first one was not disturbed.
    assert_eq!(app.get("/healthz").await.status, 200);

    let database = app.stop().await;
    let app = TestApp::start_on(database, |_| {}).await;
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[actix_rt::test]
async fn another_process_is_refused_and_the_file_is_free_once_the_holder_is_killed() {
    let database = fresh_database(Backend::Sqlite).expect("SQLite");
    let _remove = RemoveOnDrop(database.clone());
    let DatabaseTarget::Sqlite(path) = &database else {
        unreachable!("a SQLite database");
    };
    let first = ServerProcess::spawn(&database);
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .env_remove("ORCH_API_KEYS")
        .env("DATABASE_URL", format!("sqlite://{}", path.display()))
        .env("ORCH_LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn a second orchestrator");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().expect("exit status") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = second.kill();
            panic!("the second server did not exit");
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "the second server exits with an error");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("SQLite runs as one node"), "{stderr}");
    assert!(
        stderr.contains(&format!("(process {})", first.pid())),
        "{stderr}"
    );
    assert_eq!(first.http.get("/healthz").await.status, 200);

    // SIGKILL: the operating system releases the lock with the process.
    first.kill();
    let again = ServerProcess::spawn(&database);
    assert_eq!(again.http.get("/healthz").await.status, 200);
}
