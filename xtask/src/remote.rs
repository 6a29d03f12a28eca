//! The deploy host, over OpenSSH: zero-downtime deploys behind nginx, rollback, the release
//! log and the deploy lock. Every remote argument is quoted one by one (see quote.rs); every ssh
//! shares one multiplexed connection (one handshake per deploy); the user's ~/.ssh/config applies.
//!
//! On the host, in `state_dir`: `ENV.lock/` (atomic mkdir; `holder` says who), `ENV.live`
//! ("PORT CONTAINER" of the release nginx proxies to) and `ENV.releases.log` (one line a deploy or
//! rollback: time, user, action, image, commit, result).

use std::time::Duration;

use crate::checks::Check;
use crate::config::check_tag;
use crate::deploy::Target;
use crate::plan::{Action, Cmd, Plan};
use crate::project::Project;
use crate::quote;

/// What `lock ENV` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockAction {
    /// Show who holds the lock, if anyone
    Status,
    /// Break the lock (after a deploy that died): asks first
    Release,
}

impl Project {
    /// `ssh [-F CONFIG] OPTIONS HOST -- 'ARG' 'ARG'...`: never prompting, and sharing one
    /// connection per host where it can (ControlMaster, its socket in ~/.ssh).
    pub fn ssh(&self, host: &str, remote: &[&str]) -> Cmd {
        let mut cmd = self.cmd("ssh");
        if !self.config.deploy.ssh_config.is_empty() {
            cmd = cmd.args(&["-F", &self.config.deploy.ssh_config]);
        }
        cmd = cmd.args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        if self.facts.ssh_multiplex {
            cmd = cmd.args(&["-o", "ControlMaster=auto", "-o", "ControlPath=~/.ssh/rs-%C", "-o", "ControlPersist=60"]);
        }
        cmd.args(&[host, "--"]).remote(remote)
    }

    /// The path of the environment's state file `ENV.WHAT` on the host.
    fn state(&self, t: &Target, what: &str) -> String {
        format!("{}/{}.{what}", self.config.deploy.state_dir, t.name)
    }

    /// Prints the state file `path` (under `state_dir`) when it exists, and nothing otherwise.
    fn cat_state(&self, t: &Target, path: &str) -> Cmd {
        let dir = &self.config.deploy.state_dir;
        self.ssh(&t.env.host, &["find", dir, "-maxdepth", "2", "-path", path, "-exec", "cat", "{}", "+"])
    }

