//! The `swarm` engine: an environment is a Docker Swarm stack (config/swarm/stack.yml): the app
//! as a service of several tasks, and nginx in front of it on every node, which finds
//! the tasks through Docker's DNS (config/swarm/proxy.conf). The deploy drives Swarm and reports
//! what it did; Swarm itself rolls the update out (a new task beside each old one, one at a
//! time, each healthy before the next) and rolls it back by itself when a task fails.
//!
//! Everything runs on the manager over ssh: `docker stack deploy` reads the stack file from
//! stdin and the env file from the manager's disk, so its values never leave the cluster.

use std::time::Duration;

use serde::Deserialize;

use super::ssh::{words, write_file};
use super::target::{self, serving_release, Target};
use crate::checks::Check;
use crate::plan::{Action, Decided, Decision, Expect, Judge, Plan, Probe, Verdict, Wait};
use crate::project::Project;

/// The stack file and the proxy's configuration, relative to the repository root.
const STACK: &str = "config/swarm/stack.yml";
const PROXY: &str = "config/swarm/proxy.conf";

/// The app's service in the environment's stack.
fn service(t: &Target) -> String {
    format!("{}_app", t.env.container)
}

/// What a manager of this engine needs beyond docker: to be a manager, every node ready, curl
/// (it asks the proxy which release serves), and the stack's files.
pub fn checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.host;
    let fix_manager = format!(
        "make {host} a manager: `docker swarm init` there for a new Swarm, or point environments.{}.manager at a \
         manager (`docker node ls` on one lists them)",
        t.name
    );
    let mut checks = vec![
        Check::Probe {
            what: format!("{host} is a manager of a Docker Swarm"),
            probe: t.ssh(p, &is_manager()),
            line: Some("true".into()),
            fix: fix_manager,
        },
        // A node that is Down leaves the others to run the release (the deploy places the
        // replicas on the Ready ones and names the others): refused only when none is Ready.
        Check::Judged {
            what: format!("a node of {host}'s Swarm is Ready and Active, to run the release"),
            probes: vec![t.ssh(p, &nodes())],
            judge: crate::checks::Judge::new("the Ready nodes", |out| match ready_nodes(&out[0]) {
                0 => Err(format!("none is: {}", out[0].lines().collect::<Vec<_>>().join("; "))),
                _ => Ok(()),
            }),
            fix: format!(
                "start Docker on a node (it rejoins by itself), or make one active: `docker node update --availability \
                 active NODE` on {host}"
            ),
        },
        Check::Probe {
            what: format!("curl is on {host}"),
            probe: t.ssh(p, &["curl", "--version"]),
            line: None,
            fix: format!("on {host}, as root: `apt-get install curl`"),
        },
        // The proxy is replaced stop-first (its port is the node's): a configuration its nginx
        // refuses would leave the node with no proxy at all.
        Check::Probe {
            what: format!("{PROXY} is valid for {} (`nginx -t` on {host})", t.env.proxy_image),
            probe: t.ssh(p, &proxy_test(&t.env.proxy_image)).stdin_file(&p.path(PROXY)),
            line: None,
            fix: format!(
                "the error above says which: correct {PROXY} (`bash config/nginx/check.sh` checks it on this \
                 machine), or set environments.{}.proxy_image to an nginx image that {host} can pull",
                t.name
            ),
        },
    ];
    for file in [STACK, PROXY] {
        checks.push(Check::File {
            path: p.path(file),
            what: "a file of the Swarm stack".into(),
            fix: format!("restore it: `git checkout -- {file}`"),
        });
    }
    checks
}

/// Every node of the Swarm is Ready and Active (`doctor ENV`): one that is Down or drained
/// leaves the others its share of the tasks and the traffic.
pub fn nodes_ready(p: &Project, t: &Target) -> Check {
    let host = &t.host;
    Check::Judged {
        what: format!("every node of {host}'s Swarm is Ready and Active"),
        probes: vec![t.ssh(p, &nodes())],
        judge: crate::checks::Judge::new("the nodes' states", |out| {
            let odd = node_notes(&out[0]);
            match odd.is_empty() {
                true => Ok(()),
                false => Err(odd.join("; ")),
            }
        }),
        fix: format!(
            "a node Down: start Docker on it (it rejoins by itself), or, gone for good, `docker node rm NODE` on {host}; \
             a node drained: `docker node update --availability active NODE` once its maintenance is over"
        ),
    }
}

/// The environment serves: what answers through the proxy is the release the service runs,
/// with every replica running.
pub fn serves(p: &Project, t: &Target) -> Check {
    let (url, service, replicas, env) = (&t.env.check_url, service(t), t.env.replicas, t.name.clone());
    Check::Judged {
        what: format!("{} serves through its proxy ({url}): the service's release, every replica running", t.name),
        probes: vec![
            target::ask_serving_cmd(p, t),
            t.ssh(p, &inspect_service(&service)),
            t.ssh(p, &tasks(&service, false)),
        ],
        judge: crate::checks::Judge::new("what serves, against the service and its tasks", move |out| {
            judge_serving(&env, serving_release(&out[0]), Service::parse(&out[1]).as_ref(), &out[2], replicas)
        }),
        fix: format!(
            "the problem says what is wrong; `cargo xtask releases {}` shows the service, its tasks and nodes",
            t.name
        ),
    }
}

