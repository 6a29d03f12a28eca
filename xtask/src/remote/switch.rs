//! What a deploy and a rollback share: the checks of the whole chain, the lock, reading what
//! runs (the release log and the engine's truth), then the switch: the image pulled on the
//! host and identified by its digest, the attempt logged, and the engine's health-gated switch.

use super::docker;
use super::log;
use super::target::{reach_checks, short, Target};
use super::{db, host, lock, nginx, swarm};
use crate::checks::{registry_of, Check, Failure, Judge};
use crate::cmd::sh;
use crate::config::Engine;
use crate::plan::{Action, Decided, Decision, Plan};
use crate::project::Project;

/// Everything a deploy of the environment needs on its host, checked before anything runs.
pub fn checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.host;
    let probe =
        |what: String, remote: &[&str], fix: String| Check::Probe { what, probe: t.ssh(p, remote), line: None, fix };
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
            format!(
                "on {host}, as root: `install -d -o root -g recordsponge -m 1770 {}` and `usermod -aG recordsponge {}` \
                 (config/nginx/setup-host.sh does both)",
                sh(dir),
                t.user
            ),
        ),
        probe(
            format!("{} is logged in to {registry} on {host}", t.user),
            &login,
            format!("on {host}, as {}: `{}` (its docker pulls the releases)", t.user, login.join(" ")),
        ),
        env_file_readable(p, t),
        env_file(p, t),
        lock::free(p, t),
    ]);
    checks.extend(match t.env.engine {
        Engine::Host => host::checks(p, t),
        Engine::Swarm => swarm::checks(p, t),
    });
    if t.env.backup_before_deploy {
        checks.extend(db::checks(p, t));
    }
    checks
}

/// The database backed up before the switch, when the environment asks for it: a backup that
/// fails ends the deploy before anything changes.
pub fn backup_first(p: &Project, t: &Target, plan: &mut Plan) {
    if t.env.backup_before_deploy {
        db::backup(p, t, plan, None);
    }
}

/// The env file is there for the deploy user (releases, one-off containers and backups read it).
pub fn env_file_readable(p: &Project, t: &Target) -> Check {
    Check::Probe {
        what: format!("{} is readable on {} for {}", t.env.env_file, t.host, t.user),
        probe: t.ssh(p, &["test", "-r", &t.env.env_file]),
        line: None,
        fix: format!(
            "on {host}, as root: `touch {file} && chown {user} {file} && chmod 600 {file}` (keeps what it holds), \
             then fill in the settings if it is new (config/nginx/README.md)",
            host = t.host,
            file = sh(&t.env.env_file),
            user = t.user
        ),
    }
}

/// The env file is one docker reads, and it sets the settings the app needs
/// (`deploy.env_keys`): judged by the names of its settings only (their values stay on the host).
fn env_file(p: &Project, t: &Target) -> Check {
    let (host, file) = (&t.host, &t.env.env_file);
    let required = p.config.deploy.env_keys.clone();
    Check::Judged {
        what: format!("{file} on {host} is an env file docker reads, with {}", required.join(", ")),
        probes: vec![t.ssh(p, &docker::env_file_names(file))],
        judge: Judge::new("the env file's names, as docker reads them", move |outputs| {
            docker::env_file_problems(&outputs[0], &required)
        }),
        fix: format!(
            "on {host}, as root: edit {file}: a line `NAME=value` for each setting (no `export`, no spaces before \
             `=`), among them {} (config/nginx/README.md)",
            p.config.deploy.env_keys.join(", ")
        ),
    }
}

/// What `doctor ENV` checks of what runs: its database logs in, the environment serves (the
/// engine's judge of what answers, what runs and what the release log says), and a Swarm's
/// nodes are all Ready.
pub fn runs(p: &Project, t: &Target) -> Vec<Check> {
    let mut checks = vec![db::logs_in(p, t)];
    match t.env.engine {
        Engine::Host => checks.push(host::serves(p, t)),
        Engine::Swarm => checks.extend([swarm::serves(p, t), swarm::nodes_ready(p, t)]),
    }
    if t.env.engine == Engine::Host && t.env.check_url.starts_with("https://") {
        checks.push(certificate(p, t));
    }
    checks
}

/// The certificate nginx serves for the environment's domain has `CERTIFICATE_DAYS` left.
fn certificate(p: &Project, t: &Target) -> Check {
    let domain = t.env.domain();
    Check::Judged {
        what: format!("the certificate nginx serves on {} for {domain} has {} days left or more", t.host, nginx::CERTIFICATE_DAYS),
        probes: vec![t.ssh(p, &nginx::certificate_end(&domain))],
        judge: Judge::noting("the days between the certificate's end and now", |out| {
            nginx::certificate_days(&out[0]).map(|days| format!("{days} days left"))
        }),
        fix: format!(
            "on {}, as root: `certbot renew` (its log says why the automatic renewal failed), or `cargo xtask setup {}`",
            t.host, t.name
        ),
    }
}

