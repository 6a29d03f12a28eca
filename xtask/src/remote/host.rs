//! The `host` engine: an environment is one Docker host behind its nginx (config/nginx). A
//! release is a container published on a loopback port of the environment's range; nginx's
//! upstream file names the port of the one it proxies to.
//!
//! A switch starts the new release beside the live one, waits for its health, points nginx at
//! it and reloads nginx gracefully, and verifies through nginx that the new release answers (it
//! names itself in every response). Only then, and only once nginx's old workers have finished
//! their requests, is the old release stopped. Until the switch is recorded, a failure or Ctrl-C
//! points nginx back and removes the new release; after it, an interrupted deploy leaves at
//! most a release that no longer serves, which the next deploy names and stops.

use std::time::Duration;

use anyhow::{bail, Result};

use super::docker::{self, parse_containers, Container};
use super::log::{parse_log, Attempt};
use super::nginx::{self, sudo_list, upstream_port};
use super::ssh::{words, write_file};
use super::target::{self, serving_release, short, Target, COMMIT_LABEL, DIGEST_LABEL, ENV_LABEL};
use crate::checks::Check;
use crate::cmd::sh;
use crate::plan::{Action, Decided, Decision, Expect, Plan, Probe, Wait};
use crate::project::Project;

/// What a host of this engine needs beyond what every deploy needs: curl, the nginx upstream
/// file, the two nginx commands through `sudo -n`, and nginx's processes visible.
pub fn checks(p: &Project, t: &Target) -> Vec<Check> {
    let (host, user, d) = (&t.host, &t.user, &p.config.deploy);
    let probe = |what: String, remote: Vec<String>, fix: String| Check::Probe {
        what,
        probe: t.ssh(p, &remote),
        line: None,
        fix,
    };
    let (_, upstream_file, _) = t.env.nginx();
    let upstream = sh(upstream_file);
    let mut checks = vec![
        probe(
            format!("curl is on {host}"),
            words(&["curl", "--version"]),
            format!("on {host}, as root: `apt-get install curl`"),
        ),
        probe(
            format!("{upstream_file} is writable on {host} for {user}"),
            words(&["test", "-w", upstream_file]),
            format!(
                "on {host}, as root: `touch {upstream} && chown {user} {upstream}` (config/nginx/README.md, step 5)"
            ),
        ),
        // nginx -t loads the upstream file as root: only once it holds what a deploy writes.
        Check::Guarded {
            guard: Box::new(upstream_shape(p, t)),
            check: Box::new(probe(
                format!("nginx's configuration is valid, tested by {user} on {host}"),
                d.nginx_test.clone(),
                format!(
                    "on {host}: `{}` says what is wrong; {user} runs it through `sudo -n`, allowed without a password \
                     in /etc/sudoers.d/recordsponge-{user} (config/nginx/README.md, step 6)",
                    d.nginx_test.join(" ")
                ),
            )),
        },
        probe(
            format!("nginx's processes are visible to {user} on {host}"),
            nginx::workers(),
            format!("on {host}, as root: start nginx (`nginx`, or `systemctl start nginx`)"),
        ),
    ];
    if let Some(list) = sudo_list(&d.nginx_reload) {
        checks.push(probe(
            format!("{user} may reload nginx on {host} (`{}`)", d.nginx_reload.join(" ")),
            list,
            format!(
                "on {host}, as root: allow it in /etc/sudoers.d/recordsponge-{user} (config/nginx/README.md, step 6)"
            ),
        ));
    }
    checks
}

/// The upstream file holds what a deploy writes, and nothing else (nginx includes it as root).
fn upstream_shape(p: &Project, t: &Target) -> Check {
    let (host, (_, upstream_file, name)) = (&t.host, t.env.nginx());
    let name = name.to_string();
    Check::Judged {
        what: format!("{upstream_file} on {host} holds only what a deploy writes"),
        probes: vec![t.ssh(p, &["cat", "--", upstream_file])],
        judge: crate::checks::Judge::new("the upstream file's shape", {
            let name = name.clone();
            move |out| {
                match nginx::is_upstream(&out[0], &name) {
                true => Ok(()),
                false => Err("nginx includes it as root, and it holds more or other than `upstream NAME { server 127.0.0.1:PORT; }`".into()),
            }
            }
        }),
        fix: format!(
            "on {host}: find out who wrote it, then write back what a deploy writes, `{}` with the port of the release \
             that serves (`docker ps` on {host}); `cargo xtask deploy {}` then rewrites it",
            nginx::upstream(&name, "PORT").trim_end(),
            t.name
        ),
    }
}

