//! The end-to-end suite: the real `cargo xtask` binary drives a real Docker engine, as a new
//! user would, on its own compose project, ports, volumes and dev images (never a developer's
//! stack or images), with a registry with a login as a container beside it, and asserts on real
//! outcomes.
//! It needs a Docker engine, so plain `cargo test` lists it as ignored; `bash
//! xtask/testbed/run-tests.sh` provisions the engine and runs it, and a missing engine fails it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{docker, get, refused, Run, Spawned, Xtask};
use xtask::config::Config;
use xtask_testbed::fleet::Fleet;

const PROJECT: &str = "rse2e";
const BACKEND_PORT: u16 = 15080;
const FRONTEND_PORT: u16 = 13080;

struct Suite {
    x: Xtask,
    fleet: Fleet,
    /// The suite's own dev images (removed when it ends): the backend's, pushed to the fleet's
    /// registry, and the frontend's.
    images: [String; 2],
}

impl Drop for Suite {
    /// Leaves nothing behind, also when an assertion failed: containers, networks, volumes, the
    /// test images (the fleet removes the registry).
    fn drop(&mut self) {
        let _ = self.xtask(&["compose", "down", "--volumes", "--remove-orphans"]);
        let _ = Command::new("docker").args(["image", "rm", "--force"]).args(&self.images).output();
    }
}

fn setup() -> Suite {
    common::engine("end-to-end suite");
    let p = xtask::load(None, None, false).unwrap();
    let fleet = Fleet::start(&p, &format!("rse2e{}", std::process::id()), "host", 0, None, &[]).unwrap();
    let images = ["expungeservice", "frontend"].map(|name| format!("{}/recordsponge/{name}:dev", fleet.registry));
    let mut config: Config = p.config.clone();
    config.compose.project = PROJECT.into();
    config.ports.backend = BACKEND_PORT;
    config.ports.frontend = FRONTEND_PORT;
    config.images.backend_dev = images[0].clone();
    config.images.frontend_dev = images[1].clone();
    let path = fleet.dir.join("e2e.toml");
    config.write(&path).unwrap();
    let x = Xtask::new(&path, &[("DOCKER_CONFIG", &fleet.docker_config)]);
    Suite { x, fleet, images }
}

impl Suite {
    fn xtask(&self, args: &[&str]) -> Run {
        self.x.run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.x.ok(args).out
    }

    /// A variant of the suite's configuration.
    fn variant(&self, name: &str, change: impl FnOnce(&mut Config)) -> std::path::PathBuf {
        let mut config = Config::load(&self.x.config).unwrap();
        change(&mut config);
        let path = self.fleet.dir.join(name);
        config.write(&path).unwrap();
        path
    }

    fn sql(&self, query: &str) -> String {
        let args = ["compose", "exec", "-T", "-u", "postgres", "postgres", "psql", "-d", "recordsponge", "-tAc", query];
        self.x.ok(&args).stdout.trim().to_string()
    }

