//! The cluster behind the proxy it ships with: deploy/cluster-proxy.conf, run by a real nginx
//! in front of three real nodes on loopback (the upstream addresses and the listening port
//! changed to theirs, nothing else). Clients talk to the proxy only, as in deploy/cluster.yml.
//! nginx is installed by scripts/test; run by hand without it, these tests say so and pass.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use orchestrator::store::DatabaseTarget;

use crate::common::{fresh_database, Backend, RemoveOnDrop};

use super::load::{self, Load, Nodes};
use super::*;

/// A port nobody listens on now, for a process to listen on (and listen on again).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("ORCH_REQUIRE_POSTGRES").is_none(),
            "nginx is needed for the proxy tests (scripts/test installs it)"
        );
        eprintln!("nginx is not installed: the proxy tests do nothing");
    }
    found
}

/// nginx running deploy/cluster-proxy.conf in front of `upstreams`, listening on `port`.
struct Proxy {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Proxy {
    fn start(nginx: &Path, upstreams: &[u16]) -> Proxy {
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/cluster-proxy.conf"
        ))
        .unwrap();
        let port = free_port();
        let mut conf = shipped.replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
        for (i, upstream) in upstreams.iter().enumerate() {
            let name = format!("server orchestrator-{}:8080 ", i + 1);
            assert!(conf.contains(&name), "{name} in the shipped config");
            conf = conf.replace(&name, &format!("server 127.0.0.1:{upstream} "));
        }
        let dir = std::env::temp_dir().join(format!("orch-proxy-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cluster-proxy.conf"), conf).unwrap();
        // What the nginx image's own nginx.conf provides around the shipped server block.
        let d = dir.display();
        let main = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n  include {d}/cluster-proxy.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(nginx)
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            // Its workers would hold the test's output open if they outlived it.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy { child, dir, url }
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would leave them running).
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node listening on `port`, so that it can be restarted where the proxy expects it.
fn node_on(database: &DatabaseTarget, id: &str, port: u16) -> ServerProcess {
    let listen = format!("127.0.0.1:{port}");
    node_with(database, id, &[("ORCH_LISTEN", listen.as_str())])
}

/// Every node restarted in turn while writers post through the shipped proxy: the clients
/// see acknowledgements and 503s with Retry-After only. No 502 from the proxy, no answer lost,
/// nothing acknowledged lost or doubled.
#[actix_rt::test]
async fn a_rolling_restart_behind_the_shipped_proxy_fails_nothing() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    let Some(database) = fresh_database(Backend::Postgres) else {
        return;
    };
    let _remove = RemoveOnDrop(database.clone());
    let ids = ["node-a", "node-b", "node-c"];
    let ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let mut running: Vec<ServerProcess> = ids
        .iter()
        .zip(&ports)
        .map(|(id, port)| node_on(&database, id, *port))
        .collect();
    let refs: Vec<&ServerProcess> = running.iter().collect();
    until_owned(&refs, &[86, 85, 85], Duration::from_secs(30)).await;
    let proxy = Proxy::start(&nginx, &ports);
    let through_proxy = Nodes::new([proxy.url.clone()]);
    let load = Load::start(&through_proxy, "p", 12);
    actix_rt::time::sleep(Duration::from_secs(2)).await;

    for (i, id) in ids.iter().enumerate() {
        let old = running.remove(i);
        old.signal("TERM");
        assert!(old.exited().await.success());
        running.insert(i, node_on(&database, id, ports[i]));
        let refs: Vec<&ServerProcess> = running.iter().collect();
        until_spread(&refs, Duration::from_secs(30)).await;
        actix_rt::time::sleep(Duration::from_secs(1)).await;
    }
    let written = load.finish().await;

    let tally = load::total(&written);
    eprintln!("rolling restart behind nginx: {tally:?}");
    if !tally.unexpected.is_empty() || tally.lost > 0 {
        eprintln!("nginx: {}", proxy.errors());
        let refs: Vec<&ServerProcess> = running.iter().collect();
        print_warnings(&refs);
    }
    assert!(tally.unexpected.is_empty(), "{:?}", tally.unexpected);
    assert_eq!((tally.lost, tally.not_sent), (0, 0));
    load::assert_stored_as_acknowledged(&running[0].http, &written).await;
}
