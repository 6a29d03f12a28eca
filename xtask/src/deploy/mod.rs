//! The deploy environments, over OpenSSH (your own ssh and ~/.ssh/config; every ssh of a
//! command shares one connection): deploys, rollbacks, the release history and the lock. What
//! every environment shares lives here; how releases run is the environment's engine, one a
//! file behind the same three steps (checks, read what runs, switch): `host` (one Docker host
//! behind nginx) and `swarm` (a Docker Swarm stack, rolled by Swarm itself).
//!
//! The host's truth decides, never a deploy's memory: each command starts by reading what
//! runs (which release nginx routes to, which release containers exist and on which ports).
//! On the host, in `state_dir`, each environment has:
//! - `ENV.lock`: the deploy lock, an flock held by a keeper process (`flock ... tee ENV.holder`)
//!   for as long as the deploying command's ssh connection lives: a deploy whose process or
//!   connection is gone holds nothing, so a lock is never stale;
//! - `ENV.holder`: who holds (or last held) the lock: who, from where, what, since when;
//! - `ENV.releases.log`: every attempt, one tab-separated line when it starts and one when it
//!   ends (see `Attempt`).

mod host;
mod swarm;

pub use host::ENV_LABEL;

use anyhow::{bail, Result};

use crate::checks::{registry_of, Check};
use crate::cli::{Deploy, LockAction};
use crate::cmd::{sh, Cmd};
use crate::config::{check_tag, Engine, Environment};
use crate::plan::{Action, Decided, Decision, Plan};
use crate::project::Project;

pub fn plan(p: &Project, command: &Deploy) -> Result<Plan> {
    Ok(match command {
        Deploy::Deploy { env, tag } => {
            let t = Target::new(p, env)?;
            let image = match tag {
                Some(tag) => {
                    check_tag(tag)?;
                    format!("{}:{tag}", p.config.deploy.repository)
                }
                None => t.moving.clone(),
            };
            deploy(p, &t, &image, None)
        }
        Deploy::Rollback { env, release } => rollback(p, &Target::new(p, env)?, release.as_deref())?,
        Deploy::Releases { env } => releases(p, &Target::new(p, env)?),
        Deploy::Lock { env, action } => lock(p, &Target::new(p, env)?, *action),
    })
}

/// A deploy environment, resolved and validated: its name, settings, image tags and the name
/// of the release a deploy would start.
pub struct Target<'a> {
    pub name: String,
    pub env: &'a Environment,
    /// `REPOSITORY:ENV`, the moving tag (as the old Makefile tagged).
    pub moving: String,
    /// `REPOSITORY:ENV-<commit>`, this commit's own tag.
    pub release: String,
    /// The name of a new release: `CONTAINER-<time>-<pid>`, unique to each deploy. It names its
    /// container, and the release says it in every response (RS_RELEASE).
    pub container: String,
    /// The user the host's ssh alias logs in as (the deploy user), as `ssh -G` says.
    pub user: String,
}

impl Target<'_> {
    /// Resolves an environment name (argument, else RS_ENV) against the configuration.
    pub fn new<'a>(p: &'a Project, name: &str) -> Result<Target<'a>> {
        let env = p.config.environment(name)?;
        let repo = &p.config.deploy.repository;
        let short: String = p.facts.commit.chars().take(12).collect();
        let release = format!("{name}-{short}");
        check_tag(&release)?;
        let time: String = p.facts.now.chars().filter(char::is_ascii_alphanumeric).collect();
        Ok(Target {
            name: name.to_string(),
            env,
            moving: format!("{repo}:{name}"),
            release: format!("{repo}:{release}"),
            container: format!("{}-{}-{}", env.container, time.to_lowercase(), p.facts.pid),
            user: p.facts.ssh_users.get(&env.host).cloned().unwrap_or_else(|| "DEPLOY_USER".into()),
        })
    }
}