/// Whether the proxy serves the service's release, with `replicas` tasks of it running.
pub fn judge_serving(
    env: &str,
    serving: Option<&str>,
    service: Option<&Service>,
    tasks: &str,
    replicas: u32,
) -> Result<(), String> {
    let Some(s) = service else {
        return Err(format!("the stack has no app service: `cargo xtask deploy {env}` makes it"));
    };
    let running = parse_tasks(tasks)
        .into_iter()
        .filter(|t| t.desired_state == "Running" && t.current_state.starts_with("Running"))
        .count();
    match serving {
        None => Err(format!("nothing answers through the proxy, though the service runs {}", s.release)),
        Some(name) if name != s.release => Err(format!("{name} answers, but the service runs {}", s.release)),
        Some(_) if running < replicas as usize => {
            Err(format!("{running} of {replicas} tasks of {} run (Swarm starts the others where it can)", s.release))
        }
        Some(_) => Ok(()),
    }
}

/// Whether the host is a manager (`true`).
fn is_manager() -> Vec<String> {
    words(&["docker", "info", "--format", "{{.Swarm.ControlAvailable}}"])
}

/// Each node, its status and availability (`HOSTNAME STATUS AVAILABILITY`).
fn nodes() -> Vec<String> {
    words(&["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}"])
}

/// `nginx -t` of the proxy's configuration (on stdin) in a throwaway container of `image`, where
/// the stack puts it.
fn proxy_test(image: &str) -> Vec<String> {
    let script = "cat > /etc/nginx/conf.d/default.conf && exec nginx -t -q";
    words(&["docker", "run", "--rm", "--interactive", "--entrypoint", "sh", image, "-c", script])
}

/// What the deploy reads of a service, as JSON (`Service`): its image, its labels (the release
/// it runs) and its last update; never its environment, which holds the env file's values.
fn inspect_service(service: &str) -> Vec<String> {
    let format = r#"{"Image":{{json .Spec.TaskTemplate.ContainerSpec.Image}},"Labels":{{json .Spec.Labels}},"UpdateStatus":{{json .UpdateStatus}}}"#;
    words(&["docker", "service", "inspect", "--format", format, service])
}

/// The label the app's service names its release in (config/swarm/stack.yml).
const RELEASE_LABEL: &str = "org.recordsponge.release";

/// A service's tasks, one JSON object a line (`report`), or as a table (`table`).
fn tasks(service: &str, table: bool) -> Vec<String> {
    let format: &[&str] = if table { &[] } else { &["--format", "{{json .}}"] };
    let mut argv = words(&["docker", "service", "ps", "--no-trunc"]);
    argv.extend(words(format));
    argv.push(service.to_string());
    argv
}

/// `docker stack deploy` of the stack file on stdin, with its variables (`NAME=VALUE`) set by
/// `env` (the stack file interpolates them) and the manager's registry login handed to the
/// nodes that pull.
fn stack_deploy(vars: &[String], stack: &str) -> Vec<String> {
    let mut argv = vec!["env".to_string()];
    argv.extend(vars.iter().cloned());
    argv.extend(words(&["docker", "stack", "deploy", "--with-registry-auth", "--compose-file", "-", stack]));
    argv
}

/// The Swarm's nodes, one line each (`HOSTNAME STATUS AVAILABILITY`), into `%{nodes}`: read
/// before the update and again after it, when a node may have gone.
fn read_nodes(p: &Project, t: &Target) -> Action {
    Action::Capture { cmd: t.ssh(p, &nodes()), var: "nodes".into(), optional: false }
}

/// Reads what runs: the app's service (its spec, the state of its last update) and which
/// release answers through the proxy.
pub fn read(p: &Project, t: &Target, plan: &mut Plan) {
    let capture =
        |remote: Vec<String>, var: &str| Action::Capture { cmd: t.ssh(p, &remote), var: var.into(), optional: true };
    plan.step(&format!("Read the service {}", service(t)), capture(inspect_service(&service(t)), "service"))
        .step(&format!("Read the tasks of {}", service(t)), capture(tasks(&service(t), false), "tasks"))
        .step("Read the nodes", read_nodes(p, t))
        .step("Ask the proxy which release serves", target::ask_serving(p, t))
        .step(
            "Decide from what runs",
            Action::Decide(Decision::new(
                "%{live}, %{live_digest} = the release the service runs, from %{service}, %{tasks}, %{nodes} and %{serving}",
                |vars| {
                    let s = Service::parse(vars.get("service"));
                    let mut notes = report(&s, vars.get("tasks"), vars.get("nodes"), serving_release(vars.get("serving")));
                    notes.extend(node_notes(vars.get("nodes")));
                    let mut decided = Decided::default()
                        .set("live", s.as_ref().map(|s| s.release.clone()).unwrap_or_default())
                        .set("live_digest", s.as_ref().map(|s| s.image.clone()).unwrap_or_default())
                        .set("serving_note", notes.join("\n"));
                    decided.notes = notes;
                    Ok(decided)
                },
            )),
        );
}

