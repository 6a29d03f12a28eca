//! The command line: the one table of commands, a leaf that imports no command family. Each
//! family is an enum whose doc comments are the help text and whose aliases are the old make
//! targets, flattened into `Command`; its file (named in the enum's doc) plans it, and
//! `xtask::plan` dispatches to it. The help groups, the plans' titles, `doctor`'s coverage and
//! the tests' list of every command all derive from these enums.

use std::path::PathBuf;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cmd::sh_join;
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
    /// Show every precondition checked and every command run, and stream all output
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

/// Every command, by family.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Dev(Dev),
    #[command(flatten)]
    Backend(Backend),
    #[command(flatten)]
    Frontend(Frontend),
    #[command(flatten)]
    Release(Release),
    #[command(flatten)]
    Deploy(Deploy),
    #[command(flatten)]
    Operate(Operate),
    #[command(flatten)]
    Setup(Setup),
    #[command(flatten)]
    Tool(Tool),
}

/// The local dev environment, the compose stack (was the root Makefile): src/dev.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Dev {
    /// Set up and start the dev environment: images, stack, database, every service answering
    New {
        /// Only the database and the backend, which serves the frontend's production build
        /// (built once when missing): no dev server
        #[arg(long)]
        backend_only: bool,
    },
    /// Pull the stack's images
    Pull,
    /// Start the stack in the background and wait for the database
    Up {
        /// Only the database and the backend (it serves the frontend's production build)
        #[arg(long)]
        backend_only: bool,
    },
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
    /// Open psql on the dev database; with ARGS, run psql with them (`-f FILE` reads a file of
    /// this machine): cargo xtask psql -- -c "select count(*) from users"
    Psql {
        /// psql's arguments, after `--`
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Remove caches: Python bytecode, mypy, pytest and ruff caches
    Clean,
    /// Run every test in the containers: the frontend's once, then the backend's
    Test,
    /// Run the style checks and type checks of backend and frontend
    Lint {
        /// Rerun the backend's style checks on every change
        #[arg(long)]
        watch: bool,
    },
}

/// The backend (`expungeservice`): src/backend.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Backend {
    /// Build the backend's dev image
    #[command(alias = "backend_build")]
    BackendBuild,
    /// Recreate the backend container and wait for its health check
    #[command(alias = "backend_reload")]
    BackendReload,
    /// Follow the backend's logs (Ctrl-C stops)
    #[command(alias = "backend_logs")]
    BackendLogs,
    /// Run mypy and pytest in the backend container: cargo xtask backend-test -- -k health
    #[command(alias = "backend_test")]
    BackendTest {
        /// Rerun the tests on every change
        #[arg(long)]
        watch: bool,
        /// pytest's arguments, after `--`
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Lock the backend's dependencies (Pipfile.lock) with pipenv in a container
    #[command(alias = "backend_lock", alias = "requirements.txt")]
    BackendLock,
}

/// The frontend (`node`): src/frontend.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Frontend {
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
    /// Run the frontend tests, rerunning on every change on a terminal (Ctrl-C stops); elsewhere
    /// (CI, a pipe) once
    #[command(alias = "frontend_test")]
    FrontendTest {
        /// Arguments for the test runner (`npm test -- ARGS`), after `--`
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the frontend tests once
    #[command(alias = "frontend_test_no_watch")]
    FrontendTestNoWatch {
        /// Arguments for the test runner (`npm test -- ARGS`), after `--`
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Releases (was src/ops/Makefile): the deployable image, built and pushed, then deployed:
/// src/release.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Release {
    /// Build the deployable image for ENV, tagged ENV and ENV-<commit>
    Image {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
    },
    /// Build, push and deploy this commit to staging
    Staging,
    /// Build, push and deploy this commit to prod (from its configured branch only)
    Prod,
}

/// The deploy environments' hosts: switches, rollbacks, the release log and the lock:
/// src/deploy.rs (what runs on the hosts: src/remote/).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Deploy {
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
        /// A release from `releases ENV`: its name, a tag (ENV-<commit>), or a commit or digest prefix (4+ characters) [default: the release before the live one]
        release: Option<String>,
    },
    /// Show ENV's release history from its host: when, who, what, result
    Releases {
        /// The deploy environment (staging, prod)
        #[arg(env = "RS_ENV")]
        env: String,
    },
    /// Show who holds ENV's deploy lock, or end a keeper whose connection hangs
    Lock {
        /// The deploy environment (staging, prod)
        env: String,
        #[arg(value_enum)]
        action: LockAction,
    },
}

