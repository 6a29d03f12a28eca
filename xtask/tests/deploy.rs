//! The deploy suite: `staging`, `deploy`, `rollback`, `releases` and `lock` against a real
//! production host, as a container (xtask_testbed::fleet): its own Docker engine, sshd reached through
//! an ssh config alias, nginx in front, PostgreSQL for the app, set up by `cargo xtask setup` as
//! an operator would; a registry with a login beside it. A request
//! loop runs through the host's nginx during every switch and must see no failed request, also
//! when a deploy is interrupted (Ctrl-C, or its ssh connection cut) at each step of the switch,
//! and across the next deploy, which must carry on by itself.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, refused, Load, Run, Spawned, Xtask};
use xtask::config::Config;
use xtask::project::Project;
use xtask_testbed::fleet::{Fleet, USER};

struct Suite {
    p: Project,
    fleet: Fleet,
    x: Xtask,
    host: String,
    repository: String,
    /// The staging site's port on this machine.
    port: u16,
    secret: String,
}

/// The suite's fleet: one production host and a registry.
fn setup() -> Suite {
    common::engine("deploy suite");
    let p = xtask::load(None, None, false).unwrap();
    let fleet =
        Fleet::start(&p, &format!("rsdeploy{}", std::process::id()), "host", 1, Some(0), &[8080, 8081]).unwrap();
    let host = fleet.hosts[0].name.clone();
    fleet.authorize_root(&host).unwrap();

    // The shipped configuration, pointed at the fleet.
    let mut config: Config = p.config.clone();
    let repository = format!("{}/recordsponge/e2e-expungeservice", fleet.registry);
    config.compose.project = fleet.prefix.clone();
    config.deploy.repository = repository.clone();
    config.deploy.ssh_config = fleet.ssh_config.display().to_string();
    config.deploy.keep_releases = 2;
    // PostgreSQL's client for backups, from the fleet's registry (Docker Hub is out of reach).
    config.backups.image = fleet.push_test_image(&p, "pgclient").unwrap();
    // The dev images' tags (mutable, shared by every checkout on a machine) name images that
    // have nothing to do with this commit: what ships must not depend on them.
    config.images.backend_dev = format!("{}/unrelated/expungeservice:dev", fleet.registry);
    config.images.frontend_dev = format!("{}/unrelated/frontend:dev", fleet.registry);
    for image in [&config.images.backend_dev, &config.images.frontend_dev] {
        common::docker(&["tag", &config.images.debian, image]);
    }
    // And the dev stack's node_modules volume holds junk.
    let volume = format!("{}_node_modules", fleet.prefix);
    common::docker(&["volume", "create", "--label", &format!("com.docker.compose.project={}", fleet.prefix), &volume]);
    common::docker(&["run", "--rm", "--volume", &format!("{volume}:/nm"), &config.images.debian, "touch", "/nm/junk"]);
    for (name, env) in config.environments.iter_mut() {
        env.host = host.clone();
        env.http_port = if name == "prod" { 8081 } else { 8080 };
        env.domain = Some("_".into());
        env.check_url = format!("http://127.0.0.1:{}/api/version", env.http_port);
        env.health_timeout = 20;
    }
    let path = fleet.dir.join("deploy.toml");
    config.write(&path).unwrap();
    // HOME of the xtask runs: their ~/.ssh holds the shared ssh connections.
    let home = fleet.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let x = Xtask::new(&path, &[("DOCKER_CONFIG", &fleet.docker_config), ("HOME", &home)]);
    // The host, set up as an operator sets one up: each environment with its own database.
    for env in ["staging", "prod"] {
        x.ok(&["setup", env, "--no-deploy"]);
    }
    let env_file = fleet.exec(&host, None, &["cat", "/etc/recordsponge/staging.env"], None).unwrap();
    let secret = env_file.lines().find_map(|l| l.strip_prefix("PGPASSWORD=")).unwrap().to_string();
    let port = fleet.hosts[0].ports[&8080];
    Suite { p, host, repository, port, secret, fleet, x }
}

impl Suite {
    fn xtask(&self, args: &[&str]) -> Run {
        self.x.run(args)
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.x.ok(args)
    }

    fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::start(self.x.command(args))
    }

    /// Runs `args` under a request loop through nginx; asserts that no request failed.
    fn under_load(&self, args: &[&str]) -> Run {
        let load = Load::start(self.port, "/api/health");
        let run = self.xtask(args);
        let (failed, total) = load.stop(&format!("`{}`", args.join(" ")));
        assert_eq!(failed, 0, "requests failed during `{}` ({failed} of {total})", args.join(" "));
        assert!(total > 10, "the request loop barely ran ({total})");
        run
    }

    /// The release that answers through nginx now.
    fn serving(&self) -> String {
        let (status, body) = get(self.port, "/api/version");
        assert_eq!(status, 200, "nginx does not serve the app: {body}");
        let version: serde_json::Value = serde_json::from_str(&body).unwrap();
        version["release"].as_str().unwrap_or_default().to_string()
    }

    fn host(&self, argv: &[&str]) -> String {
        self.fleet.exec(&self.host, Some(USER), argv, None).unwrap()
    }

    /// The staging release containers running on the host once the stopped ones have ended.
    fn running_releases(&self) -> Vec<String> {
        let list =
            || self.host(&["docker", "ps", "--filter", "label=org.recordsponge.env=staging", "--format", "{{.Names}}"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while list().lines().count() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        list().lines().map(str::to_string).collect()
    }

    fn log(&self) -> String {
        self.fleet
            .exec(&self.host, None, &["cat", "/var/lib/recordsponge/staging.releases.log"], None)
            .unwrap_or_default()
    }

    /// A build of its own (its own digest) of `image`, pushed as `REPOSITORY:TAG`, with `more`
    /// Dockerfile lines.
    fn push_build(&self, image: &str, tag: &str, more: &str) -> String {
        let target = format!("{}:{tag}", self.repository);
        self.fleet.push_build(image, &target, more).unwrap();
        target
    }

    /// Cuts the deploy user's ssh connections on the host (its sessions end, as when the
    /// network drops), from inside the fleet's own container.
    fn cut_connections(&self) {
        let _ = self.fleet.exec(&self.host, None, &["pkill", "-KILL", "-u", USER, "-x", "sshd"], None);
    }
}

#[test]
#[ignore = "needs a Docker engine; bash xtask/testbed/run-tests.sh runs it (cargo test -- --include-ignored)"]
fn deploys_survive_what_operators_do() {
    let s = setup();
    let commit = String::from_utf8(Command::new("git").args(["rev-parse", "HEAD"]).output().unwrap().stdout).unwrap();
    let commit = commit.trim().to_string();

    refusals(&s);

    // Ignored files in the checkout (git's own exclude list: the tree stays clean): a secret
    // env file, a directory, a symlink to a file outside the repository. None may ship.
    let ignored = ["src/backend/.env", "src/backend/.venv/lib.py", "src/backend/id_key"];
    // (git's own path for it: a second checkout's is in the first one's .git.)
    let git = ["rev-parse", "--path-format=absolute", "--git-path", "info/exclude"];
    let exclude = String::from_utf8(Command::new("git").args(git).output().unwrap().stdout).unwrap();
    let exclude = std::path::PathBuf::from(exclude.trim());
    std::fs::create_dir_all(exclude.parent().unwrap()).unwrap();
    // (A run that was interrupted leaves its lines and files: this one starts from without them.)
    let lines = ["/src/backend/.env", "/src/backend/.venv/", "/src/backend/id_key"];
    let excluded: String = std::fs::read_to_string(&exclude)
        .unwrap_or_default()
        .lines()
        .filter(|l| !lines.contains(l))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&exclude, format!("{excluded}{}\n", lines.join("\n"))).unwrap();
    for file in ignored {
        let _ = std::fs::remove_file(s.p.root.join(file));
    }
    std::fs::create_dir_all(s.p.root.join("src/backend/.venv")).unwrap();
    std::fs::write(s.p.root.join(ignored[0]), format!("PGPASSWORD={}\n", s.secret)).unwrap();
    std::fs::write(s.p.root.join(ignored[1]), "# an ignored virtualenv\n").unwrap();
    let outside = s.fleet.dir.join("private-key");
    std::fs::write(&outside, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, s.p.root.join(ignored[2])).unwrap();

    // The first release: built, pushed, deployed; nginx serves it.
    let run = s.ok(&["staging"]);
    assert!(run.out.contains("no release serves yet"), "{}", run.out);
    let first = s.serving();
    assert!(first.starts_with("recordsponge-staging-"), "{first}");
    let (_, version) = get(s.port, "/api/version");
    assert!(version.contains(&commit), "the release does not report {commit}: {version}");
    // It says when its commit was made (git's own reading of it), and nothing of the build.
    let git_time = Command::new("git")
        .args(["show", "--no-patch", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "--format=%cd", "HEAD"])
        .env("TZ", "UTC")
        .output()
        .unwrap()
        .stdout;
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["commit_time"], String::from_utf8(git_time).unwrap().trim(), "{version}");
    assert!(version.get("build_time").is_none() && version.get("branch").is_none(), "{version}");
    let release_image = format!("{}:staging-{}", s.repository, &commit[..12]);
    let shipped = common::docker(&["run", "--rm", "--entrypoint", "ls", &release_image, "-a", "/src/backend"]);
    for file in ignored {
        let name = file.rsplit('/').next().unwrap();
        assert!(!shipped.lines().any(|l| l == name), "the ignored {file} shipped: {shipped}");
        let _ = std::fs::remove_file(s.p.root.join(file));
    }
    let _ = std::fs::remove_dir_all(s.p.root.join("src/backend/.venv"));
    std::fs::write(&exclude, excluded).unwrap();
    what_ships_is_the_commit(&s, &release_image);
    a_lock_change_ships_with_no_manual_step(&s, &release_image);

    same_build_redeploys(&s, &release_image);
    rollbacks(&s, &release_image);
    older_build_by_tag(&s, &release_image, &commit);
    concurrent_deploys(&s, &release_image);
    interruptions(&s, &release_image);
    lock_and_history(&s);
    setup_during_a_deploy(&s);
    checks_that_tell_the_truth(&s);
    day_two(&s, &release_image);

    // No secret from the host's env file appears in any output.
    for out in s.x.outputs.borrow().iter() {
        assert!(!out.contains(&s.secret), "a secret from the env file appeared in the output");
    }
}

