//! The frontend (`node` service): the Vite dev server, its build, tests and logs.

use crate::images::DevImage;
use crate::plan::{Action, Plan};
use crate::project::Project;

impl Project {
    /// `npm run build` in a throwaway container sharing the node_modules volume (filled from the
    /// frontend's dev image when new).
    pub fn frontend_build(&self) -> Plan {
        let node = &self.config.services.frontend;
        let mut plan = self.plan("frontend-build");
        plan.checks(self.compose_checks())
            .step(
                &format!("Ensure the image {} (node_modules)", self.config.images.frontend_dev),
                self.ensure_dev_image(DevImage::Frontend),
            )
            .step(
                "Build the frontend",
                Action::Run(self.compose(&["run", "--rm", "--no-deps", node.as_str(), "npm", "run", "build"])),
            )
            .hint(
                "if package-lock.json changed since node_modules was filled: \
                 `cargo xtask frontend-image`, then `cargo xtask frontend-clean`, then retry",
            );
        plan
    }

    /// Removes the frontend container, its node_modules volume and the build output.
    pub fn frontend_clean(&self) -> Plan {
        let c = &self.config;
        let volume = format!("{}_node_modules", c.compose.project);
        let mut plan = self.plan("frontend-clean");
        plan.checks(self.compose_checks())
            .step(
                &format!("Remove the {} container", c.services.frontend),
                Action::Run(self.compose(&["rm", "--stop", "--force", c.services.frontend.as_str()])),
            )
            .step(
                &format!("Remove the volume {volume}"),
                Action::Run(self.cmd("docker").args(&["volume", "rm", "--force", &volume])),
            )
            .step("Remove the frontend build", Action::RemoveDir(self.path(&self.config.paths.frontend_build)));
        plan
    }

    pub fn frontend_down(&self) -> Plan {
        let node = &self.config.services.frontend;
        let mut plan = self.plan("frontend-down");
        plan.checks(self.compose_checks()).step(
            &format!("Stop and remove the {node} container"),
            Action::Run(self.compose(&["rm", "--stop", "--force", node.as_str()])),
        );
        plan
    }

    pub fn frontend_logs(&self) -> Plan {
        self.logs("frontend-logs", &self.config.services.frontend)
    }

    pub fn frontend_restart(&self) -> Plan {
        let node = &self.config.services.frontend;
        let mut plan = self.plan("frontend-restart");
        plan.checks(self.compose_checks())
            .step(&format!("Restart {node}"), Action::Run(self.compose(&["restart", node.as_str()])));
        plan
    }

    /// The frontend tests in the node container: watching, or once (`CI=true`).
    pub fn frontend_test(&self, watch: bool) -> Plan {
        let node = &self.config.services.frontend;
        let mut plan = self.plan(if watch { "frontend-test" } else { "frontend-test-no-watch" });
        plan.checks(self.compose_checks()).check(self.running_check(node));
        if watch {
            plan.step(
                "Frontend tests, rerun on every change (Ctrl-C stops)",
                Action::Run(self.exec(&[], node, true, &["npm", "test"])),
            );
        } else {
            plan.step(
                "Frontend tests (once)",
                Action::Run(self.exec(&["-e", "CI=true"], node, false, &["npm", "test"])),
            );
        }
        plan
    }
}
