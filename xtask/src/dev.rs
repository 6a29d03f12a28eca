//! The local dev environment (was the root Makefile): the compose stack of database, backend
//! and frontend dev server.

use crate::checks::{registry_of, Check};
use crate::cli::Dev;
use crate::engine;
use crate::images::{self, DevImage};
use crate::plan::{Action, Fs, Plan};
use crate::project::{EngineSetup, Project};
use crate::stack::{self, wait_backend, wait_database, wait_frontend};

/// The background `compose up` of `new`.
const STACK_START: &str = "start of the stack";

/// The plan of a dev command; `push ENV` (the deployable image) is the release family's.
pub fn plan(p: &Project, command: &Dev) -> Plan {
    match command {
        Dev::New { backend_only } => new(p, which(*backend_only)),
        Dev::Pull => pull(p),
        Dev::Up { backend_only } => up(p, which(*backend_only)),
        Dev::Down => down(p),
        Dev::Clobber => clobber(p),
        Dev::Push { .. } => push(p),
        Dev::Initdb => initdb(p),
        Dev::Dropdb => dropdb(p),
        Dev::Psql { args } => psql(p, args),
        Dev::Clean => clean(p),
        Dev::Test => test(p),
        Dev::Lint { watch } => lint(p, *watch),
    }
}

fn which(backend_only: bool) -> Stack {
    if backend_only {
        Stack::BackendOnly
    } else {
        Stack::Full
    }
}

/// Preconditions of starting the stack (all of it, or the backend and its database):
/// compose, the files it reads, the ports it publishes.
fn stack_checks(p: &Project, stack: Stack) -> Vec<Check> {
    let mut checks = p.compose_checks();
    checks.extend(host_checks(p, stack));
    checks
}

/// Which services a command starts: all of them (the frontend's dev server with hot reload), or
/// only the database and the backend, which then serves the frontend's production build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Full,
    BackendOnly,
}

/// The files the compose file reads and the ports it publishes (no Docker needed to check them).
fn host_checks(p: &Project, stack: Stack) -> Vec<Check> {
    let c = &p.config;
    let mut checks = Vec::new();
    for file in &c.compose.env_files {
        checks.push(Check::File {
            path: p.path(file),
            what: "an env file the compose file reads".into(),
            fix: format!("restore it: `git checkout -- {}`", file.display()),
        });
    }
    let mut published = vec![(c.ports.backend, &c.services.backend)];
    if stack == Stack::Full {
        checks.push(p.npm_script("start", "the dev server (config/compose.yml)"));
        published.push((c.ports.frontend, &c.services.frontend));
    }
    for (port, service) in published {
        checks.push(Check::PortFree {
            port,
            service: service.clone(),
            owner: p.compose(&["ps", "--services", "--filter", "status=running"]),
        });
    }
    checks
}

/// `compose up --detach`, of every service or of the backend and its database.
fn up_cmd(p: &Project, stack: Stack) -> crate::cmd::Cmd {
    let c = &p.config;
    match stack {
        Stack::Full => p.compose(&["up", "--detach"]),
        Stack::BackendOnly => p.compose(&["up", "--detach", c.services.database.as_str(), c.services.backend.as_str()]),
    }
}

fn initdb_step(p: &Project, plan: &mut Plan) {
    let db = &p.config.database;
    plan.step(
        "Initialize the database (does nothing when it already is)",
        Action::RunIn(p.service_exec(&["--user", "postgres"], &p.config.services.database, &["bash", &db.init_script])),
    );
}

/// `new`: images, the stack, the database initialized, and every service answering; with
/// `--backend-only`, the database and the backend, which serves the frontend's production build
/// (built once, when there is none).
fn new(p: &Project, stack: Stack) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    if engine::plan_install(p, &mut plan) {
        // Docker's own checks would fail before the install: the install's wait checks the daemon.
        plan.checks(host_checks(p, stack));
        if matches!(p.facts.engine, EngineSetup::Installable { sudo: true, .. }) {
            return plan;
        }
    } else {
        plan.checks(stack_checks(p, stack));
    }
    plan.step(
        &format!("Ensure the image {}", c.images.postgres),
        images::ensure_base(p, "postgres", &c.images.postgres),
    )
    .step(&format!("Ensure the image {}", c.images.backend_dev), images::ensure_dev(p, DevImage::Backend));
    match stack {
        Stack::Full => {
            plan.step(
                &format!("Ensure the image {}", c.images.frontend_dev),
                images::ensure_dev(p, DevImage::Frontend),
            );
        }
        Stack::BackendOnly => build_once(p, &mut plan),
    }
    // In the background: creating the frontend's container fills a new node_modules volume
    // from its image, which takes seconds that the database's start and initialization
    // need not wait for. The waits below go on as soon as each service answers.
    plan.step("Start the stack", Action::Background { name: STACK_START.into(), cmd: up_cmd(p, stack) })
        .hint("see what failed: cargo xtask compose logs")
        .step(&format!("Wait for {}", c.services.database), wait_database(p));
    initdb_step(p, &mut plan);
    plan.step(&format!("Wait for {} (health check)", c.services.backend), wait_backend(p));
    if stack == Stack::Full {
        plan.step(
            &format!("Wait for {} (dev server)", c.services.frontend),
            Action::AfterBackground { name: STACK_START.into(), action: Box::new(wait_frontend(p)) },
        );
    }
    plan.step("Done", Action::Say(summary(p, stack)));
    plan
}

