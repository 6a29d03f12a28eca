//! RecordSponge's `cargo xtask`: the developer and deploy workflow as checked, dry-runnable plans.

pub mod checks;
pub mod cli;
pub mod config;
pub mod engine;
pub mod plan;
pub mod project;
pub mod quote;
pub mod run;

mod backend;
mod deploy;
mod dev;
mod doctor;
mod frontend;
mod fsops;
mod images;
mod interrupt;
mod json;
mod releases;
pub mod remote;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::FromArgMatches;

use cli::{Cli, Command};
use config::Config;
use images::DevImage;
use plan::Plan;
use project::{detect_flavor, Facts, Project};

/// The repository root: the parent of this crate's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ is inside the repository").to_path_buf()
}

/// The plan of a command (every command but `doctor` and `completions`).
pub fn plan(project: &Project, command: &Command) -> Result<Plan> {
    let p = project;
    Ok(match command {
        Command::New => p.new_env(),
        Command::Pull => p.pull(),
        Command::Up => p.up(),
        Command::Down => p.down(),
        Command::Clobber => p.clobber(),
        Command::Push { env } => match env.as_deref() {
            None | Some("dev") => p.push_dev(),
            Some(name) => p.push_env(&p.target(name)?),
        },
        Command::Initdb => p.initdb(),
        Command::Dropdb => p.dropdb(),
        Command::Psql => p.psql(),
        Command::Clean => p.clean(),
        Command::Test => p.test(),
        Command::Lint => p.lint(),
        Command::BackendBuild => p.dev_image_plan("backend-build", DevImage::Backend),
        Command::BackendReload => p.backend_reload(),
        Command::BackendLogs => p.backend_logs(),
        Command::BackendTest { watch } => p.backend_test(*watch),
        Command::BackendLock => p.backend_lock(),
        Command::FrontendBuild => p.frontend_build(),
        Command::FrontendImage => p.dev_image_plan("frontend-image", DevImage::Frontend),
        Command::FrontendClean => p.frontend_clean(),
        Command::FrontendDown => p.frontend_down(),
        Command::FrontendLogs => p.frontend_logs(),
        Command::FrontendRestart => p.frontend_restart(),
        Command::FrontendTest => p.frontend_test(true),
        Command::FrontendTestNoWatch => p.frontend_test(false),
        Command::Image { env } => p.image(&p.target(env)?),
        Command::Deploy { env, tag } => {
            let target = p.target(env)?;
            let image = p.deploy_image(&target, tag.as_deref())?;
            p.deploy(&target, &image)
        }
        Command::Rollback { env, release } => p.rollback(&p.target(env)?, release.as_deref())?,
        Command::Releases { env } => p.releases(&p.target(env)?),
        Command::Lock { env, action } => p.lock(&p.target(env)?, *action),
        Command::Staging => p.release(&p.target("staging")?),
        Command::Prod => p.release(&p.target("prod")?),
        Command::Compose { args } => p.compose_passthrough(args),
        Command::Doctor | Command::Completions { .. } => {
            unreachable!("doctor and completions run without a plan")
        }
    })
}

fn load(cli: &Cli) -> Result<Project> {
    let root = root();
    let path = cli.config.clone().unwrap_or_else(|| root.join("config/recordsponge.toml"));
    let config = Config::load(&path)?;
    let facts = Facts::probe(&root, &config);
    let flavor = detect_flavor(cli.compose.unwrap_or(config.compose.flavor), facts.engine);
    Ok(Project { root, config, flavor, facts })
}

fn dispatch(cli: Cli) -> Result<()> {
    let Some(command) = cli.command.clone() else {
        cli::command().print_help()?;
        return Ok(());
    };
    if let Command::Completions { shell } = command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli::command(), "cargo-xtask", &mut script);
        return match std::io::Write::write_all(&mut std::io::stdout(), &script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }
    let project = load(&cli)?;
    if command == Command::Doctor {
        return doctor::doctor(&project);
    }
    let plan = plan(&project, &command)?;
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
