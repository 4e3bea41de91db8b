//! deploy/: this machine has no Docker engine (and podman here can neither pull base images nor
//! run a container), so the compose file and Dockerfile are parsed and checked for what can be
//! checked without one: the structure operators rely on, that every file they copy is in the
//! build context, and that the runtime stage has every command it runs; the cluster compose file
//! (three nodes behind a round-robin proxy) likewise. scripts/test builds
//! the release binary with the Dockerfile's own build command.

use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn compose() -> Yaml {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .remove(0)
}

fn text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

#[test]
fn compose_runs_postgres_and_the_service_with_health_gates() {
    let doc = compose();
    let services = &doc["services"];
    let postgres = &services["postgres"];
    assert!(text(&postgres["image"]).starts_with("postgres:"));
    let volume = text(&postgres["volumes"]);
    assert!(volume.contains(":/var/lib/postgresql/data"), "{volume}");
    let volume_name = volume.split(':').next().unwrap().to_owned();
    assert!(
        !doc["volumes"][volume_name.as_str()].is_badvalue(),
        "named volume declared"
    );
    assert!(text(&postgres["healthcheck"]["test"]).contains("pg_isready"));
    assert!(!postgres["restart"].is_badvalue());

    let app = &services["orchestrator"];
    assert_eq!(text(&app["build"]["dockerfile"]), "deploy/Dockerfile");
    assert_eq!(
        text(&app["depends_on"]["postgres"]["condition"]),
        "service_healthy"
    );
    let env = &app["environment"];
    assert!(text(&env["DATABASE_URL"]).starts_with("postgres://"));
    assert!(
        text(&env["DATABASE_URL"]).contains("@postgres:5432/"),
        "points at the service"
    );
    assert!(text(&env["ORCH_LISTEN"]).starts_with("0.0.0.0:"));
    assert!(
        !env["ORCH_API_KEYS"].is_badvalue(),
        "keys are required when listening openly"
    );
    assert!(text(&app["healthcheck"]["test"]).contains("/readyz"));
    assert_eq!(text(&app["restart"]), "unless-stopped");
    assert_eq!(text(&app["stop_signal"]), "SIGTERM");
    for port in app["ports"].as_vec().expect("ports") {
        assert!(
            text(port).starts_with("127.0.0.1:"),
            "published on loopback only: {}",
            text(port)
        );
    }
}

#[test]
fn the_image_is_multi_stage_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    let data = instructions(&dockerfile)
        .into_iter()
        .filter(|(op, _)| op == "VOLUME")
        .map(|(_, args)| args)
        .collect::<Vec<_>>();
    assert_eq!(
        data,
        ["/data"],
        "the SQLite default's directory is a volume"
    );
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage");
    assert!(dockerfile.contains("cargo build --release --locked"));
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/readyz"));
    assert!(
        dockerfile.contains("COPY migrations"),
        "migrations are embedded at build time"
    );
}

/// The Dockerfile's instructions, `\` continuations joined and comments dropped: (op, args).
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "a continuation runs off the end");
    joined
        .into_iter()
        .map(|line| {
            let (op, args) = line.split_once(' ').unwrap_or((&line, ""));
            (op.to_owned(), args.trim().to_owned())
        })
        .collect()
}

/// The Dockerfile's stages, each as its list of instructions after FROM.
fn stages(dockerfile: &str) -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for (op, args) in instructions(dockerfile) {
        if op == "FROM" {
            stages.push(vec![(op, args)]);
        } else {
            stages
                .last_mut()
                .expect("FROM comes first")
                .push((op, args));
        }
    }
    stages
}

#[test]
fn the_dockerfile_lints_clean() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    const KNOWN: &[&str] = &[
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "USER",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "VOLUME",
        "STOPSIGNAL",
        "ARG",
        "LABEL",
        "CMD",
    ];
    for (op, args) in instructions(&dockerfile) {
        assert!(KNOWN.contains(&op.as_str()), "unknown instruction {op}");
        assert!(!args.is_empty(), "{op} without arguments");
        if op == "FROM" {
            let image = args.split_whitespace().next().unwrap();
            assert!(image.contains(':'), "{image}: base images name a tag");
            assert!(!image.ends_with(":latest"), "{image}: not :latest");
        }
        if op == "RUN" && args.contains("apt-get install") {
            assert!(
                args.contains("apt-get update"),
                "install after update: {args}"
            );
            assert!(args.contains("--no-install-recommends"), "{args}");
            assert!(args.contains("rm -rf /var/lib/apt/lists"), "{args}");
        }
    }
    let entrypoints: Vec<_> = instructions(&dockerfile)
        .into_iter()
        .filter(|(op, _)| op == "ENTRYPOINT" || op == "CMD" || op == "HEALTHCHECK")
        .collect();
    for (op, args) in &entrypoints {
        if op == "ENTRYPOINT" {
            assert!(
                args.starts_with('['),
                "exec form, so SIGTERM reaches the server"
            );
        }
    }
}