/// Asks the environment's public URL, from its host, which release answers: the response's
/// headers, into `%{serving}` (`host::serving_release` reads them; empty when nothing answers).
fn ask_serving(p: &Project, t: &Target) -> Action {
    let url = &t.env.check_url;
    let curl = ["curl", "--silent", "--max-time", "5", "--dump-header", "-", "--output", "/dev/null", url];
    Action::Capture { cmd: ssh(p, &t.env.host, &curl), var: "serving".into(), optional: true }
}

/// `ssh [-F CONFIG] OPTIONS HOST -- 'ARG' 'ARG'...`: never prompting, and sharing one
/// connection per host where it can (ControlMaster, its socket in $HOME/.ssh).
pub fn ssh<S: AsRef<str>>(p: &Project, host: &str, remote: &[S]) -> Cmd {
    let mut cmd = p.cmd("ssh");
    if !p.config.deploy.ssh_config.is_empty() {
        cmd = cmd.args(&["-F", &p.config.deploy.ssh_config]);
    }
    // A dead connection is noticed within 15 s, not when TCP gives up.
    cmd = cmd.args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5"]);
    if let Some(dir) = &p.facts.ssh_sockets {
        let path = format!("ControlPath={}/rs-%C", dir.display());
        cmd = cmd.args(&["-o", "ControlMaster=auto", "-o", &path, "-o", "ControlPersist=60"]);
    }
    cmd.args(&[host, "--"]).remote(remote)
}

/// The environment's state file `ENV.WHAT` on its host.
fn state(p: &Project, t: &Target, what: &str) -> String {
    format!("{}/{}.{what}", p.config.deploy.state_dir, t.name)
}

/// Prints a state file of the environment when it exists, and nothing otherwise.
fn cat_state(p: &Project, t: &Target, what: &str) -> Cmd {
    let name = format!("{}.{what}", t.name);
    ssh(
        p,
        &t.env.host,
        &["find", &p.config.deploy.state_dir, "-maxdepth", "1", "-name", &name, "-exec", "cat", "{}", "+"],
    )
}

/// The exit status of the lock's `flock` when another holds it.
const TAKEN: i32 = 75;

/// The host answers over ssh without prompts and runs docker.
fn reach_checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.env.host;
    vec![
        Check::Tool {
            program: "ssh".into(),
            version: p.cmd("ssh").arg("-V"),
            min: None,
            fix: "install OpenSSH (Debian/Ubuntu: `sudo apt-get install openssh-client`; Windows: the OpenSSH client feature)".into(),
        },
        Check::Reach {
            host: host.clone(),
            probe: ssh(p, host, &["true"]),
            fix: format!(
                "make `ssh {host} true` work without a prompt: a `Host {host}` block in ~/.ssh/config, \
                 your key loaded (`ssh-add`) and authorized on the host, its host key known (connect once with `ssh {host}`)"
            ),
        },
        Check::Probe {
            what: format!("docker answers on {host} for {}", t.user),
            probe: ssh(p, host, &["docker", "version", "--format", "{{.Server.Version}}"]),
            line: None,
            fix: format!("on {host}, as root: install Docker and let {} use it: `usermod -aG docker {}` (config/nginx/README.md)", t.user, t.user),
        },
    ]
}