fn summary(p: &Project, stack: Stack) -> String {
    let c = &p.config;
    let mut text = match stack {
        Stack::Full => format!(
            "RecordSponge is running:\n  app          http://localhost:{} (the dev server: reloads on change)\n  API          \
             http://localhost:{}\n",
            c.ports.frontend, c.ports.backend
        ),
        Stack::BackendOnly => format!(
            "RecordSponge's backend is running:\n  app and API  http://localhost:{} (the frontend's production build; \
             `cargo xtask frontend-build` rebuilds it)\n",
            c.ports.backend
        ),
    };
    if !c.database.seed_logins.is_empty() {
        text.push_str("Dev logins (seeded, dev only):\n");
        for login in &c.database.seed_logins {
            text.push_str(&format!("  {login}\n"));
        }
    }
    let tests = match stack {
        Stack::Full => "cargo xtask test (all tests)",
        Stack::BackendOnly => "cargo xtask backend-test (--watch reruns on change), cargo xtask lint --watch",
    };
    text.push_str(&format!(
        "Next: {tests}, cargo xtask backend-logs, cargo xtask psql, cargo xtask down (stops, keeps data); \
         cargo xtask --help lists everything."
    ));
    text
}

/// Pulls the images of the database and the backend, and the node image the frontend's dev
/// image is built from (that one is built here, from package-lock.json, and never pushed).
fn pull(p: &Project) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .step(
            "Pull the stack's images",
            Action::Run(p.compose(&["pull", c.services.database.as_str(), c.services.backend.as_str()]).quiet()),
        )
        .hint(&format!(
            "where the registry has no {}, build it here instead: `cargo xtask backend-build` (compose's own \
             `docker compose build` lacks this project's settings)",
            c.images.backend_dev
        ))
        .step(
            &format!("Pull the frontend's base image {}", c.images.node),
            Action::Run(p.cmd("docker").args(&["pull", c.images.node.as_str()]).quiet()),
        );
    plan
}

/// Backend-only: the frontend's production build, which the backend serves, made when there is
/// none (with the frontend's dev image, in a throwaway container).
fn build_once(p: &Project, plan: &mut Plan) {
    plan.check(p.npm_script("build", "the frontend's production build")).step(
        "Build the frontend, once (it serves from the backend)",
        Action::UnlessExists {
            path: p.path(&p.config.paths.frontend_build).join("index.html"),
            action: Box::new(Action::Seq(vec![
                images::ensure_dev(p, DevImage::Frontend),
                Action::Run(stack::throwaway_build(p)),
            ])),
        },
    );
}

fn up(p: &Project, stack: Stack) -> Plan {
    let mut plan = p.plan();
    plan.checks(stack_checks(p, stack));
    if stack == Stack::BackendOnly {
        build_once(p, &mut plan);
    }
    plan.step("Start the stack", Action::Run(up_cmd(p, stack)))
        .step(&format!("Wait for {}", p.config.services.database), wait_database(p));
    plan
}

/// Stops and removes the containers; volumes (the database's data) stay.
fn down(p: &Project) -> Plan {
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .step("Stop and remove the stack's containers (volumes and data stay)", Action::Run(p.compose(&["down"])));
    plan
}

fn clobber(p: &Project) -> Plan {
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .check(Check::Confirm {
            prompt: format!(
                "remove the `{}` stack's containers AND volumes, deleting the database and node_modules",
                p.config.compose.project
            ),
        })
        .step(
            "Remove the stack's containers, networks and volumes",
            Action::Run(p.compose(&["down", "--volumes", "--remove-orphans"])),
        );
    plan
}

/// Pushes the backend's dev image.
fn push(p: &Project) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(Check::RegistryLogin { registry: registry_of(&c.images.backend_dev) }).step(
        &format!("Push the dev image {}", c.images.backend_dev),
        Action::Run(p.compose(&["push", c.services.backend.as_str()]).quiet()),
    );
    plan
}

