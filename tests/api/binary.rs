//! The `orchestrator` binary itself: help, refusing insecure listening, and the one-command
//! start on an embedded SQLite file in the working directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "ORCH_LISTEN",
        "ORCH_API_KEYS",
        "ORCH_ALLOW_INSECURE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn help_lists_every_setting() {
    let out = clean_command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for name in [
        "DATABASE_URL",
        "ORCH_LISTEN",
        "ORCH_API_KEYS",
        "RUST_LOG",
        "--allow-insecure",
    ] {
        assert!(help.contains(name), "{name} missing from --help:\n{help}");
    }
}

#[test]
fn refuses_open_non_loopback_listening_without_keys() {
    let out = clean_command()
        .args(["--listen", "0.0.0.0:0"])
        .env("DATABASE_URL", "sqlite:///nonexistent-dir/never.db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORCH_API_KEYS"));
}

#[test]
fn bad_database_url_is_a_clear_error() {
    let out = clean_command()
        .env("DATABASE_URL", "mysql://x/y")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// With DATABASE_URL unset the service runs on ./orchestrator.db, and SIGTERM stops it cleanly.
#[test]
fn runs_on_an_embedded_sqlite_file_by_default() {
    let dir = std::env::temp_dir().join(format!("orch-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = clean_command()
        .current_dir(&dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        assert!(Instant::now() < deadline, "no 'listening on' line");
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_owned();
        }
    };
    let health = http_get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(dir.join("orchestrator.db").exists());

    // SIGTERM: graceful stop, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
