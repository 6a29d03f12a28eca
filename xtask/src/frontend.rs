//! The frontend (`node` service): the dev server, its build, tests and logs.

use crate::cli::Frontend;
use crate::cmd::Cmd;
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
        Frontend::FrontendTest { args } => test(p, true, args),
        Frontend::FrontendTestNoWatch { args } => test(p, false, args),
    }
}

/// `npm run build` in a throwaway container sharing the node_modules volume (filled from the
/// frontend's dev image when new).
pub fn build(p: &Project) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan("frontend-build");
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
        .check(p.running_check(node))
        .step(&format!("Restart {node}"), Action::Run(p.compose(&["restart", node.as_str()])));
    plan
}

/// The frontend tests in the node container, `npm test -- ARGS`: watching, or once (`CI=true`).
pub fn test(p: &Project, watch: bool, args: &[String]) -> Plan {
    let node = &p.config.services.frontend;
    let mut plan = p.plan_with_args(&[if watch { "frontend-test" } else { "frontend-test-no-watch" }], args);
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