/// Reads what runs: the nginx upstream file, every container on the host, and which release
/// answers through nginx; then decides the new release's port and what to stop and prune.
pub fn read(p: &Project, t: &Target, plan: &mut Plan) {
    let (ports, upstream_file, _) = t.env.nginx();
    let capture =
        |remote: Vec<String>, var: &str| Action::Capture { cmd: t.ssh(p, &remote), var: var.into(), optional: false };
    plan.step("Read the nginx upstream", capture(words(&["cat", "--", upstream_file]), "upstream"))
        .step(&format!("Read the containers on {}", t.host), capture(docker::ps_all(), "containers"))
        .step("Ask nginx which release serves", target::ask_serving(p, t));
    let (env, keep, upstream_name) = (t.name.clone(), p.config.deploy.keep_releases, t.env.nginx().2.to_string());
    plan.step(
        "Decide from what runs",
        Action::Decide(Decision::new(
            &format!(
                "%{{live}}, %{{live_digest}} = the release nginx serves; %{{new_port}} = the lowest of ports {}..{} no \
                 running container publishes; %{{retire}} = the releases running now; %{{prune}} = stopped releases \
                 beyond the newest {keep}; %{{upstream_back}} = the upstream to the live release, to point nginx back \
                 to; from %{{upstream}}, %{{containers}}, %{{serving}} and %{{log}}",
                ports[0], ports[1]
            ),
            move |vars| {
                let containers = parse_containers(vars.get("containers"))?;
                let attempts = parse_log(vars.get("log"));
                let last_good = attempts.iter().rev().find(|a| a.result == "ok").map(|a| a.release.as_str());
                let found = Found {
                    upstream: vars.get("upstream"),
                    containers: &containers,
                    serving: vars.get("serving"),
                    last_good,
                };
                let a = assess(&env, ports, keep, &found)?;
                let mut decided = Decided::default()
                    .set("live", a.live.map(|c| c.name.clone()).unwrap_or_default())
                    .set("live_digest", a.live.and_then(|c| c.labels.get(DIGEST_LABEL).cloned()).unwrap_or_default())
                    .set("new_port", a.new_port.to_string())
                    .set("retire", a.retire.join("\n"))
                    .set("prune", a.prune.join("\n"))
                    .set(
                        "upstream_back",
                        match a.live.and_then(|c| c.ports.first()) {
                            Some(port) => nginx::upstream(&upstream_name, &port.to_string()),
                            None => nginx::upstream_down(&upstream_name),
                        },
                    )
                    .set("serving_note", a.notes.join("\n"));
                decided.notes = a.notes;
                Ok(decided)
            },
        )),
    );
}

/// The health-gated switch to the release `%{digest}` (see the module's documentation);
/// `record` logs that it serves, after which no undo applies.
pub fn switch(p: &Project, t: &Target, plan: &mut Plan, record: Action) {
    let (e, new) = (t.env, &t.container);
    start_release(p, t, plan);
    plan.step(&format!("Wait for {new} to be healthy"), healthy(p, t));
    point_nginx(p, t, plan);
    plan.step(&format!("Check that {} answers from {new}", e.check_url), answers_through_nginx(p, t))
        .step(&format!("Record {new} as serving"), record)
        .settles()
        .step("Wait for nginx's old workers to finish their requests", drained(p, t));
    retire(p, t, plan);
}

/// Programs whose output only matters when they fail (container ids and names, nginx's notes)
/// run quietly: their output goes to the step's log, shown when they fail.
fn quietly(p: &Project, t: &Target, remote: &[String]) -> Action {
    Action::Run(t.ssh(p, remote).quiet())
}

