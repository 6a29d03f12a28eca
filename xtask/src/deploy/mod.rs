//! The deploy environments' hosts, over OpenSSH: zero-downtime deploys behind nginx, rollback,
//! the release log and the deploy lock. Every remote argument is quoted one by one (see quote.rs); every ssh
//! shares one multiplexed connection (one handshake per deploy); the user's ~/.ssh/config applies.
//!
//! On the host, in `state_dir`: `ENV.lock/` (atomic mkdir; `holder` says who), `ENV.live`
//! ("PORT CONTAINER" of the release nginx proxies to) and `ENV.releases.log` (one line a deploy or
//! rollback: time, user, action, image, commit, result).

use std::time::Duration;

use anyhow::{bail, Result};

use crate::checks::Check;
use crate::cli::{Deploy, LockAction};
use crate::cmd::{sh, Cmd};
use crate::config::{check_tag, Environment};
use crate::plan::{Action, Decision, Plan};
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
            deploy(p, &t, &image)
        }
        Deploy::Rollback { env, release } => rollback(p, &Target::new(p, env)?, release.as_deref())?,
        Deploy::Releases { env } => releases(p, &Target::new(p, env)?),
        Deploy::Lock { env, action } => lock(p, &Target::new(p, env)?, *action),
    })
}

/// A deploy environment, resolved and validated: its name, settings and image tags.
pub struct Target<'a> {
    pub name: String,
    pub env: &'a Environment,
    /// `REPOSITORY:ENV`, the moving tag (as the old Makefile tagged).
    pub moving: String,
    /// `REPOSITORY:ENV-<commit>`, this release's own tag.
    pub release: String,
    /// The release's containers on the host: `CONTAINER-<time>` (unique per deploy).
    pub container: String,
}

impl Target<'_> {
    /// Resolves an environment name (argument, else RS_ENV) against the configuration.
    pub fn new<'a>(p: &'a Project, name: &str) -> Result<Target<'a>> {
        let env = p.config.environment(name)?;
        let repo = &p.config.deploy.repository;
        let short: String = p.facts.commit.chars().take(12).collect();
        let release = format!("{name}-{short}");
        check_tag(&release)?;
        Ok(Target {
            name: name.to_string(),
            env,
            moving: format!("{repo}:{name}"),
            release: format!("{repo}:{release}"),
            container: format!("{}-{}", env.container, p.facts.now.replace([':', '-'], "").to_lowercase()),
        })
    }
}

/// `ssh [-F CONFIG] OPTIONS HOST -- 'ARG' 'ARG'...`: never prompting, and sharing one
/// connection per host where it can (ControlMaster, its socket in ~/.ssh).
pub fn ssh(p: &Project, host: &str, remote: &[&str]) -> Cmd {
    let mut cmd = p.cmd("ssh");
    if !p.config.deploy.ssh_config.is_empty() {
        cmd = cmd.args(&["-F", &p.config.deploy.ssh_config]);
    }
    cmd = cmd.args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
    if p.facts.ssh_multiplex {
        cmd = cmd.args(&["-o", "ControlMaster=auto", "-o", "ControlPath=~/.ssh/rs-%C", "-o", "ControlPersist=60"]);
    }
    cmd.args(&[host, "--"]).remote(remote)
}

/// The path of the environment's state file `ENV.WHAT` on the host.
fn state(p: &Project, t: &Target, what: &str) -> String {
    format!("{}/{}.{what}", p.config.deploy.state_dir, t.name)
}

/// Prints the state file `path` (under `state_dir`) when it exists, and nothing otherwise.
fn cat_state(p: &Project, t: &Target, path: &str) -> Cmd {
    let dir = &p.config.deploy.state_dir;
    ssh(p, &t.env.host, &["find", dir, "-maxdepth", "2", "-path", path, "-exec", "cat", "{}", "+"])
}