/// Deploys the stack with the release `%{digest}`, waits for Swarm to roll it out, and checks
/// through the proxy that it answers; `record` logs that it serves.
pub fn switch(p: &Project, t: &Target, plan: &mut Plan, record: Action) {
    let (e, new) = (t.env, &t.container);
    let proxy_file = format!("{}/{}.proxy.conf", p.config.deploy.state_dir, t.name);
    copy_proxy_config(p, t, plan, &proxy_file);
    plan.step(
        "Note the manager's time",
        Action::Capture { cmd: t.ssh(p, &["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]), var: "since".into(), optional: false },
    );
    wait_for_moved_tasks(p, t, plan);
    let replicas = e.replicas;
    plan.step(
        "Place the replicas on the Ready nodes",
        Action::Decide(Decision::new(
            &format!("%{{max_per_node}}, %{{update_order}} = how {replicas} replicas spread over the Ready nodes of %{{nodes}}"),
            move |vars| {
                let ready = ready_nodes(vars.get("nodes"));
                let Some(place) = placement(replicas, ready) else {
                    anyhow::bail!("no node of the Swarm is Ready and Active: nothing can run the release ({})", vars.get("nodes"))
                };
                let order = if place.start_first { "start-first" } else { "stop-first" };
                Ok(Decided::default()
                    .set("max_per_node", place.max_per_node.to_string())
                    .set("update_order", order)
                    .note(format!(
                        "{replicas} replicas on {ready} Ready node{}: at most {} a node, {order}",
                        if ready == 1 { "" } else { "s" },
                        place.max_per_node
                    )))
            },
        )),
    );
    let vars = [
        "IMAGE=%{digest}".to_string(),
        format!("RELEASE={new}"),
        format!("ENV={}", t.name),
        format!("ENV_FILE={}", e.env_file),
        format!("REPLICAS={}", e.replicas),
        "MAX_PER_NODE=%{max_per_node}".to_string(),
        "UPDATE_ORDER=%{update_order}".to_string(),
        format!("SYSLOG_FACILITY={}", e.syslog_facility),
        format!("PROXY_IMAGE={}", e.proxy_image),
        format!("PROXY_PORT={}", e.proxy_port),
        format!("PROXY_FILE={proxy_file}"),
        format!("PROXY_CONFIG={}-proxy-%{{proxy_sum}}", e.container),
    ];
    plan.step(
        &format!("Deploy the stack {} with {new}", e.container),
        Action::Run(t.ssh(p, &stack_deploy(&vars, &e.container)).stdin_file(&p.path(STACK))),
    );
    wait_for_rollout(p, t, plan);
    plan.step(&format!("Record {new} as serving"), record).settles().step("Read the nodes", read_nodes(p, t)).step(
        "Report the nodes",
        Action::Decide(Decision::new("notes on the nodes that are not ready, from %{nodes}", |vars| {
            Ok(Decided { notes: node_notes(vars.get("nodes")), ..Decided::default() })
        })),
    );
}

/// Copies the proxy's configuration to the manager, and names it by its content
/// (`%{proxy_sum}`): a changed proxy.conf is a new Swarm config.
fn copy_proxy_config(p: &Project, t: &Target, plan: &mut Plan, proxy_file: &str) {
    plan.step(
        "Copy the proxy's configuration to the manager",
        Action::Run(t.ssh(p, &write_file(proxy_file)).stdin_file(&p.path(PROXY)).quiet()),
    )
    .step(
        "Hash the proxy's configuration",
        Action::Capture { cmd: t.ssh(p, &["sha256sum", "--", proxy_file]), var: "sha256sum".into(), optional: false },
    )
    .step(
        "Name the proxy's configuration by its content",
        Action::Decide(Decision::new("%{proxy_sum} = the first 12 digits of the hash in %{sha256sum}", |vars| {
            let sum: String = vars.get("sha256sum").chars().take_while(char::is_ascii_hexdigit).take(12).collect();
            if sum.len() < 12 {
                anyhow::bail!("`sha256sum` printed no hash: {}", vars.get("sha256sum"));
            }
            Ok(Decided::default().set("proxy_sum", sum))
        })),
    );
}

/// Waits for Swarm to roll the release out (or back), then for it to answer through the proxy.
/// Swarm goes on with an update it began when this command stops: the next one reads where it
/// ended.
fn wait_for_rollout(p: &Project, t: &Target, plan: &mut Plan) {
    let (e, new, service) = (t.env, &t.container, service(t));
    let rollout = Duration::from_secs(e.health_timeout + 60 + 30 * u64::from(e.replicas));
    let what = format!("Swarm has rolled {new} out to every replica (or rolled it back) since %{{since}}");
    let judge = Judge::new(&what, {
        let (new, replicas) = (new.clone(), e.replicas);
        move |out, vars| {
            let state = Rollout { service: &out[0], tasks: &out[1], nodes: &out[2], since: vars.get("since") };
            rollout_verdict(&state, &new, replicas)
        }
    });
    let probes = vec![t.ssh(p, &inspect_service(&service)), t.ssh(p, &tasks(&service, false)), t.ssh(p, &nodes())];
    plan.step(
        &format!("Wait for Swarm to roll {new} out"),
        Action::wait(Wait {
            probe: Probe::Judged { cmds: probes, judge },
            timeout: rollout,
            service: format!("the update of {service}"),
            logs: t.ssh(p, &tasks(&service, true)),
            states: None,
        }),
    )
    .hint(&format!(
        "`cargo xtask releases {}` shows the service, its tasks and nodes; an update still running goes on by itself",
        t.name
    ))
    .step(
        &format!("Check that {} answers from {new}", e.check_url),
        Action::wait(Wait {
            probe: Probe::Cmd { cmd: t.ssh(p, &target::curl(&e.check_url, 5)), expect: Expect::Prints(new.clone()) },
            // A new stack's proxy and tasks are pulled and started first.
            timeout: rollout,
            service: format!("{} through the proxy", e.check_url),
            logs: t.ssh(p, &tasks(&format!("{}_proxy", e.container), true)),
            states: None,
        }),
    );
}

/// What `inspect_service` prints.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceJson {
    image: String,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    update_status: Option<UpdateJson>,
}

/// A service's last update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJson {
    /// updating, completed, paused, rollback_started, rollback_completed, rollback_paused.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub completed_at: String,
}

/// The app's service, as the deploy sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Service {
    /// The release its spec runs (RS_RELEASE), and its image (by digest).
    pub release: String,
    pub image: String,
    /// Its last update, when it was ever updated.
    pub update: Option<UpdateJson>,
}