/// Starts the new release beside the live one, on `%{new_port}`; undone (its logs shown) when
/// a later step fails before the switch is recorded.
fn start_release(p: &Project, t: &Target, plan: &mut Plan) {
    let (e, new) = (t.env, &t.container);
    let labels = [format!("{ENV_LABEL}={}", t.name), format!("{DIGEST_LABEL}=%{{digest}}")];
    let env = [format!("RS_RELEASE={new}")];
    let run = docker::run_release(&docker::Release {
        name: new,
        labels: &labels,
        env: &env,
        env_file: &e.env_file,
        publish: "127.0.0.1:%{new_port}:5000",
        syslog_facility: &e.syslog_facility,
        syslog_tag: &e.container,
        image: "%{digest}",
    });
    plan.step(&format!("Start {new} beside the live release"), quietly(p, t, &run)).undo(vec![
        Action::Run(t.ssh(p, &docker::logs_tail(new))),
        quietly(p, t, &docker::stop(new)),
        quietly(p, t, &docker::remove_force(new)),
    ]);
}

/// Waits until the new release's health check answers with its name.
fn healthy(p: &Project, t: &Target) -> Action {
    let (e, new) = (t.env, &t.container);
    Action::wait(Wait {
        probe: Probe::Cmd {
            cmd: t.ssh(p, &target::curl(&format!("http://127.0.0.1:%{{new_port}}{}", e.health_path), 2)),
            expect: Expect::Prints(new.clone()),
        },
        timeout: Duration::from_secs(e.health_timeout),
        service: new.clone(),
        logs: t.ssh(p, &docker::logs_tail(new)),
        states: Some(t.ssh(p, &docker::states(new))),
    })
}

/// Points nginx's upstream at the new release, tests nginx's configuration and reloads it;
/// undone by writing back the upstream it had, a reload, and waiting for the workers to drain.
fn point_nginx(p: &Project, t: &Target, plan: &mut Plan) {
    let (_, upstream_file, upstream_name) = t.env.nginx();
    let d = &p.config.deploy;
    let write = |text: &str| Action::Run(t.ssh(p, &write_file(upstream_file)).stdin(text).quiet());
    let reload = quietly(p, t, &d.nginx_reload);
    plan.step(&format!("Point nginx at {}", t.container), write(&nginx::upstream(upstream_name, "%{new_port}")))
        .undo(vec![write("%{upstream_back}"), quietly(p, t, &d.nginx_test), reload.clone(), drained(p, t)])
        .step("Check the nginx configuration", quietly(p, t, &d.nginx_test))
        .step("Reload nginx (its old workers finish their requests)", reload);
}

/// Waits until the environment's public URL answers from the new release, through nginx.
fn answers_through_nginx(p: &Project, t: &Target) -> Action {
    let (e, new) = (t.env, &t.container);
    Action::wait(Wait {
        probe: Probe::Cmd { cmd: t.ssh(p, &target::curl(&e.check_url, 5)), expect: Expect::Prints(new.clone()) },
        timeout: Duration::from_secs(30),
        service: format!("{} through nginx", e.check_url),
        logs: t.ssh(p, &docker::logs_tail(new)),
        states: None,
    })
}

/// Waits until nginx's old workers have finished their requests: until then the release they
/// proxy to keeps running.
fn drained(p: &Project, t: &Target) -> Action {
    Action::wait(Wait {
        probe: Probe::Cmd { cmd: t.ssh(p, &nginx::workers()), expect: Expect::Lacks(nginx::SHUTTING_DOWN.into()) },
        timeout: Duration::from_secs(100),
        service: "nginx's old workers to finish their requests".into(),
        logs: t.ssh(p, &nginx::workers_in_detail()),
        states: None,
    })
}

