//! The end-to-end suite: the real `cargo xtask` binary drives a real Docker engine, as a new
//! user would, on its own compose project, ports and volumes (never a developer's stack), and
//! asserts on real outcomes. `bash xtask/testbed/run-tests.sh` provisions the engine and the
//! registry and sets RS_E2E=required, so that a missing engine fails here instead of skipping.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const PROJECT: &str = "rse2e";
const BACKEND_PORT: u16 = 15080;
const FRONTEND_PORT: u16 = 13080;

struct Suite {
    root: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    /// The Docker client config holding the registry login (from xtask/testbed/registry.sh).
    docker_config: PathBuf,
    registry: String,
    backend_image: String,
}

impl Drop for Suite {
    /// Leaves nothing behind, also when an assertion failed: containers, networks, volumes, the test image.
    fn drop(&mut self) {
        let _ = self.xtask(&["compose", "down", "--volumes", "--remove-orphans"]);
        let _ = Command::new("docker").args(["image", "rm", "--force", &self.backend_image]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The engine and the registry, or why the suite cannot run.
fn testbed(root: &Path) -> Result<(PathBuf, String), String> {
    let docker = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    if !docker.is_ok_and(|o| o.status.success()) {
        return Err("no Docker engine answers `docker info`".into());
    }
    let state = root.join("target/testbed");
    let env = std::fs::read_to_string(state.join("registry.env"))
        .map_err(|_| "no test registry (target/testbed/registry.env is missing)".to_string())?;
    let registry =
        env.lines().find_map(|l| l.strip_prefix("RS_REGISTRY=")).ok_or("registry.env names no registry")?.to_string();
    Ok((state.join("docker-config"), registry))
}

fn setup() -> Option<Suite> {
    let root = xtask::root();
    let (docker_config, registry) = match testbed(&root) {
        Ok(found) => found,
        Err(why) if std::env::var("RS_E2E").as_deref() == Ok("required") || std::env::var_os("CI").is_some() => {
            panic!(
                "the end-to-end suite cannot run: {why}. Run `bash xtask/testbed/run-tests.sh`, which provisions it."
            )
        }
        Err(why) => {
            eprintln!(
                "\n*** The end-to-end suite DID NOT RUN: {why}. ***\n*** `bash xtask/testbed/run-tests.sh` provisions the engine and registry and runs it. ***\n"
            );
            return None;
        }
    };
    let dir = std::env::temp_dir().join(format!("rs-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backend_image = format!("{registry}/recordsponge/expungeservice:dev");
    let shipped = std::fs::read_to_string(root.join("config/recordsponge.toml")).unwrap();
    let config = dir.join("e2e.toml");
    std::fs::write(
        &config,
        replace_all(
            &shipped,
            &[
                ("project = \"recordsponge\"", &format!("project = \"{PROJECT}\"")),
                ("backend = 5000", &format!("backend = {BACKEND_PORT}")),
                ("frontend = 3000", &format!("frontend = {FRONTEND_PORT}")),
                ("backend_dev = \"recordsponge/expungeservice:dev\"", &format!("backend_dev = \"{backend_image}\"")),
            ],
        ),
    )
    .unwrap();
    Some(Suite { root, dir, config, docker_config, registry, backend_image })
}

/// `text` with each `from` replaced, each of which must be there.
fn replace_all(text: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(text.to_string(), |text, (from, to)| {
        assert!(text.contains(from), "`{from}` is not in the configuration");
        text.replace(from, to)
    })
}

struct Run {
    ok: bool,
    stdout: String,
    /// stdout and stderr.
    out: String,
}

impl Suite {
    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--config").arg(config).args(args).current_dir(&self.root).stdin(Stdio::null());
        cmd.env("DOCKER_CONFIG", &self.docker_config).env_remove("RS_ENV").env_remove("DEPLOY_TAG");
        cmd
    }

    fn run_with(&self, mut cmd: Command, args: &[&str]) -> Run {
        let start = Instant::now();
        let Output { status, stdout, stderr } = cmd.output().expect("the xtask binary runs");
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let out = format!("{stdout}{}", String::from_utf8_lossy(&stderr));
        eprintln!("--- xtask {} ({:.1}s, {status})\n{out}", args.join(" "), start.elapsed().as_secs_f64());
        Run { ok: status.success(), stdout, out }
    }

    fn xtask(&self, args: &[&str]) -> Run {
        self.run_with(self.command(&self.config, args), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_run(args).out
    }

    fn ok_run(&self, args: &[&str]) -> Run {
        let run = self.xtask(args);
        assert!(run.ok, "`cargo xtask {}` failed:\n{}", args.join(" "), run.out);
        run
    }

    /// The command fails, saying `expect`, before running any step.
    fn refused(&self, run: Run, args: &str, expect: &str) {
        assert!(!run.ok, "`{args}` should have failed:\n{}", run.out);
        assert!(run.out.contains(expect), "`{args}` should say `{expect}`:\n{}", run.out);
        assert!(run.out.contains("nothing was run"), "`{args}` should fail before any step:\n{}", run.out);
        assert!(!run.out.contains("[1/"), "`{args}` ran a step:\n{}", run.out);
    }

    /// A config like the suite's, with one more replacement.
    fn variant(&self, name: &str, from: &str, to: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, replace_all(&std::fs::read_to_string(&self.config).unwrap(), &[(from, to)])).unwrap();
        path
    }

    fn sql(&self, query: &str) -> String {
        let run = self.ok_run(&[
            "compose",
            "exec",
            "-T",
            "-u",
            "postgres",
            "postgres",
            "psql",
            "-d",
            "recordsponge",
            "-tAc",
            query,
        ]);
        run.stdout.trim().to_string()
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

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Status and body of `GET http://127.0.0.1:PORT/PATH`.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("port {port}: {e}"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn the_dev_environment_end_to_end() {
    let Some(s) = setup() else { return };

    // Faults first, on a machine where this project has nothing yet: each refused before any step.
    let mut cmd = s.command(&s.config, &["up"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    s.refused(
        s.run_with(cmd, &["up (daemon unreachable)"]),
        "up with the daemon down",
        "the Docker daemon answers: no",
    );

    let squatter = std::net::TcpListener::bind(("0.0.0.0", BACKEND_PORT)).unwrap();
    s.refused(s.xtask(&["up"]), "up with a taken port", &format!("port {BACKEND_PORT} is taken"));
    drop(squatter);

    let missing_env = s.variant(
        "missing-env.toml",
        "env_files = [\"config/env/dev.env\"]",
        "env_files = [\"config/env/missing.env\"]",
    );
    s.refused(
        s.run_with(s.command(&missing_env, &["up"]), &["up"]),
        "up without its env file",
        "config/env/missing.env",
    );

    let broken = s.dir.join("broken-compose.yml");
    std::fs::write(&broken, "services:\n  postgres:\n    image: [unclosed\n").unwrap();
    let broken_config =
        s.variant("broken.toml", "file = \"config/compose.yml\"", &format!("file = \"{}\"", broken.display()));
    s.refused(
        s.run_with(s.command(&broken_config, &["up"]), &["up"]),
        "up with a broken compose file",
        "the compose file is valid: no",
    );

    s.refused(
        s.xtask(&["clobber"]),
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
    assert!(s.root.join("src/frontend/build/index.html").is_file());
    let (status, body) = get(BACKEND_PORT, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<div id=\"root\">"), "{body}");

    // push: with the login it lands in the registry; without it, refused before anything runs.
    let empty_config = s.dir.join("no-login");
    std::fs::create_dir_all(&empty_config).unwrap();
    let mut cmd = s.command(&s.config, &["push"]);
    cmd.env("DOCKER_CONFIG", &empty_config);
    s.refused(
        s.run_with(cmd, &["push (no login)"]),
        "push without a login",
        &format!("not logged in to {}", s.registry),
    );
    s.ok(&["push"]);
    let tags = Command::new("docker")
        .args(["manifest", "inspect", "--insecure", &s.backend_image])
        .env("DOCKER_CONFIG", &s.docker_config)
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
    let status_before = git_status(&s.root);
    let cache = s.root.join("src/backend/expungeservice/__pycache__");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("e2e.cpython-311.pyc"), "x").unwrap();
    std::fs::write(s.root.join("src/backend/e2e-stale.pyc"), "x").unwrap();
    s.ok(&["clean"]);
    assert!(!cache.exists() && !s.root.join("src/backend/e2e-stale.pyc").exists());
    assert_eq!(git_status(&s.root), status_before, "clean touched files other than caches");
}

fn git_status(root: &Path) -> String {
    let out = Command::new("git").args(["status", "--porcelain", "--ignored=no"]).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
