//! The deploy suite: `staging`, `deploy`, `rollback`, `releases` and `lock` against a real
//! loopback production host (xtask/testbed/host.sh): sshd reached through an ssh config alias,
//! the same Docker engine, nginx in front, PostgreSQL on the host, the registry with a login.
//! A request loop runs through nginx during every switch and must see no failed request.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{docker, get, refused, Run, Testbed};

struct Suite {
    bed: Testbed,
    config: PathBuf,
    repository: String,
    state: PathBuf,
    port: u16,
    secret: String,
    /// Every output, to check that no secret ever appears.
    outputs: std::cell::RefCell<Vec<String>>,
}

impl Drop for Suite {
    /// Removes the releases, their images and the host state this suite made.
    fn drop(&mut self) {
        for env in ["staging", "prod"] {
            let ids = docker(&["ps", "--all", "--quiet", "--filter", &format!("label=org.recordsponge.env={env}")]);
            for id in ids.lines() {
                let _ = Command::new("docker").args(["rm", "--force", id]).output();
            }
            let _ = std::fs::remove_dir_all(self.state.join(format!("{env}.lock")));
            for file in ["live", "releases.log"] {
                let _ = std::fs::remove_file(self.state.join(format!("{env}.{file}")));
            }
        }
        // By tag, not id: a test tag shares its image with others (python's, the release's).
        let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &self.repository]);
        for tag in tags.lines() {
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
    }
}

fn setup() -> Option<Suite> {
    let bed = common::testbed(true)?;
    let h = |k: &str| bed.host.get(k).unwrap_or_else(|| panic!("host.env has no {k}")).clone();
    let repository = format!("{}/recordsponge/e2e-expungeservice", bed.registry);
    // The host's sudoers allows exactly these two commands to its deploy user (xtask/testbed/host.sh).
    let nginx = |args: &str| format!("[\"sudo\", \"nginx\", \"-c\", \"{}\", {args}]", h("RS_NGINX_CONF"));
    let config = bed.config(
        "deploy.toml",
        &[
            ("project = \"recordsponge\"", "project = \"rsdeploy\""),
            ("repository = \"recordsponge/expungeservice\"", &format!("repository = \"{repository}\"")),
            ("ssh_config = \"\"", &format!("ssh_config = \"{}\"", h("RS_SSH_CONFIG"))),
            ("state_dir = \"/var/lib/recordsponge\"", &format!("state_dir = \"{}\"", h("RS_HOST_STATE"))),
            ("nginx_test = [\"sudo\", \"nginx\", \"-t\"]", &format!("nginx_test = {}", nginx("\"-t\""))),
            (
                "nginx_reload = [\"sudo\", \"nginx\", \"-s\", \"reload\"]",
                &format!("nginx_reload = {}", nginx("\"-s\", \"reload\"")),
            ),
            ("keep_releases = 5", "keep_releases = 2"),
            ("host = \"recordsponge\"\nports = [3032", &format!("host = \"{}\"\nports = [3032", h("RS_SSH_HOST"))),
            ("host = \"recordsponge\"\nports = [3031", &format!("host = \"{}\"\nports = [3031", h("RS_SSH_HOST"))),
            ("/etc/nginx/recordsponge/staging.upstream.conf", &h("RS_UPSTREAM_STAGING")),
            ("/etc/nginx/recordsponge/prod.upstream.conf", &h("RS_UPSTREAM_PROD")),
            (
                "https://staging.recordsponge.com/api/version",
                &format!("http://127.0.0.1:{}/api/version", h("RS_NGINX_STAGING_PORT")),
            ),
            (
                "https://recordsponge.com/api/version",
                &format!("http://127.0.0.1:{}/api/version", h("RS_NGINX_PROD_PORT")),
            ),
            ("/etc/recordsponge/staging.env", &h("RS_ENV_FILE_STAGING")),
            ("/etc/recordsponge/prod.env", &h("RS_ENV_FILE_PROD")),
            ("health_timeout = 30\n\n", "health_timeout = 15\n\n"),
        ],
    );
    let secret = std::fs::read_to_string(h("RS_SECRET_FILE")).unwrap().trim().to_string();
    assert!(secret.len() >= 8, "the test secret is too short to look for");
    let port = h("RS_NGINX_STAGING_PORT").parse().unwrap();
    let state = PathBuf::from(h("RS_HOST_STATE"));
    Some(Suite { bed, config, repository, state, port, secret, outputs: Default::default() })
}

/// Requests through nginx, one after another, until stopped: how many failed.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let (stop, failed, total) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f, t) = (stop.clone(), failed.clone(), total.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most 50 000 requests, whatever happens.
            while !s.load(Ordering::SeqCst) && t.load(Ordering::SeqCst) < 50_000 {
                if get(port, "/api/health").0 != 200 {
                    f.fetch_add(1, Ordering::SeqCst);
                }
                t.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Load { stop, failed, total, thread: Some(thread) }
    }

    /// Stops the loop: (failed, total).
    fn stop(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (self.failed.load(Ordering::SeqCst), self.total.load(Ordering::SeqCst))
    }
}