/// Refused before anything is built or changed on the host, each with its fix.
fn refusals(s: &Suite) {
    // The sites and the Swarm proxy, as shipped, pass `nginx -t` on a host.
    for dir in ["nginx", "swarm"] {
        let from = s.p.root.join("config").join(dir);
        common::docker(&["cp", &from.display().to_string(), &format!("{}:/root/{dir}", s.host)]);
    }
    let checked = s.fleet.exec(&s.host, None, &["bash", "/root/nginx/check.sh"], None);
    assert!(checked.is_ok(), "config/nginx/check.sh: {checked:?}");

    let no_login = s.fleet.dir.join("no-login");
    std::fs::create_dir_all(&no_login).unwrap();
    let mut cmd = s.x.command(&["staging"]);
    cmd.env("DOCKER_CONFIG", &no_login);
    refused(
        &s.x.run_with(cmd, "staging (no registry login)"),
        "staging without a registry login",
        &format!("not logged in to {}", s.fleet.registry),
    );

    // The env file unreadable for the deploy user: the fix keeps what it holds.
    s.fleet.exec(&s.host, None, &["chown", "root", "/etc/recordsponge/staging.env"], None).unwrap();
    let run = s.xtask(&["deploy", "staging"]);
    refused(&run, "a deploy without its env file", "/etc/recordsponge/staging.env is readable on");
    assert!(run.out.contains("touch /etc/recordsponge/staging.env && chown rsdeploy"), "{}", run.out);
    s.fleet.exec(&s.host, None, &["chown", USER, "/etc/recordsponge/staging.env"], None).unwrap();

    // An env file docker would refuse, and one without a setting the app needs: refused before
    // anything is built, by line and name, no value shown.
    let env_file = s.fleet.exec(&s.host, None, &["cat", "/etc/recordsponge/staging.env"], None).unwrap();
    let write_env = |text: &str| {
        s.fleet.exec(&s.host, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some(text)).unwrap()
    };
    write_env(&format!("{env_file}export RS_TRIAL_BAD=1\n"));
    let run = s.xtask(&["staging"]);
    refused(&run, "a deploy with an env file docker refuses", "starts `export …`: a name with a space in it");
    write_env(
        &env_file.lines().filter(|l| !l.starts_with("PGPASSWORD=")).map(|l| format!("{l}\n")).collect::<String>(),
    );
    refused(&s.xtask(&["deploy", "staging"]), "a deploy without PGPASSWORD", "it sets no PGPASSWORD");
    write_env(&env_file);

    // sudo without the deploy user's rule: doctor and the deploy say so, naming the fix.
    let sudoers = format!("/etc/sudoers.d/recordsponge-{USER}");
    s.fleet.exec(&s.host, None, &["mv", &sudoers, "/root/sudoers.off"], None).unwrap();
    let doctor = s.xtask(&["doctor"]);
    assert!(
        !doctor.ok && doctor.stdout.contains("FAILED  nginx's configuration is valid, tested by rsdeploy"),
        "{}",
        doctor.out
    );
    assert!(doctor.stdout.contains("FAILED  rsdeploy may reload nginx"), "{}", doctor.out);
    refused(&s.xtask(&["deploy", "staging"]), "a deploy without sudo for nginx", &sudoers);
    s.fleet.exec(&s.host, None, &["mv", "/root/sudoers.off", &sudoers], None).unwrap();

    // No registry login for the deploy user on the host.
    s.fleet.exec(&s.host, Some(USER), &["docker", "logout", &s.fleet.registry], None).unwrap();
    refused(
        &s.xtask(&["deploy", "staging"]),
        "a deploy without the host's login",
        &format!("rsdeploy is logged in to {} on", s.fleet.registry),
    );
    let password = std::fs::read_to_string(s.fleet.dir.join("registry-password")).unwrap();
    s.fleet
        .exec(
            &s.host,
            Some(USER),
            &["docker", "login", "--username", "rstest", "--password-stdin", &s.fleet.registry],
            Some(&password),
        )
        .unwrap();

    let mut other_branch = Config::load(&s.x.config).unwrap();
    other_branch.environments.get_mut("prod").unwrap().branch = Some("release".into());
    let other = s.fleet.dir.join("other-branch.toml");
    other_branch.write(&other).unwrap();
    refused(
        &s.x.run_with(s.x.command_with(&other, &["prod"]), "prod (another branch)"),
        "prod from another branch",
        "this environment deploys only from `release`",
    );

    let dirty = s.p.root.join("e2e-uncommitted.txt");
    std::fs::write(&dirty, "not committed").unwrap();
    let run = s.xtask(&["staging"]);
    std::fs::remove_file(&dirty).unwrap();
    refused(&run, "staging from a dirty tree", "uncommitted changes");

    for (args, expect) in [
        (&["deploy", "staging;reboot"][..], "is not a valid environment name"),
        (&["deploy", "$(reboot)"][..], "is not a valid environment name"),
        (&["deploy", "staging", "--tag", "x;reboot"][..], "is not a valid image tag"),
        (&["rollback", "staging", "a'b"][..], "is not a valid image tag"),
    ] {
        let run = s.xtask(args);
        assert!(!run.ok && run.out.contains(expect) && !run.out.contains("[1/"), "{args:?}:\n{}", run.out);
    }
    assert!(s.host(&["docker", "ps", "--all", "--quiet"]).trim().is_empty(), "a refused deploy started a container");
    assert!(s.log().is_empty(), "a refused deploy wrote the release log");
}

/// Five redeploys of the live build back to back, under load: each switch is verified by the
/// new release's own name, so none drops a request.
fn same_build_redeploys(s: &Suite, image: &str) {
    let tag = image.rsplit(':').next().unwrap();
    let load = Load::start(s.port, "/api/health");
    let mut names = Vec::new();
    for _ in 0..5 {
        s.ok(&["deploy", "staging", "--tag", tag]);
        names.push(s.serving());
    }
    let (failed, total) = load.stop("five same-build redeploys");
    assert_eq!(failed, 0, "{failed} of {total} requests failed during same-build redeploys");
    names.dedup();
    assert_eq!(names.len(), 5, "each redeploy serves a new release: {names:?}");
    assert_eq!(s.running_releases(), [names[4].clone()], "old releases still run");
}

