//! The Swarm suite: an environment with `engine = "swarm"` on a Docker Swarm of three hosts in
//! containers (xtask_testbed::fleet), all managers (the Swarm keeps its control when one is
//! lost), set up by `cargo xtask setup`, the stack's proxy on every node; PostgreSQL on a fourth
//! host outside the Swarm (the environment's external database). A
//! request loop runs through the proxy of a node that stays up during every update and every
//! loss of a node, and must see no failed request. Hosts are lost the way hosts are lost: a
//! `docker kill` (a power cut), in steady state, in the middle of an update, the node holding the
//! most tasks, a manager, and a network partition; each comes back as a real host does after a
//! power cut. After every deploy, rollback, loss and return, no node holds every task while
//! another is Ready. And the refusals, before anything changes: manager unreachable, not a
//! manager, env file missing, no registry login, a proxy nginx refuses.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{refused, Load, Run, Spawned, Xtask};
use xtask::config::{Config, DatabaseAt, Engine};
use xtask::project::Project;
use xtask_testbed::fleet::{Fleet, USER};

/// The proxy's port on every node.
const PROXY_PORT: u16 = 8090;
/// The app's service.
const APP: &str = "rsswarm-staging_app";
/// The Swarm's nodes: the first three hosts; the fourth runs PostgreSQL.
const NODES: usize = 3;

struct Suite {
    fleet: Fleet,
    x: Xtask,
    repository: String,
    secret: String,
    /// The worst latency each loss of a node gave (for the record).
    worst: std::cell::RefCell<Vec<(String, usize, usize, Duration)>>,
}

fn setup() -> Suite {
    common::engine("Swarm suite");
    let p: Project = xtask::load(None, None, false).unwrap();
    let fleet =
        Fleet::start(&p, &format!("rsswarm{}", std::process::id()), "host", NODES + 1, Some(NODES), &[PROXY_PORT])
            .unwrap();
    // The fourth: a host outside the Swarm, which a deploy must refuse to use as its manager; it
    // holds the app's database (an external one: a Swarm's tasks run on every node).
    let database = fleet.hosts[NODES].name.clone();
    fleet.set_up(&p, &database, &["staging".into()], false).unwrap();
    for host in &fleet.hosts[..NODES] {
        fleet.authorize_root(&host.name).unwrap();
    }
    fleet.swarm(NODES, NODES).unwrap();
    let env_text = fleet.app_database(&p, &database, "staging", true).unwrap();
    let secret = env_text.lines().find_map(|l| l.strip_prefix("PGPASSWORD=")).unwrap().to_string();
    let proxy_image = fleet.push_test_image(&p, "nginx").unwrap();

    let mut config: Config = p.config.clone();
    let repository = format!("{}/recordsponge/swarm-expungeservice", fleet.registry);
    config.compose.project = fleet.prefix.clone();
    config.deploy.repository = repository.clone();
    config.deploy.ssh_config = fleet.ssh_config.display().to_string();
    let staging = config.environments.get_mut("staging").unwrap();
    staging.engine = Engine::Swarm;
    staging.host = fleet.hosts[0].name.clone();
    staging.managers = fleet.hosts[1..NODES].iter().map(|h| h.name.clone()).collect();
    staging.ports = None;
    staging.upstream_file = None;
    staging.upstream_name = None;
    staging.container = "rsswarm-staging".into();
    staging.proxy_image = proxy_image;
    staging.proxy_port = PROXY_PORT;
    staging.check_url = format!("http://127.0.0.1:{PROXY_PORT}/api/version");
    staging.health_timeout = 60;
    staging.database = DatabaseAt::External;
    config.backups.image = fleet.push_test_image(&p, "pgclient").unwrap();
    let path = fleet.dir.join("swarm.toml");
    config.write(&path).unwrap();
    let home = fleet.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let x = Xtask::new(&path, &[("DOCKER_CONFIG", &fleet.docker_config), ("HOME", &home)]);
    // The external database's login in each manager's env file (a deploy through any of them
    // reads it there), written first, as an operator fills it in; then the managers set up as an
    // operator sets them up: setup keeps each env file and checks it logs in.
    for host in &fleet.hosts[..NODES] {
        fleet.exec(&host.name, None, &["install", "-d", "/etc/recordsponge"], None).unwrap();
        let file = ["dd", "of=/etc/recordsponge/staging.env", "status=none"];
        fleet.exec(&host.name, None, &file, Some(&env_text)).unwrap();
    }
    let setup = x.ok(&["setup", "staging", "--no-deploy"]);
    let checked = setup.out.matches("Check that the database /etc/recordsponge/staging.env names on").count();
    assert_eq!(checked, NODES, "{}", setup.out);
    for host in &fleet.hosts[..NODES] {
        let kept = fleet.exec(&host.name, None, &["cat", "/etc/recordsponge/staging.env"], None).unwrap();
        assert_eq!(kept, env_text, "setup changed {}'s env file", host.name);
    }
    Suite { fleet, x, repository, secret, worst: Default::default() }
}

