//! deploy/: this machine has no Docker engine, so the compose file and Dockerfile are checked
//! for the structure operators rely on rather than run.

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
}

#[test]
fn the_image_is_multi_stage_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
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
