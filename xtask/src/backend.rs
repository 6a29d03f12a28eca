//! The backend (`expungeservice`): its dev image, container, logs, tests and lock file.

use crate::cli::Backend;
use crate::images::{self, DevImage};
use crate::plan::{Action, Plan};
use crate::project::Project;
use crate::stack;

pub fn plan(p: &Project, command: &Backend) -> Plan {
    match command {
        Backend::BackendBuild => images::dev_image_plan(p, DevImage::Backend),
        Backend::BackendReload => reload(p),
        Backend::BackendLogs => stack::logs(p, &p.config.services.backend),
        Backend::BackendTest { watch, args } => stack::backend_test(p, *watch, args),
        Backend::BackendLock => lock(p),
    }
}

/// Recreates the backend container (picks up a rebuilt image or changed settings).
fn reload(p: &Project) -> Plan {
    let backend = &p.config.services.backend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .step(
            &format!("Recreate {backend}"),
            Action::Run(p.compose(&["up", "--detach", "--no-deps", "--force-recreate", backend.as_str()])),
        )
        .step(&format!("Wait for {backend} (health check)"), stack::wait_backend(p));
    plan
}

/// Locks the backend's dependencies (Pipfile.lock) with pipenv in a throwaway container.
fn lock(p: &Project) -> Plan {
    let backend = &p.config.services.backend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).step(
        "Lock the backend's dependencies (writes src/backend/Pipfile.lock)",
        Action::Run(p.compose(&["run", "--rm", "--no-deps", backend.as_str(), "pipenv", "lock"]).quiet()),
    );
    plan
}