/// Every COPY source is in the build context and not excluded by .dockerignore; the build
/// caches dependencies in a layer of their own, before the sources are copied.
#[test]
fn the_build_context_holds_what_the_build_copies() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(format!("{ROOT}/.dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for excluded in ["/target", "/.git"] {
        assert!(
            ignored.contains(&excluded),
            "{excluded} is not sent to the daemon"
        );
    }
    let build = &stages(&dockerfile)[0];
    let mut copied_sources = false;
    let mut built_dependencies = false;
    for (op, args) in build {
        if op == "COPY" && !args.starts_with("--from") {
            let parts: Vec<&str> = args.split_whitespace().collect();
            for source in &parts[..parts.len() - 1] {
                let path = std::path::Path::new(ROOT).join(source);
                assert!(path.exists(), "COPY {source}: not in the repository");
                assert!(
                    !ignored.iter().any(|i| i.trim_start_matches('/') == *source),
                    "COPY {source}: excluded by .dockerignore"
                );
                if *source == "src" {
                    copied_sources = true;
                }
            }
        }
        if op == "RUN" && args.contains("cargo build") && !copied_sources {
            built_dependencies = true;
        }
    }
    assert!(copied_sources, "the sources are copied");
    assert!(
        built_dependencies,
        "dependencies are built before the sources are copied"
    );
    // The files the crate embeds at compile time are copied too.
    for embedded in ["migrations", "docs"] {
        assert!(
            build
                .iter()
                .any(|(op, args)| op == "COPY" && args.starts_with(embedded)),
            "{embedded} is embedded in the binary"
        );
    }
}