/// Everything a deploy of the environment needs on its host, checked before anything runs.
fn deploy_checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.env.host;
    let probe = |what: String, remote: &[&str], fix: String| Check::Probe {
        what,
        probe: ssh(p, host, remote),
        line: None,
        fix,
    };
    let dir = &p.config.deploy.state_dir;
    let registry = registry_of(&p.config.deploy.repository);
    let login =
        if registry == "docker.io" { vec!["docker", "login"] } else { vec!["docker", "login", registry.as_str()] };
    let mut checks = reach_checks(p, t);
    checks.extend([
        probe(
            format!("flock is on {host}"),
            &["flock", "--version"],
            format!("on {host}, as root: `apt-get install util-linux` (flock holds the deploy lock)"),
        ),
        probe(
            format!("{dir} is writable on {host} for {}", t.user),
            &["test", "-w", dir],
            format!("on {host}, as root: `install -d -o {} -m 750 {}`", t.user, sh(dir)),
        ),
        probe(
            format!("{} is logged in to {registry} on {host}", t.user),
            &login,
            format!("on {host}, as {}: `{}` (its docker pulls the releases)", t.user, login.join(" ")),
        ),
        probe(
            format!("{} is readable on {host} for {}", t.env.env_file, t.user),
            &["test", "-r", &t.env.env_file],
            format!(
                "on {host}, as root: `touch {file} && chown {user} {file} && chmod 600 {file}` (keeps what it holds), \
                 then fill in the settings if it is new (config/nginx/README.md)",
                file = sh(&t.env.env_file),
                user = t.user
            ),
        ),
        lock_free(p, t),
    ]);
    checks.extend(match t.env.engine {
        Engine::Host => host::checks(p, t),
        Engine::Swarm => swarm::checks(p, t),
    });
    checks
}

/// The lock is free (a shared flock for an instant, which a deploy's keeper waits out).
fn lock_free(p: &Project, t: &Target) -> Check {
    let lock = state(p, t, "lock");
    Check::Free {
        what: format!("the {} deploy lock on {} is free", t.name, t.env.host),
        probe: ssh(
            p,
            &t.env.host,
            &["flock", "--shared", "--nonblock", "--conflict-exit-code", &TAKEN.to_string(), &lock, "true"],
        ),
        taken: TAKEN,
        holder: ssh(p, &t.env.host, &["cat", &state(p, t, "holder")]),
        fix: format!(
            "wait for that deploy to end (the lock ends with its connection); `cargo xtask lock {} status` shows it",
            t.name
        ),
    }
}

/// The first step of a plan that changes the environment: its lock, held until the plan ends.
fn take_lock(p: &Project, t: &Target, plan: &mut Plan, doing: &str) {
    let f = &p.facts;
    plan.step(
        &format!("Take the {} deploy lock", t.name),
        Action::Hold {
            what: format!("the {} deploy lock on {}", t.name, t.env.host),
            cmd: ssh(
                p,
                &t.env.host,
                &[
                    "flock",
                    "--no-fork",
                    "--wait",
                    "1",
                    "--conflict-exit-code",
                    &TAKEN.to_string(),
                    &state(p, t, "lock"),
                    "tee",
                    &state(p, t, "holder"),
                ],
            )
            .quiet(),
            hello: clean_field(&format!("{}@{}: {doing} as {}, since {}", f.user, f.machine, t.container, f.now)),
            taken: TAKEN,
            holder: ssh(p, &t.env.host, &["cat", &state(p, t, "holder")]),
        },
    )
    .hint(&format!("another deploy of {} runs; `cargo xtask lock {} status` shows it", t.name, t.name));
}