/// A deploy environment day to day: the live release's logs, one-off commands in it, and its
/// database's backups: src/operate.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Operate {
    /// Show the live release's logs from its host (a Swarm's: every task's, named with its node)
    Logs {
        /// The deploy environment (staging, prod)
        env: String,
        /// Keep showing new lines until Ctrl-C
        #[arg(long)]
        follow: bool,
        /// Only lines newer than this: a duration (10m, 2h) or a time (2026-12-01T10:00:00)
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// How many of the last lines to show first
        #[arg(long, default_value_t = 100)]
        lines: u32,
    },
    /// Run COMMAND in a new, throwaway container of the live release (or RELEASE), with its env
    /// file, logging and network, interactive on a terminal; its exit status is this command's.
    /// The command line is written to the release log: pass secrets through the env file, never
    /// as arguments. cargo xtask exec prod -- python -c "print(1)"
    Exec {
        /// The deploy environment (staging, prod)
        env: String,
        /// A release from `releases ENV` instead of the live one
        #[arg(long)]
        release: Option<String>,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The environment's database, dumped on its host: `backup` one (`--download PATH` copies it
    /// here too), list the `backups`, or `restore` BACKUP into it (asks; its current data is
    /// backed up first)
    Db {
        #[arg(value_enum)]
        action: DbAction,
        /// The deploy environment (staging, prod)
        env: String,
        /// restore: the backup, by name or a prefix of it (`db backups ENV` lists them), or `latest`
        backup: Option<String>,
        /// backup: copy the dump to this file of this machine too
        #[arg(long, value_name = "PATH")]
        download: Option<PathBuf>,
        /// restore: a backup of this other environment, kept on ENV's host (where the two share
        /// a host and deploy user); without it, a backup of another environment is refused
        #[arg(long, value_name = "ENV")]
        from: Option<String>,
    },
}

/// A deploy environment's host, set up from bare over ssh: src/setup.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Setup {
    /// Set ENV's host up as its admin over ssh (`admin`: root, or a user who may sudo without a
    /// password), from a bare Debian or Ubuntu: packages, the deploy user and its keys, the env
    /// file, nginx's site, logs, sshd, and the database (PostgreSQL; its login made and written
    /// into the env file on the host only); then ENV's first deploy. Run again, it changes
    /// nothing and says so
    Setup {
        /// The deploy environment (staging, prod)
        env: String,
        /// Public keys to authorize for the deploy user, one a line [default: the key ssh uses
        /// for ENV's host]
        #[arg(long, value_name = "FILE")]
        keys: Option<PathBuf>,
        /// A plain-http site even where a certificate exists (behind another TLS proxy)
        #[arg(long)]
        http_only: bool,
        /// Set the host up only: no first deploy
        #[arg(long)]
        no_deploy: bool,
        /// Log the deploy user in to the registry as USER with the password (or access token) on
        /// stdin, instead of with your own login: a token that may only pull, say. Passed even
        /// where a login works (a new token replaces the old)
        #[arg(long, value_name = "USER")]
        registry_user: Option<String>,
    },
}

/// What `db` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DbAction {
    /// Dump the database into a new backup on its host (keeping the newest `backups.keep`)
    Backup,
    /// List the backups on the host
    Backups,
    /// Restore a backup into the database (asks first)
    Restore,
}

/// What `lock ENV` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockAction {
    /// Show who holds the lock, if anyone
    Status,
    /// End the lock's keeper when its deploy's connection hangs (that deploy stops; a deploy that
    /// died holds no lock): asks first
    Release,
}

/// Tools: src/tools.rs.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Tool {
    /// Check every precondition of every command (with ENV: of ENV's commands, and that ENV
    /// serves: the release its proxy routes to runs, healthy, as the release log says), and show
    /// how to fix what fails
    Doctor {
        /// A deploy environment (staging, prod)
        env: Option<String>,
    },
    /// Run compose with the project's file, name and variables: cargo xtask compose ps
    Compose {
        /// Arguments for compose
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure a speed target against its baseline, side by side in one run (runs the test
    /// rig's `testbed bench`, xtask/testbed)
    Bench {
        #[arg(value_enum)]
        what: Bench,
    },
}

/// What `bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    /// Cold build of the xtask against a crate of the design's six crates alone (target: at
    /// most 1.3x), and a warm `cargo xtask --help` against that crate's `--help` (at most 1.15x)
    Compile,
    /// `new` on a fresh volume set against the sequence it replaced: up -d, sleep 10, initdb
    /// (target: at most 0.60x)
    New,
    /// A deploy under a request loop against the old pull/stop/run, on a production host in a
    /// container (failed requests: 0; time until the new release serves at most 1.30x), and the
    /// time to refuse a deploy that cannot succeed and a second deploy while one runs (under 2 s)
    Deploy,
}

impl Command {
    /// Whether the command reaches the deploy hosts (over ssh).
    pub fn reaches_hosts(&self) -> bool {
        matches!(
            self,
            Command::Release(_)
                | Command::Deploy(_)
                | Command::Operate(_)
                | Command::Setup(_)
                | Command::Tool(Tool::Doctor { .. })
                | Command::Dev(Dev::Push { env: Some(_) })
        )
    }

    /// Whether the command works on the dev stack of this machine (the dev environment, the
    /// backend, the frontend, compose, the dev image's push): what an operator who runs no dev
    /// stack never needs.
    pub fn works_on_the_dev_stack(&self) -> bool {
        match self {
            Command::Dev(Dev::Push { env: Some(env) }) => env == "dev",
            Command::Dev(_) | Command::Backend(_) | Command::Frontend(_) => true,
            Command::Tool(tool) => matches!(tool, Tool::Compose { .. }),
            Command::Release(_) | Command::Deploy(_) | Command::Operate(_) | Command::Setup(_) => false,
        }
    }