impl Service {
    /// The service from `inspect_service`'s JSON; None when there is no service (nothing printed).
    pub fn parse(inspect: &str) -> Option<Service> {
        let s: ServiceJson = serde_json::from_str(inspect.trim()).ok()?;
        let release = s.labels.as_ref().and_then(|l| l.get(RELEASE_LABEL)).cloned().unwrap_or_default();
        Some(Service { release, image: s.image, update: s.update_status })
    }
}

/// A line of `docker service ps --format '{{json .}}'`: a task, where it runs and how.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskJson {
    name: String,
    node: String,
    desired_state: String,
    current_state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    image: String,
}

/// What a rollout is judged from: the service (`inspect_service`), its tasks (`tasks`), the
/// nodes (`nodes`), and the manager's time before the deploy.
pub struct Rollout<'a> {
    pub service: &'a str,
    pub tasks: &'a str,
    pub nodes: &'a str,
    pub since: &'a str,
}

/// Whether Swarm has rolled `new` out: its spec runs it, its update since `since` (the manager's
/// clock, before the deploy) completed, and `replicas` tasks of it run on Ready nodes; a failure
/// when Swarm rolled it back or paused, or when the update cannot finish because a task of it
/// was given to a node that is Down. A service made new has no update to wait for.
pub fn rollout_verdict(r: &Rollout, new: &str, replicas: u32) -> Verdict {
    let Some(s) = Service::parse(r.service) else { return Verdict::NotYet("the service does not exist yet".into()) };
    // Both on the manager's clock; Docker's times have fractions of a second, `since` has none.
    let time = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    let ours = |started: &str| matches!((time(started), time(r.since)), (Some(s), Some(t)) if s >= t);
    let running = || replicas_running(&s, r.tasks, r.nodes, new, replicas);
    match &s.update {
        Some(u) if ours(&u.started_at) => match u.state.as_str() {
            "completed" if s.release == new => running(),
            "updating" => {
                stuck(&s, r.tasks, r.nodes, new).unwrap_or_else(|| Verdict::NotYet(format!("updating: {}", u.message)))
            }
            "rollback_started" | "rollback_completed" | "rollback_paused" | "paused" => Verdict::Failed(format!(
                "Swarm did not roll {new} out: {}, \"{}\"; the tasks of the release before it keep serving",
                u.state, u.message
            )),
            _ => Verdict::NotYet(format!("{}: {}", u.state, u.message)),
        },
        _ if s.release != new => {
            Verdict::Failed(format!("the service runs {}, not {new}: another deploy changed it", s.release))
        }
        // Made new, or the update not begun yet.
        None => running(),
        Some(_) => Verdict::NotYet("the update has not begun".into()),
    }
}

/// The nodes that are Down, from `nodes()`.
fn down_nodes(nodes: &str) -> Vec<&str> {
    nodes
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, rest)| rest.starts_with("Down"))
        .map(|(n, _)| n)
        .collect()
}

