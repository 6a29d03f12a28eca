//! The end-to-end suite: the real `cargo xtask` binary drives a real Docker engine, as a new
//! user would, on its own compose project, ports and volumes (never a developer's stack), and
//! asserts on real outcomes. `bash xtask/testbed/run-tests.sh` provisions the engine and the
//! registry and sets RS_E2E=required, so that a missing engine fails here instead of skipping.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{docker, get, refused, Run, Testbed};

const PROJECT: &str = "rse2e";
const BACKEND_PORT: u16 = 15080;
const FRONTEND_PORT: u16 = 13080;

struct Suite {
    bed: Testbed,
    config: PathBuf,
    backend_image: String,
}

impl Drop for Suite {
    /// Leaves nothing behind, also when an assertion failed: containers, networks, volumes, the test image.
    fn drop(&mut self) {
        let _ = self.xtask(&["compose", "down", "--volumes", "--remove-orphans"]);
        let _ = Command::new("docker").args(["image", "rm", "--force", &self.backend_image]).output();
    }
}

fn setup() -> Option<Suite> {
    let bed = common::testbed(false)?;
    let backend_image = format!("{}/recordsponge/expungeservice:dev", bed.registry);
    let config = bed.config(
        "e2e.toml",
        &[
            ("project = \"recordsponge\"", &format!("project = \"{PROJECT}\"")),
            ("backend = 5000", &format!("backend = {BACKEND_PORT}")),
            ("frontend = 3000", &format!("frontend = {FRONTEND_PORT}")),
            ("backend_dev = \"recordsponge/expungeservice:dev\"", &format!("backend_dev = \"{backend_image}\"")),
        ],
    );
    Some(Suite { bed, config, backend_image })
}

