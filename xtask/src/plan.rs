//! Plans: the ordered steps a command runs and the preconditions of all of them.
//!
//! Building a plan has no side effects. `--dry-run` prints it; running it checks every
//! precondition of the whole plan before the first step, then runs the steps in order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::checks::Check;
use crate::cmd::{sh, Cmd, Named, Vars};

/// How often waits poll, and how plans say it. A probe costs little (an HTTP request, `docker
/// exec`, a round trip on a shared ssh connection), and each poll saved shortens a deploy.
pub const POLL: (Duration, &str) = (Duration::from_millis(200), "five times a second");

/// A program run in the running container of a compose service with `docker exec`, which
/// costs no compose start-up (half a second and more for docker-compose v1) on every run, e.g.
/// on every readiness poll. The container is the one `find` lists (`docker ps` by the compose
/// project and service labels), so that plans still name no container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceExec {
    pub service: String,
    pub find: Cmd,
    /// `docker exec` and its flags; the container's id and then `argv` follow.
    pub exec: Cmd,
    pub argv: Vec<String>,
}

/// What a `Decision` decided: the variables it sets, and notes for the user (what it found).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decided {
    pub vars: Vec<(String, String)>,
    pub notes: Vec<String>,
}

impl Decided {
    pub fn set(mut self, var: &str, value: impl Into<String>) -> Decided {
        self.vars.push((var.to_string(), value.into()));
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Decided {
        self.notes.push(note.into());
        self
    }
}

/// The function of a `Decision`: the variables so far in, what it decided out.
pub type Decide = dyn Fn(&Vars) -> Result<Decided> + Send + Sync;

/// A decision taken while a plan runs, of variables earlier steps set: what is decided, from
/// what, and the variables it sets.
pub type Decision = Named<Decide>;

impl Decision {
    pub fn new(what: &str, decide: impl Fn(&Vars) -> Result<Decided> + Send + Sync + 'static) -> Decision {
        Named { what: what.to_string(), call: std::sync::Arc::new(decide) }
    }
}

/// What a wait waits for in its probe's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The probe succeeds.
    Succeeds,
    /// The probe succeeds and prints this.
    Prints(String),
    /// The probe succeeds and does not print this.
    Lacks(String),
}

/// A judge's verdict on one poll of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    /// Not yet, and why.
    NotYet(String),
    /// It will not be ready: the wait fails at once, saying why.
    Failed(String),
}

/// The function of a `Judge`: the probes' outputs and the plan's variables in, a verdict out.
pub type Judging = dyn Fn(&[String], &Vars) -> Verdict + Send + Sync;

/// How a wait judges its probes' outputs.
pub type Judge = Named<Judging>;

impl Judge {
    pub fn new(what: &str, judge: impl Fn(&[String], &Vars) -> Verdict + Send + Sync + 'static) -> Judge {
        Named { what: what.to_string(), call: std::sync::Arc::new(judge) }
    }
}