/// Stops the releases that no longer serve, keeps the newest stopped ones, removes the older
/// ones and the images no release uses.
fn retire(p: &Project, t: &Target, plan: &mut Plan) {
    let keep = p.config.deploy.keep_releases;
    let each = |argv: Vec<String>, var: &str| Action::ForEach { var: var.into(), each: t.ssh(p, &argv).quiet() };
    plan.step(
        "Stop the releases that no longer serve (each finishes its requests first)",
        each(docker::stop("%{line}"), "retire"),
    )
    .step(
        &format!("Keep the newest {keep} stopped releases, remove older ones"),
        each(docker::remove("%{line}"), "prune"),
    )
    .step("Remove images no release uses", quietly(p, t, &docker::prune_images(&format!("{ENV_LABEL}={}", t.name))));
}

/// What a switch starts from.
#[derive(Debug, PartialEq, Eq)]
pub struct Assessment<'a> {
    /// The container nginx serves from: the release that names itself through nginx, else the
    /// running container that publishes the upstream's port (a release of the old Makefile has
    /// no name to give).
    pub live: Option<&'a Container>,
    pub new_port: u16,
    /// The live release and the environment's other running releases (left by an interrupted
    /// deploy): stopped once the new release serves.
    pub retire: Vec<String>,
    /// The environment's stopped releases beyond the newest `keep`: removed.
    pub prune: Vec<String>,
    /// What was found, for the user.
    pub notes: Vec<String>,
}

/// The environment serves: what answers through nginx is a release, running and not unhealthy,
/// and the one the release log last recorded as serving.
pub fn serves(p: &Project, t: &Target) -> Check {
    let url = &t.env.check_url;
    let env = t.name.clone();
    Check::Judged {
        what: format!("{} serves through nginx ({url}): a release runs, healthy, as the release log says", t.name),
        probes: vec![target::ask_serving_cmd(p, t), t.ssh(p, &docker::ps_all()), t.cat_state(p, "releases.log")],
        judge: crate::checks::Judge::new("what serves, against what runs and the release log", move |out| {
            let containers = parse_containers(&out[1]).map_err(|e| e.to_string())?;
            judge_serving(&env, serving_release(&out[0]), &containers, &parse_log(&out[2]))
        }),
        fix: format!(
            "the problem names the command that fixes it; `cargo xtask releases {}` shows what runs and the history",
            t.name
        ),
    }
}

/// Whether the release that answers (`serving`) runs, healthy, and is the release log's last
/// good one; else what is wrong and the command that fixes it.
pub fn judge_serving(
    env: &str,
    serving: Option<&str>,
    containers: &[Container],
    log: &[Attempt],
) -> Result<(), String> {
    let last_good = log.iter().rev().find(|a| a.result == "ok").map(|a| a.release.as_str());
    let back = match last_good {
        Some(release) => format!("`cargo xtask rollback {env} {release}` brings the last good release back"),
        None => format!("`cargo xtask staging` or `cargo xtask deploy {env}` deploys one"),
    };
    let Some(name) = serving else { return Err(format!("no release answers (502, or nothing at all): {back}")) };
    match containers.iter().find(|c| c.name == name) {
        None => return Err(format!("{name} answers, but no such container runs on the host: {back}")),
        Some(c) if c.status.contains("(unhealthy)") => {
            return Err(format!("{name} answers, but docker says it is unhealthy ({}): {back}", c.status))
        }
        Some(_) => {}
    }
    match last_good {
        Some(good) if good != name => Err(format!(
            "{name} answers, but the release log's last good release is {good}: a deploy was cut off after the \
             switch? `cargo xtask rollback {env} {name}` records it, `cargo xtask rollback {env} {good}` goes back"
        )),
        _ => Ok(()),
    }
}

/// What a switch finds on the host: nginx's upstream file, the containers, the headers of what
/// answers through nginx, and the release the release log last recorded as serving.
pub struct Found<'a> {
    pub upstream: &'a str,
    pub containers: &'a [Container],
    pub serving: &'a str,
    pub last_good: Option<&'a str>,
}