fn initdb(p: &Project) -> Plan {
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .check(p.running_check(&p.config.services.database))
        .step(&format!("Wait for {}", p.config.services.database), wait_database(p));
    initdb_step(p, &mut plan);
    plan
}

fn dropdb(p: &Project) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .check(p.running_check(&c.services.database))
        .check(Check::Confirm { prompt: format!("drop the database `{}` and all its data", c.database.name) })
        .step(
            &format!("Drop the database {}", c.database.name),
            Action::Run(p.exec(&["-u", "postgres"], &c.services.database, false, &["bash", &c.database.drop_script])),
        );
    plan
}

/// `psql [-- ARGS]`: psql on the dev database, interactive, or running ARGS; a file given with
/// `-f` is read here and handed to psql on its stdin (the container does not see this machine's files).
fn psql(p: &Project, args: &[String]) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(p.running_check(&c.services.database));
    let (args, file) = psql_file(args);
    let mut argv = vec!["psql", "-d", c.database.name.as_str()];
    argv.extend(args.iter().map(String::as_str));
    let mut cmd = p.exec(&["-u", "postgres"], &c.services.database, file.is_none(), &argv);
    if let Some(file) = &file {
        plan.check(Check::File {
            path: file.clone(),
            what: "the SQL file for psql".into(),
            fix: "name a file that exists (relative to where you run the command)".into(),
        });
        cmd = cmd.stdin_file(file);
    }
    plan.step(&format!("psql on {}", c.database.name), Action::Run(cmd)).hint(&format!(
        "where it says database \"{}\" does not exist (after dropdb): `cargo xtask initdb` makes it",
        c.database.name
    ));
    plan
}

/// psql's arguments without `-f FILE` (`--file FILE`, `--file=FILE`), and that file: psql then
/// reads it from its stdin.
pub fn psql_file(args: &[String]) -> (Vec<String>, Option<std::path::PathBuf>) {
    let mut rest = Vec::new();
    let mut file = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-f" | "--file" => file = words.next().map(std::path::PathBuf::from),
            w if w.starts_with("--file=") => file = Some(w["--file=".len()..].into()),
            w if w.starts_with("-f") && w.len() > 2 => file = Some(w[2..].into()),
            _ => rest.push(word.clone()),
        }
    }
    (rest, file)
}

/// Removes caches (Python bytecode, mypy/pytest/ruff caches) under the configured directories.
fn clean(p: &Project) -> Plan {
    let c = &p.config.clean;
    let mut plan = p.plan();
    plan.step(
        "Remove caches",
        Action::Fs(Fs::Clean {
            under: c.under.iter().map(|d| p.path(d)).collect(),
            names: c.names.clone(),
            extensions: c.extensions.clone(),
            skip: vec!["node_modules".into(), ".git".into()],
        }),
    );
    plan
}

/// Frontend tests once, then the backend's type check and tests.
fn test(p: &Project) -> Plan {
    let mut plan = p.plan();
    plan.extend(stack::frontend_test(p, false, &[])).extend(stack::backend_test(p, false, &[]));
    plan
}

/// Style checks and type checks of backend and frontend; `watch`: the backend's style checks,
/// rerun on every change.
fn lint(p: &Project, watch: bool) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(p.running_check(&c.services.backend));
    if watch {
        plan.step(
            "Rerun the backend style check on every change (Ctrl-C stops)",
            Action::Run(p.watch(&c.services.backend, &["watchfiles", "ruff check .", "."])),
        );
        return plan;
    }
    plan.check(p.running_check(&c.services.frontend))
        .check(p.npm_script("lint", "`cargo xtask lint`"))
        .step(
            "Backend style check (ruff)",
            Action::Run(p.exec(&[], &c.services.backend, false, &["ruff", "check", "."])),
        )
        .step("Backend type check (mypy)", Action::Run(p.exec(&[], &c.services.backend, false, &["mypy"])))
        .step(
            "Frontend lint (npm run lint)",
            Action::Run(p.exec(&[], &c.services.frontend, false, &["npm", "run", "lint"])),
        );
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_file_for_psql_is_taken_out_of_its_arguments() {
        assert_eq!(psql_file(&words(&["-c", "select 1"])), (words(&["-c", "select 1"]), None));
        for args in
            [&["-f", "a.sql", "-q"][..], &["--file", "a.sql", "-q"], &["--file=a.sql", "-q"], &["-fa.sql", "-q"]]
        {
            assert_eq!(psql_file(&words(args)), (words(&["-q"]), Some("a.sql".into())), "{args:?}");
        }
    }
}