/// What a step does: the plan's language. Each variant is a way to run programs or touch
/// files; what to run, in which order, and what to try when something fails is the plan's, so
/// that the executor only executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Runs a program.
    Run(Cmd),
    /// Runs a program in a service's running container.
    RunIn(ServiceExec),
    /// Succeeds when a program succeeds; its output is not shown (is an image here?).
    Probe(Cmd),
    /// Polls until a probe is as expected; on timeout prints the logs and fails.
    Wait(Box<Wait>),
    /// Starts a program and goes on with the next steps while it runs, its output kept. The plan
    /// stops as soon as it fails (its output shown then), and ends only after it has ended.
    Background { name: String, cmd: Cmd },
    /// Waits until the background program `name` has ended successfully, then does `action`.
    AfterBackground { name: String, action: Box<Action> },
    /// Runs a program and keeps its trimmed standard output as the variable `var`. When
    /// `optional`, a failure of the program (not of ssh's connection) leaves `var` empty.
    Capture { cmd: Cmd, var: String, optional: bool },
    /// Starts a program that holds something until the plan ends (see `Hold`).
    Hold(Hold),
    /// A decision from values earlier steps learned (see `Decision`); sets variables.
    Decide(Decision),
    /// Runs `each` for every line of the variable `var`, as `%{line}`.
    ForEach { var: String, each: Cmd },
    /// Tries each alternative in turn until one succeeds (a local image, else a pull, else a
    /// build): a failure of one that is not the last is reported in a line, not an error.
    FirstOf(Vec<Alternative>),
    /// Does `action` unless `path` exists.
    UnlessExists { path: PathBuf, action: Box<Action> },
    /// Does each action in turn.
    Seq(Vec<Action>),
    /// Copies `from` to `to` (making its directory when missing), runs `action`, then removes
    /// `to` (and the directory it made) whatever happened.
    WithFile { from: PathBuf, to: PathBuf, action: Box<Action> },
    /// Starts a program in the background (a daemon), its output appended to `log`.
    Spawn { cmd: Cmd, log: PathBuf },
    /// Changes files of this machine, in-process.
    Fs(Fs),
    /// Prints a message.
    Say(String),
    /// Hands a login to `registry` to `cmd`, a `docker login --password-stdin` on a host: its
    /// password on the program's stdin, never printed, and for this machine's own login its user
    /// as `%{registry_user}`.
    PassLogin { registry: String, from: LoginFrom, cmd: Cmd },
}

/// Whose login `Action::PassLogin` hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFrom {
    /// This machine's (`docker login`'s, from the Docker client configuration or its credential
    /// helper).
    Yours,
    /// A password this process read on its stdin (`checks::stdin_secret`), for the user `cmd`
    /// names.
    Stdin,
}

impl Action {
    pub fn wait(wait: Wait) -> Action {
        Action::Wait(Box::new(wait))
    }
}

/// One way to do what a `FirstOf` does: what it is (`using WHAT` is said when it is the way),
/// what to say with the reason when it fails (nothing when its failure is no news), and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub what: String,
    pub failed: Option<String>,
    pub action: Action,
}

/// A wait: `probe` polled (`POLL`) until it is as expected, for at most `timeout`; then `logs`
/// are printed and the wait fails, naming `service`. With `states`, a program that lists the
/// states of the service's containers, it fails at once when they have all exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub probe: Probe,
    pub timeout: Duration,
    pub service: String,
    pub logs: Cmd,
    pub states: Option<Cmd>,
}

/// What a wait polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A program, until its output is as expected.
    Cmd { cmd: Cmd, expect: Expect },
    /// A program in a service's container (once there is one), until it succeeds.
    In(Box<ServiceExec>),
    /// `GET http://127.0.0.1:PORT/PATH`, until it answers 200.
    Http { port: u16, path: String },
    /// Programs, each to succeed, until `judge` finds their outputs ready (or failed: the wait
    /// ends at once).
    Judged { cmds: Vec<Cmd>, judge: Judge },
}

/// A program that holds something (a lock) until the plan ends: it must print `hello` (written
/// to its stdin) back, the sign that it holds it. When it exits with `taken` instead, someone
/// else holds it, and `holder` prints who. The plan stops as soon as it no longer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub what: String,
    pub cmd: Cmd,
    pub hello: String,
    pub taken: i32,
    pub holder: Cmd,
}

