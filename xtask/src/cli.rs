//! The command line, declared in one place. Doc comments are the help text.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::FlavorChoice;

/// RecordSponge's developer and deploy tasks (they replace the root Makefile and src/ops/Makefile).
/// Every command builds a plan, checks all of its preconditions, then runs it; --dry-run prints the plan.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", disable_help_subcommand = true)]
pub struct Cli {
    /// Print the plan (preconditions and exact commands) and run nothing
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,
    /// Answer yes to confirmations (required for destructive commands without a terminal)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Show every precondition checked and every command run
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// The configuration file [default: config/recordsponge.toml in the repository]
    #[arg(long, global = true, env = "RS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Which compose to run (overrides [compose] flavor in the configuration)
    #[arg(long, global = true, env = "RS_COMPOSE", value_name = "FLAVOR")]
    pub compose: Option<FlavorChoice>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Set up and start the dev environment: images, stack, database, every service answering
    New,
    /// Pull the stack's images
    Pull,
    /// Start the stack in the background and wait for the database
    Up,
    /// Stop and remove the stack's containers (the data stays)
    Down,
    /// Remove the stack's containers AND volumes, deleting the database (asks first)
    Clobber,
    /// Push the backend dev image; with ENV (or RS_ENV), the deployable image's tags instead
    Push {
        /// A deploy environment (staging, prod); none or `dev` pushes the dev image
        #[arg(env = "RS_ENV")]
        env: Option<String>,
    },
    /// Initialize the database (does nothing when it already is)
    Initdb,
    /// Drop the database and all its data (asks first)
    Dropdb,
    /// Open psql on the dev database
    Psql,
    /// Remove caches: Python bytecode, mypy, pytest and ruff caches
    Clean,
    /// Run every test in the containers: the frontend's once, then the backend's
    Test,
    /// Run the style checks and type checks of backend and frontend
    Lint,
    /// Build the backend's dev image
    #[command(alias = "backend_build")]
    BackendBuild,
    /// Recreate the backend container and wait for its health check
    #[command(alias = "backend_reload")]
    BackendReload,
    /// Follow the backend's logs (Ctrl-C stops)
    #[command(alias = "backend_logs")]
    BackendLogs,
    /// Run mypy and pytest in the backend container
    #[command(alias = "backend_test")]
    BackendTest {
        /// Rerun the tests on every change
        #[arg(long)]
        watch: bool,
    },
    /// Lock the backend's dependencies (Pipfile.lock) with pipenv in a container
    #[command(alias = "backend_lock", alias = "requirements.txt")]
    BackendLock,
    /// Build the frontend (src/frontend/build) in a throwaway node container
    #[command(alias = "frontend_build")]
    FrontendBuild,
    /// Build the frontend's dev image (node and node_modules from package-lock.json)
    FrontendImage,
    /// Remove the frontend container, its node_modules volume and its build
    #[command(alias = "frontend_clean")]
    FrontendClean,
    /// Stop and remove the frontend container
    #[command(alias = "frontend_down")]
    FrontendDown,
    /// Follow the frontend's logs (Ctrl-C stops)
    #[command(alias = "frontend_logs")]
    FrontendLogs,
    /// Restart the frontend container
    #[command(alias = "frontend_restart")]
    FrontendRestart,
    /// Run the frontend tests, rerunning on every change
    #[command(alias = "frontend_test")]
    FrontendTest,
    /// Run the frontend tests once
    #[command(alias = "frontend_test_no_watch")]
    FrontendTestNoWatch,
    /// Build the deployable image for ENV, tagged ENV and ENV-<commit>
    Image {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
    },
    /// Deploy an image to ENV's host with no downtime: beside the live one, health-gated (was ssh_deploy)
    #[command(alias = "ssh_deploy")]
    Deploy {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
        /// The image tag to deploy [default: ENV]
        #[arg(long, env = "DEPLOY_TAG")]
        tag: Option<String>,
    },
    /// Roll ENV back to the previous release (or RELEASE), through the same health-gated switch
    Rollback {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
        /// A release tag (ENV-<commit>) or commit from `releases ENV` [default: the previous release]
        release: Option<String>,
    },
    /// Show ENV's release history from its host: when, who, what, result
    Releases {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
    },
    /// Show or break ENV's deploy lock
    Lock {
        /// The deploy environment (staging, prod)
        env: String,
        #[arg(value_enum)]
        action: crate::remote::LockAction,
    },
    /// Build, push and deploy this commit to staging
    Staging,
    /// Build, push and deploy this commit to prod (from its configured branch only)
    Prod,
    /// Check every precondition of every command, and show how to fix what fails
    Doctor,
    /// Run compose with the project's file, name and variables: cargo xtask compose ps
    Compose {
        /// Arguments for compose
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print shell completions (bash, zsh, fish, powershell)
    Completions { shell: clap_complete::Shell },
}

/// How `cargo xtask` lists the commands: in groups, with the old make target beside each.
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "Dev environment",
        &["new", "pull", "up", "down", "clobber", "push", "initdb", "dropdb", "psql", "clean", "test", "lint"],
    ),
    ("Backend", &["backend-build", "backend-reload", "backend-logs", "backend-test", "backend-lock"]),
    (
        "Frontend",
        &[
            "frontend-build",
            "frontend-image",
            "frontend-clean",
            "frontend-down",
            "frontend-logs",
            "frontend-restart",
            "frontend-test",
            "frontend-test-no-watch",
        ],
    ),
    ("Deploy", &["image", "deploy", "staging", "prod", "rollback", "releases", "lock"]),
    ("Tools", &["doctor", "compose", "completions"]),
];

/// The clap command, with the grouped command list as its help.
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let mut list = String::new();
    for (group, names) in GROUPS {
        list.push_str(&format!("{group}:\n"));
        for name in *names {
            let sub = cmd.find_subcommand(name).expect("every grouped command is declared");
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let aliases: Vec<&str> = sub.get_all_aliases().collect();
            let also = if aliases.is_empty() { String::new() } else { format!(" [{}]", aliases.join(", ")) };
            list.push_str(&format!("  {name:<24}{about}{also}\n"));
        }
    }
    cmd.help_template(format!(
        "{{about}}\n\n{{usage-heading}} {{usage}}\n\n{list}\nOptions:\n{{options}}\n\
         `cargo xtask COMMAND --help` describes one command."
    ))
}