/// A value for a log line or the holder file: one line, no tabs.
fn clean_field(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

/// Appends a line to the environment's release log.
fn append_log(p: &Project, t: &Target, line: String) -> Action {
    let log = state(p, t, "releases.log");
    Action::Run(
        ssh(p, &t.env.host, &["dd", &format!("of={log}"), "oflag=append", "conv=notrunc", "status=none"])
            .stdin(line)
            .quiet(),
    )
}

/// One line of the release log: `time user action release image digest commit result`.
fn log_line(p: &Project, t: &Target, action: &str, image: &str, result: &str) -> String {
    let f = &p.facts;
    let user = clean_field(&format!("{}@{}", f.user, f.machine));
    format!("{}\t{user}\t{action}\t{}\t{image}\t%{{digest}}\t%{{commit}}\t{result}\n", f.now, t.container)
}

/// `deploy ENV` (and the deploy of `staging`/`prod`, which first run `build` under the lock):
/// runs `image` through the engine's health-gated switch.
pub fn deploy(p: &Project, t: &Target, image: &str, build: Option<Plan>) -> Plan {
    let mut plan = p.plan(&match &build {
        Some(_) => t.name.clone(),
        None => format!("deploy {}", t.name),
    });
    plan.checks(deploy_checks(p, t));
    take_lock(p, t, &mut plan, &format!("deploy of {image}"));
    if let Some(build) = build {
        plan.extend(build);
    }
    read_state(p, t, &mut plan);
    switch(p, t, &mut plan, "deploy", image);
    plan
}

/// `rollback ENV [RELEASE]`: one release further back than the live one (or RELEASE: a
/// release, tag, commit or digest from `releases ENV`), by its image digest, through the same
/// health-gated switch.
fn rollback(p: &Project, t: &Target, release: Option<&str>) -> Result<Plan> {
    if let Some(release) = release {
        check_tag(release)?;
    }
    let mut plan = p.plan(&format!("rollback {}", t.name));
    plan.checks(deploy_checks(p, t));
    take_lock(p, t, &mut plan, &format!("rollback to {}", release.unwrap_or("the previous release")));
    read_state(p, t, &mut plan);
    let which = release.map(|r| format!("release {r}")).unwrap_or("one release further back than the live one".into());
    let wanted = release.map(str::to_string);
    plan.step(
        "Choose the release to roll back to",
        Action::Decide(Decision::new(
            &format!("%{{image}} = the image digest of {which}, from %{{log}} and %{{live_digest}}"),
            move |vars| {
                let attempts = parse_log(vars.get("log"));
                let to = rollback_target(&attempts, vars.get("live_digest"), wanted.as_deref())?;
                Ok(Decided::default().set("image", to.digest.clone()).note(format!(
                    "rolling back to {} ({}, commit {})",
                    to.release,
                    to.digest,
                    short(&to.commit)
                )))
            },
        )),
    );
    switch(p, t, &mut plan, "rollback", "%{image}");
    Ok(plan)
}

/// Reads the environment's release log, and what runs on its hosts (the engine's truth).
fn read_state(p: &Project, t: &Target, plan: &mut Plan) {
    plan.step(
        &format!("Read the release log of {}", t.name),
        Action::Capture { cmd: cat_state(p, t, "releases.log"), var: "log".into(), optional: false },
    );
    match t.env.engine {
        Engine::Host => host::read(p, t, plan),
        Engine::Swarm => swarm::read(p, t, plan),
    }
}

/// Pulls `image` on the host and reads its identity from the image itself (never from this
/// checkout): `%{digest}` (REPOSITORY@sha256:...) and `%{commit}` (its label); then the switch.
fn switch(p: &Project, t: &Target, plan: &mut Plan, action: &str, image: &str) {
    let host = &t.env.host;
    let repository = p.config.deploy.repository.clone();
    plan.step(&format!("Pull {image} on {host}"), Action::Run(ssh(p, host, &["docker", "pull", image]).quiet()))
        .step(
            "Read the image's identity",
            Action::Capture {
                cmd: ssh(p, host, &["docker", "image", "inspect", "--format", "{{json .}}", image]),
                var: "inspect".into(),
                optional: false,
            },
        )
        .step(
            "Identify the release by its digest",
            Action::Decide(Decision::new(
                "%{digest}, %{commit} = the image's repository digest and commit label, from %{inspect}",
                move |vars| {
                    let (digest, commit) = identity(vars.get("inspect"), &repository)?;
                    Ok(Decided::default()
                        .set("digest", digest.clone())
                        .set("commit", commit.clone())
                        .note(format!("the release is {digest} (commit {})", short(&commit))))
                },
            )),
        )
        .step(&format!("Log the start of the {action}"), append_log(p, t, log_line(p, t, action, image, "started")))
        .undo_always(vec![append_log(p, t, log_line(p, t, action, image, "failed"))]);
    let record = append_log(p, t, log_line(p, t, action, image, "ok"));
    match t.env.engine {
        Engine::Host => host::switch(p, t, plan, record),
        Engine::Swarm => swarm::switch(p, t, plan, record),
    }
}

/// The image's digest in `repository` and the commit it was built from, from `docker image
/// inspect --format '{{json .}}'`.
pub fn identity(inspect: &str, repository: &str) -> Result<(String, String)> {
    let image: serde_json::Value =
        serde_json::from_str(inspect).map_err(|e| anyhow::anyhow!("cannot read `docker image inspect`: {e}"))?;
    let digests: Vec<&str> = image["RepoDigests"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
    let Some(digest) = digests.iter().find(|d| d.split('@').next() == Some(repository)) else {
        bail!(
            "the image has no digest in {repository} ({}): it was not pulled from that repository",
            if digests.is_empty() { "none at all".to_string() } else { digests.join(", ") }
        );
    };
    let commit = image["Config"]["Labels"][COMMIT_LABEL].as_str().unwrap_or("unknown").to_string();
    Ok((digest.to_string(), commit))
}

/// The label the deployable image carries its commit in (`cargo xtask image` sets it).
pub const COMMIT_LABEL: &str = "org.recordsponge.commit";

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The release history from the host's log, and what runs now.
fn releases(p: &Project, t: &Target) -> Plan {
    let mut plan = p.plan(&format!("releases {}", t.name));
    plan.checks(reach_checks(p, t));
    read_state(p, t, &mut plan);
    plan.step(
        "Tabulate them",
        Action::Decide(Decision::new("%{report} = the history in %{log}, and what serves now", |vars| {
            let report = format!("{}\n{}", history_table(&parse_log(vars.get("log"))), vars.get("serving_note"));
            Ok(Decided::default().set("report", report))
        })),
    )
    .step("Show them", Action::Say("%{report}".into()));
    plan
}

/// `lock ENV status|release`.
fn lock(p: &Project, t: &Target, action: LockAction) -> Plan {
    let host = &t.env.host;
    let name = if action == LockAction::Status { "status" } else { "release" };
    let mut plan = p.plan(&format!("lock {} {name}", t.name));
    plan.checks(reach_checks(p, t));
    let lock = state(p, t, "lock");
    match action {
        LockAction::Status => {
            plan.step(
                "Read the lock",
                Action::Capture {
                    cmd: ssh(
                        p,
                        host,
                        &[
                            "flock",
                            "--shared",
                            "--nonblock",
                            "--conflict-exit-code",
                            &TAKEN.to_string(),
                            &lock,
                            "echo",
                            "free",
                        ],
                    ),
                    var: "free".into(),
                    optional: true,
                },
            )
            .step(
                "Read its holder",
                Action::Capture { cmd: cat_state(p, t, "holder"), var: "holder".into(), optional: false },
            )
            .step(
                "Read the release log",
                Action::Capture { cmd: cat_state(p, t, "releases.log"), var: "log".into(), optional: false },
            )
            .step(
                "Describe it",
                Action::Decide(Decision::new("%{report} = the lock's state, from %{free}, %{holder} and %{log}", {
                    let (env, host) = (t.name.clone(), host.clone());
                    move |vars| {
                        let text = lock_status(
                            &env,
                            &host,
                            vars.get("free") == "free",
                            vars.get("holder"),
                            &parse_log(vars.get("log")),
                        );
                        Ok(Decided::default().set("report", text))
                    }
                })),
            )
            .step("Show it", Action::Say("%{report}".into()));
        }
        LockAction::Release => {
            plan.check(Check::Confirm {
                prompt: format!("end the process that holds the {} deploy lock on {host} (its deploy stops)", t.name),
            })
            .step(
                "Find the lock's keeper",
                Action::Capture {
                    cmd: ssh(p, host, &["lslocks", "--noheadings", "--raw", "--output", "PID,PATH"]),
                    var: "locks".into(),
                    optional: false,
                },
            )
            .step(
                "Choose what to end",
                Action::Decide(Decision::new(&format!("%{{pids}} = the processes holding {lock}, from %{{locks}}"), {
                    let lock = lock.clone();
                    move |vars| {
                        let pids = lock_holders(vars.get("locks"), &lock);
                        let note = if pids.is_empty() {
                            "the lock is free: nothing to end".to_string()
                        } else {
                            format!("its keeper: process {}", pids.join(", "))
                        };
                        Ok(Decided::default().set("pids", pids.join("\n")).note(note))
                    }
                })),
            )
            .step("End it", Action::ForEach { var: "pids".into(), each: ssh(p, host, &["kill", "%{line}"]) });
        }
    }
    plan
}

/// The processes that hold `lock`, from `lslocks --noheadings --raw --output PID,PATH`.
pub fn lock_holders(lslocks: &str, lock: &str) -> Vec<String> {
    lslocks
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(_, path)| *path == lock)
        .map(|(pid, _)| pid.to_string())
        .collect()
}

/// What `lock ENV status` says: held (by whom) or free, and whether the last holder's attempt
/// ended without finishing.
pub fn lock_status(env: &str, host: &str, free: bool, holder: &str, attempts: &[Attempt]) -> String {
    let holder = holder.trim();
    if !free {
        let who = if holder.is_empty() { "someone (not recorded)" } else { holder };
        return format!(
            "the {env} deploy lock on {host} is held by {who}; it ends when that command ends or loses its connection"
        );
    }
    let mut text = format!("the {env} deploy lock on {host} is free");
    if !holder.is_empty() {
        text.push_str(&format!("; it was last held by {holder}"));
    }
    if let Some(last) = attempts.last().filter(|a| a.result == "started") {
        text.push_str(&format!(
            "; the last {} ({}) ended without finishing: its process or connection is gone. \
             The next deploy reads what runs and carries on from there",
            last.action, last.release
        ));
    }
    text
}

/// One attempt in the release log: the line of its start, with the result of its end
/// (`started` when it never ended: interrupted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub time: String,
    pub user: String,
    pub action: String,
    pub release: String,
    pub image: String,
    pub digest: String,
    pub commit: String,
    pub result: String,
}