    /// Docker leaves a program started by `exec` running when its client ends: a watcher of a
    /// command that ended must be gone from the backend container within 10 s.
    fn no_watcher(&self, after: &str) {
        let backend = self.service_container("expungeservice");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut top = docker(&["top", &backend]);
        while top.contains("watchfiles") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            top = docker(&["top", &backend]);
        }
        assert!(!top.contains("watchfiles"), "{after}, its watcher still runs in the backend container:\n{top}");
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
#[ignore = "needs a Docker engine; bash xtask/testbed/run-tests.sh runs it (cargo test -- --include-ignored)"]
fn the_dev_environment_end_to_end() {
    let s = setup();

    // Faults first, on a machine where this project has nothing yet: each refused before any step.
    let mut cmd = s.x.command(&["up"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    refused(&s.x.run_with(cmd, "up (daemon unreachable)"), "up with the daemon down", "the Docker daemon answers: no");

    let squatter = std::net::TcpListener::bind(("0.0.0.0", BACKEND_PORT)).unwrap();
    refused(&s.xtask(&["up"]), "up with a taken port", &format!("port {BACKEND_PORT} is taken"));
    drop(squatter);

    let missing_env = s.variant("missing-env.toml", |c| c.compose.env_files = vec!["config/env/missing.env".into()]);
    refused(
        &s.x.run_with(s.x.command_with(&missing_env, &["up"]), "up (env file missing)"),
        "up without its env file",
        "config/env/missing.env",
    );

    let broken = s.fleet.dir.join("broken-compose.yml");
    std::fs::write(&broken, "services:\n  postgres:\n    image: [unclosed\n").unwrap();
    let broken_config = s.variant("broken.toml", |c| c.compose.file = broken.clone());
    refused(
        &s.x.run_with(s.x.command_with(&broken_config, &["up"]), "up (broken compose file)"),
        "up with a broken compose file",
        "the compose file is valid: no",
    );

    refused(
        &s.xtask(&["clobber"]),
        "clobber without a terminal or --yes",
        "there is no terminal to ask for confirmation",
    );
    assert!(s.containers().is_empty() && s.volumes().is_empty(), "a refused command changed something");

    // A new user's first command. The dev image is not in the registry yet: that the pull
    // fails is one line, not its output.
    let out = s.ok(&["new"]);
    assert!(out.contains("RecordSponge is running"), "{out}");
    let pull = format!("{} cannot be pulled (", s.images[0]);
    assert!(out.contains(&pull) && !out.contains("its last lines"), "{out}");
    assert!(out.contains("admin@example.com"), "new prints the seed logins:\n{out}");
    let (status, body) = get(BACKEND_PORT, "/api/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\""), "{body}");
    assert_eq!(get(FRONTEND_PORT, "/").0, 200, "the dev server answers");
    assert_eq!(get(FRONTEND_PORT, "/api/health").0, 200, "the dev server proxies /api to the backend");
    // The suite's own frontend image, never the developer's (removed when the suite ends).
    let node = s.service_container("node");
    let runs = docker(&["inspect", "--format", "{{.Image}}", &node]).trim().to_string();
    let own = docker(&["image", "inspect", "--format", "{{.Id}}", &s.images[1]]).trim().to_string();
    assert_eq!(runs, own, "the dev server does not run the suite's frontend image {}", s.images[1]);

    // `new` again: quick, and nothing changes.
    let before = s.containers();
    s.ok(&["new"]);
    assert_eq!(s.containers(), before, "a second `new` recreated containers");

    // A package-lock.json that differs from the one node_modules was installed from, with an
    // older file time (as from an archive or `cp -p`): the node service reinstalls as it starts;
    // here that fails, and `new`'s wait says so within seconds, with the service's last log lines.
    let lock = s.x.root.join("src/frontend/package-lock.json");
    let original = std::fs::read(&lock).unwrap();
    std::fs::write(&lock, "{}\n").unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    s.ok(&["compose", "stop", "node"]);
    let run = s.xtask(&["new"]);
    std::fs::write(&lock, &original).unwrap();
    assert!(!run.ok, "new with a broken lock file succeeded:\n{}", run.out);
    assert!(run.out.contains("the node container has exited") && run.out.contains("npm error"), "{}", run.out);
    let logs = s.ok(&["compose", "logs", "node"]);
    assert!(logs.contains("node_modules was not installed from this package-lock.json: npm ci"), "{logs}");
    assert!(run.seconds < 60.0, "the wait took {:.0}s to notice the exited node container", run.seconds);
    // The lock file it was installed from, back: no reinstall, the dev server answers.
    s.ok(&["new"]);
    assert_eq!(get(FRONTEND_PORT, "/").0, 200, "the dev server answers again");
    let logs = s.ok(&["compose", "logs", "node"]);
    assert_eq!(logs.matches("was not installed from this package-lock.json").count(), 1, "{logs}");

    // The seed users are there; initdb again keeps every row.
    assert_eq!(s.sql("select email from users order by email"), "admin@example.com\nuser@example.com");
    s.sql("insert into users (email, name, hashed_password, admin) values ('e2e@example.com', 'E2E', 'x', false)");
    let out = s.ok(&["initdb"]);
    assert!(out.contains("already initialized"), "{out}");
    assert_eq!(s.sql("select count(*) from users"), "3", "initdb lost or added rows");

    // psql passes its arguments through; a file given with -f is read on this machine.
    assert_eq!(s.x.ok(&["psql", "--", "-tA", "-c", "select count(*) from users"]).stdout.trim(), "3");
    let query = s.fleet.dir.join("query.sql");
    std::fs::write(&query, "select 'read from ' || current_database();\n").unwrap();
    let out = s.x.ok(&["psql", "--", "-tA", "-f", &query.to_string_lossy()]).stdout;
    assert_eq!(out.trim(), "read from recordsponge");

    // The test suites and the style checks pass in their containers; the backend's tests see the
    // dev seed (the check of its password hashes runs, not skipped).
    s.ok(&["test"]);
    let seed = s.x.ok(&["backend-test", "--", "-k", "seed_hashes", "-rs"]).out;
    assert!(seed.contains("1 passed") && !seed.contains("skipped"), "{seed}");
    s.ok(&["lint"]);

    // lint --watch reruns the style check when a file changes, until Ctrl-C.
    let mut watch = Spawned::start(s.x.command(&["lint", "--watch"]));
    watch.wait_for("All checks passed");
    let probe = s.x.root.join("src/backend/e2e_lint_probe.py");
    std::fs::write(&probe, "import os\n").unwrap();
    watch.wait_for("F401");
    std::fs::remove_file(&probe).unwrap();
    watch.wait_for("All checks passed");
    let ctrl_c = std::time::Instant::now();
    watch.interrupt();
    watch.finish(&s.x);
    assert!(ctrl_c.elapsed().as_secs() < 10, "lint --watch took {:?} to end after Ctrl-C", ctrl_c.elapsed());
    s.no_watcher("lint --watch ended with Ctrl-C");
    // Killed, not stopped: its watcher ends too.
    let mut watch = Spawned::start(s.x.command(&["backend-test", "--watch", "--", "-k", "seed_hashes"]));
    watch.wait_for("1 passed");
    watch.signal("-KILL");
    let _ = watch.finish(&s.x);
    s.no_watcher("backend-test --watch killed with -9");

    // A rebuilt image, reloaded, is what serves.
    s.ok(&["backend-build"]);
    let old = s.service_container("expungeservice");
    s.ok(&["backend-reload"]);
    let new = s.service_container("expungeservice");
    assert_ne!(old, new, "backend-reload did not recreate the container");
    let image_of = |id: &str| docker(&["inspect", "--format", "{{.Image}}", id]).trim().to_string();
    let built = docker(&["image", "inspect", "--format", "{{.Id}}", &s.images[0]]).trim().to_string();
    assert_eq!(image_of(&new), built, "the reloaded backend runs the rebuilt image");
    assert_eq!(get(BACKEND_PORT, "/api/health").0, 200);

    // The frontend's build is served by the backend.
    s.ok(&["frontend-build"]);
    assert!(s.x.root.join("src/frontend/build/index.html").is_file());
    let (status, body) = get(BACKEND_PORT, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<div id=\"root\">"), "{body}");

    // push: with the login it lands in the registry; without it, refused before anything runs.
    let empty_config = s.fleet.dir.join("no-login");
    std::fs::create_dir_all(&empty_config).unwrap();
    let mut cmd = s.x.command(&["push"]);
    cmd.env("DOCKER_CONFIG", &empty_config);
    refused(
        &s.x.run_with(cmd, "push (no login)"),
        "push without a login",
        &format!("not logged in to {}", s.fleet.registry),
    );
    // Quiet work: the push's output is in the step's log, not on the screen.
    let out = s.ok(&["push"]);
    assert!(!out.contains(" Pushed"), "{out}");
    let logs = std::fs::read_dir(s.x.root.join("target/logs")).unwrap();
    let pushed = logs.filter_map(Result::ok).any(|log| {
        log.file_name().to_string_lossy().starts_with("push-the-dev-image")
            && std::fs::read_to_string(log.path()).unwrap_or_default().contains(" Pushed")
    });
    assert!(pushed, "no log in target/logs holds the push's output");
    let tags = Command::new("docker")
        .args(["manifest", "inspect", "--insecure", &s.images[0]])
        .env("DOCKER_CONFIG", &s.fleet.docker_config)
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
    refused(&s.xtask(&["frontend-restart"]), "frontend-restart with the stack down", "the node service is running");
    assert!(s.volumes().iter().any(|v| v == &format!("{PROJECT}_postgres_data")), "down removed the data volume");
    // up --backend-only builds the frontend the backend serves when there is none.
    let build = s.x.root.join("src/frontend/build");
    let _ = std::fs::remove_dir_all(&build);
    s.ok(&["up", "--backend-only"]);
    assert!(build.join("index.html").is_file(), "up --backend-only did not build the frontend");
    assert_eq!(get(BACKEND_PORT, "/").0, 200, "the backend does not serve the frontend's build");
    // The build removed and made again under the running backend is what it serves.
    s.ok(&["frontend-clean"]);
    assert_ne!(get(BACKEND_PORT, "/").0, 200, "the backend serves a build frontend-clean removed");
    s.ok(&["frontend-build"]);
    let (status, body) = get(BACKEND_PORT, "/");
    assert_eq!(status, 200, "the running backend does not serve the new build: {body}");
    // Working backend-only is a choice: doctor says the dev server is not running, not a fault.
    let doctor = s.xtask(&["doctor"]);
    assert!(doctor.stdout.contains("not now the node service is running"), "{}", doctor.out);
    assert!(!doctor.stdout.contains("FAILED  the node service is running"), "{}", doctor.out);
    s.ok(&["up"]);
    assert_eq!(s.sql("select count(*) from users where email = 'e2e@example.com'"), "1", "up lost data");

    // clobber --yes removes containers and volumes.
    s.ok(&["clobber", "--yes"]);
    assert!(s.containers().is_empty(), "clobber left containers");
    assert!(s.volumes().is_empty(), "clobber left volumes: {:?}", s.volumes());

    // Backend-only, with compose v1 (the suite's smoke test of v1): no dev server and no
    // node_modules volume filled; the backend serves the frontend's production build, built because
    // there was none.
    let v1 = |args: &[&str]| s.x.ok(&[&["--compose", "v1"], args].concat());
    let build = s.x.root.join("src/frontend/build");
    std::fs::remove_dir_all(&build).unwrap();
    let out = v1(&["new", "--backend-only"]).out;
    assert!(out.contains("backend is running") && out.contains("docker-compose -p rse2e"), "{out}");
    assert!(build.join("index.html").is_file(), "new --backend-only did not build the frontend");
    let (status, body) = get(BACKEND_PORT, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<div id=\"root\">"), "{body}");
    assert_eq!(s.service_container("node"), "", "new --backend-only started the dev server");
    // Compose creates every volume of the file, but only a container fills one.
    let node_modules = format!("{PROJECT}_node_modules");
    let users = docker(&["ps", "--all", "--quiet", "--filter", &format!("volume={node_modules}")]);
    assert_eq!(users.trim(), "", "a container filled {node_modules}");
    assert_eq!(v1(&["psql", "--", "-tA", "-c", "select count(*) from users"]).stdout.trim(), "2");
    let before = s.containers();
    let out = v1(&["new", "--backend-only"]).out;
    assert!(out.contains("index.html exists"), "a second new --backend-only rebuilt the frontend:\n{out}");
    assert_eq!(s.containers(), before, "a second new --backend-only recreated containers");
    v1(&["clobber", "--yes"]);
    assert!(s.containers().is_empty() && s.volumes().is_empty(), "clobber under v1 left something");

    // clean removes caches, and nothing else.
    let status_before = git_status(&s.x.root);
    let cache = s.x.root.join("src/backend/expungeservice/__pycache__");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("e2e.cpython-311.pyc"), "x").unwrap();
    std::fs::write(s.x.root.join("src/backend/e2e-stale.pyc"), "x").unwrap();
    s.ok(&["clean"]);
    assert!(!cache.exists() && !s.x.root.join("src/backend/e2e-stale.pyc").exists());
    assert_eq!(git_status(&s.x.root), status_before, "clean touched files other than caches");
}

fn git_status(root: &Path) -> String {
    let out = Command::new("git").args(["status", "--porcelain", "--ignored=no"]).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