/// A deploy then at once a rollback, then two rollbacks in a row: each goes one release further
/// back, by digest.
fn rollbacks(s: &Suite, image: &str) {
    let b = s.push_build(image, "e2e-b", "");
    let c = s.push_build(image, "e2e-c", "");
    s.under_load(&["deploy", "staging", "--tag", "e2e-b"]);
    s.under_load(&["deploy", "staging", "--tag", "e2e-c"]);
    // The digest a release runs (its label), and the digest of a pushed build on the host.
    let running = || {
        let name = s.serving();
        s.host(&["docker", "inspect", "--format", "{{index .Config.Labels \"org.recordsponge.digest\"}}", &name])
            .trim()
            .to_string()
    };
    let digest = |tag: &str| {
        s.host(&["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", tag]).trim().to_string()
    };
    assert_eq!(running(), digest(&c));
    let run = s.under_load(&["rollback", "staging"]);
    assert!(run.out.contains("rolling back to"), "{}", run.out);
    assert_eq!(running(), digest(&b), "the first rollback goes to the build before the live one");
    s.under_load(&["rollback", "staging"]);
    assert_eq!(running(), digest(image), "the second goes one further back, not forward to the one it left");
    // And back to the newest by name.
    s.under_load(&["deploy", "staging", "--tag", "e2e-c"]);
}

/// `deploy --tag` of a build of another commit, HEAD elsewhere: it serves, and the log records
/// the image's commit.
fn older_build_by_tag(s: &Suite, image: &str, head: &str) {
    s.push_build(image, "e2e-older", "LABEL org.recordsponge.commit=0ldc0mm1t0000000000000000000000000000000\n");
    let run = s.under_load(&["deploy", "staging", "--tag", "e2e-older"]);
    assert!(run.out.contains("(commit 0ldc0mm1t000)"), "{}", run.out);
    let last = s.log().lines().last().unwrap().to_string();
    assert!(last.contains("\t0ldc0mm1t0000000000000000000000000000000\tok") && !last.contains(head), "{last}");
}

/// Two deploys started 0.3 s apart: one deploys, the other is refused at once, naming it.
fn concurrent_deploys(s: &Suite, image: &str) {
    let tag = image.rsplit(':').next().unwrap();
    let load = Load::start(s.port, "/api/health");
    let first = s.spawn(&["deploy", "staging", "--tag", tag]);
    std::thread::sleep(Duration::from_millis(300));
    let second = s.spawn(&["deploy", "staging", "--tag", tag]);
    let started = Instant::now();
    let (ok2, out2) = second.finish(&s.x);
    let refused_after = started.elapsed();
    let (ok1, out1) = first.finish(&s.x);
    let (failed, _) = load.stop("two deploys at once");
    assert_eq!(failed, 0);
    // Either may win the race; exactly one deploys.
    let (loser, winner_ok) = if ok1 { (out2.clone(), ok1) } else { (out1.clone(), ok2) };
    assert!(winner_ok && !(ok1 && ok2), "exactly one of two concurrent deploys runs:\n{out1}\n---\n{out2}");
    assert!(
        loser.contains("deploy lock on")
            && loser.contains("is held by")
            && loser.contains(&format!("deploy of {image}")),
        "{loser}"
    );
    assert!(!loser.contains("is free: no"), "a held lock is said to be held: {loser}");
    if !ok2 {
        assert!(refused_after < Duration::from_secs(2), "the second deploy was refused after {refused_after:?}");
    }
}

/// Ctrl-C and a cut connection at each step of the switch, under one request loop, each followed
/// by a deploy that must carry on by itself. The release deployed takes two seconds to start,
/// so that the health check is waited for.
fn interruptions(s: &Suite, image: &str) {
    let slow = "CMD [\"sh\", \"-c\", \"sleep 2 && exec gunicorn --config /src/backend/gunicorn.conf.py expungeservice.wsgi:app\"]\n";
    s.push_build(image, "e2e-slow", slow);
    let tag = "e2e-slow";
    let load = Load::start(s.port, "/api/health");
    for (at, when) in [
        ("beside the live release", "before the health check"),
        ("to be healthy", "during the health check"),
        ("Check the nginx configuration", "after the upstream write"),
        ("answers from", "after the reload"),
        ("Wait for nginx's old workers", "after the record"),
        ("Stop the releases that no longer serve", "during the old release's stop"),
    ] {
        for how in ["Ctrl-C", "a cut connection"] {
            eprintln!("=== {how} {when}");
            let mut deploy = s.spawn(&["deploy", "staging", "--tag", tag]);
            deploy.wait_for(at);
            if how == "Ctrl-C" {
                deploy.interrupt();
            } else {
                s.cut_connections();
            }
            let (_, out) = deploy.finish(&s.x);
            let next = s.xtask(&["deploy", "staging", "--tag", tag]);
            assert!(next.ok, "the deploy after {how} {when} did not carry on by itself:\n{out}\n---\n{}", next.out);
            assert_eq!(s.running_releases(), [s.serving()], "after {how} {when} and the next deploy");
        }
    }
    let (failed, total) = load.stop("every interruption and the deploys after them");
    assert_eq!(failed, 0, "{failed} of {total} requests failed across the interruptions");
}