    /// Whether the command may run compose. The deploy family (deploy, rollback, releases,
    /// lock) never does, so it need not ask which compose this machine has (`docker compose
    /// version` costs a deploy about 70 ms).
    pub fn uses_compose(&self) -> bool {
        !matches!(self, Command::Deploy(_) | Command::Operate(_) | Command::Setup(_))
    }
}

/// How `cargo xtask` lists the commands: one group a family.
fn groups() -> [(&'static str, clap::Command); 8] {
    let family = |augment: fn(clap::Command) -> clap::Command| augment(clap::Command::new("family"));
    [
        ("Dev environment", family(Dev::augment_subcommands)),
        ("Backend", family(Backend::augment_subcommands)),
        ("Frontend", family(Frontend::augment_subcommands)),
        ("Release", family(Release::augment_subcommands)),
        ("Deploy", family(Deploy::augment_subcommands)),
        ("Operate", family(Operate::augment_subcommands)),
        ("Hosts", family(Setup::augment_subcommands)),
        ("Tools", family(Tool::augment_subcommands)),
    ]
}

/// The clap command, with the grouped command list (and the old make target names) as its help.
pub fn command() -> clap::Command {
    let mut list = String::new();
    for (group, family) in groups() {
        list.push_str(&format!("{group}:\n"));
        for sub in family.get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let aliases: Vec<&str> = sub.get_all_aliases().collect();
            let also = if aliases.is_empty() { String::new() } else { format!(" [{}]", aliases.join(", ")) };
            list.push_str(&format!("  {:<24}{about}{also}\n", sub.get_name()));
        }
    }
    Cli::command().help_template(format!(
        "{{about}}\n\n{{usage-heading}} {{usage}}\n\n{list}\nOptions:\n{{options}}\n\
         `cargo xtask COMMAND --help` describes one command."
    ))
}

/// The names of the help groups and their commands, in order.
pub fn grouped_names() -> Vec<(&'static str, Vec<String>)> {
    groups().into_iter().map(|(g, f)| (g, f.get_subcommands().map(|s| s.get_name().to_string()).collect())).collect()
}

/// One command line for every command, derived from the table: a command's required
/// environment argument takes each of `envs`, a required choice its first value, and optional
/// arguments are left out. What `doctor` checks and the golden tests cover.
pub fn every_invocation(envs: &[&str]) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for sub in Cli::command().get_subcommands() {
        let mut lines = vec![vec![sub.get_name().to_string()]];
        for arg in sub.get_positionals().filter(|a| a.is_required_set()) {
            let values: Vec<String> = if arg.get_id() == "env" {
                envs.iter().map(|e| e.to_string()).collect()
            } else {
                arg.get_possible_values().first().map(|v| v.get_name().to_string()).into_iter().collect()
            };
            lines = lines
                .into_iter()
                .flat_map(|line| values.iter().map(move |v| [line.clone(), vec![v.clone()]].concat()))
                .collect();
        }
        all.extend(lines);
    }
    all
}

/// A command as parsed, with its command line as the table names it (what its plan is titled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub line: String,
}

/// Parses a command line (without the program name), as the user would type it.
pub fn parse(argv: &[String]) -> Result<Invocation> {
    let matches =
        command().try_get_matches_from(std::iter::once("cargo xtask".to_string()).chain(argv.iter().cloned()))?;
    let cli = Cli::from_arg_matches(&matches)?;
    let command = cli.command.ok_or_else(|| anyhow::anyhow!("no command in `{}`", argv.join(" ")))?;
    Ok(Invocation { command, line: line(&matches) })
}

/// The command line of parsed arguments: `cargo xtask`, the command's own name (an old make
/// target resolved to it), then its arguments as parsed, from the command line or from their
/// environment variables (`RS_ENV`), in the table's order and quoted; global flags left out.
pub fn line(matches: &clap::ArgMatches) -> String {
    let mut words = vec!["cargo".to_string(), "xtask".to_string()];
    let Some((name, sub)) = matches.subcommand() else { return sh_join(&words) };
    words.push(name.to_string());
    let table = Cli::command();
    let Some(definition) = table.find_subcommand(name) else { return sh_join(&words) };
    let mut last = Vec::new();
    for arg in definition.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(sub.value_source(id), None | Some(ValueSource::DefaultValue)) {
            continue;
        }
        let values: Vec<String> =
            sub.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
        let long = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
        match arg.get_action() {
            ArgAction::SetTrue if sub.get_flag(id) => words.push(long),
            ArgAction::SetTrue => {}
            _ if arg.is_last_set() => last.extend(values),
            _ if arg.is_positional() => words.extend(values),
            _ => values.into_iter().for_each(|v| words.extend([long.clone(), v])),
        }
    }
    if !last.is_empty() {
        words.push("--".into());
        words.extend(last);
    }
    sh_join(&words)
}