impl Suite {
    fn ok(&self, args: &[&str]) -> Run {
        self.x.ok(args)
    }

    fn node(&self, i: usize) -> String {
        self.fleet.hosts[i].name.clone()
    }

    /// The proxy's port, on this machine, of node `i`.
    fn proxy(&self, i: usize) -> u16 {
        self.fleet.hosts[i].ports[&PROXY_PORT]
    }

    /// Runs `argv` as root on the first of the nodes (other than `skip`) that answers.
    fn on_a_manager(&self, skip: &[usize], argv: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for i in (0..NODES).filter(|i| !skip.contains(i)) {
                if let Ok(out) = self.fleet.exec(&self.node(i), None, argv, None) {
                    return out;
                }
            }
            assert!(Instant::now() < deadline, "no manager answers `{}`", argv.join(" "));
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Runs `args` under a request loop through node `via`'s proxy; asserts that no request failed.
    fn under_load(&self, via: usize, args: &[&str]) -> Run {
        let load = Load::start(self.proxy(via), "/api/health");
        let run = self.x.run(args);
        let (failed, total) = load.stop(&format!("`{}`", args.join(" ")));
        assert_eq!(failed, 0, "requests failed during `{}` ({failed} of {total})", args.join(" "));
        assert!(total > 10, "the request loop barely ran ({total})");
        run
    }

    /// The release that answers through node `via`'s proxy now.
    fn serving(&self, via: usize) -> String {
        let (status, body) = common::get(self.proxy(via), "/api/version");
        assert_eq!(status, 200, "the proxy does not serve the app: {body}");
        let version: serde_json::Value = serde_json::from_str(&body).unwrap();
        version["release"].as_str().unwrap_or_default().to_string()
    }

    /// The image digest the app's service runs.
    fn running_digest(&self) -> String {
        let format = "{{.Spec.TaskTemplate.ContainerSpec.Image}}";
        self.on_a_manager(&[], &["docker", "service", "inspect", "--format", format, APP]).trim().to_string()
    }

    fn digest_of(&self, image: &str) -> String {
        let on = |argv: &[&str]| self.fleet.exec(&self.node(1), Some(USER), argv, None).unwrap();
        on(&["docker", "pull", "--quiet", image]);
        on(&["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", image]).trim().to_string()
    }

    /// A build of its own (its own digest) of `image`, pushed as `REPOSITORY:TAG`, with `more`
    /// Dockerfile lines.
    fn push_build(&self, image: &str, tag: &str, more: &str) -> String {
        let target = format!("{}:{tag}", self.repository);
        self.fleet.push_build(image, &target, more).unwrap();
        target
    }

    fn log(&self) -> String {
        self.on_a_manager(&[], &["cat", "/var/lib/recordsponge/staging.releases.log"])
    }

    /// The nodes' states (`HOSTNAME STATUS AVAILABILITY`), from a manager that answers.
    fn nodes(&self, skip: &[usize]) -> Vec<(String, String)> {
        let format = "{{.Hostname}} {{.Status}}";
        let out = self.on_a_manager(skip, &["docker", "node", "ls", "--format", format]);
        out.lines().filter_map(|l| l.split_once(' ')).map(|(h, s)| (h.to_string(), s.to_string())).collect()
    }

    /// The app's running tasks by node.
    fn tasks_by_node(&self, skip: &[usize]) -> BTreeMap<String, usize> {
        let argv = [
            "docker",
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}}",
            APP,
        ];
        let mut by_node = BTreeMap::new();
        for line in self.on_a_manager(skip, &argv).lines().filter(|l| l.contains(" Running")) {
            *by_node.entry(line.split(' ').next().unwrap().to_string()).or_insert(0) += 1;
        }
        by_node
    }

    /// Once Swarm has settled (every replica running, within two minutes): no node holds every
    /// task while another node is Ready.
    fn assert_spread(&self, after: &str, skip: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut tasks, mut nodes) = (BTreeMap::new(), Vec::new());
        while Instant::now() < deadline {
            tasks = self.tasks_by_node(skip);
            nodes = self.nodes(skip);
            if tasks.values().sum::<usize>() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let ready: Vec<&String> = nodes.iter().filter(|(_, s)| s == "Ready").map(|(h, _)| h).collect();
        let piled = tasks.iter().find(|(_, n)| **n == 2).map(|(node, _)| node);
        if let Some(node) = piled {
            assert!(
                ready.iter().all(|r| *r == node),
                "after {after}: every task on {node}, though {ready:?} are Ready"
            );
        }
        eprintln!("    after {after}: tasks {tasks:?}, nodes {nodes:?}");
    }

    /// The node that holds the most of the app's tasks.
    fn busiest(&self) -> usize {
        let tasks = self.tasks_by_node(&[]);
        (0..NODES).max_by_key(|i| tasks.get(&self.node(*i)).copied().unwrap_or(0)).unwrap()
    }

    /// Waits until a manager says `node` is `status` (Down: within about 12 s of a loss).
    fn wait_node(&self, node: usize, status: &str, skip: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.nodes(skip).iter().any(|(h, s)| *h == self.node(node) && s == status) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("{} is not {status} after two minutes: {:?}", self.node(node), self.nodes(skip));
    }

    /// Waits until node `node`'s proxy serves again after it came back (`since`): Swarm starts
    /// its tasks (its proxy among them) some seconds after the node is Ready, and until then its
    /// own proxy answers nothing (a load balancer in front sends its share to the others).
    fn wait_serves(&self, node: usize, since: Instant, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while common::get(self.proxy(node), "/api/health").0 != 200 {
            assert!(Instant::now() < deadline, "{}'s proxy does not serve two minutes after {what}", self.node(node));
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("    {} serves again {:.1}s after {what}", self.node(node), since.elapsed().as_secs_f64());
    }

    /// Loses node `lost` (a power cut) under a request loop through node `via`, then `during`
    /// (with the node gone); brings it back and waits until it is Ready and its proxy serves
    /// again. No request may fail; the worst latency is kept for the record.
    fn lose(&self, what: &str, lost: usize, via: usize, during: impl FnOnce(&Suite)) {
        let load = Load::start(self.proxy(via), "/api/health");
        self.fleet.power(&self.node(lost), false).unwrap();
        self.wait_node(lost, "Down", &[lost]);
        during(self);
        let seen = load.stop_seen(what);
        self.worst.borrow_mut().push((what.to_string(), seen.failed, seen.total, seen.worst));
        assert_eq!(seen.failed, 0, "{} of {} requests failed when {what}", seen.failed, seen.total);
        self.assert_spread(&format!("{what} (the node still down)"), &[lost]);
        let back = Instant::now();
        self.fleet.power(&self.node(lost), true).unwrap();
        self.wait_node(lost, "Ready", &[]);
        self.wait_serves(lost, back, "its power came back");
        self.assert_spread(&format!("{what} (the node back)"), &[]);
    }
}