/// The tasks `tasks()` lists, a JSON object a line (lines that are not one are skipped).
fn parse_tasks(tasks: &str) -> Vec<TaskJson> {
    tasks.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The tasks Swarm wants running that do not serve yet, from `tasks` and `nodes`: on a node that
/// is Down (not moved yet: a node is lost for some seconds before its tasks start elsewhere), or
/// on their way to Running (a moved task waits out the restart delay wanted "Ready", then
/// starts, and becomes Running once healthy). A task with no node to go to is not counted: it
/// waits for a change, not for time. Nothing, while every node is up (a release that never
/// becomes healthy must not hold its own rollback).
fn unsettled(tasks: &str, nodes: &str) -> Vec<String> {
    let down = down_nodes(nodes);
    if down.is_empty() {
        return Vec::new();
    }
    let starting = ["New", "Allocated", "Assigned", "Accepted", "Preparing", "Ready", "Starting", "Pending"];
    parse_tasks(tasks)
        .into_iter()
        .filter(|t| t.desired_state == "Running" || t.desired_state == "Ready")
        .filter(|t| {
            let on_its_way =
                starting.iter().any(|s| t.current_state.starts_with(s)) && !t.error.contains("no suitable node");
            down.contains(&t.node.as_str()) || on_its_way
        })
        .map(|t| format!("{} on {} ({})", t.name, t.node, t.current_state))
        .collect()
}

/// Before the stack changes: waits until Swarm has moved the tasks of nodes that are Down and
/// they serve. An update that began before would count such a task as serving, and one rolled
/// stop-first would stop the only task that really serves.
fn wait_for_moved_tasks(p: &Project, t: &Target, plan: &mut Plan) {
    let service = service(t);
    let judge = Judge::new("every task Swarm wants runs on a node that is not Down", |out, _| {
        match unsettled(&out[0], &out[1]).as_slice() {
            [] => Verdict::Ready,
            waiting => Verdict::NotYet(format!("still on a Down node: {}", waiting.join(", "))),
        }
    });
    plan.step(
        "Wait for the tasks of Down nodes to serve elsewhere",
        Action::wait(Wait {
            probe: Probe::Judged { cmds: vec![t.ssh(p, &tasks(&service, false)), t.ssh(p, &nodes())], judge },
            timeout: Duration::from_secs(90),
            service: format!("the tasks of {service} on Down nodes"),
            logs: t.ssh(p, &tasks(&service, true)),
            states: None,
        }),
    )
    // (A stack not deployed yet has no service, and no task anywhere.)
    .when("live")
    .hint(
        "Swarm moves a Down node's tasks by itself within seconds; when it cannot (no other node may take them), \
           bring the node back, or `docker node rm --force NODE` on a manager if it is gone for good",
    );
}

/// Ready when `replicas` tasks of the service's image run on nodes that are not Down.
fn replicas_running(s: &Service, tasks: &str, nodes: &str, new: &str, replicas: u32) -> Verdict {
    let down = down_nodes(nodes);
    let tasks = parse_tasks(tasks);
    let running = tasks
        .iter()
        .filter(|t| t.image == s.image && t.desired_state == "Running" && t.current_state.starts_with("Running"))
        .filter(|t| !down.contains(&t.node.as_str()))
        .count();
    match running >= replicas as usize {
        true => Verdict::Ready,
        false => Verdict::NotYet(format!("{running} of {replicas} tasks of {new} run")),
    }
}

/// An update that cannot finish while a node is Down: a task of the new release was given to
/// that node (it neither starts nor stops until the node returns), or has no node to go to (the
/// spare node a start-first update needs beside one task a node was the one lost). Swarm waits
/// for the node in both cases.
fn stuck(s: &Service, tasks: &str, nodes: &str, new: &str) -> Option<Verdict> {
    let down = down_nodes(nodes);
    if down.is_empty() {
        return None;
    }
    let tasks = parse_tasks(tasks);
    let new_tasks = tasks.iter().filter(|t| t.image == s.image);
    // On a Down node, a task that had not started yet holds the update, whether Swarm still wants
    // it (it waits for it to start) or has replaced it (it waits for it to stop).
    let ended = ["Running", "Shutdown", "Complete", "Failed", "Rejected", "Orphaned", "Remove"];
    let lost: Vec<String> = new_tasks
        .clone()
        .filter(|t| down.contains(&t.node.as_str()) && !ended.iter().any(|e| t.current_state.starts_with(e)))
        .map(|t| format!("{} to {}, a node that is Down", t.name, t.node))
        .collect();
    let unplaced = new_tasks
        .filter(|t| t.desired_state == "Running")
        .filter(|t| t.current_state.starts_with("Pending") && t.error.contains("no suitable node"))
        .map(|t| format!("{} no node ({}: {} is Down)", t.name, t.error.trim_matches('"'), down.join(", ")));
    let all: Vec<String> = lost.into_iter().chain(unplaced).collect();
    (!all.is_empty()).then(|| {
        Verdict::Failed(format!(
            "the update to {new} cannot finish: Swarm gave {}, and waits for it. The tasks on the other nodes serve. \
             Bring the node back (Swarm then finishes by itself), or deploy or roll back again (the replicas then go \
             to the Ready nodes); if the node is gone for good, `docker node rm --force NODE` on a manager",
            all.join("; ")
        ))
    })
}

/// What runs, for the user: the release and its update, each task where it runs, and what
/// answers through the proxy.
pub fn report(s: &Option<Service>, tasks: &str, nodes: &str, serving: Option<&str>) -> Vec<String> {
    let Some(s) = s else { return vec!["no release serves yet (the stack has no app service)".into()] };
    let mut notes = vec![format!("the service runs {} ({})", s.release, s.image)];
    if let Some(u) = &s.update {
        let (started, completed) = (&u.started_at, &u.completed_at);
        let when = if completed.is_empty() { format!("since {started}") } else { format!("{started} to {completed}") };
        notes.push(format!("its last update: {} ({}), {when}", u.state, u.message));
    }
    let down_nodes = down_nodes(nodes);
    for t in parse_tasks(tasks) {
        if t.desired_state == "Running" || t.current_state.starts_with("Running") {
            let error = if t.error.is_empty() { String::new() } else { format!(", {}", t.error) };
            let down =
                if down_nodes.contains(&t.node.as_str()) { " (its node is Down: it answers nothing)" } else { "" };
            notes.push(format!("  task {} on {}: {}{error}{down}", t.name, t.node, t.current_state));
        }
    }
    notes.push(match serving {
        Some(release) => format!("serving now through the proxy: {release}"),
        None => "nothing answers through the proxy".into(),
    });
    notes
}

/// What logs the end of a deploy or rollback that failed or was interrupted: read from what the
/// service runs (`unfinished` when its spec runs the new release, whose update did not finish:
/// its tasks serve beside the old ones; `failed` otherwise).
pub fn failed_outcome(p: &Project, t: &Target, line: String) -> Vec<Action> {
    let new = t.container.clone();
    vec![
        Action::Capture { cmd: t.ssh(p, &inspect_service(&service(t))), var: "after".into(), optional: true },
        Action::Decide(Decision::new(
            &format!("%{{outcome}} = unfinished when the service runs {new}, else failed"),
            move |vars| {
                let runs_new = Service::parse(vars.get("after")).is_some_and(|s| s.release == new);
                Ok(Decided::default().set("outcome", if runs_new { "unfinished" } else { "failed" }))
            },
        )),
        super::log::append(p, t, line),
    ]
}

/// How a service's replicas are placed: at most `max_per_node` on a node, and whether an update
/// starts a new task before it stops the old one.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement {
    pub max_per_node: u32,
    pub start_first: bool,
}