/// `lock status` during a deploy names it; `releases` shows the history and what serves.
fn lock_and_history(s: &Suite) {
    let mut deploy = s.spawn(&["deploy", "staging", "--tag", "e2e-slow"]);
    deploy.wait_for("to be healthy");
    let status = s.ok(&["lock", "staging", "status"]);
    assert!(status.stdout.contains("is held by") && status.stdout.contains("deploy of"), "{}", status.out);
    // The deploy killed outright: its lock ends with its connection, nothing to break by hand.
    deploy.signal("-KILL");
    let _ = deploy.finish(&s.x);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = s.ok(&["lock", "staging", "status"]);
    while !status.stdout.contains("is free") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        status = s.ok(&["lock", "staging", "status"]);
    }
    assert!(status.stdout.contains("is free") && status.stdout.contains("ended without finishing"), "{}", status.out);
    let releases = s.ok(&["releases", "staging"]);
    for word in ["\tdeploy", "rollback", "interrupted", "serving now:"] {
        let word = word.trim_start_matches('\t');
        assert!(releases.stdout.contains(word), "`releases` lacks {word:?}:\n{}", releases.stdout);
    }
    s.under_load(&["deploy", "staging", "--tag", "e2e-c"]);
}

/// `setup` run again while a deploy runs, with sshd's drop-in to write again: it reloads sshd's
/// listener alone (by its pid file), so the deploy, its lock's connection and every request go
/// on.
fn setup_during_a_deploy(s: &Suite) {
    s.fleet.exec(&s.host, None, &["rm", "/etc/ssh/sshd_config.d/recordsponge.conf"], None).unwrap();
    let load = Load::start(s.port, "/api/health");
    let mut deploy = s.spawn(&["deploy", "staging", "--tag", "e2e-slow"]);
    deploy.wait_for("to be healthy");
    let setup = s.ok(&["setup", "staging", "--no-deploy"]);
    let (ok, out) = deploy.finish(&s.x);
    let (failed, total) = load.stop("setup during a deploy");
    assert!(setup.out.contains("setup-host: reloaded sshd (its listener, pid"), "{}", setup.out);
    assert!(ok, "the deploy during a setup:\n{out}");
    assert_eq!(failed, 0, "{failed} of {total} requests failed during a setup and a deploy");
}

/// The release holds what the commit says, whatever the machine's mutable tags and volumes
/// hold: the Python packages of Pipfile.lock exactly, and a frontend build byte-identical to a
/// clean build of the commit (a fresh `npm ci` and `npm run build` from `git archive`). The
/// image names what it was built from.
fn what_ships_is_the_commit(s: &Suite, image: &str) {
    let in_release = |script: &str| common::docker(&["run", "--rm", "--entrypoint", "sh", image, "-c", script]);
    let normal = |name: &str| name.to_lowercase().replace(['_', '.'], "-");
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.p.root.join("src/backend/Pipfile.lock")).unwrap()).unwrap();
    let mut locked: Vec<String> = ["default", "develop"]
        .iter()
        .flat_map(|section| lock[section].as_object().unwrap().iter())
        .map(|(name, entry)| {
            format!("{}=={}", normal(name), entry["version"].as_str().unwrap().trim_start_matches('='))
        })
        .collect();
    locked.sort();
    locked.dedup();
    let mut frozen: Vec<String> = in_release("/src/venvs/bin/pip freeze")
        .lines()
        .filter_map(|l| l.split_once("=="))
        .map(|(name, version)| format!("{}=={version}", normal(name)))
        .collect();
    frozen.sort();
    assert_eq!(frozen, locked, "the release's Python packages are not exactly Pipfile.lock's");

    let hashes = "find . -type f | sort | xargs sha256sum";
    let shipped = in_release(&format!("cd /src/frontend/build && {hashes}"));
    let sh = xshell::Shell::new().unwrap();
    sh.change_dir(&s.p.root);
    let archive = xshell::cmd!(sh, "git archive --format=tar HEAD src/frontend").output().unwrap().stdout;
    let ca = "/etc/ssl/certs/ca-certificates.crt";
    let mount = format!("{ca}:/etc/recordsponge/ca.crt:ro");
    let node = &s.p.config.images.node;
    let clean = format!(
        "mkdir /w && cd /w && tar -x && cd src/frontend && npm ci --no-audit --no-fund >/dev/null \
         && npm run build >/dev/null && cd build && {hashes}"
    );
    let built = xshell::cmd!(sh, "docker run --rm --interactive --volume {mount} --env NODE_EXTRA_CA_CERTS=/etc/recordsponge/ca.crt {node} sh -c {clean}")
        .stdin(archive)
        .read()
        .unwrap();
    assert!(shipped.lines().count() >= 2, "{shipped}");
    assert_eq!(shipped.trim(), built.trim(), "the release's frontend differs from a clean build of the commit");

    // The build machine's extra CA was trusted while the bases were built, never after.
    assert_eq!(in_release("ls -A /usr/local/share/ca-certificates; echo ${NODE_EXTRA_CA_CERTS:-}").trim(), "");
    let frontend_base = common::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.recordsponge.frontend-base\"}}",
        image,
    ]);
    let frontend_base = frontend_base.split_whitespace().next().unwrap();
    let env = common::docker(&["image", "inspect", "--format", "{{json .Config.Env}}", frontend_base]);
    assert!(!env.contains("NODE_EXTRA_CA_CERTS"), "the frontend's base trusts an extra CA: {env}");
    let labels = common::docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", image]);
    for label in ["org.recordsponge.commit", "org.recordsponge.backend-base", "org.recordsponge.frontend-base"] {
        assert!(labels.contains(label), "the release does not say {label}: {labels}");
    }
    let releases = s.ok(&["releases", "staging"]);
    assert!(releases.stdout.contains("built from: commit"), "{}", releases.stdout);
}

