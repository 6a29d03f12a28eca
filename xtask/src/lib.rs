//! RecordSponge's `cargo xtask`: the developer and deploy workflow as checked, dry-runnable plans.
//!
//! The core, each module using only those before it: `cmd` (commands as data), `process`
//! (running them, on duct), `checks` (preconditions), `plan` (steps as data), `run` (the
//! executor). The command table is `cli`; each command family plans its commands in its own
//! file: `dev`, `backend`, `frontend`, `release` (image, push, staging, prod), `deploy` (the
//! hosts), with `images` and `engine` shared by them, and the tools `doctor` and `bench`.

pub mod checks;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod plan;
pub mod process;
pub mod project;
pub mod run;

mod backend;
pub mod bench;
pub mod deploy;
mod dev;
mod doctor;
pub mod engine;
pub mod fleet;
mod frontend;
mod fsops;
pub mod images;
mod interrupt;
mod release;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::FromArgMatches;

use cli::{Cli, Command, Tool};
use config::Config;
use project::{detect_flavor, Facts, Project};

/// The configuration file, relative to the repository root.
pub const CONFIG: &str = "config/recordsponge.toml";

/// The repository root, found when the command runs (never baked in at compile time, so that
/// checkouts sharing a target directory each act on their own tree): the parent of the xtask
/// crate whose `cargo run` this is (cargo sets CARGO_MANIFEST_DIR for it), else the nearest
/// ancestor of the working directory that holds the configuration.
pub fn root() -> Result<PathBuf> {
    let from_cargo = std::env::var_os("CARGO_MANIFEST_DIR")
        .and_then(|dir| Path::new(&dir).parent().map(Path::to_path_buf))
        .filter(|root| root.join(CONFIG).is_file());
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
    Ok(Project { root, config, flavor, facts })
}

fn dispatch(cli: Cli) -> Result<()> {
    let Some(command) = cli.command.clone() else {
        cli::command().print_help()?;
        return Ok(());
    };
    if let Command::Tool(Tool::Completions { shell }) = command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli::command(), "cargo-xtask", &mut script);
        return match std::io::Write::write_all(&mut std::io::stdout(), &script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }
    let compose = if command.uses_compose() { cli.compose } else { Some(config::FlavorChoice::V2) };
    let project = load(cli.config.as_deref(), compose, command.reaches_hosts())?;
    let plan = match &command {
        Command::Tool(Tool::Doctor | Tool::Bench { .. }) if cli.dry_run => {
            bail!("doctor and bench run checks and measurements, not a plan: there is nothing to print; run them without --dry-run")
        }
        Command::Tool(Tool::Doctor) => return doctor::doctor(&project),
        Command::Tool(Tool::Bench { what }) => return bench::run(&project, *what),
        command => command.plan(&project)?.expect("every other command has a plan"),
    };
    if cli.dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    run::execute(&plan, &run::Options { yes: cli.yes, verbose: cli.verbose })
}

/// Entry point of the `xtask` binary.
pub fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