    /// The host answers over ssh without prompts, runs docker and curl, can read the env file,
    /// write its state and the nginx upstream file, and the lock is free.
    pub fn remote_checks(&self, t: &Target) -> Vec<Check> {
        let host = &t.env.host;
        let probe = |what: String, remote: &[&str], fix: String| Check::Probe {
            what,
            probe: self.ssh(host, remote),
            line: None,
            fix,
        };
        let state = &self.config.deploy.state_dir;
        vec![
            Check::Tool {
                program: "ssh".into(),
                version: self.cmd("ssh").arg("-V"),
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
                    quote::sh(&t.env.env_file)
                ),
            ),
            probe(
                format!("{state} is writable on {host}"),
                &["test", "-w", state],
                format!("ssh {host} sudo install -d -o \"$USER\" {}", quote::sh(state)),
            ),
            probe(
                format!("{} is writable on {host}", t.env.upstream_file),
                &["test", "-w", &t.env.upstream_file],
                format!("set up nginx on {host} as config/nginx/README.md says (the deploy rewrites that file)"),
            ),
            Check::Empty {
                what: format!("the {} deploy lock on {host} is free", t.name),
                probe: self.cat_state(t, &format!("{}/holder", self.state(t, "lock"))),
                fix: format!(
                    "wait for that deploy to end; if it died, release the lock: cargo xtask lock {} release",
                    t.name
                ),
            },
        ]
    }

    /// `deploy ENV`: runs `image` on the host through the health-gated switch.
    pub fn deploy(&self, t: &Target, image: &str) -> Plan {
        let mut plan = self.plan(&format!("deploy {}", t.name));
        plan.checks(self.remote_checks(t));
        self.switch(t, &mut plan, "deploy", image, &self.facts.commit, None);
        plan
    }

    /// `rollback ENV [RELEASE]`: the release before the live one (or RELEASE: a tag or commit
    /// from `releases ENV`), through the same health-gated switch.
    pub fn rollback(&self, t: &Target, release: Option<&str>) -> anyhow::Result<Plan> {
        if let Some(release) = release {
            check_tag(release)?;
        }
        let mut plan = self.plan(&format!("rollback {}", t.name));
        plan.checks(self.remote_checks(t));
        self.switch(t, &mut plan, "rollback", "%{image}", "%{commit}", Some(release.map(str::to_string)));
        Ok(plan)
    }

    /// The release history from the host's log.
    pub fn releases(&self, t: &Target) -> Plan {
        let mut plan = self.plan(&format!("releases {}", t.name));
        plan.checks(self.remote_checks(t).into_iter().take(2))
            .step(
                &format!("Read the release log of {}", t.name),
                Action::Capture { cmd: self.cat_state(t, &self.state(t, "releases.log")), var: "log".into() },
            )
            .step("Show it", Action::Say(format!("{}\n%{{log}}", crate::releases::HEADER)));
        plan
    }

    /// `lock ENV status|release`.
    pub fn lock(&self, t: &Target, action: LockAction) -> Plan {
        let host = &t.env.host;
        let lock = self.state(t, "lock");
        let name = if action == LockAction::Status { "status" } else { "release" };
        let mut plan = self.plan(&format!("lock {} {name}", t.name));
        plan.checks(self.remote_checks(t).into_iter().take(2));
        match action {
            LockAction::Status => plan
                .step(
                    "Read the lock",
                    Action::Capture { cmd: self.cat_state(t, &format!("{lock}/holder")), var: "holder".into() },
                )
                .step("Show it", Action::Say(format!("{} lock on {host} (empty: free): %{{holder}}", t.name))),
            LockAction::Release => plan
                .check(Check::Confirm { prompt: format!("break the {} deploy lock on {host}", t.name) })
                .step("Release the lock", Action::Run(self.ssh(host, &["rm", "-rf", &lock]))),
        };
        plan
    }

    /// The health-gated switch, shared by deploy and rollback: lock; pull; start the release
    /// beside the live one on the other port; wait for its health; point nginx at it (graceful
    /// reload); check the public endpoint serves `commit`; stop the old one; prune; log; unlock.
    /// Any failure before the switch is settled removes the new container and leaves the old
    /// one serving. `rollback` is Some(release) for rollbacks (None: the previous release).
    fn switch(
        &self,
        t: &Target,
        plan: &mut Plan,
        action: &str,
        image: &str,
        commit: &str,
        rollback: Option<Option<String>>,
    ) {
        let (e, d) = (t.env, &self.config.deploy);
        let host = &e.host;
        let ssh = |remote: &[&str]| self.ssh(host, remote);
        let (lock, live, log) = (self.state(t, "lock"), self.state(t, "live"), self.state(t, "releases.log"));
        let new = &t.container;
        let user = &self.facts.user;
        let log_line = |result: &str| format!("{}\t{user}\t{action}\t{image}\t{commit}\t{result}\n", self.facts.now);
        let append = |text: String| {
            Action::Run(ssh(&["dd", &format!("of={log}"), "oflag=append", "conv=notrunc", "status=none"]).stdin(text))
        };
        let write = |path: &str, text: &str| ssh(&["dd", &format!("of={path}"), "status=none"]).stdin(text);
        let logs = ssh(&["docker", "logs", "--tail", "40", new]);
        let nginx = |argv: &[String]| ssh(&argv.iter().map(String::as_str).collect::<Vec<_>>());

        if let Some(release) = rollback {
            // Picked before the lock is taken, so that the lock and the log can name the release.
            plan.step("Read the release log", Action::Capture { cmd: self.cat_state(t, &log), var: "log".into() })
                .step("Pick the release to roll back to", Action::PickRelease { log: "log".into(), release });
        }
        plan.step(&format!("Take the {} deploy lock", t.name), Action::Run(ssh(&["mkdir", &lock])))
            .hint(&format!("another deploy holds it: `cargo xtask lock {} status` says who", t.name))
            .undo_always(vec![append(log_line("failed")), Action::Run(ssh(&["rm", "-rf", &lock]))])
            .step(
                "Record who holds it",
                Action::Run(write(
                    &format!("{lock}/holder"),
                    &format!("{user}, {action} of {commit}, since {}", self.facts.now),
                )),
            );
        let port_spec = format!("127.0.0.1:%{{new_port}}:5000");
        plan.step(&format!("Pull {image} on {host}"), Action::Run(ssh(&["docker", "pull", image])))
            .step("Read the live release", Action::Capture { cmd: self.cat_state(t, &live), var: "live".into() })
            .step("Pick the port of the new release", Action::PickPort { live: "live".into(), ports: e.ports })
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
}
