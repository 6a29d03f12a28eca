//! What the dev stack's command families share: the waits for its services, following a
//! service's logs, the test runs in its containers, and the frontend's production builds.

use std::time::Duration;

use crate::cmd::Cmd;
use crate::images::{self, DevImage};
use crate::plan::{Action, Plan, Probe, Wait};
use crate::project::Project;

/// Whether this machine has the dev stack: a container or volume of its compose project (`new`
/// made it; `clobber` removes it). No when docker does not answer.
pub fn exists(p: &Project) -> bool {
    let label = format!("label=com.docker.compose.project={}", p.config.compose.project);
    let listed = |what: &[&str]| {
        let cmd = p.cmd("docker").args(what).args(&["--quiet", "--filter", &label]);
        crate::process::output(&cmd).is_ok_and(|out| !out.trim().is_empty())
    };
    listed(&["ps", "--all"]) || listed(&["volume", "ls"])
}

fn readiness_timeout(p: &Project) -> Duration {
    Duration::from_secs(p.config.readiness.timeout)
}

/// Waits until the database accepts TCP connections (not the init-time socket-only server).
/// The probe is `docker exec`: `compose exec` would add its start-up to every poll.
pub fn wait_database(p: &Project) -> Action {
    let db = &p.config.services.database;
    Action::wait(Wait {
        probe: Probe::In(Box::new(p.service_exec(
            &["--user", "postgres"],
            db,
            &["pg_isready", "--quiet", "--host", "127.0.0.1"],
        ))),
        timeout: readiness_timeout(p),
        service: db.clone(),
        logs: p.compose(&["logs", "--tail", "30", db.as_str()]),
        states: Some(p.service_states(db)),
    })
}

/// Waits until `GET http://127.0.0.1:PORT/PATH` of a service answers 200.
fn wait_http(p: &Project, service: &str, port: u16, path: &str) -> Action {
    Action::wait(Wait {
        probe: Probe::Http { port, path: path.to_string() },
        timeout: readiness_timeout(p),
        service: service.to_string(),
        logs: p.compose(&["logs", "--tail", "30", service]),
        states: Some(p.service_states(service)),
    })
}

/// Waits until the backend's health check answers 200 (it does only when the database answers).
pub fn wait_backend(p: &Project) -> Action {
    let c = &p.config;
    wait_http(p, &c.services.backend, c.ports.backend, &c.readiness.health_path)
}

/// Waits until the frontend's dev server answers.
pub fn wait_frontend(p: &Project) -> Action {
    let c = &p.config;
    wait_http(p, &c.services.frontend, c.ports.frontend, "/")
}

/// Follows a service's logs until Ctrl-C.
pub fn logs(p: &Project, service: &str) -> Plan {
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).step(
        &format!("Follow the logs of {service} (Ctrl-C stops)"),
        Action::Run(p.compose(&["logs", "--follow", "--tail", "100", service]).terminal(true)),
    );
    plan
}

/// The backend's type check and tests in its container, pytest with `args`; `watch` reruns
/// the tests on change.
pub fn backend_test(p: &Project, watch: bool, args: &[String]) -> Plan {
    let backend = &p.config.services.backend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(p.running_check(backend));
    let pytest: Vec<&str> = std::iter::once("pytest").chain(args.iter().map(String::as_str)).collect();
    if watch {
        // watchfiles runs its target (one string, split as a shell would) on every change.
        let target = crate::cmd::sh_join(&pytest);
        plan.step(
            "Rerun the backend tests on every change (Ctrl-C stops)",
            Action::Run(p.watch(backend, &["watchfiles", &target, "."])),
        );
    } else {
        plan.step("Backend type check (mypy)", Action::Run(p.exec(&[], backend, false, &["mypy"])))
            .step("Backend tests (pytest)", Action::Run(p.exec(&[], backend, false, &pytest)));
    }
    plan
}

/// The frontend tests in the node container, `npm test -- ARGS`: watching, or once (`CI=true`).
pub fn frontend_test(p: &Project, watch: bool, args: &[String]) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(p.running_check(node)).check(p.npm_script("test", "the frontend tests"));
    let mut npm = vec!["npm", "test"];
    if !args.is_empty() {
        npm.push("--");
        npm.extend(args.iter().map(String::as_str));
    }
    if watch {
        plan.step(
            "Frontend tests, rerun on every change on a terminal (Ctrl-C stops; elsewhere once)",
            Action::Run(p.exec(&[], node, true, &npm)),
        );
    } else {
        plan.step("Frontend tests (once)", Action::Run(p.exec(&["-e", "CI=true"], node, false, &npm)));
    }
    plan
}

/// `npm run build` in a throwaway container sharing the node_modules volume (filled from the
/// frontend's dev image when new).
pub fn frontend_build(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .check(p.npm_script("build", "`cargo xtask frontend-build`"))
        .step(
            &format!("Ensure the image {} (node_modules)", p.config.images.frontend_dev),
            images::ensure_dev(p, DevImage::Frontend),
        )
        .step(
            "Build the frontend",
            Action::Run(p.compose(&["run", "--rm", "--no-deps", node.as_str(), "npm", "run", "build"]).quiet()),
        )
        .hint(
            "if package-lock.json changed since node_modules was filled: \
             `cargo xtask frontend-image`, then `cargo xtask frontend-clean`, then retry",
        );
    plan
}

/// `npm run build` in a container of the frontend's dev image that is removed afterwards, with
/// its own node_modules (an anonymous volume filled from the image): no node container, no
/// node_modules volume of the stack (the backend-only way of working).
pub fn throwaway_build(p: &Project) -> Cmd {
    let source = format!("{}:/src/frontend", p.path(&p.config.paths.frontend).display());
    p.cmd("docker")
        .args(&[
            "run",
            "--rm",
            "--volume",
            &source,
            "--volume",
            "/src/frontend/node_modules",
            "--workdir",
            "/src/frontend",
        ])
        .args(&[p.config.images.frontend_dev.as_str(), "npm", "run", "build"])
        .quiet()
}
