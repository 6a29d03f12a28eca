//! The frontend (`node` service): the dev server, its build, tests and logs.

use crate::cli::Frontend;
use crate::images::{self, DevImage};
use crate::plan::{Action, Plan};
use crate::project::Project;

pub fn plan(p: &Project, command: &Frontend) -> Plan {
    match command {
        Frontend::FrontendBuild => build(p),
        Frontend::FrontendImage => images::dev_image_plan(p, "frontend-image", DevImage::Frontend),
        Frontend::FrontendClean => clean(p),
        Frontend::FrontendDown => down(p),
        Frontend::FrontendLogs => crate::backend::logs(p, "frontend-logs", &p.config.services.frontend),
        Frontend::FrontendRestart => restart(p),
        Frontend::FrontendTest => test(p, true),
        Frontend::FrontendTestNoWatch => test(p, false),
    }
}

/// `npm run build` in a throwaway container sharing the node_modules volume (filled from the
/// frontend's dev image when new).
pub fn build(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan("frontend-build");
    plan.checks(p.compose_checks())
        .step(
            &format!("Ensure the image {} (node_modules)", p.config.images.frontend_dev),
            images::ensure_dev(p, DevImage::Frontend),
        )
        .step(
            "Build the frontend",
            Action::Run(p.compose(&["run", "--rm", "--no-deps", node.as_str(), "npm", "run", "build"])),
        )
        .hint(
            "if package-lock.json changed since node_modules was filled: \
             `cargo xtask frontend-image`, then `cargo xtask frontend-clean`, then retry",
        );
    plan
}

/// Removes the frontend container, its node_modules volume and the build output.
fn clean(p: &Project) -> Plan {
    let c = &p.config;
    let volume = format!("{}_node_modules", c.compose.project);
    let mut plan = p.plan("frontend-clean");
    plan.checks(p.compose_checks())
        .step(
            &format!("Remove the {} container", c.services.frontend),
            Action::Run(p.compose(&["rm", "--stop", "--force", c.services.frontend.as_str()])),
        )
        .step(
            &format!("Remove the volume {volume}"),
            Action::Run(p.cmd("docker").args(&["volume", "rm", "--force", &volume])),
        )
        .step("Remove the frontend build", Action::RemoveDir(p.path(&c.paths.frontend_build)));
    plan
}

fn down(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan("frontend-down");
    plan.checks(p.compose_checks()).step(
        &format!("Stop and remove the {node} container"),
        Action::Run(p.compose(&["rm", "--stop", "--force", node.as_str()])),
    );
    plan
}

fn restart(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan("frontend-restart");
    plan.checks(p.compose_checks())
        .step(&format!("Restart {node}"), Action::Run(p.compose(&["restart", node.as_str()])));
    plan
}

/// The frontend tests in the node container: watching, or once (`CI=true`).
pub fn test(p: &Project, watch: bool) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan(if watch { "frontend-test" } else { "frontend-test-no-watch" });
    plan.checks(p.compose_checks()).check(p.running_check(node));
    if watch {
        plan.step(
            "Frontend tests, rerun on every change (Ctrl-C stops)",
            Action::Run(p.exec(&[], node, true, &["npm", "test"])),
        );
    } else {
        plan.step("Frontend tests (once)", Action::Run(p.exec(&["-e", "CI=true"], node, false, &["npm", "test"])));
    }
    plan
}
