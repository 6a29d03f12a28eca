//! Plans: the ordered steps a command runs and the preconditions of all of them.
//!
//! Building a plan has no side effects. `--dry-run` prints it; running it checks every
//! precondition of the whole plan before the first step, then runs the steps in order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checks::Check;
use crate::quote;

/// How often waits poll, and how plans say it. A probe costs little (an HTTP request, `docker
/// exec`, a round trip on a shared ssh connection), and each poll saved shortens a deploy.
pub const POLL: (Duration, &str) = (Duration::from_millis(200), "five times a second");

/// One program to run: never a shell string on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    /// The child gets the terminal (stdin too), and Ctrl-C ends it quietly: logs, psql, watchers.
    pub terminal: bool,
    /// Text written to the child's standard input (never a secret: plans are printed).
    pub stdin: Option<String>,
    /// A command for a remote shell (ssh): its words are quoted one by one and joined into
    /// the last argument, after `%{var}`s are filled in, so a value cannot become syntax.
    pub remote: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str, dir: &Path) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            dir: dir.to_path_buf(),
            terminal: false,
            stdin: None,
            remote: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Cmd {
        self.args.extend(args.iter().map(|a| a.as_ref().to_string()));
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

    /// Sets the remote command (see `remote`).
    pub fn remote(mut self, words: &[&str]) -> Cmd {
        self.remote = words.iter().map(|w| w.to_string()).collect();
        self
    }

    /// The argument vector: `args`, then the remote command as one quoted string.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.args.clone();
        if !self.remote.is_empty() {
            argv.push(quote::sh_join(&self.remote));
        }
        argv
    }

    pub fn stdin(mut self, text: impl Into<String>) -> Cmd {
        self.stdin = Some(text.into());
        self
    }

    /// The command with every `%{name}` in its arguments and stdin replaced by the value of
    /// the plan variable `name` (set by earlier steps).
    pub fn resolve(&self, vars: &Vars) -> anyhow::Result<Cmd> {
        let mut cmd = self.clone();
        for arg in cmd.args.iter_mut().chain(cmd.remote.iter_mut()) {
            *arg = vars.fill(arg)?;
        }
        if let Some(text) = &cmd.stdin {
            cmd.stdin = Some(vars.fill(text)?);
        }
        Ok(cmd)
    }

    /// The command line as a POSIX shell would read it.
    pub fn line(&self) -> String {
        let mut words = vec![quote::sh(&self.program)];
        words.extend(self.argv().iter().map(|a| quote::sh(a)));
        words.join(" ")
    }

    pub fn to_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(self.argv()).current_dir(&self.dir);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if self.stdin.is_some() {
            cmd.stdin(std::process::Stdio::piped());
        } else if !self.terminal {
            cmd.stdin(std::process::Stdio::null());
        }
        cmd
    }
}

/// Values learned while a plan runs (the live release on a host, say), used as `%{name}` in
/// later steps' arguments. Dry runs print the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(std::collections::BTreeMap<String, String>);

