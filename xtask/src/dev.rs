//! The local dev environment (was the root Makefile): the compose stack of database, backend
//! and frontend dev server.

use std::time::Duration;

use crate::checks::{registry_of, Check};
use crate::engine::EngineSetup;
use crate::images::DevImage;
use crate::plan::{Action, Plan};
use crate::project::Project;

/// The background `compose up` of `new`.
const STACK_START: &str = "start of the stack";

impl Project {
    pub fn plan(&self, command: &str) -> Plan {
        Plan::new(&format!("cargo xtask {command}"), &self.root)
    }

    fn readiness_timeout(&self) -> Duration {
        Duration::from_secs(self.config.readiness.timeout)
    }

    /// Preconditions of starting the stack: compose, the files it reads, the ports it publishes.
    pub fn stack_checks(&self) -> Vec<Check> {
        let mut checks = self.compose_checks();
        checks.extend(self.host_checks());
        checks
    }

    /// The files the compose file reads and the ports it publishes (no Docker needed to check them).
    fn host_checks(&self) -> Vec<Check> {
        let c = &self.config;
        let mut checks = Vec::new();
        for file in &c.compose.env_files {
            checks.push(Check::File {
                path: self.path(file),
                what: "an env file the compose file reads".into(),
                fix: format!("restore it: `git checkout -- {}`", file.display()),
            });
        }
        for (port, service) in [(c.ports.backend, &c.services.backend), (c.ports.frontend, &c.services.frontend)] {
            checks.push(Check::PortFree {
                port,
                service: service.clone(),
                owner: self.compose(&["ps", "--services", "--filter", "status=running"]),
            });
        }
        checks
    }

    /// Waits until the database accepts TCP connections (not the init-time socket-only server).
    /// The probe is `docker exec`: `compose exec` would add its start-up to every poll.
    pub fn wait_database(&self) -> Action {
        let db = &self.config.services.database;
        Action::WaitIn {
            probe: self.service_exec(&["--user", "postgres"], db, &["pg_isready", "--quiet", "--host", "127.0.0.1"]),
            timeout: self.readiness_timeout(),
            service: db.clone(),
            logs: self.compose(&["logs", "--tail", "30", db.as_str()]),
        }
    }

    /// Waits until the backend's health check answers 200 (it does only when the database answers).
    pub fn wait_backend(&self) -> Action {
        let c = &self.config;
        Action::WaitHttp {
            port: c.ports.backend,
            path: c.readiness.health_path.clone(),
            timeout: self.readiness_timeout(),
            service: c.services.backend.clone(),
            logs: self.compose(&["logs", "--tail", "30", c.services.backend.as_str()]),
        }
    }

    fn wait_frontend(&self) -> Action {
        let c = &self.config;
        Action::WaitHttp {
            port: c.ports.frontend,
            path: "/".into(),
            timeout: self.readiness_timeout(),
            service: c.services.frontend.clone(),
            logs: self.compose(&["logs", "--tail", "30", c.services.frontend.as_str()]),
        }
    }

    fn initdb_step(&self, plan: &mut Plan) {
        let db = &self.config.database;
        plan.step(
            "Initialize the database (does nothing when it already is)",
            Action::RunIn(self.service_exec(
                &["--user", "postgres"],
                &self.config.services.database,
                &["bash", &db.init_script],
            )),
        );
    }

    /// `new`: images, the stack, the database initialized, and every service answering.
    pub fn new_env(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("new");
        if self.plan_engine_install(&mut plan) {
            // Docker's own checks would fail before the install: the install's wait checks the daemon.
            plan.checks(self.host_checks());
            if matches!(self.facts.engine, EngineSetup::Installable { sudo: true, .. }) {
                return plan;
            }
        } else {
            plan.checks(self.stack_checks());
        }
        plan.step(&format!("Ensure the image {}", c.images.postgres), self.ensure_base("postgres", &c.images.postgres))
            .step(&format!("Ensure the image {}", c.images.backend_dev), self.ensure_dev_image(DevImage::Backend))
            .step(&format!("Ensure the image {}", c.images.frontend_dev), self.ensure_dev_image(DevImage::Frontend))
            // In the background: creating the frontend's container fills a new node_modules volume
            // from its image, which takes seconds that the database's start and initialization
            // need not wait for. The waits below go on as soon as each service answers.
            .step(
                "Start the stack",
                Action::Background { name: STACK_START.into(), cmd: self.compose(&["up", "--detach"]) },
            )
            .hint("see what failed: cargo xtask compose logs")
            .step(&format!("Wait for {}", c.services.database), self.wait_database());
        self.initdb_step(&mut plan);
        plan.step(&format!("Wait for {} (health check)", c.services.backend), self.wait_backend())
            .step(
                &format!("Wait for {} (dev server)", c.services.frontend),
                Action::AfterBackground { name: STACK_START.into(), action: Box::new(self.wait_frontend()) },
            )
            .step("Done", Action::Say(self.summary()));
        plan
    }

    fn summary(&self) -> String {
        let c = &self.config;
        let mut text = format!(
            "RecordSponge is running:\n  app and API  http://localhost:{}\n  dev server   http://localhost:{} (reloads on change)\n",
            c.ports.backend, c.ports.frontend
        );
        if !c.database.seed_logins.is_empty() {
            text.push_str("Dev logins (seeded, dev only):\n");
            for login in &c.database.seed_logins {
                text.push_str(&format!("  {login}\n"));
            }
        }
        text.push_str(
            "Next: cargo xtask test (all tests), cargo xtask backend-logs, cargo xtask psql, \
             cargo xtask down (stops, keeps data); cargo xtask --help lists everything.",
        );
        text
    }

