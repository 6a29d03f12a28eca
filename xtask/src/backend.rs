//! The backend (`expungeservice`): its dev image, container, logs, tests and lock file.

use crate::plan::{Action, Plan};
use crate::project::Project;

impl Project {
    /// Recreates the backend container (picks up a rebuilt image or changed settings).
    pub fn backend_reload(&self) -> Plan {
        let backend = &self.config.services.backend;
        let mut plan = self.plan("backend-reload");
        plan.checks(self.compose_checks())
            .step(
                &format!("Recreate {backend}"),
                Action::Run(self.compose(&["up", "--detach", "--no-deps", "--force-recreate", backend.as_str()])),
            )
            .step(&format!("Wait for {backend} (health check)"), self.wait_backend());
        plan
    }

    pub fn backend_logs(&self) -> Plan {
        self.logs("backend-logs", &self.config.services.backend)
    }

    /// Follows a service's logs until Ctrl-C.
    pub fn logs(&self, command: &str, service: &str) -> Plan {
        let mut plan = self.plan(command);
        plan.checks(self.compose_checks()).step(
            &format!("Follow the logs of {service} (Ctrl-C stops)"),
            Action::Run(self.compose(&["logs", "--follow", "--tail", "100", service]).terminal(true)),
        );
        plan
    }

    /// The backend's type check and tests in its container; `watch` reruns the tests on change.
    pub fn backend_test(&self, watch: bool) -> Plan {
        let backend = &self.config.services.backend;
        let mut plan = self.plan(if watch { "backend-test --watch" } else { "backend-test" });
        plan.checks(self.compose_checks()).check(self.running_check(backend));
        if watch {
            plan.step(
                "Rerun the backend tests on every change (Ctrl-C stops)",
                Action::Run(self.exec(&[], backend, true, &["watchfiles", "pytest", "."])),
            );
        } else {
            plan.step("Backend type check (mypy)", Action::Run(self.exec(&[], backend, false, &["mypy"])))
                .step("Backend tests (pytest)", Action::Run(self.exec(&[], backend, false, &["pytest"])));
        }
        plan
    }

    /// Locks the backend's dependencies (Pipfile.lock) with pipenv in a throwaway container.
    pub fn backend_lock(&self) -> Plan {
        let backend = &self.config.services.backend;
        let mut plan = self.plan("backend-lock");
        plan.checks(self.compose_checks()).step(
            "Lock the backend's dependencies (writes src/backend/Pipfile.lock)",
            Action::Run(self.compose(&["run", "--rm", "--no-deps", backend.as_str(), "pipenv", "lock"])),
        );
        plan
    }
}