/// Decides a switch from the host's truth (see `Assessment`).
pub fn assess<'a>(env: &str, ports: [u16; 2], keep: usize, found: &Found<'a>) -> Result<Assessment<'a>> {
    let containers = found.containers;
    let running = |c: &&Container| c.state == "running";
    let port = upstream_port(found.upstream);
    let named = serving_release(found.serving);
    let by_name = named.and_then(|n| containers.iter().filter(running).find(|c| c.name == n));
    let by_port = port.and_then(|port| containers.iter().filter(running).find(|c| c.ports.contains(&port)));
    let live = by_name.or(by_port);
    // A release is a container a deploy ran: the environment's label, and the digest label only
    // `docker run --label` sets. The image carries the environment's label too, so a container an
    // operator runs from it by hand (a one-off shell, a migration) has that one alone: not ours.
    let ours = |c: &&Container| {
        c.labels.get(ENV_LABEL).map(String::as_str) == Some(env) && c.labels.contains_key(DIGEST_LABEL)
    };
    let mut notes = Vec::new();
    match live {
        Some(c) => notes.push(format!(
            "serving now: {} (port {}, commit {}, created {})",
            c.name,
            c.ports.first().map(|p| p.to_string()).unwrap_or("-".into()),
            c.labels.get(COMMIT_LABEL).map(|s| short(s)).unwrap_or("unknown"),
            c.created
        )),
        None => notes.push(match port {
            Some(port) => format!("no release serves: nginx's upstream names port {port}, where no container runs"),
            None => "no release serves yet (nginx's upstream names no port)".into(),
        }),
    }
    if let (Some(by_name), Some(by_port)) = (by_name, by_port) {
        if by_name.name != by_port.name {
            notes.push(format!(
                "nginx serves {} while its upstream file names {} (port {}): a deploy was cut off between the two; \
                 this switch sets both",
                by_name.name,
                by_port.name,
                port.unwrap_or(0)
            ));
        }
    }
    let mut retire: Vec<String> = live.map(|c| c.name.clone()).into_iter().collect();
    for c in containers.iter().filter(ours).filter(|c| c.state != "exited" && c.state != "dead") {
        if live.is_some_and(|l| l.name == c.name) {
            continue;
        }
        let port_of = c.ports.first().map(|p| p.to_string()).unwrap_or("-".into());
        notes.push(if found.last_good == Some(c.name.as_str()) {
            format!(
                "{} ({}, port {port_of}) served last, as the release log says, but nginx does not reach it now: \
                 it is stopped once the new release serves",
                c.name, c.state
            )
        } else {
            format!(
                "left by an interrupted deploy: {} ({}, port {port_of}, created {}): it does not serve, and is stopped \
                 once the new release serves",
                c.name, c.state, c.created
            )
        });
        retire.push(c.name.clone());
    }
    let taken: Vec<u16> = containers.iter().filter(running).flat_map(|c| c.ports.iter().copied()).chain(port).collect();
    let Some(new_port) = (ports[0]..=ports[1]).find(|p| !taken.contains(p)) else {
        bail!(
            "every port of {}..{} is published by a running container: stop what does not serve \
             (`docker ps` on the host lists them), or widen environments.{env}.ports",
            ports[0],
            ports[1]
        );
    };
    let mut stopped: Vec<&Container> =
        containers.iter().filter(ours).filter(|c| c.state == "exited" || c.state == "dead").collect();
    stopped.sort_by(|a, b| b.created.cmp(&a.created));
    let prune = stopped.iter().skip(keep).map(|c| c.name.clone()).collect();
    Ok(Assessment { live, new_port, retire, prune, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(name: &str, state: &str, env: Option<&str>, port: Option<u16>, created: &str) -> String {
        let labels = env
            .map(|e| format!("{ENV_LABEL}={e},{DIGEST_LABEL}=rs@sha256:{name},org.recordsponge.commit=c0ffee"))
            .unwrap_or_default();
        let ports = port.map(|p| format!("127.0.0.1:{p}->5000/tcp")).unwrap_or("5000/tcp".into());
        serde_json::json!({"Names": name, "State": state, "Labels": labels, "Ports": ports, "CreatedAt": created})
            .to_string()
    }

    const UPSTREAM: &str = "upstream recordsponge_staging { server 127.0.0.1:3033; }\n";

    fn assessed(
        lines: &[String],
        upstream: &str,
        serving: &str,
    ) -> (Option<String>, u16, Vec<String>, Vec<String>, Vec<String>) {
        let containers = parse_containers(&lines.join("\n")).unwrap();
        let found = Found { upstream, containers: &containers, serving, last_good: None };
        let a = assess("staging", [3032, 3039], 2, &found).unwrap();
        (a.live.map(|c| c.name.clone()), a.new_port, a.retire, a.prune, a.notes)
    }

    #[test]
    fn the_live_release_is_what_nginx_serves_and_the_new_one_gets_a_free_port() {
        let lines = [
            ps("rs-1", "exited", Some("staging"), Some(3032), "2026-11-01"),
            ps("rs-2", "running", Some("staging"), Some(3033), "2026-11-02"),
            ps("other", "running", None, Some(3032), "2026-11-02"),
        ];
        let (live, port, retire, prune, notes) = assessed(&lines, UPSTREAM, "");
        assert_eq!(live.as_deref(), Some("rs-2"));
        assert_eq!(port, 3034, "3032 and 3033 are published by running containers");
        assert_eq!(retire, ["rs-2"]);
        assert!(prune.is_empty());
        assert!(notes[0].starts_with("serving now: rs-2 (port 3033, commit c0ffee"), "{notes:?}");
    }

    #[test]
    fn a_release_still_finishing_keeps_its_port_and_leftovers_are_named_and_retired() {
        // rs-3 was started by a deploy cut off before the switch; rs-1 is still exiting.
        let lines = [
            ps("rs-1", "running", Some("staging"), Some(3032), "2026-11-01"),
            ps("rs-2", "running", Some("staging"), Some(3033), "2026-11-02"),
            ps("rs-3", "running", Some("staging"), Some(3034), "2026-11-03"),
        ];
        let (live, port, retire, _, notes) =
            assessed(&lines, UPSTREAM, "HTTP/1.1 200 OK\r\nX-RecordSponge-Release: rs-2\r\n");
        assert_eq!(live.as_deref(), Some("rs-2"));
        assert_eq!(port, 3035);
        assert_eq!(retire, ["rs-2", "rs-1", "rs-3"]);
        assert!(
            notes.iter().any(|n| n.starts_with("left by an interrupted deploy: rs-3 (running, port 3034")),
            "{notes:?}"
        );
    }

    #[test]
    fn what_answers_through_nginx_wins_over_the_upstream_file() {
        // The upstream file was rewritten, nginx not reloaded: it still serves rs-1.
        let lines = [
            ps("rs-1", "running", Some("staging"), Some(3032), "1"),
            ps("rs-2", "running", Some("staging"), Some(3033), "2"),
        ];
        let (live, _, retire, _, notes) = assessed(&lines, UPSTREAM, "x-recordsponge-release: rs-1\r\n");
        assert_eq!(live.as_deref(), Some("rs-1"));
        assert_eq!(retire, ["rs-1", "rs-2"]);
        assert!(notes.iter().any(|n| n.contains("nginx serves rs-1 while its upstream file names rs-2")), "{notes:?}");
    }

    #[test]
    fn a_container_of_the_old_makefile_on_the_upstream_port_is_live_and_retired_after_the_switch() {
        let lines = [ps("recordsponge-staging", "running", None, Some(3033), "1")];
        let (live, port, retire, _, _) = assessed(&lines, UPSTREAM, "");
        assert_eq!(live.as_deref(), Some("recordsponge-staging"));
        assert_eq!(port, 3032);
        assert_eq!(retire, ["recordsponge-staging"]);
    }

    #[test]
    fn a_container_run_by_hand_from_a_release_image_is_neither_retired_nor_pruned() {
        // Both inherit the image's environment label; only a deploy's runs carry the digest label.
        let by_hand = |name: &str, state: &str| {
            serde_json::json!({"Names": name, "State": state, "Labels": format!("{ENV_LABEL}=staging"),
                "Ports": "127.0.0.1:3040->5000/tcp", "CreatedAt": "2026-11-09"})
            .to_string()
        };
        let lines = [
            ps("rs-1", "running", Some("staging"), Some(3033), "2026-11-02"),
            by_hand("migrate", "running"),
            by_hand("shell", "exited"),
            ps("rs-0", "exited", Some("staging"), None, "2026-11-01"),
        ];
        let (live, port, retire, prune, notes) = assessed(&lines, UPSTREAM, "");
        assert_eq!(live.as_deref(), Some("rs-1"));
        assert_eq!(port, 3032);
        assert_eq!(retire, ["rs-1"]);
        assert!(prune.is_empty(), "{prune:?}");
        assert!(notes.iter().all(|n| !n.contains("migrate")), "{notes:?}");
    }

    #[test]
    fn stopped_releases_beyond_the_newest_few_are_pruned_and_a_full_range_is_an_error() {
        let lines: Vec<String> = (1..=5)
            .map(|i| ps(&format!("rs-{i}"), "exited", Some("staging"), None, &format!("2026-11-0{i}")))
            .collect();
        let (live, port, retire, prune, notes) = assessed(&lines, "", "");
        assert_eq!((live, port), (None, 3032));
        assert!(retire.is_empty());
        assert_eq!(prune, ["rs-3", "rs-2", "rs-1"]);
        assert_eq!(notes[0], "no release serves yet (nginx's upstream names no port)");
        let full: Vec<String> = (3032..=3039).map(|p| ps(&format!("x{p}"), "running", None, Some(p), "1")).collect();
        let containers = parse_containers(&full.join("\n")).unwrap();
        let found = Found { upstream: "", containers: &containers, serving: "", last_good: None };
        let err = assess("staging", [3032, 3039], 2, &found).unwrap_err().to_string();
        assert!(err.contains("every port of 3032..3039 is published"), "{err}");
    }

    #[test]
    fn a_release_that_served_before_the_upstream_drifted_is_named_as_such() {
        // The upstream names a port where nothing listens: nothing answers through nginx, and the
        // release the log last recorded as serving still runs.
        let lines = [ps("rs-1", "running", Some("staging"), Some(3033), "1")];
        let containers = parse_containers(&lines.join("\n")).unwrap();
        let drifted = "upstream recordsponge_staging { server 127.0.0.1:3039; }\n";
        let found = Found { upstream: drifted, containers: &containers, serving: "", last_good: Some("rs-1") };
        let a = assess("staging", [3032, 3039], 2, &found).unwrap();
        assert_eq!(a.live, None);
        assert_eq!(a.retire, ["rs-1"]);
        assert!(a.notes[0].contains("nginx's upstream names port 3039, where no container runs"), "{:?}", a.notes);
        assert!(
            a.notes[1].starts_with("rs-1 (running, port 3033) served last, as the release log says"),
            "{:?}",
            a.notes
        );
        assert!(!a.notes.iter().any(|n| n.contains("interrupted")), "{:?}", a.notes);
    }

    #[test]
    fn the_environment_serves_only_when_the_release_that_answers_runs_and_is_the_last_good_one() {
        let log = parse_log("t\tana\tdeploy\trs-2\ti\td\tc\tstarted\nt\tana\tdeploy\trs-2\ti\td\tc\tok\n");
        let up = |status: &str| {
            let line = serde_json::json!({"Names": "rs-2", "State": "running", "Labels": "", "Ports": "",
                "CreatedAt": "1", "Status": status});
            parse_containers(&line.to_string()).unwrap()
        };
        assert_eq!(judge_serving("staging", Some("rs-2"), &up("Up 2 minutes (healthy)"), &log), Ok(()));
        let dead = judge_serving("staging", None, &up("Exited (137) 1 second ago"), &log).unwrap_err();
        assert!(
            dead.starts_with("no release answers") && dead.contains("`cargo xtask rollback staging rs-2`"),
            "{dead}"
        );
        let sick = judge_serving("staging", Some("rs-2"), &up("Up 1 minute (unhealthy)"), &log).unwrap_err();
        assert!(sick.contains("docker says it is unhealthy"), "{sick}");
        let other = judge_serving("staging", Some("rs-3"), &up("Up"), &log).unwrap_err();
        assert!(other.contains("no such container"), "{other}");
        let empty = judge_serving("staging", None, &[], &[]).unwrap_err();
        assert!(empty.contains("`cargo xtask deploy staging` deploys one"), "{empty}");
    }
}