/// The host answers over ssh without prompts, runs docker and curl, can read the env file,
/// write its state and the nginx upstream file, and the lock is free.
pub fn remote_checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.env.host;
    let probe = |what: String, remote: &[&str], fix: String| Check::Probe {
        what,
        probe: ssh(p, host, remote),
        line: None,
        fix,
    };
    let state_dir = &p.config.deploy.state_dir;
    vec![
            Check::Tool {
                program: "ssh".into(),
                version: p.cmd("ssh").arg("-V"),
                min: None,
                fix: "install OpenSSH (Debian/Ubuntu: `sudo apt-get install openssh-client`; Windows: the OpenSSH client feature)".into(),
            },
            probe(
                format!("ssh to {host} works without prompts"),
                &["true"],
                format!(
                    "make `ssh {host} true` work without a prompt: a `Host {host}` block in ~/.ssh/config, \
                     your key loaded (`ssh-add`) and authorized on the host, its host key known (connect once with `ssh {host}`)"
                ),
            ),
            probe(
                format!("docker and curl answer on {host}"),
                &["docker", "version", "--format", "{{.Server.Version}}"],
                format!("on {host}: install Docker and let the ssh user use it (`sudo usermod -aG docker USER`); see config/nginx/README.md"),
            ),
            probe(format!("curl is on {host}"), &["curl", "--version"], format!("on {host}: `sudo apt-get install curl`")),
            probe(
                format!("{} is readable on {host}", t.env.env_file),
                &["test", "-r", &t.env.env_file],
                format!(
                    "create it on {host} with the environment's settings (see config/nginx/README.md), readable by the ssh user: \
                     ssh {host} sudo install -m 600 /dev/null {}",
                    sh(&t.env.env_file)
                ),
            ),
            probe(
                format!("{state_dir} is writable on {host}"),
                &["test", "-w", state_dir],
                format!("ssh {host} sudo install -d -o \"$USER\" {}", sh(state_dir)),
            ),
            probe(
                format!("{} is writable on {host}", t.env.upstream_file),
                &["test", "-w", &t.env.upstream_file],
                format!("set up nginx on {host} as config/nginx/README.md says (the deploy rewrites that file)"),
            ),
            Check::Empty {
                what: format!("the {} deploy lock on {host} is free", t.name),
                probe: cat_state(p, t, &format!("{}/holder", state(p, t, "lock"))),
                fix: format!(
                    "wait for that deploy to end; if it died, release the lock: cargo xtask lock {} release",
                    t.name
                ),
            },
        ]
}

/// `deploy ENV`: runs `image` on the host through the health-gated switch.
pub fn deploy(p: &Project, t: &Target, image: &str) -> Plan {
    let mut plan = p.plan(&format!("deploy {}", t.name));
    plan.checks(remote_checks(p, t));
    switch(p, t, &mut plan, "deploy", image, &p.facts.commit, None);
    plan
}

/// `rollback ENV [RELEASE]`: the release before the live one (or RELEASE: a tag or commit
/// from `releases ENV`), through the same health-gated switch.
fn rollback(p: &Project, t: &Target, release: Option<&str>) -> Result<Plan> {
    if let Some(release) = release {
        check_tag(release)?;
    }
    let mut plan = p.plan(&format!("rollback {}", t.name));
    plan.checks(remote_checks(p, t));
    switch(p, t, &mut plan, "rollback", "%{image}", "%{commit}", Some(release.map(str::to_string)));
    Ok(plan)
}

/// The release history from the host's log.
fn releases(p: &Project, t: &Target) -> Plan {
    let mut plan = p.plan(&format!("releases {}", t.name));
    plan.checks(remote_checks(p, t).into_iter().take(2))
        .step(
            &format!("Read the release log of {}", t.name),
            Action::Capture { cmd: cat_state(p, t, &state(p, t, "releases.log")), var: "log".into() },
        )
        .step("Show it", Action::Say(format!("{LOG_HEADER}\n%{{log}}")));
    plan
}

/// `lock ENV status|release`.
fn lock(p: &Project, t: &Target, action: LockAction) -> Plan {
    let host = &t.env.host;
    let lock = state(p, t, "lock");
    let name = if action == LockAction::Status { "status" } else { "release" };
    let mut plan = p.plan(&format!("lock {} {name}", t.name));
    plan.checks(remote_checks(p, t).into_iter().take(2));
    match action {
        LockAction::Status => plan
            .step(
                "Read the lock",
                Action::Capture { cmd: cat_state(p, t, &format!("{lock}/holder")), var: "holder".into() },
            )
            .step("Show it", Action::Say(format!("{} lock on {host} (empty: free): %{{holder}}", t.name))),
        LockAction::Release => plan
            .check(Check::Confirm { prompt: format!("break the {} deploy lock on {host}", t.name) })
            .step("Release the lock", Action::Run(ssh(p, host, &["rm", "-rf", &lock]))),
    };
    plan
}