/// Why the environment is not set up on its host yet (its env file, the first thing a host's
/// setup makes for it, is not there), and how to set it up; None when it is, or when the host
/// cannot tell (its own checks then say why): `doctor` reports such an environment once instead
/// of failing its checks.
pub fn not_set_up(p: &Project, t: &Target) -> Option<Failure> {
    let status = crate::process::capture(&t.ssh(p, &["test", "-e", &t.env.env_file])).ok()?.status;
    (status.code() == Some(1)).then(|| Failure {
        problem: format!(
            "{}: not set up on {}: there is no {}; its commands are not checked",
            t.name, t.host, t.env.env_file
        ),
        fix: format!("`cargo xtask setup {}` (as the host's admin over ssh; by hand: config/nginx/README.md)", t.name),
    })
}

/// A deploy of `image` (and, for `staging`/`prod`, first `build`, under the lock) through the
/// engine's health-gated switch. A build's image is pulled on the host by the digest this
/// machine pushed, never by its tag, which anyone with a login to the registry could move.
pub fn deploy(p: &Project, t: &Target, image: &str, build: Option<Plan>) -> Plan {
    let mut plan = p.plan();
    plan.checks(checks(p, t));
    lock::take(p, t, &mut plan, &format!("deploy of {image}"));
    let pull = match build {
        Some(build) => {
            plan.extend(build);
            pushed_digest(p, image, &mut plan);
            "%{pushed}"
        }
        None => image,
    };
    read_state(p, t, &mut plan);
    backup_first(p, t, &mut plan);
    switch(p, t, &mut plan, "deploy", image, pull);
    plan
}

/// `%{pushed}`: the digest `image` was pushed with (`REPOSITORY@sha256:...`), from this
/// machine's engine.
fn pushed_digest(p: &Project, image: &str, plan: &mut Plan) {
    let repository = p.config.deploy.repository.clone();
    plan.step(
        &format!("Read the digest {image} was pushed with"),
        Action::Capture {
            cmd: p.cmd("docker").args(&docker::inspect_image(image)[1..]),
            var: "pushed_inspect".into(),
            optional: false,
        },
    )
    .step(
        "Name the release by that digest",
        Action::Decide(Decision::new(
            "%{pushed} = the digest in the deploy repository, from %{pushed_inspect}",
            move |vars| {
                let (digest, _) = docker::identity(vars.get("pushed_inspect"), &repository)?;
                Ok(Decided::default().set("pushed", digest))
            },
        )),
    );
}

/// Reads the environment's release log, and what runs on its hosts (the engine's truth).
pub fn read_state(p: &Project, t: &Target, plan: &mut Plan) {
    plan.step(
        &format!("Read the release log of {}", t.name),
        Action::Capture { cmd: t.cat_state(p, "releases.log"), var: "log".into(), optional: false },
    );
    match t.env.engine {
        Engine::Host => host::read(p, t, plan),
        Engine::Swarm => swarm::read(p, t, plan),
    }
}

/// Pulls `pull` (the image, `image`, or its digest) on the host and reads its identity from the
/// image itself (never from this checkout): `%{digest}` (REPOSITORY@sha256:...) and `%{commit}`
/// (its label); logs the start of the `action` (and its failure, if it fails); then the engine's
/// switch, which logs its success.
pub fn switch(p: &Project, t: &Target, plan: &mut Plan, action: &str, image: &str, pull: &str) {
    let repository = p.config.deploy.repository.clone();
    plan.step(&format!("Pull {pull} on {}", t.host), Action::Run(t.ssh(p, &docker::pull(pull)).quiet()))
        .step(
            "Read the image's identity",
            Action::Capture { cmd: t.ssh(p, &docker::inspect_image(pull)), var: "inspect".into(), optional: false },
        )
        .step(
            "Identify the release by its digest",
            Action::Decide(Decision::new(
                "%{digest}, %{commit} = the image's repository digest and commit label, from %{inspect}",
                move |vars| {
                    let (digest, commit) = docker::identity(vars.get("inspect"), &repository)?;
                    Ok(Decided::default()
                        .set("digest", digest.clone())
                        .set("commit", commit.clone())
                        .note(format!("the release is {digest} (commit {})", short(&commit))))
                },
            )),
        )
        .step(&format!("Log the start of the {action}"), log::append(p, t, log::line(p, t, action, image, "started")))
        .undo_always(match t.env.engine {
            Engine::Host => vec![log::append(p, t, log::line(p, t, action, image, "failed"))],
            Engine::Swarm => swarm::failed_outcome(p, t, log::line(p, t, action, image, "%{outcome}")),
        });
    let record = log::append(p, t, log::line(p, t, action, image, "ok"));
    match t.env.engine {
        Engine::Host => host::switch(p, t, plan, record),
        Engine::Swarm => swarm::switch(p, t, plan, record),
    }
}
