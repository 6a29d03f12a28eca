//! The Swarm suite: an environment with `engine = "swarm"` on a 3-node Docker Swarm of hosts in
//! containers (xtask_testbed::fleet: 1 manager, 2 workers; PostgreSQL on the manager), the stack's nginx
//! published on the manager. A request loop runs through that proxy during every update and
//! must see no failed request: first deploy, a new build, a release that never becomes healthy
//! (Swarm rolls it back), rollback, two rollbacks in a row, a worker stopped in the middle of an
//! update, and the ssh connection to the manager cut in the middle of one; and the refusals,
//! before anything changes: manager unreachable, not a manager, env file missing, no registry
//! login on the manager.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{refused, Load, Run, Spawned, Xtask};
use xtask::config::{Config, Engine};
use xtask::project::Project;
use xtask_testbed::fleet::{Fleet, USER};

/// The proxy's port on the manager.
const PROXY_PORT: u16 = 8090;

struct Suite {
    fleet: Fleet,
    x: Xtask,
    manager: String,
    repository: String,
    /// The proxy's port on this machine.
    port: u16,
    secret: String,
}

fn setup() -> Suite {
    common::engine("Swarm suite");
    let p: Project = xtask::load(None, None, false).unwrap();
    let fleet = Fleet::start(&p, &format!("rsswarm{}", std::process::id()), 3, true, &[PROXY_PORT]).unwrap();
    let manager = fleet.hosts[0].name.clone();
    for host in &fleet.hosts {
        fleet.set_up(&p, &host.name, &["staging".into()], false).unwrap();
    }
    fleet.swarm().unwrap();
    let env_text = fleet.app_database(&p, &manager, "staging", true).unwrap();
    let secret = env_text.lines().find_map(|l| l.strip_prefix("PGPASSWORD=")).unwrap().to_string();
    fleet.exec(&manager, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some(&env_text)).unwrap();
    let proxy_image = fleet.push_test_image(&p, "nginx").unwrap();

    let mut config: Config = p.config.clone();
    let repository = format!("{}/recordsponge/swarm-expungeservice", fleet.registry);
    config.compose.project = fleet.prefix.clone();
    config.deploy.repository = repository.clone();
    config.deploy.ssh_config = fleet.ssh_config.display().to_string();
    let staging = config.environments.get_mut("staging").unwrap();
    staging.engine = Engine::Swarm;
    staging.host = manager.clone();
    staging.ports = None;
    staging.upstream_file = None;
    staging.upstream_name = None;
    staging.container = "rsswarm-staging".into();
    staging.proxy_image = proxy_image;
    staging.proxy_port = PROXY_PORT;
    staging.check_url = format!("http://127.0.0.1:{PROXY_PORT}/api/version");
    staging.health_timeout = 60;
    let path = fleet.dir.join("swarm.toml");
    config.write(&path).unwrap();
    let home = fleet.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let x = Xtask::new(&path, &[("DOCKER_CONFIG", &fleet.docker_config), ("HOME", &home)]);
    let port = fleet.hosts[0].ports[&PROXY_PORT];
    Suite { fleet, x, manager, repository, port, secret }
}

impl Suite {
    fn ok(&self, args: &[&str]) -> Run {
        self.x.ok(args)
    }

    /// Runs `args` under a request loop through the proxy; asserts that no request failed.
    fn under_load(&self, args: &[&str]) -> Run {
        let load = Load::start(self.port, "/api/health");
        let run = self.x.run(args);
        let (failed, total) = load.stop(&format!("`{}`", args.join(" ")));
        assert_eq!(failed, 0, "requests failed during `{}` ({failed} of {total})", args.join(" "));
        assert!(total > 10, "the request loop barely ran ({total})");
        run
    }

    /// The release that answers through the proxy now.
    fn serving(&self) -> String {
        let (status, body) = common::get(self.port, "/api/version");
        assert_eq!(status, 200, "the proxy does not serve the app: {body}");
        let version: serde_json::Value = serde_json::from_str(&body).unwrap();
        version["release"].as_str().unwrap_or_default().to_string()
    }

    /// The image digest the app's service runs.
    fn running_digest(&self) -> String {
        let format = "{{.Spec.TaskTemplate.ContainerSpec.Image}}";
        self.fleet
            .exec(
                &self.manager,
                None,
                &["docker", "service", "inspect", "--format", format, "rsswarm-staging_app"],
                None,
            )
            .unwrap()
            .trim()
            .to_string()
    }

    fn digest_of(&self, image: &str) -> String {
        let on_manager = |argv: &[&str]| self.fleet.exec(&self.manager, Some(USER), argv, None).unwrap();
        on_manager(&["docker", "pull", "--quiet", image]);
        on_manager(&["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", image]).trim().to_string()
    }