/// The release log's attempts in order; lines of one attempt (by release) are folded into one.
pub fn parse_log(log: &str) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 {
            continue;
        }
        let attempt = Attempt {
            time: f[0].into(),
            user: f[1].into(),
            action: f[2].into(),
            release: f[3].into(),
            image: f[4].into(),
            digest: f[5].into(),
            commit: f[6].into(),
            result: f[7].into(),
        };
        match attempts.iter_mut().rev().find(|a| a.release == attempt.release) {
            Some(known) => known.result = attempt.result,
            None => attempts.push(attempt),
        }
    }
    attempts
}

/// The releases that served, oldest first, as rollbacks walk them: a deploy puts its release on
/// top (unless the same build is already there); a rollback to a release on the stack removes
/// what is above it (the releases it left), a rollback to one that is not puts it on top.
pub fn release_stack(attempts: &[Attempt]) -> Vec<&Attempt> {
    let mut stack: Vec<&Attempt> = Vec::new();
    for a in attempts.iter().filter(|a| a.result == "ok") {
        match stack.iter().rposition(|s| s.digest == a.digest) {
            Some(i) if a.action == "rollback" => stack.truncate(i + 1),
            Some(i) if i + 1 == stack.len() => {}
            _ => stack.push(a),
        }
    }
    stack
}

