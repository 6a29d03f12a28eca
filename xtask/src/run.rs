//! The executor: checks every precondition of the whole plan first, then runs the steps in
//! order, each echoed with its number and elapsed time, and undoes what a failed or interrupted
//! plan did. It only executes: what to run, and every decision, comes from the plan.

use std::io::{IsTerminal, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::checks::{self, Check, Failure};
use crate::cmd::{Cmd, Vars};
use crate::interrupt::interrupted;
use crate::plan::{
    Action, Alternative, Expect, Fs, Hold, Judge, LoginFrom, Plan, Probe, ServiceExec, Step, Verdict, Wait, POLL,
};
use crate::process::{self, Background, Held};

pub struct Options {
    pub yes: bool,
    pub verbose: bool,
}

/// Checks all preconditions: first every one but confirmations (all of them, so the user sees
/// every problem at once), then the confirmations. Nothing has run when this fails.
pub fn check_all(plan: &Plan, opts: &Options) -> Result<()> {
    let (confirms, others): (Vec<&Check>, Vec<&Check>) =
        plan.checks.iter().partition(|c| matches!(c, Check::Confirm { .. }));
    let mut failures: Vec<Failure> = Vec::new();
    let mut skipped = 0;
    for (check, result) in others.iter().zip(checks::verify_all(&others)) {
        match result {
            Some(Ok(_)) if opts.verbose => eprintln!("  ok   {}", check.describe()),
            Some(Ok(_)) => {}
            Some(Err(failure)) => failures.push(failure),
            None => skipped += 1,
        }
    }
    if failures.is_empty() {
        for check in confirms {
            if let Err(failure) = check.verify(opts.yes) {
                failures.push(failure);
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    for failure in &failures {
        eprintln!("error: {}\n  fix: {}", failure.problem, failure.fix);
    }
    if skipped > 0 {
        eprintln!(
            "({skipped} more precondition{} on that host not checked: it cannot be reached)",
            if skipped == 1 { "" } else { "s" }
        );
    }
    bail!(
        "`{}`: {} precondition{} failed; nothing was run",
        plan.command,
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    )
}

/// Checks the plan's preconditions, then runs its steps. When a step fails or is interrupted,
/// the plan's background programs are killed and the undos of the steps done so far run, last
/// first.
pub fn execute(plan: &Plan, opts: &Options) -> Result<()> {
    // Ctrl-C reaches the children (same process group); the plan then stops after the
    // current step instead of this process dying with the child still half done.
    crate::interrupt::install();
    check_all(plan, opts)?;
    let started = Instant::now();
    let mut run = Run { plan, opts, vars: Vars::default(), jobs: Vec::new(), held: Vec::new() };
    let result = run.steps();
    let background = match &result {
        // Nothing started in the background outlives a failed plan, nor is waited out.
        Err(_) => {
            run.jobs.iter().for_each(|job| job.bg.kill());
            Ok(())
        }
        // A plan ends only after its background programs have ended.
        Ok(()) => run.jobs.iter().try_for_each(|job| run.finish(job)),
    };
    // What the plan held (a lock) is let go only now, after the undos.
    run.held.iter_mut().for_each(|(_, held)| held.release());
    result?;
    background?;
    eprintln!("`{}` finished in {:.1}s", plan.command, started.elapsed().as_secs_f64());
    Ok(())
}

/// A program started by `Action::Background`.
struct Job {
    name: String,
    hint: Option<String>,
    bg: Background,
}

struct Run<'a> {
    plan: &'a Plan,
    opts: &'a Options,
    vars: Vars,
    jobs: Vec<Job>,
    /// What `Action::Hold` holds, and what it is.
    held: Vec<(String, Held)>,
}

impl Run<'_> {
    fn steps(&mut self) -> Result<()> {
        let plan = self.plan;
        let n = plan.steps.len();
        // The steps whose undos apply if a later step fails.
        let mut done: Vec<&Step> = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            if let Some(var) = step.when.as_deref().filter(|v| self.vars.get(v).is_empty()) {
                eprintln!("[{}/{}] {}: skipped (%{{{var}}} is empty)", i + 1, n, step.title);
                continue;
            }
            // A title may name what an earlier step found (the release a rollback pulls).
            let title = self.vars.fill(&step.title).unwrap_or_else(|_| step.title.clone());
            eprintln!("[{}/{}] {title}", i + 1, n);
            // The step's quiet commands append to its log: it holds this run's output only.
            let _ = std::fs::remove_file(self.log_path(&title));
            let t = Instant::now();
            let result = match self.check_held() {
                Err(err) => Err(err),
                Ok(()) => match &step.action {
                    Action::Background { name, cmd } => self.start(name, cmd, step.hint.as_deref()),
                    action => self.act(action, &title),
                },
            };
            if interrupted() && matches!(&step.action, Action::Run(cmd) if cmd.terminal) {
                // Ctrl-C is how a followed log, a watcher or psql is left: not an error.
                return Ok(());
            }
            let failure = match result {
                _ if interrupted() => Some(anyhow!("interrupted (Ctrl-C)")),
                Err(err) => Some(err),
                Ok(()) => None,
            };
            if let Some(err) = failure {
                self.jobs.iter().for_each(|job| job.bg.kill());
                match self.check_held() {
                    Ok(()) => self.undo(&done),
                    // Another command may hold it now and act on what this one would undo.
                    Err(lost) if !done.is_empty() => eprintln!(
                        "not undoing what this did: {lost:#}, and another command may hold it now; \
                         the next one reads what this one left and carries on from there"
                    ),
                    Err(_) => {}
                }
                let hint = step.hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default();
                return Err(err.context(format!("step [{}/{}] {title} failed{hint}", i + 1, n)));
            }
            if step.settles {
                done.retain(|s| s.always);
            }
            if !step.undo.is_empty() {
                done.push(step);
            }
            if self.opts.verbose || step.timed || t.elapsed() > Duration::from_secs(1) {
                eprintln!("      done in {:.1}s", t.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// Runs the undos of the steps done, last first; an undo that fails is reported and the
    /// rest still run.
    fn undo(&mut self, done: &[&Step]) {
        for step in done.iter().rev() {
            eprintln!("undoing: {}", step.title);
            for action in &step.undo {
                if let Err(err) = self.act(action, &step.title) {
                    eprintln!("      warning: could not undo ({err:#})");
                }
            }
        }
    }

    fn start(&mut self, name: &str, cmd: &Cmd, hint: Option<&str>) -> Result<()> {
        self.check_jobs()?;
        let cmd = cmd.resolve(&self.vars)?;
        eprintln!("      $ {} (in the background)", cmd.line());
        let bg = Background::start(&cmd, None)?;
        self.jobs.push(Job { name: name.to_string(), hint: hint.map(str::to_string), bg });
        Ok(())
    }

    /// The end of a background program: its output is shown when it failed (or with --verbose).
    fn finish(&self, job: &Job) -> Result<()> {
        let output = job.bg.wait()?;
        if self.opts.verbose || !output.status.success() {
            let _ = std::io::stderr().write_all(&output.stdout);
            let _ = std::io::stderr().write_all(&output.stderr);
        }
        if output.status.success() {
            return Ok(());
        }
        let hint = job.hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default();
        bail!(
            "the {} failed: `{}` {} (its output is above){hint}",
            job.name,
            job.bg.cmd.line(),
            process::status_text(output.status)
        )
    }

    /// Fails when something the plan holds was lost (its keeper ended: the connection dropped).
    fn check_held(&self) -> Result<()> {
        match self.held.iter().find(|(_, held)| !held.alive()) {
            Some((what, held)) => bail!("lost {what}: `{}` ended (the connection dropped?)", held.cmd.line()),
            None => Ok(()),
        }
    }

    /// Fails as soon as a background program has failed.
    fn check_jobs(&self) -> Result<()> {
        for job in &self.jobs {
            if job.bg.poll()?.is_some() {
                self.finish(job)?;
            }
        }
        Ok(())
    }

    fn act(&mut self, action: &Action, title: &str) -> Result<()> {
        match action {
            Action::Run(cmd) => self.run_cmd(&cmd.resolve(&self.vars)?, title),
            Action::RunIn(exec) => {
                let container = find_container(exec).map_err(|e| anyhow!(e))?;
                self.run_cmd(&exec_in(exec, &container), title)
            }
            Action::Probe(cmd) => process::output(&cmd.resolve(&self.vars)?).map(drop).map_err(|e| anyhow!(e)),
            Action::Wait(wait) => self.wait(wait),
            Action::Background { name, cmd } => self.start(name, cmd, None),
            Action::AfterBackground { name, action } => {
                let job =
                    self.jobs.iter().find(|j| j.name == *name).with_context(|| format!("no {name} was started"))?;
                self.finish(job)?;
                self.act(action, title)
            }
            Action::Capture { cmd, var, optional } => self.capture(cmd, var, *optional),
            Action::Hold(hold) => self.hold(hold),
            Action::Decide(decision) => {
                let decided = (decision.call)(&self.vars)?;
                decided.notes.iter().for_each(|note| eprintln!("      {note}"));
                decided.vars.into_iter().for_each(|(var, value)| self.vars.set(&var, value));
                Ok(())
            }
            Action::ForEach { var, each } => {
                let lines: Vec<String> =
                    self.vars.get(var).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
                for line in lines {
                    self.vars.set("line", line);
                    self.run_cmd(&each.resolve(&self.vars)?, title)?;
                }
                Ok(())
            }
            Action::FirstOf(alternatives) => self.first_of(alternatives, title),
            Action::UnlessExists { path, action } if path.exists() => {
                eprintln!("      {} exists", self.plan.rel(path));
                Ok(())
            }
            Action::UnlessExists { action, .. } => self.act(action, title),
            Action::Seq(actions) => actions.iter().try_for_each(|action| self.act(action, title)),
            Action::WithFile { from, to, action } => self.with_file(from, to, action, title),
            Action::Spawn { cmd, log } => process::spawn_detached(cmd, log),
            Action::Fs(fs) => self.fs(fs),
            Action::Say(text) => {
                println!("{}", self.vars.fill(text)?);
                Ok(())
            }
            Action::PassLogin { registry, from, cmd } => {
                let secret = match from {
                    LoginFrom::Yours => {
                        let login =
                            checks::registry_login(registry).map_err(|f| anyhow!("{}\n  fix: {}", f.problem, f.fix))?;
                        self.vars.set("registry_user", login.user);
                        login.secret
                    }
                    LoginFrom::Stdin => {
                        checks::stdin_secret().map_err(|why| anyhow!("no password: {why}"))?.to_string()
                    }
                };
                let mut cmd = cmd.resolve(&self.vars)?;
                cmd.stdin = Some(secret);
                self.run_cmd(&cmd, title)
            }
        }
    }

    fn capture(&mut self, cmd: &Cmd, var: &str, optional: bool) -> Result<()> {
        let cmd = cmd.resolve(&self.vars)?;
        let out = process::capture(&cmd)?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() {
            self.vars.set(var, text);
        } else if optional && !process::ssh_failed(&cmd, out.status) {
            self.vars.set(var, "");
        } else {
            bail!(process::failure_text(&cmd, &out));
        }
        Ok(())
    }

    fn hold(&mut self, hold: &Hold) -> Result<()> {
        let cmd = hold.cmd.resolve(&self.vars)?;
        if !cmd.quiet || self.opts.verbose {
            eprintln!("      $ {} (held until the plan ends)", cmd.line());
        }
        let what = &hold.what;
        match Held::start(&cmd, &self.vars.fill(&hold.hello)?) {
            Ok(held) => {
                self.held.push((what.clone(), held));
                Ok(())
            }
            Err((Some(status), _)) if status.code() == Some(hold.taken) => {
                let holder = process::output(&hold.holder.resolve(&self.vars)?).unwrap_or_default();
                let holder = if holder.trim().is_empty() { "someone (not recorded)" } else { holder.trim() };
                bail!("{what} is held by {holder}")
            }
            Err((_, why)) => bail!("cannot take {what}: {why}"),
        }
    }

    /// The alternatives in turn until one succeeds; the failure of one before the last is said
    /// in a line (when it is news), the last one's failure is the step's.
    fn first_of(&mut self, alternatives: &[Alternative], title: &str) -> Result<()> {
        let Some((last, earlier)) = alternatives.split_last() else { return Ok(()) };
        for alternative in earlier {
            match self.attempt(&alternative.action, title) {
                Ok(()) => {
                    eprintln!("      using {}", alternative.what);
                    return Ok(());
                }
                Err(why) => {
                    if let Some(failed) = &alternative.failed {
                        eprintln!("      {failed} ({}): trying {}", why.trim(), last.what);
                    }
                }
            }
        }
        self.act(&last.action, title).with_context(|| last.what.clone())
    }

    /// An action whose failure is not (yet) an error: quiet work that fails says its last line
    /// instead of printing its output.
    fn attempt(&mut self, action: &Action, title: &str) -> Result<(), String> {
        match action {
            Action::Run(cmd) => match self.run_quiet(&cmd.resolve(&self.vars).map_err(|e| e.to_string())?, title) {
                Ok(None) => Ok(()),
                Ok(Some(failed)) => Err(failed.text.lines().last().unwrap_or(&failed.status).to_string()),
                Err(err) => Err(format!("{err:#}")),
            },
            Action::Probe(cmd) => {
                let cmd = cmd.resolve(&self.vars).map_err(|e| e.to_string())?;
                let out = process::capture(&cmd).map_err(|e| format!("{e:#}"))?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                match out.status.success() {
                    true => Ok(()),
                    false => Err(stderr.lines().last().unwrap_or("it failed").to_string()),
                }
            }
            other => self.act(other, title).map_err(|e| format!("{e:#}")),
        }
    }

    fn with_file(&mut self, from: &Path, to: &Path, action: &Action, title: &str) -> Result<()> {
        // The directory too, when it is not there (a build context without `certs/`).
        let made = to.parent().filter(|dir| !dir.exists());
        if let Some(dir) = made {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        let result = self.act(action, title);
        let _ = std::fs::remove_file(to);
        if let Some(dir) = made {
            let _ = std::fs::remove_dir(dir);
        }
        result
    }

    fn fs(&self, fs: &Fs) -> Result<()> {
        match fs {
            Fs::Clean { under, names, extensions, skip } => {
                let removed = crate::fsops::clean(under, names, extensions, skip)?;
                for path in removed.iter().filter(|_| self.opts.verbose) {
                    eprintln!("      removed {}", self.plan.rel(path));
                }
                eprintln!("      removed {} entr{}", removed.len(), if removed.len() == 1 { "y" } else { "ies" });
                Ok(())
            }
            Fs::MakeDir(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
            }
            Fs::RemoveDir(dir) => crate::fsops::remove_dir(dir),
            Fs::RemoveFile(file) => crate::fsops::remove_file(file),
            Fs::AssembleDir { dest, sources, exclude } => crate::fsops::assemble(dest, sources, exclude),
            Fs::WriteFile { path, contents } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
            }
        }
    }

    /// Polls the wait's probe until it is ready (see `wait_until`); when its service's containers
    /// have all exited, fails at once with their last log lines.
    fn wait(&self, wait: &Wait) -> Result<()> {
        let logs = wait.logs.resolve(&self.vars)?;
        let (timeout, service) = (wait.timeout, wait.service.as_str());
        let or_exited = |poll: Poll| match (&poll, &wait.states) {
            (Poll::NotYet(_), Some(states)) => match process::output(states).map(|out| exited(&out)) {
                Ok(Some(state)) => Poll::Exited(state),
                _ => poll,
            },
            _ => poll,
        };
        match &wait.probe {
            Probe::Cmd { cmd, expect } => {
                let probe = cmd.resolve(&self.vars)?;
                let expect = match expect {
                    Expect::Prints(text) => Expect::Prints(self.vars.fill(text)?),
                    Expect::Lacks(text) => Expect::Lacks(self.vars.fill(text)?),
                    other => other.clone(),
                };
                self.wait_until(timeout, service, &logs, || or_exited(poll_cmd(&probe, &expect)))
            }
            Probe::In(exec) => {
                // The container is looked up until there is one (the stack may still be starting), then kept.
                let mut container: Option<String> = None;
                self.wait_until(timeout, service, &logs, || {
                    if container.is_none() {
                        container = find_container(exec).ok();
                    }
                    or_exited(match &container {
                        None => Poll::NotYet(format!("the {} service has no running container yet", exec.service)),
                        Some(id) => match process::output(&exec_in(exec, id)) {
                            Ok(_) => Poll::Ready,
                            Err(why) => Poll::NotYet(why),
                        },
                    })
                })
            }
            Probe::Judged { cmds, judge } => {
                let cmds = cmds.iter().map(|c| c.resolve(&self.vars)).collect::<Result<Vec<_>>>()?;
                let vars = self.vars.clone();
                self.wait_until(timeout, service, &logs, || or_exited(poll_judged(&cmds, judge, &vars)))
            }
            Probe::Http { port, path } => self.wait_until(timeout, service, &logs, || {
                or_exited(match http_status(*port, path) {
                    Some(200) => Poll::Ready,
                    Some(status) => Poll::NotYet(format!("GET {path} answered {status}")),
                    None => Poll::NotYet(format!("nothing answers on port {port}")),
                })
            }),
        }
    }

    /// Runs a command of a step: on the terminal, or, when it is quiet work and not --verbose,
    /// logged to the step's file behind a status line, and shown (its last lines) only when it
    /// fails.
    fn run_cmd(&self, cmd: &Cmd, title: &str) -> Result<()> {
        let Some(failed) = self.run_quiet(cmd, title)? else { return Ok(()) };
        eprintln!("      $ {}", cmd.line());
        let lines: Vec<&str> = failed.text.lines().collect();
        eprintln!("      its last lines ({} has them all):", self.plan.rel(&failed.log));
        for line in &lines[lines.len().saturating_sub(15)..] {
            eprintln!("      | {line}");
        }
        let cause = self.plan.diagnoses.iter().find(|d| d.signs.iter().any(|s| failed.text.contains(s.as_str())));
        let cause = cause.map(|d| format!("\n  {}", d.means)).unwrap_or_default();
        bail!("`{}` {} (the whole output is in {}){cause}", cmd.line(), failed.status, failed.log.display())
    }

    /// Runs `cmd`: streamed when it is not quiet work or with --verbose (its failure then an
    /// error), else appended to the step's log behind a status line; `Some` when it failed there.
    fn run_quiet(&self, cmd: &Cmd, title: &str) -> Result<Option<Failed>> {
        if !cmd.quiet || self.opts.verbose {
            if self.opts.verbose || !cmd.terminal {
                eprintln!("      $ {}", cmd.line());
            }
            return process::run(cmd).map(|()| None);
        }
        let log = self.log_path(title);
        let bg = Background::start(cmd, Some(&log))?;
        let status = Status::new(title, cmd);
        let output = loop {
            if let Some(output) = bg.poll()? {
                break output;
            }
            if interrupted() {
                bg.kill();
            }
            self.check_jobs()?;
            status.tick();
            std::thread::sleep(Duration::from_millis(100));
        };
        status.clear();
        if output.status.success() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(Some(Failed { status: process::status_text(output.status), log, text }))
    }

    /// `target/logs/<step title>.log`.
    fn log_path(&self, title: &str) -> PathBuf {
        let name: String = title
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c.to_ascii_lowercase() } else { '-' })
            .collect();
        self.plan.root.join("target/logs").join(format!("{}.log", name.trim_matches('-')))
    }

    /// Polls `probe` until it is ready; fails on timeout (showing `logs` and the last reason),
    /// on Ctrl-C, and as soon as a background program of the plan has failed (there is no point
    /// waiting any longer then).
    fn wait_until(&self, timeout: Duration, service: &str, logs: &Cmd, mut probe: impl FnMut() -> Poll) -> Result<()> {
        let start = Instant::now();
        loop {
            let last = probe();
            match last {
                Poll::Ready => return Ok(()),
                Poll::Failed(why) => bail!("{service}: {why}"),
                Poll::Exited(state) => {
                    eprintln!("      the {service} container has exited ({state}); its last log lines:");
                    let _ = process::run(logs);
                    bail!("{service} stopped while this waited for it: its last log lines (above) say why");
                }
                _ => {}
            }
            if interrupted() {
                bail!("interrupted (Ctrl-C) while waiting for {service}");
            }
            self.check_jobs().with_context(|| format!("while waiting for {service}"))?;
            self.check_held()?;
            if start.elapsed() >= timeout {
                if let Poll::Unreachable(why) = last {
                    bail!("lost the connection while waiting for {service}: {why}");
                }
                eprintln!("      {service} is not ready after {}s; its last log lines:", timeout.as_secs());
                let _ = process::run(logs);
                let why = match last {
                    Poll::NotYet(why) => why,
                    _ => String::new(),
                };
                bail!("{service} did not become ready within {}s: {why}", timeout.as_secs());
            }
            std::thread::sleep(POLL.0);
        }
    }
}

/// One poll of a wait.
enum Poll {
    Ready,
    /// Not ready, and why (the probe's answer or error).
    NotYet(String),
    /// The probe could not reach the host it runs on (ssh failed).
    Unreachable(String),
    /// It will not be ready, and why.
    Failed(String),
    /// Its container has exited (its state).
    Exited(String),
}

/// A quiet command that failed: how, its log, and what the log holds.
struct Failed {
    status: String,
    log: PathBuf,
    text: String,
}

/// A live status line on a terminal (what runs and for how long); elsewhere a line after 60 s,
/// then ever less often (`next_progress_line`).
struct Status {
    title: String,
    line: String,
    start: Instant,
    terminal: bool,
    said: std::cell::Cell<u64>,
}

impl Status {
    fn new(title: &str, cmd: &Cmd) -> Status {
        Status {
            title: title.to_string(),
            line: cmd.line(),
            start: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            said: 0.into(),
        }
    }

    /// On a terminal, a spinner with the command and its elapsed time on one line; otherwise
    /// a line after a minute, then at doubling intervals of at most five minutes.
    fn tick(&self) {
        let secs = self.start.elapsed().as_secs();
        if self.terminal {
            const SPIN: [char; 4] = ['|', '/', '-', '\\'];
            let spin = SPIN[(self.start.elapsed().as_millis() / 250 % 4) as usize];
            let what: String = self.line.chars().take(60).collect();
            eprint!("\r      {spin} {} ({secs}s): {what}\x1b[K", self.title);
            let _ = std::io::stderr().flush();
        } else if secs >= next_progress_line(self.said.get()) {
            self.said.set(secs);
            eprintln!("      still running after {secs}s: {}", self.line);
        }
    }

    fn clear(&self) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
    }
}

/// When the next progress line of a quiet command is due (in seconds), the last one said at
/// `said` (0: none yet): after a minute, then at doubling intervals of at most five minutes, so
/// that an hour-long build says so in about fifteen lines.
fn next_progress_line(said: u64) -> u64 {
    if said == 0 {
        60
    } else {
        said + said.min(300)
    }
}

/// The state of a service whose containers (`docker ps --format {{.State}}`, one a line) have
/// all exited; None while one runs, is starting or restarting, or there is none yet.
fn exited(states: &str) -> Option<String> {
    let states: Vec<&str> = states.lines().map(str::trim).filter(|s| !s.is_empty()).collect();
    let alive = |s: &&str| matches!(*s, "running" | "restarting" | "created");
    (!states.is_empty() && !states.iter().any(alive)).then(|| states.join(", "))
}

/// One poll of a program: ready when it succeeds with the expected output.
fn poll_cmd(probe: &Cmd, expect: &Expect) -> Poll {
    match process::capture(probe) {
        Ok(out) if out.status.success() => {
            let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match expect {
                Expect::Prints(text) if !answer.contains(text.as_str()) => {
                    Poll::NotYet(format!("expected {text}, and it answered `{answer}`"))
                }
                Expect::Lacks(text) if answer.contains(text.as_str()) => {
                    Poll::NotYet(format!("it still answers `{answer}`"))
                }
                _ => Poll::Ready,
            }
        }
        Ok(out) if process::ssh_failed(probe, out.status) => Poll::Unreachable(process::failure_text(probe, &out)),
        Ok(out) => Poll::NotYet(process::failure_text(probe, &out)),
        Err(err) => Poll::NotYet(format!("{err:#}")),
    }
}

/// One poll of programs whose outputs a judge reads: not yet while one fails (unreachable when
/// ssh could not connect).
fn poll_judged(cmds: &[Cmd], judge: &Judge, vars: &Vars) -> Poll {
    let mut outputs = Vec::new();
    for cmd in cmds {
        match process::capture(cmd) {
            Ok(out) if out.status.success() => outputs.push(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            Ok(out) if process::ssh_failed(cmd, out.status) => {
                return Poll::Unreachable(process::failure_text(cmd, &out))
            }
            Ok(out) => return Poll::NotYet(process::failure_text(cmd, &out)),
            Err(err) => return Poll::NotYet(format!("{err:#}")),
        }
    }
    match (judge.call)(&outputs, vars) {
        Verdict::Ready => Poll::Ready,
        Verdict::NotYet(why) => Poll::NotYet(why),
        Verdict::Failed(why) => Poll::Failed(why),
    }
}

/// The id of the service's running container, or why there is none (yet).
fn find_container(exec: &ServiceExec) -> Result<String, String> {
    let out = process::output(&exec.find)?;
    match out.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(id) => Ok(id.to_string()),
        None => {
            Err(format!("the {} service has no running container (`{}` lists none)", exec.service, exec.find.line()))
        }
    }
}

/// `docker exec FLAGS CONTAINER ARGV...`.
fn exec_in(exec: &ServiceExec, container: &str) -> Cmd {
    exec.exec.clone().arg(container).args(&exec.argv)
}

/// The status code of `GET path` on 127.0.0.1:port, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{exited, next_progress_line};

    #[test]
    fn a_service_has_exited_when_none_of_its_containers_runs_or_starts() {
        assert_eq!(exited("exited\n"), Some("exited".into()));
        assert_eq!(exited("exited\ndead\n"), Some("exited, dead".into()));
        assert_eq!(exited("exited\nrunning\n"), None);
        assert_eq!(exited("restarting\n"), None);
        assert_eq!(exited("created\n"), None);
        assert_eq!(exited(""), None, "no container yet: the stack is starting");
    }

    #[test]
    fn progress_lines_of_long_work_come_ever_less_often() {
        let mut said = Vec::new();
        let mut last = 0;
        while next_progress_line(last) <= 3600 {
            last = next_progress_line(last);
            said.push(last);
        }
        assert_eq!(said[..5], [60, 120, 240, 480, 780]);
        assert_eq!(said.len(), 14, "{said:?}");
    }
}
