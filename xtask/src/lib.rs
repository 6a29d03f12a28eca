//! RecordSponge's `cargo xtask`: the developer and deploy workflow as checked, dry-runnable plans.
//!
//! The modules are layers; each imports only from layers below it (a test, tests/tidy.rs,
//! reads every `crate::` and `super::` path and fails on an import upwards or a cycle):
//!
//! 1. this file: the dispatch, from a parsed command to its family's plan, then to the executor;
//! 2. `cli`: the command table, a leaf that imports no family (only `cmd` and `config`);
//! 3. the command families, one file each, which never import each other: `dev` (the local
//!    stack), `backend`, `frontend`, `release` (image, push, staging, prod), `deploy` (deploy,
//!    rollback, releases, lock), `operate` (logs, exec, db), `setup` (a host from bare) and
//!    `tools` (doctor, compose, bench);
//! 4. what families share: `stack` (the dev stack's waits, logs, tests and frontend builds),
//!    `remote` (an environment on its hosts: ssh, the lock, the release log, the `host` and
//!    `swarm` engines and the switch), `images`, `engine`, and `project` (the project as this
//!    machine sees it);
//! 5. the core, each using only those before it: `interrupt`, `cmd` (commands as data),
//!    `config`, `process` (running them, on duct), `fsops`, `checks` (preconditions), `plan`
//!    (steps as data), `run` (the executor).

pub mod checks;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod plan;
pub mod process;
pub mod project;
pub mod run;

mod backend;
mod deploy;
mod dev;
pub mod engine;
mod frontend;
pub mod fsops;
pub mod images;
mod interrupt;
mod operate;
mod release;
pub mod remote;
mod setup;
pub mod stack;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::FromArgMatches;

use cli::{Cli, Command, Dev, Invocation, Tool};
use config::Config;
use plan::Plan;
use project::{detect_flavor, Facts, Project};

/// The configuration file, relative to the repository root.
pub const CONFIG: &str = "config/recordsponge.toml";

/// The repository root, found when the command runs (never baked in at compile time, so that
/// checkouts sharing a target directory each act on their own tree): the parent of the xtask
/// crate whose `cargo run` this is (cargo sets CARGO_MANIFEST_DIR for it), else the nearest
/// ancestor of the working directory that holds the configuration.
pub fn root() -> Result<PathBuf> {
    let from_cargo = std::env::var_os("CARGO_MANIFEST_DIR")
        .and_then(|dir| Path::new(&dir).ancestors().find(|a| a.join(CONFIG).is_file()).map(Path::to_path_buf));
    if let Some(root) = from_cargo {
        return Ok(root);
    }
    let cwd = std::env::current_dir()?;
    match cwd.ancestors().find(|dir| dir.join(CONFIG).is_file()) {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "{} is not inside a RecordSponge checkout (no {CONFIG} here or above).\n  \
             fix: cd into the repository, then run `cargo xtask ...`",
            cwd.display()
        ),
    }
}

/// The project as this machine sees it: root, configuration, compose flavour and facts
/// (`remote`: also what ssh says of the deploy hosts).
pub fn load(config: Option<&Path>, compose: Option<config::FlavorChoice>, remote: bool) -> Result<Project> {
    let root = root()?;
    let path = config.map(Path::to_path_buf).unwrap_or_else(|| root.join(CONFIG));
    let config = Config::load(&path)?;
    let facts = Facts::probe(&root, &config, remote);
    let flavor = detect_flavor(compose.unwrap_or(config.compose.flavor), facts.engine);
    let mut project = Project { root, config, flavor, facts };
    let exe = std::env::current_exe().map(|e| e.display().to_string()).unwrap_or_else(|_| "xtask".into());
    project.facts.xtask = vec![exe, "--config".into(), path.display().to_string()];
    if remote {
        project.facts.managers = remote::target::answering_managers(&project);
    }
    Ok(project)
}

/// The plan of a command, titled with its command line; None for `doctor`, which checks the
/// plans of all the others.
pub fn plan(p: &Project, invocation: &Invocation) -> Result<Option<Plan>> {
    let mut plan = match &invocation.command {
        Command::Dev(Dev::Push { env: Some(env) }) if env != "dev" => release::push(p, env)?,
        Command::Dev(c) => dev::plan(p, c),
        Command::Backend(c) => backend::plan(p, c),
        Command::Frontend(c) => frontend::plan(p, c),
        Command::Release(c) => release::plan(p, c)?,
        Command::Deploy(c) => deploy::plan(p, c)?,
        Command::Operate(c) => operate::plan(p, c)?,
        Command::Setup(c) => setup::plan(p, c)?,
        Command::Tool(Tool::Compose { args }) => tools::compose(p, args),
        Command::Tool(Tool::Bench { what }) => tools::bench(p, *what),
        Command::Tool(Tool::Doctor { .. }) => return Ok(None),
    };
    plan.command = invocation.line.clone();
    Ok(Some(plan))
}