/// The health-gated switch, shared by deploy and rollback: lock; pull; start the release
/// beside the live one on the other port; wait for its health; point nginx at it (graceful
/// reload); check the public endpoint serves `commit`; stop the old one; prune; log; unlock.
/// Any failure before the switch is settled removes the new container and leaves the old
/// one serving. `rollback` is Some(release) for rollbacks (None: the previous release).
fn switch(
    p: &Project,
    t: &Target,
    plan: &mut Plan,
    action: &str,
    image: &str,
    commit: &str,
    rollback: Option<Option<String>>,
) {
    let (e, d) = (t.env, &p.config.deploy);
    let host = &e.host;
    let ssh = |remote: &[&str]| ssh(p, host, remote);
    let (lock, live, log) = (state(p, t, "lock"), state(p, t, "live"), state(p, t, "releases.log"));
    let new = &t.container;
    let user = &p.facts.user;
    let log_line = |result: &str| format!("{}\t{user}\t{action}\t{image}\t{commit}\t{result}\n", p.facts.now);
    let append = |text: String| {
        Action::Run(ssh(&["dd", &format!("of={log}"), "oflag=append", "conv=notrunc", "status=none"]).stdin(text))
    };
    let write = |path: &str, text: &str| ssh(&["dd", &format!("of={path}"), "status=none"]).stdin(text);
    let logs = ssh(&["docker", "logs", "--tail", "40", new]);
    let nginx = |argv: &[String]| ssh(&argv.iter().map(String::as_str).collect::<Vec<_>>());

    if let Some(release) = rollback {
        // Picked before the lock is taken, so that the lock and the log can name the release.
        plan.step("Read the release log", Action::Capture { cmd: cat_state(p, t, &log), var: "log".into() })
            .step("Pick the release to roll back to", Action::Decide(pick_release_decision(release)));
    }
    plan.step(&format!("Take the {} deploy lock", t.name), Action::Run(ssh(&["mkdir", &lock])))
        .hint(&format!("another deploy holds it: `cargo xtask lock {} status` says who", t.name))
        .undo_always(vec![append(log_line("failed")), Action::Run(ssh(&["rm", "-rf", &lock]))])
        .step(
            "Record who holds it",
            Action::Run(write(
                &format!("{lock}/holder"),
                &format!("{user}, {action} of {commit}, since {}", p.facts.now),
            )),
        );
    let port_spec = "127.0.0.1:%{new_port}:5000".to_string();
    plan.step(&format!("Pull {image} on {host}"), Action::Run(ssh(&["docker", "pull", image])))
        .step("Read the live release", Action::Capture { cmd: cat_state(p, t, &live), var: "live".into() })
        .step("Pick the port of the new release", Action::Decide(pick_port_decision(e.ports)))
        .step(
            &format!("Create {new} beside the live release"),
            Action::Run(ssh(&[
                "docker",
                "create",
                "--name",
                new,
                "--label",
                &format!("org.recordsponge.env={}", t.name),
                "--label",
                &format!("org.recordsponge.commit={commit}"),
                "--env-file",
                &e.env_file,
                "--publish",
                &port_spec,
                "--restart",
                "unless-stopped",
                "--log-driver",
                "syslog",
                "--log-opt",
                &format!("syslog-facility={}", e.syslog_facility),
                "--log-opt",
                &format!("tag={}", e.container),
                image,
            ])),
        )
        .undo(vec![Action::Run(logs.clone()), Action::Run(ssh(&["docker", "rm", "--force", new]))])
        .step(&format!("Start {new}"), Action::Run(ssh(&["docker", "start", new])))
        .step(
            &format!("Wait for {new} to be healthy"),
            Action::WaitCmd {
                probe: ssh(&[
                    "curl",
                    "--silent",
                    "--show-error",
                    "--fail",
                    "--max-time",
                    "2",
                    "--output",
                    "/dev/null",
                    &format!("http://127.0.0.1:%{{new_port}}{}", e.health_path),
                ]),
                expect: None,
                timeout: Duration::from_secs(e.health_timeout),
                service: new.clone(),
                logs: logs.clone(),
            },
        )
        .step(
            "Save the nginx upstream",
            Action::Capture { cmd: ssh(&["cat", &e.upstream_file]), var: "old_upstream".into() },
        )
        .step(
            &format!("Point nginx at {new}"),
            Action::Run(write(
                &e.upstream_file,
                &format!("upstream {} {{ server 127.0.0.1:%{{new_port}}; }}\n", e.upstream_name),
            )),
        )
        .undo(vec![Action::Run(write(&e.upstream_file, "%{old_upstream}\n")), Action::Run(nginx(&d.nginx_reload))])
        .step("Check the nginx configuration", Action::Run(nginx(&d.nginx_test)))
        .step("Reload nginx (in-flight requests finish)", Action::Run(nginx(&d.nginx_reload)))
        .step(
            &format!("Check {} serves {commit}", e.check_url),
            Action::WaitCmd {
                probe: ssh(&["curl", "--silent", "--show-error", "--fail", "--max-time", "5", &e.check_url]),
                expect: Some(commit.to_string()),
                timeout: Duration::from_secs(30),
                service: format!("{} through nginx", e.check_url),
                logs: logs.clone(),
            },
        )
        .step(&format!("Record {new} as live"), Action::Run(write(&live, &format!("%{{new_port}} {new}\n"))))
        .settles()
        // SIGTERM without waiting: the old release finishes its requests and exits by itself
        // (gunicorn's graceful shutdown). Docker counts a kill as a manual stop, so the
        // restart policy does not bring it back.
        .step(
            "Stop the old release (it finishes its requests first)",
            Action::Run(ssh(&["docker", "kill", "--signal", "TERM", "%{old_container}"])),
        )
        .when("old_container")
        .step(
            &format!("Keep the last {} releases, remove older containers", d.keep_releases),
            Action::ForEachLine {
                list: ssh(&[
                    "docker",
                    "ps",
                    "--all",
                    "--filter",
                    &format!("label=org.recordsponge.env={}", t.name),
                    "--format",
                    "{{.Names}}",
                ]),
                skip: d.keep_releases + 1,
                each: ssh(&["docker", "rm", "--force", "%{line}"]),
            },
        )
        .step(
            "Remove images no release uses",
            Action::Run(ssh(&[
                "docker",
                "image",
                "prune",
                "--all",
                "--force",
                "--filter",
                &format!("label=org.recordsponge.env={}", t.name),
            ])),
        )
        .step("Log the release", append(log_line("ok")))
        .step(&format!("Release the {} deploy lock", t.name), Action::Run(ssh(&["rm", "-rf", &lock])));
}