/// A commit that changes a lock file ships the new dependencies with no manual step, from a
/// second checkout on the same machine, and neither checkout's build touches the other's.
fn a_lock_change_ships_with_no_manual_step(s: &Suite, image: &str) {
    let sh = xshell::Shell::new().unwrap();
    let temp = sh.create_temp_dir().unwrap();
    let b = temp.path().join("b");
    let root = &s.p.root;
    xshell::cmd!(sh, "git clone --quiet {root} {b}").run().unwrap();
    let lock_path = b.join("src/backend/Pipfile.lock");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    lock["default"]["six"] = serde_json::json!({
        "hashes": ["sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"],
        "version": "==1.16.0"
    });
    sh.change_dir(&b);
    // A tracked symlink out of the repository is refused before anything is built.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", b.join("src/backend/escape")).unwrap();
        xshell::cmd!(sh, "git add src/backend/escape").run().unwrap();
        xshell::cmd!(sh, "git -c user.name=t -c user.email=t@example.com commit --quiet -m 'A link out'")
            .run()
            .unwrap();
        let in_b =
            Xtask { root: b.clone(), config: s.x.config.clone(), env: s.x.env.clone(), outputs: Default::default() };
        refused(
            &in_b.run(&["image", "staging"]),
            "a release with a symlink out of the tree",
            "src/backend/escape -> /etc/hostname",
        );
        xshell::cmd!(sh, "git rm --quiet src/backend/escape").run().unwrap();
    }
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    xshell::cmd!(sh, "git -c user.name=t -c user.email=t@example.com commit --quiet -am 'Depend on six'")
        .run()
        .unwrap();

    let base = |out: &str| out.lines().find_map(|l| l.split("Ensure the base image ").nth(1)).unwrap().to_string();
    let id = |tag: &str| common::docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
    let release_id = id(image);
    let a_base = base(&s.ok(&["image", "staging"]).out);
    // The same commit built again is the same release: its tag stays where it was.
    assert_eq!(id(image), release_id, "building the first checkout's commit again made another image");
    let a_id = id(&a_base);
    let in_b = Xtask { root: b.clone(), config: s.x.config.clone(), env: s.x.env.clone(), outputs: Default::default() };
    let from_b = in_b.ok(&["staging"]);
    let b_base = base(&from_b.out);
    assert_ne!(a_base, b_base, "a changed Pipfile.lock must name another base image");
    let b_tag = format!("{}:staging-{}", s.repository, &xshell::cmd!(sh, "git rev-parse HEAD").read().unwrap()[..12]);
    let six = "import six; print(six.__version__)";
    assert_eq!(common::docker(&["run", "--rm", "--entrypoint", "python", &b_tag, "-c", six]).trim(), "1.16.0");
    let (_, version) = get(s.port, "/api/version");
    assert!(version.contains(&b_tag[b_tag.len() - 12..]), "staging does not serve B's commit: {version}");

    // Back to the first checkout: its base image is used as it was, and what it ships lacks six.
    let from_a = s.ok(&["staging"]);
    assert!(from_a.out.contains(&format!("using the local image {a_base}")), "{}", from_a.out);
    assert_eq!(id(image), release_id, "`staging` again from the first checkout built another image");
    assert_eq!(id(&a_base), a_id, "B's build changed A's base");
    let no_six = common::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "python",
        image,
        "-c",
        "import importlib.util as u; print(u.find_spec('six') is None)",
    ]);
    assert_eq!(no_six.trim(), "True", "the first checkout's release has B's dependency");
}