    /// Pulls the images of the database and the backend, and the node image the frontend's dev
    /// image is built from (that one is built here, from package-lock.json, and never pushed).
    pub fn pull(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("pull");
        plan.checks(self.compose_checks())
            .step(
                "Pull the stack's images",
                Action::Run(self.compose(&["pull", c.services.database.as_str(), c.services.backend.as_str()])),
            )
            .step(
                &format!("Pull the frontend's base image {}", c.images.node),
                Action::Run(self.cmd("docker").args(&["pull", c.images.node.as_str()])),
            );
        plan
    }

    pub fn up(&self) -> Plan {
        let mut plan = self.plan("up");
        plan.checks(self.stack_checks())
            .step("Start the stack", Action::Run(self.compose(&["up", "--detach"])))
            .step(&format!("Wait for {}", self.config.services.database), self.wait_database());
        plan
    }

    /// Stops and removes the containers; volumes (the database's data) stay.
    pub fn down(&self) -> Plan {
        let mut plan = self.plan("down");
        plan.checks(self.compose_checks()).step(
            "Stop and remove the stack's containers (volumes and data stay)",
            Action::Run(self.compose(&["down"])),
        );
        plan
    }

    pub fn clobber(&self) -> Plan {
        let mut plan = self.plan("clobber");
        plan.checks(self.compose_checks())
            .check(Check::Confirm {
                prompt: format!(
                    "remove the `{}` stack's containers AND volumes, deleting the database and node_modules",
                    self.config.compose.project
                ),
            })
            .step(
                "Remove the stack's containers, networks and volumes",
                Action::Run(self.compose(&["down", "--volumes", "--remove-orphans"])),
            );
        plan
    }

    /// Pushes the backend's dev image.
    pub fn push_dev(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("push");
        plan.checks(self.compose_checks())
            .check(Check::RegistryLogin { registry: registry_of(&c.images.backend_dev) })
            .step(
                &format!("Push the dev image {}", c.images.backend_dev),
                Action::Run(self.compose(&["push", c.services.backend.as_str()])),
            );
        plan
    }

    pub fn initdb(&self) -> Plan {
        let mut plan = self.plan("initdb");
        plan.checks(self.compose_checks())
            .check(self.running_check(&self.config.services.database))
            .step(&format!("Wait for {}", self.config.services.database), self.wait_database());
        self.initdb_step(&mut plan);
        plan
    }

    pub fn dropdb(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("dropdb");
        plan.checks(self.compose_checks())
            .check(self.running_check(&c.services.database))
            .check(Check::Confirm { prompt: format!("drop the database `{}` and all its data", c.database.name) })
            .step(
                &format!("Drop the database {}", c.database.name),
                Action::Run(self.exec(
                    &["-u", "postgres"],
                    &c.services.database,
                    false,
                    &["bash", &c.database.drop_script],
                )),
            );
        plan
    }

    pub fn psql(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("psql");
        plan.checks(self.compose_checks()).check(self.running_check(&c.services.database)).step(
            &format!("psql on {}", c.database.name),
            Action::Run(self.exec(&["-u", "postgres"], &c.services.database, true, &["psql", "-d", &c.database.name])),
        );
        plan
    }

    /// Removes caches (Python bytecode, mypy/pytest/ruff caches) under the configured directories.
    pub fn clean(&self) -> Plan {
        let c = &self.config.clean;
        let mut plan = self.plan("clean");
        plan.step(
            "Remove caches",
            Action::Clean {
                under: c.under.iter().map(|d| self.path(d)).collect(),
                names: c.names.clone(),
                extensions: c.extensions.clone(),
                skip: vec!["node_modules".into(), ".git".into()],
            },
        );
        plan
    }

    /// Frontend tests once, then the backend's type check and tests.
    pub fn test(&self) -> Plan {
        let mut plan = self.plan("test");
        plan.extend(self.frontend_test(false)).extend(self.backend_test(false));
        plan
    }

    /// Style checks and type checks of backend and frontend.
    pub fn lint(&self) -> Plan {
        let c = &self.config;
        let mut plan = self.plan("lint");
        plan.checks(self.compose_checks())
            .check(self.running_check(&c.services.backend))
            .check(self.running_check(&c.services.frontend))
            .step(
                "Backend style check (ruff)",
                Action::Run(self.exec(&[], &c.services.backend, false, &["ruff", "check", "."])),
            )
            .step("Backend type check (mypy)", Action::Run(self.exec(&[], &c.services.backend, false, &["mypy"])))
            .step(
                "Frontend lint (eslint)",
                Action::Run(self.exec(&[], &c.services.frontend, false, &["npm", "run", "lint"])),
            );
        plan
    }

    /// Any compose command, with the project's file, project name and variables.
    pub fn compose_passthrough(&self, args: &[String]) -> Plan {
        let mut plan = self.plan(&format!("compose {}", crate::quote::sh_join(args)));
        plan.checks(self.compose_checks()).step("compose", Action::Run(self.compose(args).terminal(true)));
        plan
    }
}