    /// A build of its own (its own digest) of `image`, pushed as `REPOSITORY:TAG`, with `more`
    /// Dockerfile lines.
    fn push_build(&self, image: &str, tag: &str, more: &str) -> String {
        let target = format!("{}:{tag}", self.repository);
        self.fleet.push_build(image, &target, more).unwrap();
        target
    }

    fn log(&self) -> String {
        self.fleet
            .exec(&self.manager, None, &["cat", "/var/lib/recordsponge/staging.releases.log"], None)
            .unwrap_or_default()
    }
}

#[test]
#[ignore = "needs a Docker engine; bash xtask/testbed/run-tests.sh runs it (cargo test -- --include-ignored)"]
fn swarm_deploys_are_rolled_by_swarm_and_lose_nothing() {
    let s = setup();

    refusals(&s);

    // The first release: built, pushed, the stack deployed; the proxy serves it.
    let run = s.ok(&["staging"]);
    assert!(run.out.contains("no release serves yet"), "{}", run.out);
    let first = s.serving();
    assert!(first.starts_with("rsswarm-staging-"), "{first}");
    let commit = String::from_utf8(Command::new("git").args(["rev-parse", "HEAD"]).output().unwrap().stdout).unwrap();
    let image = format!("{}:staging-{}", s.repository, &commit.trim()[..12]);

    // A new build, rolled out task by task under load.
    let b = s.push_build(&image, "e2e-b", "");
    let c = s.push_build(&image, "e2e-c", "");
    s.under_load(&["deploy", "staging", "--tag", "e2e-b"]);
    assert_eq!(s.running_digest(), s.digest_of(&b));
    s.under_load(&["deploy", "staging", "--tag", "e2e-c"]);
    assert_eq!(s.running_digest(), s.digest_of(&c));

    // A release that never becomes healthy: Swarm rolls it back by itself; the tool says so and
    // logs it, and the tasks of the release before keep serving.
    s.push_build(&image, "e2e-broken", "HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD [\"false\"]\n");
    let run = s.under_load(&["deploy", "staging", "--tag", "e2e-broken"]);
    assert!(!run.ok && run.out.contains("Swarm did not roll"), "{}", run.out);
    assert_eq!(s.running_digest(), s.digest_of(&c), "the broken release is not rolled back");
    assert!(s.log().lines().last().unwrap().ends_with("\tfailed"), "{}", s.log());

    // Rollback, then a second one: each one release further back, by digest.
    s.under_load(&["rollback", "staging"]);
    assert_eq!(s.running_digest(), s.digest_of(&b));
    s.under_load(&["rollback", "staging"]);
    assert_eq!(s.running_digest(), s.digest_of(&image), "the second rollback goes further back");

    worker_stopped_mid_update(&s);
    connection_cut_mid_update(&s);

    // No secret from the manager's env file appears in any output.
    for out in s.x.outputs.borrow().iter() {
        assert!(!out.contains(&s.secret), "a secret from the env file appeared in the output");
    }
}

/// Refused before anything changes, each with its fix.
fn refusals(s: &Suite) {
    let variant = |name: &str, change: &dyn Fn(&mut Config)| {
        let mut config = Config::load(&s.x.config).unwrap();
        change(&mut config);
        let path = s.fleet.dir.join(name);
        config.write(&path).unwrap();
        path
    };
    let worker = s.fleet.hosts[1].name.clone();
    let not_manager = variant("worker.toml", &|c| c.environments.get_mut("staging").unwrap().host = worker.clone());
    refused(
        &s.x.run_with(s.x.command_with(&not_manager, &["deploy", "staging"]), "deploy (not a manager)"),
        "a deploy through a worker",
        "is a manager of a Docker Swarm: no",
    );

    // A manager that cannot be reached: one error, and nothing else is checked there.
    let config = std::fs::read_to_string(&s.fleet.ssh_config).unwrap();
    std::fs::write(
        &s.fleet.ssh_config,
        format!("{config}Host nowhere\n  HostName 127.0.0.1\n  Port 1\n  BatchMode yes\n"),
    )
    .unwrap();
    let unreachable = variant("nowhere.toml", &|c| c.environments.get_mut("staging").unwrap().host = "nowhere".into());
    let run = s.x.run_with(s.x.command_with(&unreachable, &["deploy", "staging"]), "deploy (manager unreachable)");
    refused(&run, "a deploy to an unreachable manager", "ssh to nowhere works without prompts: no");
    assert!(run.out.contains("not checked: it cannot be reached"), "{}", run.out);

    s.fleet.exec(&s.manager, None, &["mv", "/etc/recordsponge/staging.env", "/root/staging.env"], None).unwrap();
    refused(
        &s.x.run(&["deploy", "staging"]),
        "a deploy without the env file",
        "/etc/recordsponge/staging.env is readable on",
    );
    s.fleet.exec(&s.manager, None, &["mv", "/root/staging.env", "/etc/recordsponge/staging.env"], None).unwrap();

    s.fleet.exec(&s.manager, Some(USER), &["docker", "logout", &s.fleet.registry], None).unwrap();
    refused(
        &s.x.run(&["deploy", "staging"]),
        "a deploy without the manager's login",
        &format!("rsdeploy is logged in to {} on", s.fleet.registry),
    );
    let password = std::fs::read_to_string(s.fleet.dir.join("registry-password")).unwrap();
    s.fleet
        .exec(
            &s.manager,
            Some(USER),
            &["docker", "login", "--username", "rstest", "--password-stdin", &s.fleet.registry],
            Some(&password),
        )
        .unwrap();

    // A proxy the manager cannot run: its nginx -t fails before the stack is touched.
    let missing = format!("{}/rs-testbed/no-such-proxy:1", s.fleet.registry);
    let no_proxy =
        variant("no-proxy.toml", &|c| c.environments.get_mut("staging").unwrap().proxy_image = missing.clone());
    refused(
        &s.x.run_with(s.x.command_with(&no_proxy, &["deploy", "staging"]), "deploy (proxy image missing)"),
        "a deploy whose proxy cannot run",
        &format!("config/swarm/proxy.conf is valid for {missing} (`nginx -t` on {}): no", s.manager),
    );

    let services = s.fleet.exec(&s.manager, None, &["docker", "service", "ls", "--quiet"], None).unwrap();
    assert!(services.trim().is_empty(), "a refused deploy created a service: {services}");
}