fn pick_port_decision(ports: [u16; 2]) -> Decision {
    Decision::new(
        &format!(
            "%{{new_port}} = whichever of {} and {} the live release in %{{live}} does not hold; \
             %{{old_port}}, %{{old_container}} = the live release's",
            ports[0], ports[1]
        ),
        move |vars| {
            let (new_port, old_port, old_container) = pick_port(vars.get("live"), ports);
            eprintln!("      the next release goes on port {new_port}");
            Ok(vec![
                ("new_port".into(), new_port.to_string()),
                ("old_port".into(), old_port.map(|p| p.to_string()).unwrap_or_default()),
                ("old_container".into(), old_container),
            ])
        },
    )
}

/// The port of the next release: of `ports`, the one the live release (`live`: "PORT
/// CONTAINER", empty before the first deploy) does not hold; and the live release's port and
/// container.
pub fn pick_port(live: &str, ports: [u16; 2]) -> (u16, Option<u16>, String) {
    let mut words = live.split_whitespace();
    let held: Option<u16> = words.next().and_then(|p| p.parse().ok()).filter(|p| ports.contains(p));
    match held {
        Some(port) => {
            (if port == ports[0] { ports[1] } else { ports[0] }, Some(port), words.next().unwrap_or("").to_string())
        }
        None => (ports[0], None, String::new()),
    }
}