impl Vars {
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), value.into());
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// `text` with each `%{name}` replaced; a name no step has set is a bug in the plan.
    pub fn fill(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let end = rest[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| anyhow::anyhow!("unclosed %{{ in `{text}`"))?;
            let name = &rest[start + 2..end];
            let value =
                self.0.get(name).ok_or_else(|| anyhow::anyhow!("the plan uses %{{{name}}} before any step set it"))?;
            out.push_str(&rest[..start]);
            out.push_str(value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

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

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Runs a program.
    Run(Cmd),
    /// Runs a program in a service's running container.
    RunIn(ServiceExec),
    /// Runs `probe` in a service's container (once there is one) until it succeeds; on timeout
    /// prints `logs` and fails.
    WaitIn { probe: ServiceExec, timeout: Duration, service: String, logs: Cmd },
    /// Starts a program and goes on with the next steps while it runs, its output kept. The plan
    /// stops as soon as it fails (its output shown then), and ends only after it has ended.
    Background { name: String, cmd: Cmd },
    /// Waits until the background program `name` has ended successfully, then does `action`.
    AfterBackground { name: String, action: Box<Action> },
    /// Runs `probe` until it succeeds (and prints `expect`, when given); on timeout prints `logs` and fails.
    WaitCmd { probe: Cmd, expect: Option<String>, timeout: Duration, service: String, logs: Cmd },
    /// Runs a program and keeps its trimmed standard output as the variable `var`.
    Capture { cmd: Cmd, var: String },
    /// Picks the port of the next release: of `ports`, the one the live release (the variable
    /// `live`: "PORT CONTAINER", empty before the first deploy) does not hold. Sets `new_port`,
    /// `old_port` and `old_container`.
    PickPort { live: String, ports: [u16; 2] },
    /// Picks, from the release log in the variable `log`, the release before the live one
    /// (`release`, when given, picks that one). Sets `image` and `commit`.
    PickRelease { log: String, release: Option<String> },
    /// Runs `each` for every line of `list`'s output after the first `skip`, as `%{line}`.
    ForEachLine { list: Cmd, skip: usize, each: Cmd },
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
    /// Runs only when this variable is not empty.
    pub when: Option<String>,
    /// Undoes the step: when a later step fails or is interrupted, the undos of the steps done
    /// so far run, last first. A step that `settles` drops the undos before it, except those
    /// that `always` apply (releasing a lock).
    pub undo: Vec<Action>,
    pub always: bool,
    pub settles: bool,
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
        self.steps.push(Step {
            title: title.to_string(),
            action,
            hint: None,
            when: None,
            undo: Vec::new(),
            always: false,
            settles: false,
        });
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
            Action::Run(cmd) => self.render_cmd(out, "$", cmd, indent),
            Action::RunIn(exec) => self.render_service_exec(out, exec, indent),
            Action::WaitCmd { probe, expect, timeout, .. } => {
                let prints = expect.as_ref().map(|e| format!(" and prints {e}")).unwrap_or_default();
                let _ =
                    writeln!(out, "{pad}until it succeeds{prints}, {}, for at most {}s:", POLL.1, timeout.as_secs());
                self.render_cmd(out, "$", probe, indent);
            }
            Action::WaitIn { probe, timeout, .. } => {
                let _ = writeln!(out, "{pad}until it succeeds, {}, for at most {}s:", POLL.1, timeout.as_secs());
                self.render_service_exec(out, probe, indent);
            }
            Action::Background { cmd, .. } => {
                let _ = writeln!(out, "{pad}in the background (the next steps go on, and the plan stops if it fails):");
                self.render_cmd(out, "$", cmd, indent);
            }
            Action::AfterBackground { name, action } => {
                let _ = writeln!(out, "{pad}once the background {name} has succeeded:");
                self.render_action(out, action, indent);
            }
            Action::Capture { cmd, var } => {
                let _ = writeln!(out, "{pad}%{{{var}}} = the output of");
                self.render_cmd(out, "$", cmd, indent);
            }
            Action::PickPort { live, ports } => {
                let _ = writeln!(
                    out,
                    "{pad}%{{new_port}} = whichever of {} and {} the live release in %{{{live}}} does not hold; \
                     %{{old_port}}, %{{old_container}} = the live release's",
                    ports[0], ports[1]
                );
            }
            Action::PickRelease { log, release } => {
                let which = release
                    .as_deref()
                    .map(|r| format!("release {r}"))
                    .unwrap_or("the release before the live one".into());
                let _ = writeln!(out, "{pad}%{{image}}, %{{commit}} = {which}, from the release log in %{{{log}}}");
            }
            Action::ForEachLine { list, skip, each } => {
                let _ = writeln!(out, "{pad}for each line after the first {skip} of");
                self.render_cmd(out, "$", list, indent);
                self.render_cmd(out, "  $", each, indent);
            }
            Action::WaitHttp { port, path, timeout, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}until GET http://127.0.0.1:{port}{path} answers 200, {}, for at most {}s",
                    POLL.1,
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

    fn render_service_exec(&self, out: &mut String, exec: &ServiceExec, indent: usize) {
        let pad = " ".repeat(indent);
        let mut words = vec![exec.exec.line(), "CONTAINER".to_string()];
        words.extend(exec.argv.iter().map(|a| quote::sh(a)));
        let _ = writeln!(out, "{pad}$ {}", words.join(" "));
        let _ = writeln!(out, "{pad}  where CONTAINER is the running {} container this lists:", exec.service);
        self.render_cmd(out, "$", &exec.find, indent + 2);
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
        if let Some(text) = &cmd.stdin {
            let _ = writeln!(out, "{pad}  stdin: {}", text.escape_debug());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_filled_into_a_remote_command_are_quoted_as_words() {
        let mut vars = Vars::default();
        vars.set("name", "old'; reboot; echo '$(id)");
        let cmd = Cmd::new("ssh", Path::new("/")).args(&["host", "--"]).remote(&["docker", "stop", "%{name}"]);
        let resolved = cmd.resolve(&vars).unwrap();
        assert_eq!(resolved.argv(), ["host", "--", r#"docker stop 'old'\''; reboot; echo '\''$(id)'"#]);
    }

    #[test]
    fn an_unset_variable_is_an_error_not_an_empty_word() {
        let cmd = Cmd::new("ssh", Path::new("/")).remote(&["docker", "stop", "%{nobody}"]);
        let err = cmd.resolve(&Vars::default()).unwrap_err().to_string();
        assert_eq!(err, "the plan uses %{nobody} before any step set it");
    }
}