/// A worker stopped while Swarm rolls an update out: the tool reports the node, and the service
/// converges on the other nodes by Swarm's rules (the update completes, or, when a task of it
/// was lost with the node, Swarm rolls it back and the tool says so); no request fails.
fn worker_stopped_mid_update(s: &Suite) {
    let worker = s.fleet.hosts[2].name.clone();
    let load = Load::start(s.port, "/api/health");
    let mut deploy = Spawned::start(s.x.command(&["deploy", "staging", "--tag", "e2e-c"]));
    deploy.wait_for("Wait for Swarm to roll");
    std::thread::sleep(Duration::from_secs(2));
    Command::new("docker").args(["stop", &worker]).output().unwrap();
    // The manager notices within about 12 s; `releases` reports it meanwhile.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reported = false;
    while !reported && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        reported = s.ok(&["releases", "staging"]).stdout.contains(&format!("node {worker} Down"));
    }
    Command::new("docker").args(["start", &worker]).output().unwrap();
    let (ok, out) = deploy.finish(&s.x);
    let (failed, total) = load.stop("an update with a worker stopped");
    assert!(reported, "the stopped worker {worker} was not reported");
    assert!(ok || out.contains("Swarm did not roll"), "the tool did not say how the update ended:\n{out}");
    assert_eq!(failed, 0, "{failed} of {total} requests failed with a worker stopped");
    // Swarm finishes what it does (the update, or its rollback) by itself.
    let state = || {
        let format = "{{.UpdateStatus.State}}";
        let argv = ["docker", "service", "inspect", "--format", format, "rsswarm-staging_app"];
        s.fleet.exec(&s.manager, None, &argv, None).unwrap().trim().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches!(state().as_str(), "completed" | "rollback_completed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        matches!(state().as_str(), "completed" | "rollback_completed"),
        "the service did not converge: {}",
        state()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let nodes = s.fleet.exec(&s.manager, None, &["docker", "node", "ls", "--format", "{{.Status}}"], None).unwrap();
        if nodes.lines().all(|l| l.trim() == "Ready") {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The ssh connection to the manager cut while Swarm rolls an update out: the update goes on
/// by Swarm's rules, and the next command reports where it ended.
fn connection_cut_mid_update(s: &Suite) {
    let load = Load::start(s.port, "/api/health");
    let mut deploy = Spawned::start(s.x.command(&["deploy", "staging", "--tag", "e2e-b"]));
    deploy.wait_for("Wait for Swarm to roll");
    let release = deploy
        .seen
        .iter()
        .find_map(|l| l.split("Wait for Swarm to roll ").nth(1))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let _ = s.fleet.exec(&s.manager, None, &["pkill", "-KILL", "-u", USER, "-x", "sshd"], None);
    let (ok, out) = deploy.finish(&s.x);
    assert!(!ok, "a deploy whose connection was cut succeeded:\n{out}");
    // Swarm finishes the update; then `releases` says what serves.
    let state = || {
        let format = "{{.UpdateStatus.State}}";
        s.fleet
            .exec(&s.manager, None, &["docker", "service", "inspect", "--format", format, "rsswarm-staging_app"], None)
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while state().trim() != "completed" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    let (failed, total) = load.stop("an update whose connection was cut");
    assert_eq!(failed, 0, "{failed} of {total} requests failed with the connection cut");
    let releases = s.ok(&["releases", "staging"]);
    assert!(releases.stdout.contains(&format!("serving now through the proxy: {release}")), "{}", releases.out);
    assert!(releases.stdout.contains("interrupted"), "the cut deploy is not in the history:\n{}", releases.stdout);
}