/// Checks that fail on a broken state: doctor with the live release killed names the command
/// that brings it back, and that command does; a release that served before its upstream
/// drifted is named as such by the next deploy.
fn checks_that_tell_the_truth(s: &Suite) {
    let doctor = s.xtask(&["doctor", "staging"]);
    assert!(doctor.ok, "doctor staging on a serving environment:\n{}", doctor.out);
    assert!(doctor.stdout.contains("ok      staging serves through nginx"), "{}", doctor.stdout);
    let logs_in = "the database /etc/recordsponge/staging.env names logs in, from a container on";
    assert!(doctor.stdout.contains(&format!("ok      {logs_in}")), "{}", doctor.stdout);
    // A wrong password in the env file: doctor says the database does not log in.
    let env_file = s.fleet.exec(&s.host, None, &["cat", "/etc/recordsponge/staging.env"], None).unwrap();
    let write_env = |text: &str| {
        s.fleet.exec(&s.host, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some(text)).unwrap()
    };
    write_env(&env_file.replace(&s.secret, "wrong"));
    let doctor = s.xtask(&["doctor", "staging"]);
    write_env(&env_file);
    assert!(!doctor.ok && doctor.stdout.contains(&format!("FAILED  {logs_in}")), "{}", doctor.out);
    assert!(doctor.stdout.contains("password authentication failed"), "{}", doctor.out);
    let live = s.serving();
    s.host(&["docker", "kill", &live]);
    let doctor = s.xtask(&["doctor", "staging"]);
    assert!(!doctor.ok && doctor.stdout.contains("FAILED  staging serves through nginx"), "{}", doctor.out);
    let fix = format!("`cargo xtask rollback staging {live}`");
    assert!(doctor.stdout.contains(&fix), "doctor does not name the fix:\n{}", doctor.stdout);
    s.ok(&["rollback", "staging", &live]);
    assert!(s.xtask(&["doctor", "staging"]).ok, "the fix doctor named did not bring staging back");

    // A host that serves staging alone, prod not added yet: `doctor` says so once, checks the
    // rest and passes; `doctor prod` fails.
    let root = |argv: &[&str]| s.fleet.exec(&s.host, None, argv, None).unwrap();
    root(&["mv", "/etc/recordsponge/prod.env", "/root/prod.env"]);
    let doctor = s.xtask(&["doctor"]);
    let line = format!("not yet prod: not set up on {}: there is no /etc/recordsponge/prod.env", s.host);
    assert!(doctor.ok && doctor.stdout.contains(&line), "doctor on a staging-only host:\n{}", doctor.out);
    assert!(doctor.stdout.contains("1 environment not set up"), "{}", doctor.stdout);
    assert!(!doctor.stdout.contains("prod.upstream.conf"), "prod's checks ran:\n{}", doctor.stdout);
    assert!(!s.xtask(&["doctor", "prod"]).ok, "doctor prod passed where prod is not set up");

    // On that host, from an operator's machine, without the dev stack: a check only the dev
    // stack's commands need (its backend's port, taken by another program) is said, not failed;
    // with a dev stack here (a volume of its compose project), it fails.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut operator = Config::load(&s.x.config).unwrap();
    operator.ports.backend = port;
    operator.compose.project = format!("{}op", s.fleet.prefix);
    let path = s.fleet.dir.join("operator.toml");
    operator.write(&path).unwrap();
    let doctor = s.x.run_with(s.x.command_with(&path, &["doctor"]), "doctor (an operator's machine)");
    let line = format!("dev     port {port} is free");
    assert!(doctor.ok && doctor.stdout.contains(&line), "doctor on an operator's machine:\n{}", doctor.out);
    assert!(doctor.stdout.contains(" 0 failed, 1 for the dev stack only"), "{}", doctor.stdout);
    let volume = format!("{}_database", operator.compose.project);
    let label = format!("com.docker.compose.project={}", operator.compose.project);
    common::docker(&["volume", "create", "--label", &label, &volume]);
    let doctor = s.x.run_with(s.x.command_with(&path, &["doctor"]), "doctor (a dev machine)");
    common::docker(&["volume", "rm", &volume]);
    assert!(!doctor.ok && doctor.stdout.contains(&format!("FAILED  port {port} is free")), "{}", doctor.out);
    drop(taken);
    root(&["mv", "/root/prod.env", "/etc/recordsponge/prod.env"]);

    // The upstream drifts to a port where nothing listens.
    let now = s.serving();
    s.fleet
        .exec(
            &s.host,
            Some(USER),
            &["dd", "of=/etc/nginx/recordsponge/staging.upstream.conf", "status=none"],
            Some("upstream recordsponge_staging { server 127.0.0.1:3039; }\n"),
        )
        .unwrap();
    s.host(&["sudo", "-n", "nginx", "-s", "reload"]);
    let run = s.ok(&["deploy", "staging", "--tag", "e2e-c"]);
    assert!(
        run.out.contains(&format!("{now} (running, port")) && run.out.contains("served last, as the release log says"),
        "{}",
        run.out
    );
    assert!(!run.out.contains("left by an interrupted deploy"), "{}", run.out);

    // An upstream file with more than a deploy writes (nginx includes it as root): refused
    // before anything changes, and the file is not loaded.
    let upstream = "/etc/nginx/recordsponge/staging.upstream.conf";
    let good = s.host(&["cat", upstream]);
    let write = |text: &str| {
        s.fleet.exec(&s.host, Some(USER), &["dd", &format!("of={upstream}"), "status=none"], Some(text)).unwrap()
    };
    write(&format!("{good}access_log /tmp/pwned combined;\n"));
    refused(
        &s.xtask(&["deploy", "staging", "--tag", "e2e-c"]),
        "a deploy over a hostile upstream file",
        "holds only what a deploy writes: no",
    );
    assert!(
        s.fleet.exec(&s.host, None, &["test", "!", "-e", "/tmp/pwned"], None).is_ok(),
        "nginx loaded the hostile line"
    );
    write(&good);
}

/// The app's database on the host, as PostgreSQL's superuser: `sql`'s rows, one a line.
fn sql(s: &Suite, sql: &str) -> String {
    let argv = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", "recordsponge_staging", "-c", sql];
    s.fleet.exec(&s.host, Some("postgres"), &argv, None).unwrap()
}