impl Suite {
    fn record(&self, run: Run) -> Run {
        self.outputs.borrow_mut().push(run.out.clone());
        run
    }

    fn xtask(&self, args: &[&str]) -> Run {
        self.record(self.bed.run(&self.config, args))
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.xtask(args);
        assert!(run.ok, "`cargo xtask {}` failed:\n{}", args.join(" "), run.out);
        run
    }

    /// Runs `args` under a request loop through nginx; asserts no request failed.
    fn under_load(&self, args: &[&str]) -> Run {
        let load = Load::start(self.port);
        std::thread::sleep(Duration::from_millis(300));
        let run = self.xtask(args);
        let (failed, total) = load.stop();
        eprintln!("    request loop during `{}`: {failed} failed of {total}", args.join(" "));
        assert_eq!(failed, 0, "requests failed during `{}` ({failed} of {total})", args.join(" "));
        assert!(total > 10, "the request loop barely ran ({total})");
        run
    }

    fn serves(&self) -> String {
        let (status, body) = get(self.port, "/api/version");
        assert_eq!(status, 200, "nginx does not serve the app: {body}");
        body
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.join("staging.releases.log")).unwrap_or_default()
    }

    fn running_releases(&self) -> usize {
        docker(&["ps", "--quiet", "--filter", "label=org.recordsponge.env=staging"]).lines().count()
    }

    /// The releases running once the old one has drained (it ends by itself after its last request).
    fn settled_releases(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.running_releases() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.running_releases()
    }

    fn push_as(&self, image: &str, tag: &str) {
        let target = format!("{}:{tag}", self.repository);
        docker(&["tag", image, &target]);
        let out = Command::new("docker")
            .args(["push", &target])
            .env("DOCKER_CONFIG", &self.bed.docker_config)
            .output()
            .unwrap();
        assert!(out.status.success(), "push {target}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts `args` in the background; returns the child and a receiver of its output lines.
    fn spawn(&self, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
        let mut cmd = self.bed.command(&self.config, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        (child, rx)
    }
}

/// Waits for a line containing `needle`; returns every line seen so far.
fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            eprintln!("    | {line}");
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("no line with `{needle}` within 300 s:\n{}", seen.join("\n"));
}

fn finish(child: std::process::Child, rx: std::sync::mpsc::Receiver<String>, mut seen: Vec<String>) -> (bool, String) {
    let status = child.wait_with_output().unwrap().status;
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        eprintln!("    | {line}");
        seen.push(line);
    }
    (status.success(), seen.join("\n"))
}