/// The placement of `replicas` on `ready` nodes: no node holds every task while another is
/// Ready, and an update can place its tasks. One node holds everything, and the update's extra
/// task (start-first). On two, at most one task a node unless the replicas outnumber them
/// (start-first's extra task could land on either node, and the spread would be lost): start-first
/// where that leaves a spare, else stop-first, one task at a time, the others serving. On three
/// or more, start-first with room for the extra task even when one more node is lost during the
/// update (a tighter limit leaves the update waiting for the lost node, even once it is back,
/// while tasks that ran on it wind down), and the stack's spread preference puts each new task on
/// the node with the fewest. None when no node is Ready.
pub fn placement(replicas: u32, ready: u32) -> Option<Placement> {
    match ready {
        0 => None,
        1 => Some(Placement { max_per_node: replicas + 1, start_first: true }),
        2 => {
            let with_spare = (replicas + 1).div_ceil(2);
            Some(match replicas == 1 || with_spare < replicas {
                true => Placement { max_per_node: with_spare, start_first: true },
                false => Placement { max_per_node: replicas.div_ceil(2), start_first: false },
            })
        }
        _ => Some(Placement { max_per_node: (replicas + 1).div_ceil(ready - 1), start_first: true }),
    }
}

/// How many nodes are Ready and Active, from `nodes()`.
pub fn ready_nodes(nodes: &str) -> u32 {
    nodes.lines().filter(|l| l.trim().ends_with(" Ready Active")).count() as u32
}

