//! Runs a plan: checks every precondition of the whole plan first, then runs the steps in
//! order, each echoed with its number and elapsed time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::checks::{self, Check, Failure};
use crate::interrupt::interrupted;
use crate::plan::{Action, Cmd, Plan, ServiceExec, Step, Vars, POLL};

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
    for (check, result) in others.iter().zip(checks::verify_all(&others)) {
        match result {
            Ok(()) if opts.verbose => eprintln!("  ok   {}", check.describe()),
            Ok(()) => {}
            Err(failure) => failures.push(failure),
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
    bail!(
        "`{}`: {} precondition{} failed; nothing was run",
        plan.command,
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    )
}

/// Checks the plan's preconditions, then runs its steps. When a step fails or is interrupted,
/// the undos of the steps begun so far run, last first.
pub fn execute(plan: &Plan, opts: &Options) -> Result<()> {
    // Ctrl-C reaches the children (same process group); the plan then stops after the
    // current step instead of this process dying with the child still half done.
    crate::interrupt::install();
    check_all(plan, opts)?;
    let started = Instant::now();
    let mut jobs = Jobs::default();
    let result = run_steps(plan, opts, &mut jobs);
    // Nothing started in the background outlives the plan, also when it failed.
    let background = jobs.wait_all(opts);
    result?;
    background?;
    eprintln!("`{}` finished in {:.1}s", plan.command, started.elapsed().as_secs_f64());
    Ok(())
}

fn run_steps(plan: &Plan, opts: &Options, jobs: &mut Jobs) -> Result<()> {
    let n = plan.steps.len();
    let mut vars = Vars::default();
    // The steps whose undos apply if a later step fails.
    let mut done: Vec<&Step> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if let Some(var) = step.when.as_deref().filter(|v| vars.get(v).is_empty()) {
            eprintln!("[{}/{}] {}: skipped (%{{{var}}} is empty)", i + 1, n, step.title);
            continue;
        }
        eprintln!("[{}/{}] {}", i + 1, n, step.title);
        let t = Instant::now();
        let result = match &step.action {
            Action::Background { name, cmd } => jobs.start(name, &cmd.resolve(&vars)?, step.hint.as_deref(), opts),
            action => act(plan, action, opts, &mut vars, jobs),
        };
        if interrupted() && terminal_step(&step.action) {
            // Ctrl-C is how a followed log, a watcher or psql is left: not an error.
            return Ok(());
        }
        let failure = match result {
            _ if interrupted() => Some(anyhow::anyhow!("interrupted")),
            Err(err) => Some(err),
            Ok(()) => None,
        };
        if let Some(err) = failure {
            undo(plan, &done, opts, &mut vars, jobs);
            let hint = step.hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default();
            return Err(err.context(format!("step [{}/{}] {} failed{hint}", i + 1, n, step.title)));
        }
        if step.settles {
            done.retain(|s| s.always);
        }
        if !step.undo.is_empty() {
            done.push(step);
        }
        if opts.verbose || t.elapsed() > Duration::from_secs(1) {
            eprintln!("      done in {:.1}s", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// A program started by `Action::Background`, running on a thread that keeps its output.
struct Job {
    name: String,
    cmd: Cmd,
    hint: Option<String>,
    running: Option<std::thread::JoinHandle<std::io::Result<std::process::Output>>>,
}

/// The plan's background programs.
#[derive(Default)]
struct Jobs(Vec<Job>);

impl Jobs {
    fn start(&mut self, name: &str, cmd: &Cmd, hint: Option<&str>, opts: &Options) -> Result<()> {
        self.check(opts)?;
        eprintln!("      $ {} (in the background)", cmd.line());
        let mut child = cmd.to_std();
        child.stdin(std::process::Stdio::null());
        let running = std::thread::spawn(move || child.output());
        self.0.push(Job {
            name: name.to_string(),
            cmd: cmd.clone(),
            hint: hint.map(str::to_string),
            running: Some(running),
        });
        Ok(())
    }

    /// Collects the job's end: its output is shown when it failed (or with --verbose).
    fn finish(job: &mut Job, opts: &Options) -> Result<()> {
        let Some(running) = job.running.take() else { return Ok(()) };
        let output = running.join().map_err(|_| anyhow::anyhow!("the thread running `{}` panicked", job.cmd.line()))?;
        let output =
            output.with_context(|| format!("cannot start `{}`: is it installed and on PATH?", job.cmd.program))?;
        if opts.verbose || !output.status.success() {
            let _ = std::io::stderr().write_all(&output.stdout);
            let _ = std::io::stderr().write_all(&output.stderr);
        }
        if output.status.success() {
            return Ok(());
        }
        let hint = job.hint.as_deref().map(|h| format!("\n  fix: {h}")).unwrap_or_default();
        bail!("the {} failed: {} (its output is above){hint}", job.name, status_error(&job.cmd, output.status))
    }

    /// Fails as soon as a background program has failed.
    fn check(&mut self, opts: &Options) -> Result<()> {
        for job in &mut self.0 {
            if job.running.as_ref().is_some_and(|r| r.is_finished()) {
                Jobs::finish(job, opts)?;
            }
        }
        Ok(())
    }

    /// Waits for the background program `name` to end; an error if it failed or was never started.
    fn wait(&mut self, name: &str, opts: &Options) -> Result<()> {
        let job = self.0.iter_mut().find(|j| j.name == name).with_context(|| format!("no {name} was started"))?;
        Jobs::finish(job, opts)
    }

    /// Waits for every background program; the first failure is the error.
    fn wait_all(&mut self, opts: &Options) -> Result<()> {
        let mut first = Ok(());
        for job in &mut self.0 {
            let result = Jobs::finish(job, opts);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// Runs the undos of the steps done, last first; an undo that fails is reported and the rest still run.
fn undo(plan: &Plan, done: &[&Step], opts: &Options, vars: &mut Vars, jobs: &mut Jobs) {
    for step in done.iter().rev() {
        eprintln!("undoing: {}", step.title);
        for action in &step.undo {
            if let Err(err) = act(plan, action, opts, vars, jobs) {
                eprintln!("      warning: could not undo ({err:#})");
            }
        }
    }
}

fn terminal_step(action: &Action) -> bool {
    matches!(action, Action::Run(cmd) if cmd.terminal)
}

fn act(plan: &Plan, action: &Action, opts: &Options, vars: &mut Vars, jobs: &mut Jobs) -> Result<()> {
    match action {
        Action::Run(cmd) => run_cmd(&cmd.resolve(vars)?, opts),
        Action::RunIn(exec) => {
            let container = find_container(exec).map_err(|e| anyhow::anyhow!(e))?;
            run_cmd(&exec_in(exec, &container), opts)
        }
        Action::WaitCmd { probe, expect, timeout, service, logs } => {
            let probe = probe.resolve(vars)?;
            let expect = expect.as_deref().map(|e| vars.fill(e)).transpose()?;
            wait_until(*timeout, POLL.0, service, &logs.resolve(vars)?, jobs, opts, || {
                match (output(&probe), &expect) {
                    (Ok(out), Some(expect)) => out.contains(expect.as_str()),
                    (result, _) => result.is_ok(),
                }
            })
        }
        Action::WaitIn { probe, timeout, service, logs } => {
            // The container is looked up until there is one (the stack may still be starting), then kept.
            let mut container: Option<String> = None;
            wait_until(*timeout, POLL.0, service, logs, jobs, opts, || {
                if container.is_none() {
                    container = find_container(probe).ok();
                }
                container.as_ref().is_some_and(|id| output(&exec_in(probe, id)).is_ok())
            })
        }
        Action::WaitHttp { port, path, timeout, service, logs } => {
            wait_until(*timeout, POLL.0, service, logs, jobs, opts, || http_status(*port, path) == Some(200))
        }
        Action::Background { name, cmd } => jobs.start(name, &cmd.resolve(vars)?, None, opts),
        Action::AfterBackground { name, action } => {
            jobs.wait(name, opts)?;
            act(plan, action, opts, vars, jobs)
        }
        Action::Capture { cmd, var } => {
            let out = output(&cmd.resolve(vars)?).map_err(|e| anyhow::anyhow!(e))?;
            vars.set(var, out.trim());
            Ok(())
        }
        Action::PickPort { live, ports } => {
            let live = vars.get(live).to_string();
            let mut words = live.split_whitespace();
            let held: Option<u16> = words.next().and_then(|p| p.parse().ok()).filter(|p| ports.contains(p));
            let (new_port, old_port, old_container) = match held {
                Some(port) => {
                    (if port == ports[0] { ports[1] } else { ports[0] }, port.to_string(), words.next().unwrap_or(""))
                }
                None => (ports[0], String::new(), ""),
            };
            let old_container = old_container.to_string();
            eprintln!("      the next release goes on port {new_port}");
            vars.set("new_port", new_port.to_string());
            vars.set("old_port", old_port);
            vars.set("old_container", old_container);
            Ok(())
        }
        Action::PickRelease { log, release } => {
            let (image, commit) = crate::releases::pick(vars.get(log), release.as_deref())?;
            eprintln!("      rolling back to {image}");
            vars.set("image", image);
            vars.set("commit", commit);
            Ok(())
        }
        Action::ForEachLine { list, skip, each } => {
            let listed = output(&list.resolve(vars)?).map_err(|e| anyhow::anyhow!(e))?;
            for line in listed.lines().map(str::trim).filter(|l| !l.is_empty()).skip(*skip) {
                vars.set("line", line);
                run_cmd(&each.resolve(vars)?, opts)?;
            }
            Ok(())
        }
        Action::EnsureImage { image, inspect, pull, fallback } => {
            if output(inspect).is_ok() {
                eprintln!("      using the local image {image}");
                return Ok(());
            }
            eprintln!("      {image} is not here: pulling it");
            if run_cmd(pull, opts).is_ok() {
                return Ok(());
            }
            eprintln!("      {image} cannot be pulled: building it locally");
            for action in fallback {
                act(plan, action, opts, vars, jobs).with_context(|| format!("building a local {image}"))?;
            }
            Ok(())
        }
        Action::WithFile { from, to, action } => {
            std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
            let result = act(plan, action, opts, vars, jobs);
            let _ = std::fs::remove_file(to);
            result
        }
        Action::Clean { under, names, extensions, skip } => {
            let removed = crate::fsops::clean(under, names, extensions, skip)?;
            for path in &removed {
                if opts.verbose {
                    eprintln!("      removed {}", plan.rel(path));
                }
            }
            eprintln!("      removed {} entr{}", removed.len(), if removed.len() == 1 { "y" } else { "ies" });
            Ok(())
        }
        Action::Spawn { cmd, log } => spawn(cmd, log),
        Action::RemoveDir(dir) => crate::fsops::remove_dir(dir),
        Action::RemoveFile(file) => crate::fsops::remove_file(file),
        Action::AssembleDir { dest, sources, exclude } => crate::fsops::assemble(dest, sources, exclude),
        Action::WriteFile { path, contents } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
        }
        Action::Say(text) => {
            println!("{}", vars.fill(text)?);
            Ok(())
        }
    }
}

fn run_cmd(cmd: &Cmd, opts: &Options) -> Result<()> {
    if opts.verbose || !cmd.terminal {
        eprintln!("      $ {}", cmd.line());
    }
    let mut child = cmd
        .to_std()
        .spawn()
        .with_context(|| format!("cannot start `{}`: is it installed and on PATH?", cmd.program))?;
    feed(cmd, &mut child)?;
    let status = child.wait()?;
    if status.success() {
        return Ok(());
    }
    // A terminal step (logs -f, a watcher, psql) ended with Ctrl-C: that is how it is left.
    if cmd.terminal && (interrupted() || interrupted_status(&status)) {
        return Ok(());
    }
    Err(status_error(cmd, status))
}

/// How a program failed: its exit code, or the signal that killed it.
fn status_error(cmd: &Cmd, status: std::process::ExitStatus) -> anyhow::Error {
    match status.code() {
        Some(code) => anyhow::anyhow!("`{}` exited with status {code}", cmd.line()),
        None => anyhow::anyhow!("`{}` was killed ({status})", cmd.line()),
    }
}

/// Starts a daemon that outlives this process, in its own process group (Ctrl-C here does not reach it).
fn spawn(cmd: &Cmd, log: &std::path::Path) -> Result<()> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut child = cmd.to_std();
    child.stdout(out.try_clone()?).stderr(out);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut child, 0);
    child.spawn().with_context(|| format!("cannot start `{}`", cmd.line()))?;
    Ok(())
}

/// Writes the command's stdin text, then closes its stdin.
fn feed(cmd: &Cmd, child: &mut std::process::Child) -> Result<()> {
    if let (Some(text), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).with_context(|| format!("cannot write to `{}`", cmd.line()))?;
    }
    Ok(())
}

/// Runs a command to completion and returns its standard output; an error says why it failed.
pub fn output(cmd: &Cmd) -> Result<String, String> {
    let mut std_cmd = cmd.to_std();
    std_cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    if cmd.stdin.is_none() {
        std_cmd.stdin(std::process::Stdio::null());
    }
    let mut child = std_cmd.spawn().map_err(|e| format!("cannot run `{}`: {e}", cmd.program))?;
    feed(cmd, &mut child).map_err(|e| format!("{e:#}"))?;
    let out = child.wait_with_output().map_err(|e| format!("`{}`: {e}", cmd.line()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(2)..].join(" / ");
    Err(format!(
        "`{}` failed with {}{}",
        cmd.line(),
        out.status,
        if tail.is_empty() { String::new() } else { format!(": {tail}") }
    ))
}

#[cfg(unix)]
fn interrupted_status(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(2) || status.code() == Some(130)
}

#[cfg(not(unix))]
fn interrupted_status(status: &std::process::ExitStatus) -> bool {
    status.code() == Some(0xC000013A_u32 as i32)
}

/// The id of the service's running container, or why there is none (yet).
fn find_container(exec: &ServiceExec) -> Result<String, String> {
    let out = output(&exec.find)?;
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

/// Polls `ready` until it holds; fails on timeout (showing `logs`), on Ctrl-C, and as soon as a
/// background program of the plan has failed (there is no point waiting any longer then).
fn wait_until(
    timeout: Duration,
    every: Duration,
    service: &str,
    logs: &Cmd,
    jobs: &mut Jobs,
    opts: &Options,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if interrupted() {
            bail!("interrupted while waiting for {service}");
        }
        jobs.check(opts).with_context(|| format!("while waiting for {service}"))?;
        if start.elapsed() >= timeout {
            eprintln!("      {service} is not ready after {}s; its last log lines:", timeout.as_secs());
            let _ = logs.to_std().status();
            bail!("{service} did not become ready within {}s (its last log lines are above)", timeout.as_secs());
        }
        std::thread::sleep(every);
    }
}

/// The status code of `GET path` on 127.0.0.1:port, or None when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
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
