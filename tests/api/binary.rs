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
    let log = help.split("--log <LOG>").nth(1).expect("--log in --help");
    let log = &log[..log.find("\n  -").unwrap_or(log.len())];
    assert!(log.contains("[default: info]"), "{log}");
}

/// Starts the binary with `env` in an empty directory and returns its log once it listens
/// (or the whole log, if it exits first), then stops it.
fn start_and_stop(env: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "orch-bin-{}-{}",
        std::process::id(),
        env.iter().map(|(_, v)| v.len()).sum::<usize>()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = clean_command()
        .current_dir(&dir)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut listening = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on http://") {
            listening = true;
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    (listening, log)
}

#[test]
fn settings_accept_what_people_type() {
    let (listening, log) =
        start_and_stop(&[("ORCH_LISTEN", "0.0.0.0:0"), ("ORCH_ALLOW_INSECURE", "1")]);
    assert!(listening, "ORCH_ALLOW_INSECURE=1 is accepted:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("auth off")),
        "listening beyond loopback without keys is warned about:\n{log}"
    );
    let (listening, log) = start_and_stop(&[("ORCH_LISTEN", "localhost:0")]);
    assert!(listening, "a host name is accepted:\n{log}");
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn an_sqlite_file_that_cannot_be_opened_is_named() {
    let out = clean_command()
        .env("DATABASE_URL", "sqlite:///nonexistent-dir/never.db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent-dir/never.db"), "{stderr}");
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
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
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

/// The access log has method, path, status and time: never the query string, which may carry a
/// stream token, nor the key.
#[test]
fn the_access_log_shows_no_query_string_or_key() {
    let dir = std::env::temp_dir().join(format!("orch-bin-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = clean_command()
        .current_dir(&dir)
        .args(["--listen", "127.0.0.1:0", "--api-keys", "secret-key-1:team"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_owned();
        }
    };
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /v1/stream?token=secret-token-2 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer secret-key-1x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let access = log
        .iter()
        .find(|l| l.contains("/v1/stream"))
        .unwrap_or_else(|| panic!("no access log line: {log:?}"));
    assert!(access.contains("GET /v1/stream 401"), "{access}");
    for secret in ["secret-token-2", "secret-key-1", "token="] {
        assert!(
            log.iter().all(|l| !l.contains(secret)),
            "{secret} logged: {log:?}"
        );
    }
}