/// File operations of this machine (`fsops`, on walkdir: the same on every OS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fs {
    /// Removes, under each directory, entries with one of `names` and files with one of `extensions`.
    Clean { under: Vec<PathBuf>, names: Vec<String>, extensions: Vec<String>, skip: Vec<String> },
    /// Makes a directory (and its parents), if missing.
    MakeDir(PathBuf),
    /// Removes a directory tree, if present.
    RemoveDir(PathBuf),
    /// Removes a file, if present.
    RemoveFile(PathBuf),
    /// Makes `dest` anew from `sources` (source, path inside dest), leaving out entries named in `exclude`.
    AssembleDir { dest: PathBuf, sources: Vec<(PathBuf, PathBuf)>, exclude: Vec<String> },
    /// Writes a file.
    WriteFile { path: PathBuf, contents: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub action: Action,
    /// What to do when the step fails.
    pub hint: Option<String>,
    /// Runs only when this variable is not empty.
    pub when: Option<String>,
    /// Undoes the step: when a later step fails or is interrupted, the undos of the steps done
    /// so far run, last first. A step that `settles` drops the undos before it, except those
    /// that `always` apply (releasing a lock).
    pub undo: Vec<Action>,
    pub always: bool,
    pub settles: bool,
    /// Says how long it took, however short (a backup).
    pub timed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The command line that made the plan, e.g. `cargo xtask new`.
    pub command: String,
    pub root: PathBuf,
    pub checks: Vec<Check>,
    pub steps: Vec<Step>,
    /// What a failed quiet command's output may show, and what it then means.
    pub diagnoses: Vec<Diagnosis>,
}

/// A known cause of failure: when a failed command's output holds one of `signs`, the error
/// says `means`, in one line with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub signs: Vec<String>,
    pub means: String,
}

impl Plan {
    pub fn new(command: &str, root: &Path) -> Plan {
        Plan {
            command: command.to_string(),
            root: root.to_path_buf(),
            checks: Vec::new(),
            steps: Vec::new(),
            diagnoses: Vec::new(),
        }
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
        self.steps.push(Step {
            title: title.to_string(),
            action,
            hint: None,
            when: None,
            undo: Vec::new(),
            always: false,
            settles: false,
            timed: false,
        });
        self
    }

    /// Makes the last step say how long it took, however short.
    pub fn timed(&mut self) -> &mut Plan {
        if let Some(step) = self.steps.last_mut() {
            step.timed = true;
        }
        self
    }

    /// Makes the last step run only when the variable `var` is set and not empty.
    pub fn when(&mut self, var: &str) -> &mut Plan {
        if let Some(step) = self.steps.last_mut() {
            step.when = Some(var.to_string());
        }
        self
    }

    /// Sets how the last step is undone when a later one fails, until a settling step succeeds.
    pub fn undo(&mut self, actions: Vec<Action>) -> &mut Plan {
        if let Some(step) = self.steps.last_mut() {
            step.undo = actions;
        }
        self
    }

    /// Sets how the last step is undone when any later one fails, settled or not.
    pub fn undo_always(&mut self, actions: Vec<Action>) -> &mut Plan {
        self.undo(actions);
        if let Some(step) = self.steps.last_mut() {
            step.always = true;
        }
        self
    }

    /// Marks the last step as the point after which the earlier undos no longer apply.
    pub fn settles(&mut self) -> &mut Plan {
        if let Some(step) = self.steps.last_mut() {
            step.settles = true;
        }
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
        for d in other.diagnoses {
            self.diagnose(d);
        }
        self
    }