#[test]
fn deploys_are_checked_first_zero_downtime_reversible_locked_and_audited() {
    let Some(s) = setup() else { return };
    let commit = String::from_utf8(
        Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&s.bed.root).output().unwrap().stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let release_tag = format!("staging-{}", &commit[..12]);

    // Refused before anything is built or changed on the host.
    let no_login = s.bed.dir.join("no-login");
    std::fs::create_dir_all(&no_login).unwrap();
    let mut cmd = s.bed.command(&s.config, &["staging"]);
    cmd.env("DOCKER_CONFIG", &no_login);
    let run = s.record(s.bed.run_with(cmd, "staging (no registry login)"));
    refused(&run, "staging without a registry login", &format!("not logged in to {}", s.bed.registry));

    let no_env_file =
        s.bed.variant(&s.config, "no-env-file.toml", &s.bed.host["RS_ENV_FILE_STAGING"], "/nonexistent/staging.env");
    let run = s.record(s.bed.run(&no_env_file, &["staging"]));
    refused(
        &run,
        "staging without its env file on the host",
        "/nonexistent/staging.env is readable on rs-test-host: no",
    );

    let other_branch = s.bed.variant(&s.config, "other-branch.toml", "branch = \"main\"", "branch = \"release\"");
    refused(
        &s.record(s.bed.run(&other_branch, &["prod"])),
        "prod from another branch",
        "this environment deploys only from `release`",
    );

    let dirty = s.bed.root.join("e2e-uncommitted.txt");
    std::fs::write(&dirty, "not committed").unwrap();
    let run = s.xtask(&["prod"]);
    std::fs::remove_file(&dirty).unwrap();
    refused(&run, "prod from a dirty tree", "uncommitted changes");

    for (args, expect) in [
        (&["deploy", "staging;reboot"][..], "is not a valid environment name"),
        (&["deploy", "$(reboot)"][..], "is not a valid environment name"),
        (&["deploy", "staging", "--tag", "x;reboot"][..], "is not a valid image tag"),
        (&["rollback", "staging", "a'b"][..], "is not a valid image tag"),
    ] {
        let run = s.xtask(args);
        assert!(!run.ok && run.out.contains(expect) && !run.out.contains("[1/"), "{args:?}:\n{}", run.out);
    }
    assert_eq!(s.running_releases(), 0, "a refused deploy started a container");
    assert!(s.log().is_empty(), "a refused deploy wrote the release log");

    // The first release: built, pushed, deployed; nginx serves it.
    s.ok(&["staging"]);
    assert!(s.serves().contains(&commit), "the public endpoint does not report {commit}");

    // Redeploys under a steady request loop: no request fails.
    s.under_load(&["deploy", "staging", "--tag", &release_tag]);
    let release_image = format!("{}:{release_tag}", s.repository);
    s.push_as(&release_image, "e2e-second");
    s.under_load(&["deploy", "staging", "--tag", "e2e-second"]);
    assert!(s.serves().contains(&commit));
    assert_eq!(s.settled_releases(), 1, "the old release was not stopped");

    // A release that never becomes healthy: the old one keeps serving, its logs are shown.
    s.push_as("python:3.11-slim-bookworm", "e2e-broken");
    let run = s.under_load(&["deploy", "staging", "--tag", "e2e-broken"]);
    assert!(!run.ok, "a release that never became healthy was deployed:\n{}", run.out);
    assert!(run.out.contains("is not ready after") && run.out.contains("undoing:"), "{}", run.out);
    assert!(s.serves().contains(&commit));
    assert_eq!(s.settled_releases(), 1, "the broken release was left running");
    assert!(!s.state.join("staging.lock").exists(), "the failed deploy kept the lock");

    // Rollback: to the release before the live one, through the same switch.
    let run = s.under_load(&["rollback", "staging"]);
    assert!(run.ok, "rollback failed:\n{}", run.out);
    assert!(run.out.contains(&format!("rolling back to {release_image}")), "{}", run.out);
    let history = s.ok(&["releases", "staging"]).stdout;
    for event in ["\tdeploy\t", "\tfailed", "\trollback\t"] {
        assert!(history.contains(event), "`releases` lacks {event:?}:\n{history}");
    }
    assert_eq!(history.lines().filter(|l| l.ends_with("\tok")).count(), 4, "{history}");

    // Two deploys at once: the second is refused at once, naming the holder.
    let (first, rx) = s.spawn(&["deploy", "staging", "--tag", "e2e-second"]);
    let mut seen = Vec::new();
    wait_for_line(&rx, "Record who holds it", &mut seen);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.state.join("staging.lock/holder").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = s.xtask(&["deploy", "staging", "--tag", "e2e-second"]);
    refused(&second, "a concurrent deploy", "deploy lock on rs-test-host is free: no");
    assert!(second.out.contains("deploy of"), "the refusal does not name the holder:\n{}", second.out);
    // Refused at once, not after waiting for the first: how fast is measured by xtask/bench/deploy.sh.
    assert!(second.seconds < 10.0, "the concurrent deploy waited ({:.1}s) instead of being refused", second.seconds);
    let (ok, out) = finish(first, rx, seen);
    assert!(ok, "the first of two concurrent deploys failed:\n{out}");

    // Interrupted mid-deploy (Ctrl-C): undone, the old release serves, the lock is free.
    let load = Load::start(s.port);
    let (child, rx) = s.spawn(&["deploy", "staging", "--tag", "e2e-broken"]);
    let mut seen = Vec::new();
    wait_for_line(&rx, "to be healthy", &mut seen);
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let (ok, out) = finish(child, rx, seen);
    let (failed, _) = load.stop();
    assert!(!ok && out.contains("undoing:"), "{out}");
    assert_eq!(failed, 0);
    assert!(s.serves().contains(&commit));
    assert!(!s.state.join("staging.lock").exists(), "an interrupted deploy kept the lock");

    // The ssh connection killed mid-deploy: the old release serves, the next deploy succeeds.
    let load = Load::start(s.port);
    let (child, rx) = s.spawn(&["deploy", "staging", "--tag", "e2e-second"]);
    let mut seen = Vec::new();
    wait_for_line(&rx, "Pull ", &mut seen);
    Command::new("pkill").args(["-f", "ssh .*rs-test-host"]).status().unwrap();
    let _ = finish(child, rx, seen);
    let (failed, _) = load.stop();
    assert_eq!(failed, 0, "requests failed when the connection was killed");
    assert!(s.serves().contains(&commit));
    if s.state.join("staging.lock").exists() {
        // A deploy killed with its connection may keep the lock: the next run names it, and it is broken by hand.
        let run = s.xtask(&["deploy", "staging"]);
        assert!(!run.ok && run.out.contains("deploy of"), "{}", run.out);
        s.ok(&["lock", "staging", "release", "--yes"]);
    }
    s.under_load(&["deploy", "staging", "--tag", &release_tag]);

    // No secret from the host's env file appears in any output.
    for out in s.outputs.borrow().iter() {
        assert!(!out.contains(&s.secret), "a secret from the env file appeared in the output");
    }
}