/// Notes on the nodes that are not Ready and Active, from `docker node ls --format
/// '{{.Hostname}} {{.Status}} {{.Availability}}'`.
pub fn node_notes(nodes: &str) -> Vec<String> {
    nodes
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().ends_with(" Ready Active"))
        .map(|l| format!("node {l}: its tasks run on the other nodes"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(release: &str, update: Option<(&str, &str)>) -> String {
        let mut s = serde_json::json!({"Image": "rs@sha256:abc",
            "Labels": {"org.recordsponge.env": "staging", RELEASE_LABEL: release}, "UpdateStatus": null});
        if let Some((state, started)) = update {
            s["UpdateStatus"] =
                serde_json::json!({"State": state, "Message": "m", "StartedAt": started, "CompletedAt": ""});
        }
        s.to_string()
    }

    const SINCE: &str = "2026-11-29T10:00:00Z";
    const NODES: &str = "n1 Ready Active\nn2 Ready Active\nn3 Ready Active";

    fn task(name: &str, node: &str, desired: &str, current: &str) -> String {
        serde_json::json!({"Name": name, "Node": node, "DesiredState": desired, "CurrentState": current,
            "Image": "rs@sha256:abc", "Error": ""})
        .to_string()
    }

    /// Two replicas of the service's image running on n1 and n2.
    fn running() -> String {
        [task("a.1", "n1", "Running", "Running 5 seconds ago"), task("a.2", "n2", "Running", "Running 9 seconds ago")]
            .join("\n")
    }

    fn verdict(service: &str, tasks: &str, nodes: &str) -> Verdict {
        rollout_verdict(&Rollout { service, tasks, nodes, since: SINCE }, "new", 2)
    }

    #[test]
    fn a_rollout_is_ready_when_the_update_since_the_deploy_completed_on_every_replica() {
        let ready = verdict(&inspect("new", Some(("completed", "2026-11-29T10:00:01.5Z"))), &running(), NODES);
        assert_eq!(ready, Verdict::Ready);
        // Begun within the second of `since`.
        let same_second = verdict(&inspect("new", Some(("completed", "2026-11-29T10:00:00.25Z"))), &running(), NODES);
        assert_eq!(same_second, Verdict::Ready);
        let updating = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &running(), NODES);
        assert_eq!(updating, Verdict::NotYet("updating: m".into()));
        // The previous update's completion is not this one's.
        let old = verdict(&inspect("new", Some(("completed", "2026-11-29T09:00:00Z"))), &running(), NODES);
        assert_eq!(old, Verdict::NotYet("the update has not begun".into()));
        assert_eq!(verdict(&inspect("new", None), &running(), NODES), Verdict::Ready, "a service made new");
        assert_eq!(verdict("", "", NODES), Verdict::NotYet("the service does not exist yet".into()));
    }

    #[test]
    fn a_rollout_is_not_done_while_a_replica_is_still_preparing_or_on_a_node_that_is_down() {
        let preparing = [
            task("a.1", "n1", "Running", "Running 5 seconds ago"),
            task("a.2", "n2", "Running", "Preparing 1 second ago"),
        ];
        let made = inspect("new", None);
        assert_eq!(verdict(&made, &preparing.join("\n"), NODES), Verdict::NotYet("1 of 2 tasks of new run".into()));
        let down = "n1 Ready Active\nn2 Down Active\nn3 Ready Active";
        assert_eq!(verdict(&made, &running(), down), Verdict::NotYet("1 of 2 tasks of new run".into()));
    }

    #[test]
    fn an_update_waiting_for_a_task_on_a_node_that_is_down_cannot_finish() {
        let tasks = [
            task("a.1", "n1", "Running", "Running 5 seconds ago"),
            task("a.2", "n3", "Running", "Assigned 20 seconds ago"),
        ];
        let down = "n1 Ready Active\nn2 Ready Active\nn3 Down Active";
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &tasks.join("\n"), down);
        let Verdict::Failed(why) = v else { panic!("{v:?}") };
        assert!(why.starts_with("the update to new cannot finish: Swarm gave a.2 to n3, a node that is Down"), "{why}");
        assert!(why.contains("`docker node rm --force NODE`"), "{why}");
        // Replaced by Swarm, but never started: the update waits for it to stop.
        let replaced = [
            task("a.1", "n1", "Running", "Running 5 seconds ago"),
            task("a.2", "n3", "Shutdown", "Assigned 2 minutes ago"),
            task("a.2", "n1", "Running", "Running 1 minute ago"),
        ];
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &replaced.join("\n"), down);
        assert!(
            matches!(&v, Verdict::Failed(why) if why.contains("Swarm gave a.2 to n3, a node that is Down")),
            "{v:?}"
        );
        let stopped = [
            task("a.1", "n1", "Running", "Running 5 seconds ago"),
            task("a.2", "n3", "Shutdown", "Shutdown 1 minute ago"),
        ];
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &stopped.join("\n"), down);
        assert_eq!(v, Verdict::NotYet("updating: m".into()), "a task that stopped holds nothing");
        // A task with no node to go to (start-first's spare node is the one lost).
        let mut unplaced = task("a.1", "", "Running", "Pending 5 seconds ago");
        unplaced =
            unplaced.replace("\"Error\":\"\"", "\"Error\":\"no suitable node (max replicas per node limit exceed)\"");
        let tasks = [unplaced, task("a.2", "n1", "Running", "Running 9 seconds ago")];
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &tasks.join("\n"), down);
        let Verdict::Failed(why) = v else { panic!("{v:?}") };
        assert!(
            why.contains("Swarm gave a.1 no node (no suitable node (max replicas per node limit exceed): n3 is Down)"),
            "{why}"
        );
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &tasks.join("\n"), NODES);
        assert_eq!(v, Verdict::NotYet("updating: m".into()), "while every node is Ready it may yet be placed");
        // The same task while its node is Ready: the update goes on.
        let v = verdict(&inspect("new", Some(("updating", "2026-11-29T10:00:01Z"))), &tasks.join("\n"), NODES);
        assert_eq!(v, Verdict::NotYet("updating: m".into()));
    }

    #[test]
    fn a_rollback_or_a_pause_by_swarm_fails_the_rollout_at_once() {
        for state in ["rollback_started", "rollback_completed", "paused"] {
            let v = verdict(&inspect("old", Some((state, "2026-11-29T10:00:02Z"))), &running(), NODES);
            let Verdict::Failed(why) = v else { panic!("{state}: {v:?}") };
            assert!(why.starts_with(&format!("Swarm did not roll new out: {state}")), "{why}");
        }
        let v = verdict(&inspect("other", Some(("completed", "2026-11-29T09:00:00Z"))), &running(), NODES);
        assert!(matches!(v, Verdict::Failed(why) if why.contains("another deploy changed it")));
    }

    #[test]
    fn the_report_names_the_release_its_update_its_tasks_and_what_serves() {
        let s = Service::parse(&inspect("rs-2", Some(("completed", "2026-11-29T10:00:01Z"))));
        assert_eq!(s.as_ref().unwrap().release, "rs-2");
        let tasks = [
            r#"{"Name":"st_app.1","Node":"n1","DesiredState":"Running","CurrentState":"Running 2 minutes ago","Error":""}"#,
            r#"{"Name":"st_app.1","Node":"n2","DesiredState":"Shutdown","CurrentState":"Shutdown 2 minutes ago","Error":""}"#,
        ]
        .join("\n");
        let notes = report(&s, &tasks, "n1 Down Active\nn2 Ready Active", Some("rs-2"));
        assert_eq!(notes[0], "the service runs rs-2 (rs@sha256:abc)");
        assert!(notes[1].starts_with("its last update: completed"));
        assert_eq!(notes[2], "  task st_app.1 on n1: Running 2 minutes ago (its node is Down: it answers nothing)");
        assert_eq!(notes[3], "serving now through the proxy: rs-2");
        assert_eq!(report(&None, "", "", None), ["no release serves yet (the stack has no app service)"]);
        assert_eq!(
            node_notes("m1 Ready Active\nw1 Down Active\n"),
            ["node w1 Down Active: its tasks run on the other nodes"]
        );
    }

    #[test]
    fn real_service_and_task_output_is_read() {
        let new = Service::parse(include_str!("testdata/service-inspect-new.json")).unwrap();
        assert_eq!((new.release.as_str(), new.update.is_none()), ("rs-staging-1", true));
        let updating = Service::parse(include_str!("testdata/service-inspect-updating.json")).unwrap();
        assert_eq!(updating.release, "rs-staging-2");
        assert_eq!(updating.update.as_ref().unwrap().state, "updating");
        let done = Service::parse(include_str!("testdata/service-inspect.json")).unwrap();
        let update = done.update.as_ref().unwrap();
        assert_eq!((update.state.as_str(), update.message.as_str()), ("completed", "update completed"));
        assert!(update.completed_at.starts_with("2026-12-04T12:21:16"), "{update:?}");
        let notes = report(&Some(done), include_str!("testdata/service-ps.jsonl"), "fx-host Ready Active", None);
        let tasks: Vec<&String> = notes.iter().filter(|n| n.starts_with("  task ")).collect();
        assert_eq!(tasks.len(), 2, "the two running tasks, not the shut-down ones: {notes:?}");
        assert!(tasks[0].starts_with("  task st_app.1 on fx-host: Running"), "{notes:?}");
        assert_eq!(Service::parse(""), None, "no service");
    }

    #[test]
    fn swarm_commands_are_these_words() {
        assert_eq!(is_manager().join(" "), "docker info --format {{.Swarm.ControlAvailable}}");
        assert_eq!(nodes().join(" "), "docker node ls --format {{.Hostname}} {{.Status}} {{.Availability}}");
        assert_eq!(
            inspect_service("s_app").join(" "),
            "docker service inspect --format {\"Image\":{{json .Spec.TaskTemplate.ContainerSpec.Image}},\
             \"Labels\":{{json .Spec.Labels}},\"UpdateStatus\":{{json .UpdateStatus}}} s_app"
        );
        assert_eq!(tasks("s_app", false).join(" "), "docker service ps --no-trunc --format {{json .}} s_app");
        assert_eq!(tasks("s_app", true).join(" "), "docker service ps --no-trunc s_app");
        assert_eq!(
            proxy_test("nginx:1"),
            [
                "docker",
                "run",
                "--rm",
                "--interactive",
                "--entrypoint",
                "sh",
                "nginx:1",
                "-c",
                "cat > /etc/nginx/conf.d/default.conf && exec nginx -t -q"
            ]
        );
        assert_eq!(
            stack_deploy(&["IMAGE=i".into(), "RELEASE=r".into()], "st").join(" "),
            "env IMAGE=i RELEASE=r docker stack deploy --with-registry-auth --compose-file - st"
        );
    }

    #[test]
    fn the_environment_serves_when_the_proxy_answers_from_the_services_release_on_every_replica() {
        let s = Service::parse(include_str!("testdata/service-inspect.json"));
        let tasks = include_str!("testdata/service-ps.jsonl");
        assert_eq!(judge_serving("st", Some("rs-staging-2"), s.as_ref(), tasks, 2), Ok(()));
        let short = judge_serving("st", Some("rs-staging-2"), s.as_ref(), tasks, 3).unwrap_err();
        assert!(short.starts_with("2 of 3 tasks of rs-staging-2 run"), "{short}");
        assert!(judge_serving("st", Some("rs-staging-1"), s.as_ref(), tasks, 2)
            .unwrap_err()
            .contains("the service runs rs-staging-2"));
        assert!(judge_serving("st", None, s.as_ref(), tasks, 2).unwrap_err().starts_with("nothing answers"));
        assert!(judge_serving("st", None, None, "", 2).unwrap_err().contains("`cargo xtask deploy st` makes it"));
    }

    #[test]
    fn replicas_spread_so_that_no_node_holds_them_all_while_another_is_ready() {
        let place = |replicas, ready| placement(replicas, ready).map(|p| (p.max_per_node, p.start_first));
        assert_eq!(place(2, 3), Some((2, true)), "room for the extra task on the two nodes left if one is lost");
        assert_eq!(place(2, 2), Some((1, false)), "no spare: one a node, stop-first");
        assert_eq!(place(1, 2), Some((1, true)), "one replica: the other node is the spare");
        assert_eq!(place(2, 1), Some((3, true)), "one node holds them all, and the update's extra task");
        assert_eq!(place(3, 2), Some((2, true)));
        assert_eq!(place(5, 3), Some((3, true)));
        assert_eq!(place(2, 0), None);
        for replicas in 1..8 {
            for ready in 2..6 {
                let p = placement(replicas, ready).unwrap();
                if ready == 2 && replicas > 1 {
                    assert!(p.max_per_node < replicas, "{replicas} on {ready}: a node could hold them all");
                }
                let room = p.max_per_node * ready;
                assert!(
                    room >= replicas + u32::from(p.start_first),
                    "{replicas} on {ready}: {p:?} cannot place the update"
                );
                if ready >= 3 {
                    let after_a_loss = p.max_per_node * (ready - 1);
                    assert!(after_a_loss > replicas, "{replicas} on {ready}: {p:?} waits for a node lost mid-update");
                }
            }
        }
        let tasks = [
            task("a.1", "n1", "Running", "Running 5 seconds ago"),
            task("a.2", "n3", "Running", "Running 1 minute ago"),
        ];
        let down = "n1 Ready Active\nn3 Down Active";
        assert_eq!(unsettled(&tasks.join("\n"), down), ["a.2 on n3 (Running 1 minute ago)"]);
        assert!(unsettled(&tasks.join("\n"), NODES).is_empty(), "every node is Ready");
        let moved = [
            task("a.2", "n3", "Shutdown", "Running 1 minute ago"),
            task("a.2", "n1", "Running", "Starting 1 second ago"),
        ];
        assert_eq!(unsettled(&moved.join("\n"), down), ["a.2 on n1 (Starting 1 second ago)"], "moved, not serving yet");
        let delayed =
            [task("a.2", "n3", "Shutdown", "Running 1 minute ago"), task("a.2", "n1", "Ready", "Ready 1 second ago")];
        assert_eq!(unsettled(&delayed.join("\n"), down), ["a.2 on n1 (Ready 1 second ago)"], "in its restart delay");
        let served = [
            task("a.2", "n3", "Shutdown", "Running 1 minute ago"),
            task("a.2", "n1", "Running", "Running 1 second ago"),
        ];
        assert!(unsettled(&served.join("\n"), down).is_empty(), "moved and serving");
        assert!(unsettled(&moved.join("\n"), NODES).is_empty(), "no node is Down: nothing to wait for");
        let mut no_node = task("a.2", "", "Running", "Pending 5 seconds ago");
        no_node =
            no_node.replace("\"Error\":\"\"", "\"Error\":\"no suitable node (max replicas per node limit exceed)\"");
        assert!(unsettled(&no_node, down).is_empty(), "a task with no node to go to waits for a change, not for time");
        assert_eq!(ready_nodes("m1 Ready Active\nw1 Down Active\nw2 Ready Drain\nw3 Ready Active\n"), 2);
    }
}