    /// Adds a known cause of failure, once.
    pub fn diagnose(&mut self, diagnosis: Diagnosis) -> &mut Plan {
        if !self.diagnoses.contains(&diagnosis) {
            self.diagnoses.push(diagnosis);
        }
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
            let when = step.when.as_ref().map(|v| format!(" (only when %{{{v}}} is set)")).unwrap_or_default();
            let settles = if step.settles { " (from here on, earlier undos no longer apply)" } else { "" };
            let _ = writeln!(out, "  [{}/{}] {}{when}{settles}", i + 1, n, step.title);
            self.render_action(&mut out, &step.action, 8);
            if !step.undo.is_empty() {
                let whenever = if step.always { " (settled or not)" } else { "" };
                let _ = writeln!(out, "        undone, if a later step fails{whenever}, by:");
                for action in &step.undo {
                    self.render_action(&mut out, action, 10);
                }
            }
        }
        out
    }

    fn render_action(&self, out: &mut String, action: &Action, indent: usize) {
        let pad = " ".repeat(indent);
        match action {
            Action::Run(cmd) => self.render_cmd(out, cmd, indent),
            Action::RunIn(exec) => self.render_service_exec(out, exec, indent),
            Action::Probe(cmd) => self.render_cmd(out, cmd, indent),
            Action::Wait(wait) => self.render_wait(out, wait, indent),
            Action::Background { cmd, .. } => {
                let _ = writeln!(out, "{pad}in the background (the next steps go on, and the plan stops if it fails):");
                self.render_cmd(out, cmd, indent);
            }
            Action::AfterBackground { name, action } => {
                let _ = writeln!(out, "{pad}once the background {name} has succeeded:");
                self.render_action(out, action, indent);
            }
            Action::Capture { cmd, var, optional } => {
                let empty = if *optional { " (empty if it fails)" } else { "" };
                let _ = writeln!(out, "{pad}%{{{var}}} = the output of{empty}");
                self.render_cmd(out, cmd, indent);
            }
            Action::Hold(hold) => self.render_hold(out, hold, indent),
            Action::Decide(decision) => {
                let _ = writeln!(out, "{pad}decide: {}", decision.what);
            }
            Action::ForEach { var, each } => {
                let _ = writeln!(out, "{pad}for each line of %{{{var}}} as %{{line}}:");
                self.render_cmd(out, each, indent);
            }
            Action::FirstOf(alternatives) => {
                let _ = writeln!(out, "{pad}the first of these that succeeds:");
                for alternative in alternatives {
                    let _ = writeln!(out, "{pad}  {}:", alternative.what);
                    self.render_action(out, &alternative.action, indent + 4);
                }
            }
            Action::UnlessExists { path, action } => {
                let _ = writeln!(out, "{pad}unless {} exists:", self.rel(path));
                self.render_action(out, action, indent + 2);
            }
            Action::Seq(actions) => actions.iter().for_each(|action| self.render_action(out, action, indent)),
            Action::WithFile { from, to, action } => {
                let _ = writeln!(out, "{pad}with {} copied to {} (removed afterwards):", from.display(), self.rel(to));
                self.render_action(out, action, indent);
            }
            Action::Spawn { cmd, log } => {
                let _ = writeln!(out, "{pad}in the background, its output appended to {}:", self.rel(log));
                self.render_cmd(out, cmd, indent);
            }
            Action::Fs(fs) => {
                for line in self.describe_fs(fs).lines() {
                    let _ = writeln!(out, "{pad}{line}");
                }
            }
            Action::PassLogin { registry, from: LoginFrom::Yours, cmd } => {
                let _ = writeln!(out, "{pad}your login to {registry} as %{{registry_user}}, its password on stdin:");
                self.render_cmd(out, cmd, indent);
            }
            Action::PassLogin { registry, from: LoginFrom::Stdin, cmd } => {
                let _ = writeln!(out, "{pad}the password to {registry} read from stdin, on its stdin:");
                self.render_cmd(out, cmd, indent);
            }
            Action::Say(text) => {
                let _ = writeln!(out, "{pad}print a summary:");
                for line in text.lines() {
                    let _ = writeln!(out, "{pad}| {line}");
                }
            }
        }
    }

    fn render_wait(&self, out: &mut String, wait: &Wait, indent: usize) {
        let pad = " ".repeat(indent);
        let (poll, secs) = (POLL.1, wait.timeout.as_secs());
        match &wait.probe {
            Probe::Cmd { cmd, expect } => {
                let prints = match expect {
                    Expect::Succeeds => String::new(),
                    Expect::Prints(text) => format!(" and prints {text}"),
                    Expect::Lacks(text) => format!(" and does not print {text}"),
                };
                let _ = writeln!(out, "{pad}until it succeeds{prints}, {poll}, for at most {secs}s:");
                self.render_cmd(out, cmd, indent);
            }
            Probe::In(exec) => {
                let _ = writeln!(out, "{pad}until it succeeds, {poll}, for at most {secs}s:");
                self.render_service_exec(out, exec, indent);
            }
            Probe::Http { port, path } => {
                let _ = writeln!(
                    out,
                    "{pad}until GET http://127.0.0.1:{port}{path} answers 200, {poll}, for at most {secs}s"
                );
            }
            Probe::Judged { cmds, judge } => {
                let _ = writeln!(out, "{pad}until {}, from these, {poll}, for at most {secs}s:", judge.what);
                cmds.iter().for_each(|cmd| self.render_cmd(out, cmd, indent));
            }
        }
        if let Some(states) = &wait.states {
            let _ = writeln!(out, "{pad}and fails at once when the container this lists has exited:");
            self.render_cmd(out, states, indent + 2);
        }
    }

    fn render_hold(&self, out: &mut String, hold: &Hold, indent: usize) {
        let pad = " ".repeat(indent);
        let _ = writeln!(out, "{pad}held until the plan ends (it writes back `{}` once it holds):", hold.hello);
        self.render_cmd(out, &hold.cmd, indent);
        let _ = writeln!(out, "{pad}when it exits with {} (held by another), who holds it:", hold.taken);
        self.render_cmd(out, &hold.holder, indent);
    }

    /// What a file operation does, in one line.
    fn describe_fs(&self, fs: &Fs) -> String {
        match fs {
            Fs::Clean { under, names, extensions, skip } => {
                let dirs: Vec<String> = under.iter().map(|d| self.rel(d)).collect();
                let exts: Vec<String> = extensions.iter().map(|e| format!("*.{e}")).collect();
                format!(
                    "remove under {}: {} {} (not descending into {})",
                    dirs.join(", "),
                    names.join(" "),
                    exts.join(" "),
                    skip.join(" ")
                )
            }
            Fs::MakeDir(dir) => format!("make the directory {}", self.rel(dir)),
            Fs::RemoveDir(dir) => format!("remove the directory {}", self.rel(dir)),
            Fs::RemoveFile(file) => format!("remove the file {}", self.rel(file)),
            Fs::AssembleDir { dest, sources, exclude } => {
                let mut text = format!("make {} anew from:", self.rel(dest));
                for (src, inside) in sources {
                    text.push_str(&format!("\n  {} -> {}", self.rel(src), inside.display()));
                }
                format!("{text}\nleaving out: {}", exclude.join(" "))
            }
            Fs::WriteFile { path, contents } => format!("write {}: {}", self.rel(path), contents.trim_end()),
        }
    }

    fn render_service_exec(&self, out: &mut String, exec: &ServiceExec, indent: usize) {
        let pad = " ".repeat(indent);
        let mut words = vec![exec.exec.line(), "CONTAINER".to_string()];
        words.extend(exec.argv.iter().map(|a| sh(a)));
        let _ = writeln!(out, "{pad}$ {}", words.join(" "));
        let _ = writeln!(out, "{pad}  where CONTAINER is the running {} container this lists:", exec.service);
        self.render_cmd(out, &exec.find, indent + 2);
    }

    fn render_cmd(&self, out: &mut String, cmd: &Cmd, indent: usize) {
        let pad = " ".repeat(indent);
        if cmd.dir != self.root {
            let _ = writeln!(out, "{pad}(in {})", self.rel(&cmd.dir));
        }
        if !cmd.env.is_empty() {
            let env: Vec<String> = cmd.env.iter().map(|(k, v)| format!("{k}={}", sh(v))).collect();
            let _ = writeln!(out, "{pad}  env: {}", env.join(" "));
        }
        let _ = writeln!(out, "{pad}$ {}", cmd.line());
        if let Some(text) = &cmd.stdin {
            let _ = writeln!(out, "{pad}  stdin: {}", text.escape_debug());
        }
        if let Some(path) = &cmd.stdin_file {
            let _ = writeln!(out, "{pad}  stdin: the file {}", self.rel(path));
        }
        if cmd.stdin_held {
            let _ = writeln!(out, "{pad}  stdin: a pipe held open until it ends, or this command does");
        }
        if let Some(path) = &cmd.stdout_file {
            let _ = writeln!(out, "{pad}  stdout: to the file {}", self.rel(path));
        }
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