#[test]
#[ignore = "needs a Docker engine; bash xtask/testbed/run-tests.sh runs it (cargo test -- --include-ignored)"]
fn swarm_deploys_survive_losing_a_host() {
    let s = setup();

    refusals(&s);

    // The first release: built, pushed, the stack deployed; every node's proxy serves it.
    let run = s.ok(&["staging"]);
    assert!(run.out.contains("no release serves yet"), "{}", run.out);
    let first = s.serving(0);
    assert!(first.starts_with("rsswarm-staging-"), "{first}");
    for node in 1..NODES {
        assert_eq!(s.serving(node), first, "node {node}'s proxy serves another release");
    }
    s.assert_spread("the first deploy", &[]);
    let commit = String::from_utf8(Command::new("git").args(["rev-parse", "HEAD"]).output().unwrap().stdout).unwrap();
    let image = format!("{}:staging-{}", s.repository, &commit.trim()[..12]);

    // A new build, rolled out task by task under load.
    let b = s.push_build(&image, "e2e-b", "");
    let c = s.push_build(&image, "e2e-c", "");
    s.under_load(1, &["deploy", "staging", "--tag", "e2e-b"]);
    assert_eq!(s.running_digest(), s.digest_of(&b));
    s.assert_spread("a deploy", &[]);
    s.under_load(2, &["deploy", "staging", "--tag", "e2e-c"]);
    assert_eq!(s.running_digest(), s.digest_of(&c));

    // A release that never becomes healthy: Swarm rolls it back by itself; the tool says so and
    // logs it, and the tasks of the release before keep serving.
    s.push_build(&image, "e2e-broken", "HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD [\"false\"]\n");
    let run = s.under_load(0, &["deploy", "staging", "--tag", "e2e-broken"]);
    assert!(!run.ok && run.out.contains("Swarm did not roll"), "{}", run.out);
    assert_eq!(s.running_digest(), s.digest_of(&c), "the broken release is not rolled back");
    assert!(s.log().lines().last().unwrap().ends_with("\tfailed"), "{}", s.log());

    // Rollback, then a second one: each one release further back, by digest.
    s.under_load(1, &["rollback", "staging"]);
    assert_eq!(s.running_digest(), s.digest_of(&b));
    s.under_load(2, &["rollback", "staging"]);
    assert_eq!(s.running_digest(), s.digest_of(&image), "the second rollback goes further back");
    s.assert_spread("two rollbacks", &[]);
    day_two(&s);

    losses(&s);
    a_deploy_and_a_rollback_while_a_node_is_down(&s);
    a_manager_lost(&s);
    connection_cut_mid_update(&s);

    eprintln!("\nLosses of a node, under a request loop through another node's proxy:");
    for (what, failed, total, worst) in s.worst.borrow().iter() {
        eprintln!("  {what}: {failed} failed of {total}, the slowest {:.2}s", worst.as_secs_f64());
    }
    // No secret from the env file appears in any output.
    for out in s.x.outputs.borrow().iter() {
        assert!(!out.contains(&s.secret), "a secret from the env file appeared in the output");
    }
}