/// The plan of every command but `setup` (each deploy command for every configured
/// environment, or for `env` alone), with its command line: what `doctor` checks. The commands
/// of the environments in `left_out` (their deploy commands, and `staging` or `prod`) are left
/// out.
pub fn every_plan(p: &Project, env: Option<&str>, left_out: &[String]) -> Result<Vec<tools::Planned>> {
    let envs: Vec<&str> = match env {
        Some(env) => vec![p.config.environment(env).map(|_| env)?],
        None => p.config.environments.keys().map(String::as_str).collect(),
    };
    let mut plans = Vec::new();
    let wanted = |argv: &Vec<String>| {
        env.is_none_or(|e| argv.iter().any(|a| a == e)) && !argv.iter().any(|a| left_out.contains(a))
    };
    for argv in cli::every_invocation(&envs).into_iter().filter(wanted) {
        let invocation = cli::parse(&argv)?;
        // The admin's login that `setup` needs is not the deploy's: a set-up host may refuse it.
        if matches!(invocation.command, Command::Setup(_)) {
            continue;
        }
        if let Some(plan) = plan(p, &invocation)? {
            let dev = invocation.command.works_on_the_dev_stack();
            plans.push(tools::Planned { line: argv.join(" "), plan, dev });
        }
    }
    Ok(plans)
}

fn dispatch(cli: Cli, line: String) -> Result<()> {
    let Some(command) = cli.command.clone() else {
        cli::command().print_help()?;
        return Ok(());
    };
    let compose = if command.uses_compose() { cli.compose } else { Some(config::FlavorChoice::V2) };
    let project = load(cli.config.as_deref(), compose, command.reaches_hosts())?;
    let Some(plan) = plan(&project, &Invocation { command: command.clone(), line })? else {
        if cli.dry_run {
            bail!("doctor checks the preconditions of every command's plan and has none of its own: there is nothing to print; run it without --dry-run");
        }
        let Command::Tool(Tool::Doctor { env }) = command else { unreachable!("only doctor has no plan") };
        return doctor(&project, env.as_deref());
    };
    if cli.dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    run::execute(&plan, &run::Options { yes: cli.yes, verbose: cli.verbose })
}

/// `doctor [ENV]`: the preconditions of every plan (of ENV's commands), and that each
/// environment (ENV) serves. Without ENV, an environment not set up on its host yet is said so
/// once, and its commands are left out (a host serves staging alone until prod is added); asked
/// about ENV, every check of it counts.
fn doctor(p: &Project, env: Option<&str>) -> Result<()> {
    let names: Vec<&str> = match env {
        Some(env) => vec![env],
        None => p.config.environments.keys().map(String::as_str).collect(),
    };
    let (mut serving, mut not_set_up, mut left_out) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        let target = remote::target::Target::new(p, name)?;
        // (Asked about ENV, its checks run whatever its state: no need to ask the host.)
        match env.is_none().then(|| remote::switch::not_set_up(p, &target)).flatten() {
            Some(why) => {
                not_set_up.push(why);
                left_out.push(name.to_string());
            }
            None => serving.extend(remote::switch::runs(p, &target)),
        }
    }
    let warnings = remote::target::shared_deploy_users(p);
    let plans = every_plan(p, env, &left_out)?;
    // (Asked about ENV, no dev command is among them.)
    let dev_stack = plans.iter().any(|planned| planned.dev) && stack::exists(p);
    tools::doctor(&plans, serving, &not_set_up, &warnings, dev_stack)
}

/// Entry point of the `xtask` binary.
pub fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match dispatch(cli, cli::line(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        // A one-off command's status is this command's (`exec`), its output said the rest.
        Err(err) if err.downcast_ref::<process::Exited>().is_some() => {
            let exited = err.downcast_ref::<process::Exited>().unwrap();
            eprintln!("error: {exited}");
            ExitCode::from(u8::try_from(exited.0).unwrap_or(1))
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