/// Logs, one-off commands and backups of a serving environment: a backup restores exactly the
/// rows a mistaken delete took; a backup that cannot be written refuses the deploy before
/// anything changes; a one-off command runs beside the live release, never in it.
fn day_two(s: &Suite, image: &str) {
    let live = s.serving();
    // Logs: the live release's, and --follow sees a request made while it runs.
    let logs = s.ok(&["logs", "staging", "--lines", "20"]);
    assert!(logs.out.contains(&format!("the live release: {live}")), "{}", logs.out);
    assert!(logs.stdout.contains("GET /api/"), "no request in the live release's logs:\n{}", logs.stdout);
    assert!(!logs.stdout.contains('\u{1b}'), "terminal escapes in piped logs:\n{}", logs.stdout);
    let mut follow = s.spawn(&["logs", "staging", "--follow", "--lines", "0"]);
    follow.wait_for("Follow the live release's logs");
    std::thread::sleep(Duration::from_secs(2));
    get(s.port, "/api/version?day-two-probe");
    follow.wait_for("day-two-probe");
    follow.interrupt();
    let (_, out) = follow.finish(&s.x);
    assert!(!out.contains("error"), "Ctrl-C should end `logs --follow` quietly:\n{out}");

    // exec: a new container of the live release's image, with the env file; its exit code is
    // the command's; the serving container is untouched; the run is in the release log.
    let tier = s.ok(&["exec", "staging", "--", "printenv", "TIER"]);
    assert_eq!(tier.stdout.trim(), "staging", "{}", tier.out);
    let failed = s.xtask(&["exec", "staging", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.code, Some(7), "the command's exit code is exec's:\n{}", failed.out);
    assert_eq!(s.running_releases(), std::slice::from_ref(&live), "exec touched what serves");
    assert!(s.log().contains("\tran: printenv TIER"), "the run is not in the release log:\n{}", s.log());
    assert!(!s.log().contains(&s.secret), "the release log holds a secret");

    // A backup, a mistaken delete, a restore: exactly the rows there were.
    refused(&s.xtask(&["db", "restore", "staging", "latest"]), "a restore without a terminal or --yes", "--yes");
    sql(s, "INSERT INTO users (email, name, hashed_password) VALUES ('a@example.org', 'A', 'x'), ('b@example.org', 'B', 'y')");
    let rows = || sql(s, "SELECT user_id, email, name, hashed_password FROM users ORDER BY user_id");
    let before = rows();
    assert_eq!(before.lines().count(), 2, "{before}");
    let backup = s.ok(&["db", "backup", "staging"]);
    assert!(backup.out.contains("/var/backups/recordsponge/staging/staging-"), "{}", backup.out);
    assert!(
        backup.out.contains(&format!("-{live}.dump: ")),
        "the backup is named for the live release:\n{}",
        backup.out
    );
    sql(s, "DELETE FROM users");
    let restore = s.ok(&["--yes", "db", "restore", "staging", "latest"]);
    assert!(restore.out.contains("what it replaced is the backup staging-"), "{}", restore.out);
    eprintln!("    the test database: backup {:.1}s, restore {:.1}s", backup.seconds, restore.seconds);
    assert_eq!(rows(), before, "the restore did not give back the rows there were");
    let listed = s.ok(&["db", "backups", "staging"]);
    assert_eq!(listed.stdout.lines().filter(|l| l.starts_with("staging-")).count(), 2, "{}", listed.stdout);
    // The dump comes here only when asked.
    let here = s.fleet.dir.join("staging.dump");
    s.ok(&["db", "backup", "staging", "--download", &here.display().to_string()]);
    assert!(std::fs::read(&here).unwrap().starts_with(b"PGDMP"), "the download is not a dump");
    // A backup of another environment is restored only when named so.
    let other = s.xtask(&["--yes", "db", "restore", "staging", "prod-20261128T120000Z"]);
    assert!(!other.ok && other.out.contains("`--from prod`"), "{}", other.out);
    assert_eq!(rows(), before, "a refused restore changed the database");

    // With backups before deploys (prod's default) and the backups' disk full, a deploy is
    // refused before the switch, saying why, and the live release serves on; with room, the
    // deploy backs up first.
    let mut backing_up = Config::load(&s.x.config).unwrap();
    backing_up.environments.get_mut("staging").unwrap().backup_before_deploy = true;
    let with_backup = s.fleet.dir.join("backup-first.toml");
    backing_up.write(&with_backup).unwrap();
    let dir = "/var/backups/recordsponge/staging";
    let root = |argv: &[&str]| s.fleet.exec(&s.host, None, argv, None).unwrap();
    root(&["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", dir]);
    root(&["chown", USER, dir]);
    root(&["dd", "if=/dev/zero", &format!("of={dir}/filler"), "bs=4k", "count=2", "status=none"]);
    let tag = image.rsplit(':').next().unwrap();
    let deploy = ["deploy", "staging", "--tag", tag];
    let load = Load::start(s.port, "/api/health");
    let full = s.x.run_with(s.x.command_with(&with_backup, &deploy), "deploy staging (backups' disk full)");
    let (failed, total) = load.stop("a deploy refused by a full disk");
    assert_eq!(failed, 0, "{failed} of {total} requests failed");
    assert!(!full.ok && full.out.contains("the backup failed") && full.out.contains("df -h"), "{}", full.out);
    assert!(!full.out.contains("Log the start"), "a refused deploy went on past its backup:\n{}", full.out);
    assert_eq!(s.serving(), live, "the live release changed");
    root(&["umount", dir]);
    let backed = s.x.run_with(s.x.command_with(&with_backup, &deploy), "deploy staging (a backup first)");
    assert!(backed.ok && backed.out.contains(&format!("{dir}/staging-")), "{}", backed.out);
    let plain = s.ok(&deploy);
    eprintln!("    a deploy with its backup first: {:.1}s; without: {:.1}s", backed.seconds, plain.seconds);
    assert_eq!(rows(), before);

    // For the record: backup and restore of a database of over 100 MB (a table of random text).
    sql(
        s,
        "SET ROLE recordsponge_staging; CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || md5(random()::text) AS a, \
             repeat(md5(random()::text), 2) AS b FROM generate_series(1, 900000) g",
    );
    let size = sql(s, "SELECT pg_size_pretty(pg_database_size('recordsponge_staging'))");
    let backup = s.ok(&["db", "backup", "staging"]);
    let restore = s.ok(&["--yes", "db", "restore", "staging", "latest"]);
    eprintln!(
        "    a database of {}: backup {:.1}s, restore {:.1}s (the restore backs up first)",
        size.trim(),
        backup.seconds,
        restore.seconds
    );
    assert_eq!(sql(s, "SELECT count(*) FROM bulk").trim(), "900000");
    sql(s, "DROP TABLE bulk");
    assert_eq!(rows(), before);
}
