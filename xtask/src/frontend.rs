//! The frontend (`node` service): the dev server, its build, tests and logs.

use crate::cli::Frontend;
use crate::images::{self, DevImage};
use crate::plan::{Action, Fs, Plan};
use crate::project::Project;
use crate::stack;

pub fn plan(p: &Project, command: &Frontend) -> Plan {
    match command {
        Frontend::FrontendBuild => stack::frontend_build(p),
        Frontend::FrontendImage => images::dev_image_plan(p, DevImage::Frontend),
        Frontend::FrontendClean => clean(p),
        Frontend::FrontendDown => down(p),
        Frontend::FrontendLogs => stack::logs(p, &p.config.services.frontend),
        Frontend::FrontendRestart => restart(p),
        Frontend::FrontendTest { args } => stack::frontend_test(p, true, args),
        Frontend::FrontendTestNoWatch { args } => stack::frontend_test(p, false, args),
    }
}

/// Removes the frontend container, its node_modules volume and the build output.
fn clean(p: &Project) -> Plan {
    let c = &p.config;
    let volume = format!("{}_node_modules", c.compose.project);
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .step(
            &format!("Remove the {} container", c.services.frontend),
            Action::Run(p.compose(&["rm", "--stop", "--force", c.services.frontend.as_str()])),
        )
        .step(
            &format!("Remove the volume {volume}"),
            Action::Run(p.cmd("docker").args(&["volume", "rm", "--force", &volume])),
        )
        .step("Remove the frontend build", Action::Fs(Fs::RemoveDir(p.path(&c.paths.frontend_build))));
    plan
}

fn down(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).step(
        &format!("Stop and remove the {node} container"),
        Action::Run(p.compose(&["rm", "--stop", "--force", node.as_str()])),
    );
    plan
}

fn restart(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .check(p.running_check(node))
        .step(&format!("Restart {node}"), Action::Run(p.compose(&["restart", node.as_str()])));
    plan
}