/// The runtime stage has every program it runs: the healthcheck's is installed in it, the
/// entrypoint is copied from the path the build stage produces.
#[test]
fn the_runtime_stage_has_the_commands_it_runs() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    let all = stages(&dockerfile);
    let runtime = all.last().unwrap();
    let installed: Vec<String> = runtime
        .iter()
        .filter(|(op, args)| op == "RUN" && args.contains("apt-get install"))
        .flat_map(|(_, args)| {
            let after = args.split("apt-get install").nth(1).unwrap();
            let packages = after.split("&&").next().unwrap();
            packages
                .split_whitespace()
                .filter(|w| !w.starts_with('-'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let copied: Vec<String> = runtime
        .iter()
        .filter(|(op, _)| op == "COPY")
        .map(|(_, args)| args.split_whitespace().last().unwrap().to_owned())
        .collect();
    let (_, healthcheck) = runtime
        .iter()
        .find(|(op, _)| op == "HEALTHCHECK")
        .expect("a HEALTHCHECK");
    let program = healthcheck
        .split(" CMD ")
        .nth(1)
        .and_then(|cmd| cmd.split_whitespace().next())
        .expect("HEALTHCHECK ... CMD program");
    assert!(
        installed.iter().any(|p| p == program) || copied.iter().any(|c| c.ends_with(program)),
        "the healthcheck runs {program}, which the runtime stage neither installs nor copies \
         (installed: {installed:?})"
    );
    let (_, entrypoint) = runtime.iter().find(|(op, _)| op == "ENTRYPOINT").unwrap();
    let binary = entrypoint.trim_matches(|c| "[]\" ".contains(c));
    let binary = binary.split('"').next().unwrap();
    let from_build = runtime
        .iter()
        .find(|(op, args)| op == "COPY" && args.ends_with(binary))
        .map(|(_, args)| args.clone())
        .expect("the entrypoint is copied into the image");
    assert!(
        from_build.contains("/src/target/release/orchestrator"),
        "copied from the build's output: {from_build}"
    );
    assert!(
        installed.iter().any(|p| p.starts_with("libpq")),
        "libpq for PostgreSQL"
    );
}

/// A service of deploy/cluster.yml with YAML merge keys (`<<: *node`) resolved, as compose
/// reads it.
fn merged(y: &Yaml) -> yaml_rust2::yaml::Hash {
    let mut out = yaml_rust2::yaml::Hash::new();
    let Some(map) = y.as_hash() else {
        return out;
    };
    if let Some(base) = map.get(&Yaml::String("<<".into())) {
        out = merged(base);
    }
    for (key, value) in map {
        if key.as_str() == Some("<<") {
            continue;
        }
        let value = if value.as_hash().is_some() {
            let mut inner = merged(value);
            if let Some(Yaml::Hash(base)) = out.get(key) {
                for (k, v) in base {
                    inner.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Yaml::Hash(inner)
        } else {
            value.clone()
        };
        out.insert(key.clone(), value);
    }
    out
}

#[test]
fn the_cluster_compose_runs_three_nodes_behind_a_round_robin_proxy() {
    let text_of = |path: &str| std::fs::read_to_string(format!("{ROOT}/deploy/{path}")).unwrap();
    let doc = YamlLoader::load_from_str(&text_of("cluster.yml"))
        .expect("valid YAML")
        .remove(0);
    let services = &doc["services"];
    let proxy_conf = text_of("cluster-proxy.conf");
    let mut urls = Vec::new();
    let mut ids = Vec::new();
    for name in ["orchestrator-1", "orchestrator-2", "orchestrator-3"] {
        let node = Yaml::Hash(merged(&services[name]));
        assert_eq!(text(&node["build"]["dockerfile"]), "deploy/Dockerfile");
        assert_eq!(
            text(&node["depends_on"]["postgres"]["condition"]),
            "service_healthy"
        );
        let env = &node["environment"];
        urls.push(text(&env["DATABASE_URL"]));
        ids.push(text(&env["ORCH_NODE_ID"]));
        assert!(!env["ORCH_API_KEYS"].is_badvalue(), "{name}: keys required");
        let listen = text(&env["ORCH_LISTEN"]);
        let port = listen.rsplit(':').next().unwrap();
        assert_eq!(
            text(&env["ORCH_ADVERTISE_URL"]),
            format!("http://{name}:{port}"),
            "{name}: the others reach it by its service name"
        );
        assert!(
            proxy_conf.contains(&format!("server {name}:{port} max_fails=0;")),
            "{name} is upstream of the proxy"
        );
        assert!(text(&node["healthcheck"]["test"]).contains("/readyz"));
        assert_eq!(text(&node["stop_signal"]), "SIGTERM");
        assert!(
            node["ports"].is_badvalue(),
            "{name}: reached through the proxy only"
        );
    }
    assert!(urls
        .iter()
        .all(|u| u == &urls[0] && u.contains("@postgres:5432/")));
    ids.dedup();
    assert_eq!(ids.len(), 3, "each node has its own id: {ids:?}");
    assert!(text(&services["postgres"]["image"]).starts_with("postgres:"));

    let proxy = &services["proxy"];
    assert!(text(&proxy["image"]).starts_with("nginx:"));
    assert!(text(&proxy["volumes"]).contains("./cluster-proxy.conf:/etc/nginx/conf.d/"));
    for port in proxy["ports"].as_vec().expect("ports") {
        assert!(text(port).starts_with("127.0.0.1:"), "{}", text(port));
    }
    // Round robin (no affinity directive); a refused connection goes to the next node; SSE
    // is not buffered and long-polls outlive their 60 s wait.
    for affinity in ["ip_hash", "hash ", "sticky", "least_conn"] {
        assert!(!proxy_conf.contains(affinity), "{affinity}");
    }
    for directive in [
        "proxy_next_upstream error timeout;",
        "proxy_buffering off;",
        "proxy_read_timeout 75s;",
        "proxy_set_header Host $http_host;",
    ] {
        assert!(proxy_conf.contains(directive), "{directive}");
    }
    assert!(
        !proxy_conf.contains("non_idempotent"),
        "a POST that reached a node is never sent to another"
    );
    assert!(
        !proxy_conf.contains("keepalive "),
        "no kept-alive upstream connections: a node closing one loses the request sent on it"
    );
}