fn pick_release_decision(release: Option<String>) -> Decision {
    let which = release.as_deref().map(|r| format!("release {r}")).unwrap_or("the release before the live one".into());
    Decision::new(&format!("%{{image}}, %{{commit}} = {which}, from the release log in %{{log}}"), move |vars| {
        let (image, commit) = pick_release(vars.get("log"), release.as_deref())?;
        eprintln!("      rolling back to {image}");
        Ok(vec![("image".into(), image), ("commit".into(), commit)])
    })
}

/// The columns of the release log kept on the host (`state_dir/ENV.releases.log`): one
/// tab-separated line a deploy or rollback.
pub const LOG_HEADER: &str = "time\tuser\taction\timage\tcommit\tresult";

/// The image and commit to roll back to: `release` (an image tag or a commit prefix) when
/// given, else the newest successful release whose image differs from the live one (the
/// newest successful release).
pub fn pick_release(log: &str, release: Option<&str>) -> Result<(String, String)> {
    struct Entry<'a> {
        image: &'a str,
        commit: &'a str,
    }
    let ok: Vec<Entry> = log
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 6 && fields[5] == "ok").then(|| Entry { image: fields[3], commit: fields[4] })
        })
        .collect();
    let Some(live) = ok.last() else { bail!("the release log has no successful release to roll back from") };
    let found = match release {
        Some(r) => ok.iter().rev().find(|e| e.image.rsplit(':').next() == Some(r) || e.commit.starts_with(r)),
        None => ok.iter().rev().find(|e| e.image != live.image),
    };
    match found {
        Some(e) => Ok((e.image.to_string(), e.commit.to_string())),
        None => match release {
            Some(r) => bail!("no successful release `{r}` in the release log (`cargo xtask releases ENV` lists them)"),
            None => bail!("the release log has no earlier release than the live one ({})", live.image),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-01T10:00:00Z\tana\tdeploy\trs:staging-aaa\taaa111\tok
2026-11-02T10:00:00Z\tbo\tdeploy\trs:staging-bbb\tbbb222\tok
2026-11-03T10:00:00Z\tbo\tdeploy\trs:staging-ccc\tccc333\tfailed
2026-11-04T10:00:00Z\tana\tdeploy\trs:staging-ddd\tddd444\tok
";

    #[test]
    fn the_default_is_the_release_before_the_live_one_skipping_failures() {
        assert_eq!(pick_release(LOG, None).unwrap(), ("rs:staging-bbb".into(), "bbb222".into()));
    }

    #[test]
    fn after_a_rollback_the_default_goes_back_further_than_the_rolled_back_release() {
        let log = format!("{LOG}2026-11-05T10:00:00Z\tana\trollback\trs:staging-bbb\tbbb222\tok\n");
        assert_eq!(pick_release(&log, None).unwrap(), ("rs:staging-ddd".into(), "ddd444".into()));
    }

    #[test]
    fn a_release_is_named_by_tag_or_commit_prefix() {
        assert_eq!(pick_release(LOG, Some("staging-aaa")).unwrap().1, "aaa111");
        assert_eq!(pick_release(LOG, Some("aaa1")).unwrap().0, "rs:staging-aaa");
        assert!(pick_release(LOG, Some("ccc333")).unwrap_err().to_string().contains("no successful release `ccc333`"));
    }

    #[test]
    fn nothing_to_roll_back_to_is_an_error() {
        assert!(pick_release("", None).is_err());
        let one = LOG.lines().next().unwrap();
        assert!(pick_release(one, None).unwrap_err().to_string().contains("no earlier release"));
    }

    #[test]
    fn the_next_port_is_the_one_the_live_release_does_not_hold() {
        assert_eq!(pick_port("", [3032, 3034]), (3032, None, String::new()));
        assert_eq!(pick_port("3032 rs-a", [3032, 3034]), (3034, Some(3032), "rs-a".into()));
        assert_eq!(pick_port("3034 rs-b\n", [3032, 3034]), (3032, Some(3034), "rs-b".into()));
        assert_eq!(pick_port("9999 rs-x", [3032, 3034]), (3032, None, String::new()), "a port not ours");
    }
}
