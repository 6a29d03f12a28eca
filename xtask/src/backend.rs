//! The backend (`expungeservice`): its dev image, container, logs, tests and lock file.

use crate::cli::Backend;
use crate::images::{self, DevImage};
use crate::plan::{Action, Plan};
use crate::project::Project;

pub fn plan(p: &Project, command: &Backend) -> Plan {
    match command {
        Backend::BackendBuild => images::dev_image_plan(p, "backend-build", DevImage::Backend),
        Backend::BackendReload => reload(p),
        Backend::BackendLogs => logs(p, "backend-logs", &p.config.services.backend),
        Backend::BackendTest { watch, args } => test(p, *watch, args),
        Backend::BackendLock => lock(p),
    }
}

/// Recreates the backend container (picks up a rebuilt image or changed settings).
fn reload(p: &Project) -> Plan {
    let backend = &p.config.services.backend;
    let mut plan = p.plan("backend-reload");
    plan.checks(p.compose_checks())
        .step(
            &format!("Recreate {backend}"),
            Action::Run(p.compose(&["up", "--detach", "--no-deps", "--force-recreate", backend.as_str()])),
        )
        .step(&format!("Wait for {backend} (health check)"), crate::dev::wait_backend(p));
    plan
}

/// Follows a service's logs until Ctrl-C.
pub fn logs(p: &Project, command: &str, service: &str) -> Plan {
    let mut plan = p.plan(command);
    plan.checks(p.compose_checks()).step(
        &format!("Follow the logs of {service} (Ctrl-C stops)"),
        Action::Run(p.compose(&["logs", "--follow", "--tail", "100", service]).terminal(true)),
    );
    plan
}

/// The backend's type check and tests in its container, pytest with `args`; `watch` reruns
/// the tests on change.
pub fn test(p: &Project, watch: bool, args: &[String]) -> Plan {
    let backend = &p.config.services.backend;
    let words: &[&str] = if watch { &["backend-test", "--watch"] } else { &["backend-test"] };
    let mut plan = p.plan_with_args(words, args);
    plan.checks(p.compose_checks()).check(p.running_check(backend));
    let pytest: Vec<&str> = std::iter::once("pytest").chain(args.iter().map(String::as_str)).collect();
    if watch {
        // watchfiles runs its target (one string, split as a shell would) on every change.
        let target = crate::cmd::sh_join(&pytest);
        plan.step(
            "Rerun the backend tests on every change (Ctrl-C stops)",
            Action::Run(p.exec(&[], backend, true, &["watchfiles", &target, "."])),
        );
    } else {
        plan.step("Backend type check (mypy)", Action::Run(p.exec(&[], backend, false, &["mypy"])))
            .step("Backend tests (pytest)", Action::Run(p.exec(&[], backend, false, &pytest)));
    }
    plan
}

/// Locks the backend's dependencies (Pipfile.lock) with pipenv in a throwaway container.
fn lock(p: &Project) -> Plan {
    let backend = &p.config.services.backend;
    let mut plan = p.plan("backend-lock");
    plan.checks(p.compose_checks()).step(
        "Lock the backend's dependencies (writes src/backend/Pipfile.lock)",
        Action::Run(p.compose(&["run", "--rm", "--no-deps", backend.as_str(), "pipenv", "lock"]).quiet()),
    );
    plan
}