impl Suite {
    fn xtask(&self, args: &[&str]) -> Run {
        self.bed.run(&self.config, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.bed.ok(&self.config, args).out
    }

    fn sql(&self, query: &str) -> String {
        let args = ["compose", "exec", "-T", "-u", "postgres", "postgres", "psql", "-d", "recordsponge", "-tAc", query];
        self.bed.ok(&self.config, &args).stdout.trim().to_string()
    }

    /// The ids of this project's containers (any state), sorted.
    fn containers(&self) -> Vec<String> {
        let out =
            docker(&["ps", "--all", "--quiet", "--filter", &format!("label=com.docker.compose.project={PROJECT}")]);
        let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
        ids.sort();
        ids
    }

    fn volumes(&self) -> Vec<String> {
        let out =
            docker(&["volume", "ls", "--quiet", "--filter", &format!("label=com.docker.compose.project={PROJECT}")]);
        out.lines().map(str::to_string).collect()
    }

    fn service_container(&self, service: &str) -> String {
        let out = docker(&[
            "ps",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        out.trim().to_string()
    }
}

#[test]
fn the_dev_environment_end_to_end() {
    let Some(s) = setup() else { return };

    // Faults first, on a machine where this project has nothing yet: each refused before any step.
    let mut cmd = s.bed.command(&s.config, &["up"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    refused(
        &s.bed.run_with(cmd, "up (daemon unreachable)"),
        "up with the daemon down",
        "the Docker daemon answers: no",
    );

    let squatter = std::net::TcpListener::bind(("0.0.0.0", BACKEND_PORT)).unwrap();
    refused(&s.xtask(&["up"]), "up with a taken port", &format!("port {BACKEND_PORT} is taken"));
    drop(squatter);

    let missing_env = s.bed.variant(
        &s.config,
        "missing-env.toml",
        "env_files = [\"config/env/dev.env\"]",
        "env_files = [\"config/env/missing.env\"]",
    );
    refused(&s.bed.run(&missing_env, &["up"]), "up without its env file", "config/env/missing.env");

    let broken = s.bed.dir.join("broken-compose.yml");
    std::fs::write(&broken, "services:\n  postgres:\n    image: [unclosed\n").unwrap();
    let broken_config = s.bed.variant(
        &s.config,
        "broken.toml",
        "file = \"config/compose.yml\"",
        &format!("file = \"{}\"", broken.display()),
    );
    refused(&s.bed.run(&broken_config, &["up"]), "up with a broken compose file", "the compose file is valid: no");

    refused(
        &s.xtask(&["clobber"]),
        "clobber without a terminal or --yes",
        "there is no terminal to ask for confirmation",
    );
    assert!(s.containers().is_empty() && s.volumes().is_empty(), "a refused command changed something");

    // A new user's first command.
    let out = s.ok(&["new"]);
    assert!(out.contains("RecordSponge is running"), "{out}");
    assert!(out.contains("admin@example.com"), "new prints the seed logins:\n{out}");
    let (status, body) = get(BACKEND_PORT, "/api/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\""), "{body}");
    assert_eq!(get(FRONTEND_PORT, "/").0, 200, "the dev server answers");
    assert_eq!(get(FRONTEND_PORT, "/api/health").0, 200, "the dev server proxies /api to the backend");

    // `new` again: quick, and nothing changes.
    let before = s.containers();
    s.ok(&["new"]);
    assert_eq!(s.containers(), before, "a second `new` recreated containers");

    // The seed users are there; initdb again keeps every row.
    assert_eq!(s.sql("select email from users order by email"), "admin@example.com\nuser@example.com");
    s.sql("insert into users (email, name, hashed_password, admin) values ('e2e@example.com', 'E2E', 'x', false)");
    let out = s.ok(&["initdb"]);
    assert!(out.contains("already initialized"), "{out}");
    assert_eq!(s.sql("select count(*) from users"), "3", "initdb lost or added rows");

    // The test suites pass in their containers.
    s.ok(&["test"]);

    // A rebuilt image, reloaded, is what serves.
    s.ok(&["backend-build"]);
    let old = s.service_container("expungeservice");
    s.ok(&["backend-reload"]);
    let new = s.service_container("expungeservice");
    assert_ne!(old, new, "backend-reload did not recreate the container");
    let image_of = |id: &str| docker(&["inspect", "--format", "{{.Image}}", id]).trim().to_string();
    let built = docker(&["image", "inspect", "--format", "{{.Id}}", &s.backend_image]).trim().to_string();
    assert_eq!(image_of(&new), built, "the reloaded backend runs the rebuilt image");
    assert_eq!(get(BACKEND_PORT, "/api/health").0, 200);

    // The frontend's build is served by the backend.
    s.ok(&["frontend-build"]);
    assert!(s.bed.root.join("src/frontend/build/index.html").is_file());
    let (status, body) = get(BACKEND_PORT, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<div id=\"root\">"), "{body}");

    // push: with the login it lands in the registry; without it, refused before anything runs.
    let empty_config = s.bed.dir.join("no-login");
    std::fs::create_dir_all(&empty_config).unwrap();
    let mut cmd = s.bed.command(&s.config, &["push"]);
    cmd.env("DOCKER_CONFIG", &empty_config);
    refused(
        &s.bed.run_with(cmd, "push (no login)"),
        "push without a login",
        &format!("not logged in to {}", s.bed.registry),
    );
    s.ok(&["push"]);
    let tags = Command::new("docker")
        .args(["manifest", "inspect", "--insecure", &s.backend_image])
        .env("DOCKER_CONFIG", &s.bed.docker_config)
        .env("DOCKER_CLI_EXPERIMENTAL", "enabled")
        .output()
        .unwrap();
    assert!(
        tags.status.success(),
        "the pushed image is not in the registry: {}",
        String::from_utf8_lossy(&tags.stderr)
    );

    // down keeps the data; up brings it back.
    s.ok(&["down"]);
    assert!(s.containers().is_empty(), "down left containers");
    assert!(s.volumes().iter().any(|v| v == &format!("{PROJECT}_postgres_data")), "down removed the data volume");
    s.ok(&["up"]);
    assert_eq!(s.sql("select count(*) from users where email = 'e2e@example.com'"), "1", "up lost data");

    // clobber --yes removes containers and volumes.
    s.ok(&["clobber", "--yes"]);
    assert!(s.containers().is_empty(), "clobber left containers");
    assert!(s.volumes().is_empty(), "clobber left volumes: {:?}", s.volumes());

    // clean removes caches, and nothing else.
    let status_before = git_status(&s.bed.root);
    let cache = s.bed.root.join("src/backend/expungeservice/__pycache__");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("e2e.cpython-311.pyc"), "x").unwrap();
    std::fs::write(s.bed.root.join("src/backend/e2e-stale.pyc"), "x").unwrap();
    s.ok(&["clean"]);
    assert!(!cache.exists() && !s.bed.root.join("src/backend/e2e-stale.pyc").exists());
    assert_eq!(git_status(&s.bed.root), status_before, "clean touched files other than caches");
}

fn git_status(root: &Path) -> String {
    let out = Command::new("git").args(["status", "--porcelain", "--ignored=no"]).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