/// The release a rollback goes to: `wanted` (a release, tag, commit prefix or digest prefix of
/// a successful attempt) when given, else the one below the live release (by digest: what
/// really serves) in the stack of releases; a live release the log does not know is above
/// them all.
pub fn rollback_target<'a>(attempts: &'a [Attempt], live: &str, wanted: Option<&str>) -> Result<&'a Attempt> {
    if let Some(w) = wanted {
        let found = attempts.iter().rev().filter(|a| a.result == "ok").find(|a| {
            a.release == w
                || a.image.rsplit(':').next() == Some(w)
                || (w.len() >= 4
                    && (a.commit.starts_with(w) || a.digest.rsplit(':').next().is_some_and(|d| d.starts_with(w))))
        });
        return match found {
            Some(a) if a.digest == live => bail!("{w} is the live release already ({})", a.digest),
            Some(a) => Ok(a),
            None => bail!("no successful release `{w}` in the release log (`cargo xtask releases ENV` lists them)"),
        };
    }
    let stack = release_stack(attempts);
    let below = match stack.iter().rposition(|a| a.digest == live) {
        Some(i) => i.checked_sub(1).map(|j| stack[j]),
        None => stack.last().copied(),
    };
    match below {
        Some(a) => Ok(a),
        None if stack.is_empty() => bail!("the release log has no successful release to roll back to"),
        None => bail!("the live release is the oldest one in the release log: there is nothing further back"),
    }
}

