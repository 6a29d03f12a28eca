//! Plans: the ordered steps a command runs and the preconditions of all of them.
//!
//! Building a plan has no side effects. `--dry-run` prints it; running it checks every
//! precondition of the whole plan before the first step, then runs the steps in order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checks::Check;
use crate::quote;

/// One program to run: never a shell string on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    /// The child gets the terminal (stdin too), and Ctrl-C ends it quietly: logs, psql, watchers.
    pub terminal: bool,
}

impl Cmd {
    pub fn new(program: &str, dir: &Path) -> Cmd {
        Cmd { program: program.to_string(), args: Vec::new(), env: Vec::new(), dir: dir.to_path_buf(), terminal: false }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn terminal(mut self, terminal: bool) -> Cmd {
        self.terminal = terminal;
        self
    }

    /// The command line as a POSIX shell would read it.
    pub fn line(&self) -> String {
        let mut words = vec![quote::sh(&self.program)];
        words.extend(self.args.iter().map(|a| quote::sh(a)));
        words.join(" ")
    }

    pub fn to_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args).current_dir(&self.dir);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.terminal {
            cmd.stdin(std::process::Stdio::null());
        }
        cmd
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Runs a program.
    Run(Cmd),
    /// Runs `probe` until it succeeds; on timeout prints `logs` and fails.
    WaitCmd { probe: Cmd, timeout: Duration, service: String, logs: Cmd },
    /// Polls `http://127.0.0.1:PORT/PATH` until it answers 200; on timeout prints `logs` and fails.
    WaitHttp { port: u16, path: String, timeout: Duration, service: String, logs: Cmd },
    /// Uses a local image when present, else pulls it, else runs `fallback` to build an equivalent.
    EnsureImage { image: String, inspect: Cmd, pull: Cmd, fallback: Vec<Action> },
    /// Copies `from` to `to`, runs `action`, then removes `to` whatever happened.
    WithFile { from: PathBuf, to: PathBuf, action: Box<Action> },
    /// Removes, under each directory, entries with one of `names` and files with one of `extensions`.
    Clean { under: Vec<PathBuf>, names: Vec<String>, extensions: Vec<String>, skip: Vec<String> },
    /// Starts a program in the background (a daemon), its output appended to `log`.
    Spawn { cmd: Cmd, log: PathBuf },
    /// Removes a directory tree, if present.
    RemoveDir(PathBuf),
    /// Removes a file, if present.
    RemoveFile(PathBuf),
    /// Makes `dest` anew from `sources` (source, path inside dest), leaving out entries named in `exclude`.
    AssembleDir { dest: PathBuf, sources: Vec<(PathBuf, PathBuf)>, exclude: Vec<String> },
    /// Writes a file.
    WriteFile { path: PathBuf, contents: String },
    /// Prints a message.
    Say(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub action: Action,
    /// What to do when the step fails.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The command line that made the plan, e.g. `cargo xtask new`.
    pub command: String,
    pub root: PathBuf,
    pub checks: Vec<Check>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn new(command: &str, root: &Path) -> Plan {
        Plan { command: command.to_string(), root: root.to_path_buf(), checks: Vec::new(), steps: Vec::new() }
    }

    /// Adds a precondition, once.
    pub fn check(&mut self, check: Check) -> &mut Plan {
        if !self.checks.contains(&check) {
            self.checks.push(check);
        }
        self
    }

    pub fn checks(&mut self, checks: impl IntoIterator<Item = Check>) -> &mut Plan {
        for check in checks {
            self.check(check);
        }
        self
    }

    pub fn step(&mut self, title: &str, action: Action) -> &mut Plan {
        self.steps.push(Step { title: title.to_string(), action, hint: None });
        self
    }

    /// Sets the failure hint of the last step.
    pub fn hint(&mut self, hint: &str) -> &mut Plan {
        if let Some(step) = self.steps.last_mut() {
            step.hint = Some(hint.to_string());
        }
        self
    }

    /// Appends another plan's preconditions and steps.
    pub fn extend(&mut self, other: Plan) -> &mut Plan {
        self.checks(other.checks);
        self.steps.extend(other.steps);
        self
    }

    /// The plan as `--dry-run` prints it: exactly what would run, in order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let n = self.steps.len();
        let _ = writeln!(out, "Plan for `{}`: {} step{}", self.command, n, if n == 1 { "" } else { "s" });
        let _ = writeln!(out, "Preconditions (all checked before step 1):");
        if self.checks.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for check in &self.checks {
            let _ = writeln!(out, "  - {}", check.describe());
        }
        let _ = writeln!(out, "Steps:");
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  [{}/{}] {}", i + 1, n, step.title);
            self.render_action(&mut out, &step.action, 8);
        }
        out
    }

    fn render_action(&self, out: &mut String, action: &Action, indent: usize) {
        let pad = " ".repeat(indent);
        match action {
            Action::Run(cmd) => self.render_cmd(out, "$", cmd, indent),
            Action::WaitCmd { probe, timeout, .. } => {
                let _ = writeln!(out, "{pad}until it succeeds, twice a second, for at most {}s:", timeout.as_secs());
                self.render_cmd(out, "$", probe, indent);
            }
            Action::WaitHttp { port, path, timeout, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}until GET http://127.0.0.1:{port}{path} answers 200, twice a second, for at most {}s",
                    timeout.as_secs()
                );
            }
            Action::EnsureImage { inspect, pull, fallback, .. } => {
                let _ = writeln!(out, "{pad}use the local image if");
                self.render_cmd(out, "$", inspect, indent);
                let _ = writeln!(out, "{pad}succeeds, else");
                self.render_cmd(out, "$", pull, indent);
                let _ = writeln!(out, "{pad}else build an equivalent locally:");
                for action in fallback {
                    self.render_action(out, action, indent + 2);
                }
            }
            Action::WithFile { from, to, action } => {
                let _ = writeln!(out, "{pad}with {} copied to {} (removed afterwards):", from.display(), self.rel(to));
                self.render_action(out, action, indent);
            }
            Action::Clean { under, names, extensions, skip } => {
                let dirs: Vec<String> = under.iter().map(|d| self.rel(d)).collect();
                let exts: Vec<String> = extensions.iter().map(|e| format!("*.{e}")).collect();
                let _ = writeln!(
                    out,
                    "{pad}remove under {}: {} {} (not descending into {})",
                    dirs.join(", "),
                    names.join(" "),
                    exts.join(" "),
                    skip.join(" ")
                );
            }
            Action::Spawn { cmd, log } => {
                let _ = writeln!(out, "{pad}in the background, its output appended to {}:", self.rel(log));
                self.render_cmd(out, "$", cmd, indent);
            }
            Action::RemoveDir(dir) => {
                let _ = writeln!(out, "{pad}remove the directory {}", self.rel(dir));
            }
            Action::RemoveFile(file) => {
                let _ = writeln!(out, "{pad}remove the file {}", self.rel(file));
            }
            Action::AssembleDir { dest, sources, exclude } => {
                let _ = writeln!(out, "{pad}make {} anew from:", self.rel(dest));
                for (src, inside) in sources {
                    let _ = writeln!(out, "{pad}  {} -> {}", self.rel(src), inside.display());
                }
                let _ = writeln!(out, "{pad}leaving out: {}", exclude.join(" "));
            }
            Action::WriteFile { path, contents } => {
                let _ = writeln!(out, "{pad}write {}: {}", self.rel(path), contents.trim_end());
            }
            Action::Say(text) => {
                let _ = writeln!(out, "{pad}print a summary:");
                for line in text.lines() {
                    let _ = writeln!(out, "{pad}| {line}");
                }
            }
        }
    }

    fn render_cmd(&self, out: &mut String, prompt: &str, cmd: &Cmd, indent: usize) {
        let pad = " ".repeat(indent);
        if cmd.dir != self.root {
            let _ = writeln!(out, "{pad}(in {})", self.rel(&cmd.dir));
        }
        if !cmd.env.is_empty() {
            let env: Vec<String> = cmd.env.iter().map(|(k, v)| format!("{k}={}", quote::sh(v))).collect();
            let _ = writeln!(out, "{pad}  env: {}", env.join(" "));
        }
        let _ = writeln!(out, "{pad}{prompt} {}", cmd.line());
    }

    /// A path relative to the repository root when it is inside it.
    pub fn rel(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(p) if p.as_os_str().is_empty() => ".".to_string(),
            Ok(p) => p.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}