/// Logs of every task (each line names its task and node), a one-off command on the stack's
/// network, and a backup that restores the rows a mistaken delete took, on the database host.
fn day_two(s: &Suite) {
    let logs = s.ok(&["logs", "staging", "--lines", "20"]);
    assert!(logs.stdout.contains("GET /api/"), "no request in the tasks' logs:\n{}", logs.stdout);
    let named = (0..NODES).filter(|i| logs.stdout.contains(&format!("@{}", s.node(*i)))).count();
    assert!(named >= 2, "the logs do not name the tasks' nodes:\n{}", logs.stdout);
    let tier = s.ok(&["exec", "staging", "--", "printenv", "TIER"]);
    assert_eq!(tier.stdout.trim(), "staging", "{}", tier.out);
    let failed = s.x.run(&["exec", "staging", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.code, Some(7), "the command's exit code is exec's:\n{}", failed.out);

    let database = s.fleet.hosts[NODES].name.clone();
    let sql = |sql: &str| {
        let argv = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", "recordsponge", "-c", sql];
        s.fleet.exec(&database, Some("postgres"), &argv, None).unwrap()
    };
    sql("INSERT INTO users (email, name, hashed_password) VALUES ('s@example.org', 'S', 'z')");
    let rows = || sql("SELECT user_id, email, name FROM users ORDER BY user_id");
    let before = rows();
    s.ok(&["db", "backup", "staging"]);
    sql("DELETE FROM users");
    s.ok(&["--yes", "db", "restore", "staging", "latest"]);
    assert_eq!(rows(), before, "the restore did not give back the rows there were");
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
    let outside = s.node(NODES);
    let not_manager = variant("not-a-manager.toml", &|c| {
        let staging = c.environments.get_mut("staging").unwrap();
        staging.host = outside.clone();
        staging.managers.clear();
    });
    refused(
        &s.x.run_with(s.x.command_with(&not_manager, &["deploy", "staging"]), "deploy (not a manager)"),
        "a deploy through a host outside the Swarm",
        "is a manager of a Docker Swarm: no",
    );

    // No manager can be reached: one error, and nothing else is checked there.
    let config = std::fs::read_to_string(&s.fleet.ssh_config).unwrap();
    std::fs::write(
        &s.fleet.ssh_config,
        format!("{config}Host nowhere\n  HostName 127.0.0.1\n  Port 1\n  BatchMode yes\n"),
    )
    .unwrap();
    let unreachable = variant("nowhere.toml", &|c| {
        let staging = c.environments.get_mut("staging").unwrap();
        staging.host = "nowhere".into();
        staging.managers.clear();
    });
    let run = s.x.run_with(s.x.command_with(&unreachable, &["deploy", "staging"]), "deploy (manager unreachable)");
    refused(&run, "a deploy to an unreachable manager", "ssh to nowhere works without prompts: no");
    assert!(run.out.contains("not checked: it cannot be reached"), "{}", run.out);

    let manager = s.node(0);
    s.fleet.exec(&manager, None, &["mv", "/etc/recordsponge/staging.env", "/root/staging.env"], None).unwrap();
    refused(
        &s.x.run(&["deploy", "staging"]),
        "a deploy without the env file",
        "/etc/recordsponge/staging.env is readable on",
    );
    s.fleet.exec(&manager, None, &["mv", "/root/staging.env", "/etc/recordsponge/staging.env"], None).unwrap();

    s.fleet.exec(&manager, Some(USER), &["docker", "logout", &s.fleet.registry], None).unwrap();
    refused(
        &s.x.run(&["deploy", "staging"]),
        "a deploy without the manager's login",
        &format!("rsdeploy is logged in to {} on", s.fleet.registry),
    );
    let password = std::fs::read_to_string(s.fleet.dir.join("registry-password")).unwrap();
    let login = ["docker", "login", "--username", "rstest", "--password-stdin", &s.fleet.registry];
    s.fleet.exec(&manager, Some(USER), &login, Some(&password)).unwrap();

    // A proxy the manager cannot run: its nginx -t fails before the stack is touched.
    let missing = format!("{}/rs-testbed/no-such-proxy:1", s.fleet.registry);
    let no_proxy =
        variant("no-proxy.toml", &|c| c.environments.get_mut("staging").unwrap().proxy_image = missing.clone());
    refused(
        &s.x.run_with(s.x.command_with(&no_proxy, &["deploy", "staging"]), "deploy (proxy image missing)"),
        "a deploy whose proxy cannot run",
        &format!("config/swarm/proxy.conf is valid for {missing} (`nginx -t` on {manager}): no"),
    );

    let services = s.fleet.exec(&manager, None, &["docker", "service", "ls", "--quiet"], None).unwrap();
    assert!(services.trim().is_empty(), "a refused deploy created a service: {services}");
}

/// A node lost suddenly: in steady state (the node holding the most tasks), and in the middle of
/// an update; each time the request loop goes through a node that stays.
fn losses(s: &Suite) {
    let busiest = s.busiest();
    let via = (busiest + 1) % NODES;
    s.lose("the node holding the most tasks was killed", busiest, via, |_| {});

    // In the middle of an update: the deploy runs while a node holding a task dies. The update
    // ends by Swarm's rules (it completes on the other nodes, or Swarm rolls it back), and the
    // tool says which; the next deploy proceeds.
    let lost = s.busiest();
    let via = (lost + 1) % NODES;
    let skip = [lost];
    let mut deploy = Spawned::start(s.x.command(&["deploy", "staging", "--tag", "e2e-c"]));
    deploy.wait_for("Wait for Swarm to roll");
    std::thread::sleep(Duration::from_secs(2));
    s.lose("a node was killed in the middle of an update", lost, via, |s| {
        let (ok, out) = deploy.finish(&s.x);
        assert!(ok || out.contains("Swarm did not roll") || out.contains("cannot finish"), "{out}");
        let releases = s.x.ok(&["releases", "staging"]);
        assert!(releases.stdout.contains(&format!("{} Down", s.node(skip[0]))), "{}", releases.stdout);
    });
    let next = s.under_load(via, &["deploy", "staging", "--tag", "e2e-c"]);
    assert!(next.ok, "the deploy after a node lost mid-update:\n{}", next.out);
}

/// Deploy and rollback work while a node is Down: the output names it, the replicas go to the
/// Ready nodes.
fn a_deploy_and_a_rollback_while_a_node_is_down(s: &Suite) {
    let lost = 2;
    s.lose("deploys and a rollback with a node down", lost, 0, |s| {
        let run = s.under_load(1, &["deploy", "staging", "--tag", "e2e-b"]);
        assert!(run.ok && run.out.contains(&format!("node {} Down", s.node(lost))), "{}", run.out);
        assert!(run.out.contains("2 replicas on 2 Ready nodes: at most 1 a node, stop-first"), "{}", run.out);
        s.assert_spread("a deploy with a node down", &[lost]);
        let run = s.under_load(1, &["rollback", "staging"]);
        assert!(run.ok, "{}", run.out);
    });
}

/// A manager lost (the one the configuration names first): the tool reaches the Swarm through
/// another, and no request through the other nodes' proxies fails. Then a manager's engine
/// restarted (a reboot).
fn a_manager_lost(s: &Suite) {
    s.lose("the first manager was killed", 0, 1, |s| {
        let run = s.under_load(2, &["deploy", "staging", "--tag", "e2e-c"]);
        assert!(run.ok, "a deploy through another manager: {}", run.out);
    });
    let load = Load::start(s.proxy(2), "/api/health");
    let restarted = Instant::now();
    Command::new("docker").args(["restart", "--time", "10", &s.node(1)]).output().unwrap();
    s.wait_node(1, "Ready", &[]);
    s.wait_serves(1, restarted, "its restart began");
    let seen = load.stop_seen("a manager's engine was restarted");
    s.worst.borrow_mut().push(("a manager's engine was restarted".into(), seen.failed, seen.total, seen.worst));
    assert_eq!(seen.failed, 0, "requests failed while a manager restarted");
    s.assert_spread("a manager's restart", &[]);
}

/// The ssh connection to the manager cut while Swarm rolls an update out: the update goes on
/// by Swarm's rules, and the next command reports where it ended.
fn connection_cut_mid_update(s: &Suite) {
    let load = Load::start(s.proxy(1), "/api/health");
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
    for i in 0..NODES {
        let _ = s.fleet.exec(&s.node(i), None, &["pkill", "-KILL", "-u", USER, "-x", "sshd"], None);
    }
    let (ok, out) = deploy.finish(&s.x);
    assert!(!ok, "a deploy whose connection was cut succeeded:\n{out}");
    // Swarm finishes the update; then `releases` says what serves.
    let state = || s.on_a_manager(&[], &["docker", "service", "inspect", "--format", "{{.UpdateStatus.State}}", APP]);
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