/// The release history as a table, newest last.
pub fn history_table(attempts: &[Attempt]) -> String {
    let mut out =
        format!("{:<21} {:<24} {:<9} {:<44} {:<13} {}\n", "time", "who", "action", "release", "commit", "result");
    for a in attempts {
        let result = if a.result == "started" { "interrupted" } else { &a.result };
        out.push_str(&format!(
            "{:<21} {:<24} {:<9} {:<44} {:<13} {result}\n",
            a.time,
            a.user,
            a.action,
            a.release,
            short(&a.commit)
        ));
    }
    if attempts.is_empty() {
        out.push_str("(no release yet)\n");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32, action: &str, digest: &str, result: &str) -> String {
        format!("2026-11-0{n}T10:00:00Z\tana@lap\t{action}\trs-staging-{n}\trs:staging-{digest}\trs@sha256:{digest}\t{digest}000\t{result}\n")
    }

    /// A log of attempts: (action, digest, result) each, started then ended.
    fn log(attempts: &[(&str, &str, &str)]) -> String {
        let mut text = String::new();
        for (n, (action, digest, result)) in attempts.iter().enumerate() {
            text.push_str(&line(n as u32 + 1, action, digest, "started"));
            if *result != "started" {
                text.push_str(&line(n as u32 + 1, action, digest, result));
            }
        }
        text
    }

    fn target(text: &str, live: &str, wanted: Option<&str>) -> Result<String> {
        let attempts = parse_log(text);
        rollback_target(&attempts, &format!("rs@sha256:{live}"), wanted).map(|a| a.digest.clone())
    }

    #[test]
    fn an_attempt_is_one_entry_with_the_result_of_its_end() {
        let attempts =
            parse_log(&log(&[("deploy", "aaa", "ok"), ("deploy", "bbb", "failed"), ("deploy", "ccc", "started")]));
        let results: Vec<&str> = attempts.iter().map(|a| a.result.as_str()).collect();
        assert_eq!(results, ["ok", "failed", "started"]);
        assert_eq!(attempts[0].digest, "rs@sha256:aaa");
        assert!(parse_log("a line from another format\n").is_empty());
    }

    #[test]
    fn rollback_goes_one_release_further_back_each_time_skipping_failures() {
        let mut text = log(&[
            ("deploy", "aaa", "ok"),
            ("deploy", "bbb", "ok"),
            ("deploy", "ccc", "failed"),
            ("deploy", "ddd", "ok"),
        ]);
        assert_eq!(target(&text, "ddd", None).unwrap(), "rs@sha256:bbb");
        text.push_str(&line(8, "rollback", "bbb", "ok"));
        // The second rollback goes further back, not forward to the release the first one left.
        assert_eq!(target(&text, "bbb", None).unwrap(), "rs@sha256:aaa");
        text.push_str(&line(9, "rollback", "aaa", "ok"));
        assert!(target(&text, "aaa", None).unwrap_err().to_string().contains("nothing further back"));
    }

    #[test]
    fn redeploys_of_one_build_are_one_release_and_a_deploy_after_rollbacks_goes_on_top() {
        let text = log(&[
            ("deploy", "aaa", "ok"),
            ("deploy", "bbb", "ok"),
            ("deploy", "bbb", "ok"),
            ("rollback", "aaa", "ok"),
            ("deploy", "ccc", "ok"),
        ]);
        assert_eq!(target(&text, "ccc", None).unwrap(), "rs@sha256:aaa");
        let attempts = parse_log(&text);
        let stack: Vec<&str> = release_stack(&attempts).iter().map(|a| a.digest.as_str()).collect();
        assert_eq!(stack, ["rs@sha256:aaa", "rs@sha256:ccc"]);
    }

    #[test]
    fn the_live_release_is_what_serves_not_what_the_log_says_last() {
        // The last deploy switched nginx but was cut off before it logged the end.
        let text = log(&[("deploy", "aaa", "ok"), ("deploy", "bbb", "ok"), ("deploy", "ccc", "started")]);
        assert_eq!(target(&text, "bbb", None).unwrap(), "rs@sha256:aaa");
        // Something the log does not know serves (e.g. a release started by hand): back to the last known.
        assert_eq!(target(&text, "zzz", None).unwrap(), "rs@sha256:bbb");
    }

    #[test]
    fn a_named_release_is_found_by_name_tag_commit_or_digest() {
        let text = log(&[("deploy", "aaa1", "ok"), ("deploy", "bbb2", "ok"), ("deploy", "ccc3", "failed")]);
        assert_eq!(target(&text, "bbb2", Some("rs-staging-1")).unwrap(), "rs@sha256:aaa1");
        assert_eq!(target(&text, "bbb2", Some("staging-aaa1")).unwrap(), "rs@sha256:aaa1");
        assert_eq!(target(&text, "bbb2", Some("aaa1000")).unwrap(), "rs@sha256:aaa1");
        assert!(target(&text, "bbb2", Some("ccc3000"))
            .unwrap_err()
            .to_string()
            .contains("no successful release `ccc3000`"));
        assert!(target(&text, "bbb2", Some("bbb2000"))
            .unwrap_err()
            .to_string()
            .contains("is the live release already"));
        assert!(target("", "aaa", None).unwrap_err().to_string().contains("no successful release"));
    }

    #[test]
    fn an_image_is_identified_by_its_digest_in_the_repository_and_its_commit_label() {
        let inspect = r#"{"Id":"sha256:1","RepoDigests":["other/x@sha256:9","rs/app@sha256:abc"],"Config":{"Labels":{"org.recordsponge.commit":"0123abcd"}}}"#;
        assert_eq!(identity(inspect, "rs/app").unwrap(), ("rs/app@sha256:abc".into(), "0123abcd".into()));
        let unlabelled = r#"{"RepoDigests":["rs/app@sha256:abc"],"Config":{"Labels":null}}"#;
        assert_eq!(identity(unlabelled, "rs/app").unwrap().1, "unknown");
        let local = r#"{"RepoDigests":[],"Config":{}}"#;
        assert!(identity(local, "rs/app").unwrap_err().to_string().contains("no digest in rs/app (none at all)"));
    }

    #[test]
    fn the_lock_says_who_holds_it_and_what_an_interrupted_attempt_left() {
        let held = lock_status("staging", "h", false, "ana@lap: deploy of x as r, since t\n", &[]);
        assert!(
            held.starts_with("the staging deploy lock on h is held by ana@lap: deploy of x as r, since t;"),
            "{held}"
        );
        let attempts = parse_log(&log(&[("deploy", "aaa", "started")]));
        let free = lock_status("staging", "h", true, "ana@lap: deploy", &attempts);
        assert!(
            free.contains(
                "is free; it was last held by ana@lap: deploy; the last deploy (rs-staging-1) ended without finishing"
            ),
            "{free}"
        );
        assert_eq!(lock_status("staging", "h", true, "", &[]), "the staging deploy lock on h is free");
    }

    #[test]
    fn the_keeper_of_a_lock_is_found_by_its_path() {
        let lslocks =
            "123 /var/lib/recordsponge/staging.lock\n456 /var/lib/recordsponge/prod.lock\n789 /run/other.lock\n";
        assert_eq!(lock_holders(lslocks, "/var/lib/recordsponge/staging.lock"), ["123"]);
        assert!(lock_holders("", "/x").is_empty());
    }
}
