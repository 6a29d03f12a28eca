//! Running programs, on duct: the only place a program is started. A `Cmd` (plain data)
//! becomes a duct expression here, when it runs: to completion with the terminal's output,
//! captured (stdin written while stdout and stderr drain, so nothing deadlocks), in the
//! background (a handle that is polled, waited for or killed), logged to a file, detached (a
//! daemon that outlives this process), or held (a program kept running with an open stdin,
//! as the deploy lock's keeper).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{ExitStatus, Output};

use anyhow::{bail, Context, Result};

use crate::cmd::Cmd;
use crate::interrupt::interrupted;

/// The duct expression of a command: its argv, directory and environment; stdin is the
/// command's text, the terminal for terminal commands, else nothing (a held stdin is `run`'s).
fn expression(cmd: &Cmd) -> duct::Expression {
    let mut e = duct::cmd(&cmd.program, cmd.argv()).dir(&cmd.dir);
    for (key, value) in &cmd.env {
        e = e.env(key, value);
    }
    match (&cmd.stdin, &cmd.stdin_file) {
        (Some(text), _) => e.stdin_bytes(text.as_bytes()),
        (None, Some(path)) => e.stdin_path(path),
        (None, None) if cmd.terminal || cmd.stdin_held => e,
        (None, None) => e.stdin_null(),
    }
}

fn start_error(cmd: &Cmd, err: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot start `{}` ({err}): is it installed and on PATH?", cmd.program)
}

/// How a program ended, in words: its exit code, or the signal that killed it.
pub fn status_text(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was killed ({status})"),
    }
}

/// ssh's own failures (it could not connect, or lost the connection) exit with 255.
pub fn ssh_failed(cmd: &Cmd, status: ExitStatus) -> bool {
    cmd.program == "ssh" && status.code() == Some(255)
}

/// Why a captured program failed: the command, how it ended and its last lines of stderr.
pub fn failure_text(cmd: &Cmd, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(2)..].join(" / ");
    let tail = if tail.is_empty() { String::new() } else { format!(": {tail}") };
    if ssh_failed(cmd, output.status) {
        let host = cmd.args.iter().rev().nth(1).map(String::as_str).unwrap_or("the host");
        return format!("the ssh connection to {host} failed (`{}`){tail}", cmd.line());
    }
    format!("`{}` failed with {}{tail}", cmd.line(), output.status)
}

/// Runs a command to completion, its output on the terminal. A terminal command ended with
/// Ctrl-C (a followed log, a watcher, psql) succeeded: that is how it is left. A command that
/// passes its status fails with an `Exited` of it.
pub fn run(cmd: &Cmd) -> Result<()> {
    let mut e = expression(cmd);
    // (Outside `expression`, whose own stdin would win.) The write end lives until this
    // function returns, or this process ends.
    let mut _held = None;
    if cmd.stdin_held {
        let (read_end, write_end) = os_pipe::pipe().context("cannot make a pipe")?;
        e = e.stdin_file(read_end);
        _held = Some(write_end);
    }
    if let Some(path) = &cmd.stdout_file {
        e = e.stdout_file(private_file(&partial(path))?);
    }
    let output = e.unchecked().run().map_err(|e| start_error(cmd, e))?;
    let ok = output.status.success();
    if let Some(path) = &cmd.stdout_file {
        // Only a whole output takes the name (an earlier file of that name stays until then).
        match ok {
            true => std::fs::rename(partial(path), path).with_context(|| format!("cannot name {}", path.display()))?,
            false => std::fs::remove_file(partial(path)).unwrap_or(()),
        }
    }
    if ok || (cmd.terminal && (interrupted() || interrupted_status(output.status))) {
        return Ok(());
    }
    if let (true, Some(code)) = (cmd.passes_status, output.status.code()) {
        return Err(Exited(code).into());
    }
    bail!("`{}` {}", cmd.line(), status_text(output.status))
}

/// Where a command's output goes until it has ended well: `PATH.partial`.
fn partial(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// A new file (replacing one of that name) that only this user may read: a command's output
/// can be a database's dump.
fn private_file(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot write {}", path.display()))
}

/// A command whose exit status is the xtask's (see `Cmd::passes_status`) exited with it.
#[derive(Debug)]
pub struct Exited(pub i32);

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command exited with status {}", self.0)
    }
}

impl std::error::Error for Exited {}

/// Runs a command to completion and returns everything about its end (never an error for a
/// non-zero status): stdout and stderr captured.
pub fn capture(cmd: &Cmd) -> Result<Output> {
    expression(cmd).stdout_capture().stderr_capture().unchecked().run().map_err(|e| start_error(cmd, e))
}

/// Runs a command to completion and returns its standard output; the error says why it failed.
pub fn output(cmd: &Cmd) -> Result<String, String> {
    let out = capture(cmd).map_err(|e| format!("{e:#}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failure_text(cmd, &out))
    }
}

/// A program running in the background, its output captured (or logged to a file).
pub struct Background {
    handle: duct::Handle,
    pub cmd: Cmd,
}

impl Background {
    /// Starts `cmd`; its stdout and stderr are kept, or appended to `log` when given.
    pub fn start(cmd: &Cmd, log: Option<&Path>) -> Result<Background> {
        let mut e = expression(cmd).unchecked();
        e = match log {
            Some(log) => {
                let file = open_log(log)?;
                e.stdout_file(file.try_clone()?).stderr_file(file)
            }
            None => e.stdout_capture().stderr_capture(),
        };
        let handle = e.start().map_err(|err| start_error(cmd, err))?;
        Ok(Background { handle, cmd: cmd.clone() })
    }

    /// Its output once it has ended, or None while it runs.
    pub fn poll(&self) -> Result<Option<&Output>> {
        self.handle.try_wait().with_context(|| format!("waiting for `{}`", self.cmd.line()))
    }

    pub fn wait(&self) -> Result<&Output> {
        self.handle.wait().with_context(|| format!("waiting for `{}`", self.cmd.line()))
    }

    /// Kills it (its direct child: what that one started is its own to end).
    pub fn kill(&self) {
        let _ = self.handle.kill();
    }
}

fn open_log(log: &Path) -> Result<std::fs::File> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))
}

/// Starts a daemon that outlives this process, in its own process group (Ctrl-C here does not
/// reach it), its output appended to `log`.
pub fn spawn_detached(cmd: &Cmd, log: &Path) -> Result<()> {
    let file = open_log(log)?;
    let e = expression(cmd).stdout_file(file.try_clone()?).stderr_file(file).unchecked();
    #[cfg(unix)]
    let e = e.before_spawn(|c| {
        std::os::unix::process::CommandExt::process_group(c, 0);
        Ok(())
    });
    e.start().map_err(|err| start_error(cmd, err))?;
    Ok(())
}

/// A program held running for as long as this value lives: its stdin is a pipe that stays
/// open until `release`, so that it knows when the holder is gone (also when this process is
/// killed: the pipe closes with it). Used for the deploy lock's keeper.
pub struct Held {
    reader: Option<duct::ReaderHandle>,
    stdin: Option<os_pipe::PipeWriter>,
    pub cmd: Cmd,
}

impl Held {
    /// Starts `cmd`, writes `hello` and a newline to its stdin, and waits until it prints that
    /// line back: the sign that it holds what it was started for. The error, when it ends
    /// before (or prints something else), says how it ended; `Err(Some(status))` carries its
    /// exit status for the caller to explain.
    pub fn start(cmd: &Cmd, hello: &str) -> Result<Held, (Option<ExitStatus>, String)> {
        let fail = |why: String| (None, why);
        let (read_end, mut write_end) = os_pipe::pipe().map_err(|e| fail(format!("cannot make a pipe: {e}")))?;
        let mut e = duct::cmd(&cmd.program, cmd.argv()).dir(&cmd.dir).stdin_file(read_end).stderr_capture().unchecked();
        for (key, value) in &cmd.env {
            e = e.env(key, value);
        }
        // In its own process group: Ctrl-C on the terminal stops the plan's current step, and
        // the plan then undoes what it did while it still holds what this holds.
        #[cfg(unix)]
        let e = e.before_spawn(|c| {
            std::os::unix::process::CommandExt::process_group(c, 0);
            Ok(())
        });
        let reader = e.reader().map_err(|err| fail(format!("{:#}", start_error(cmd, err))))?;
        std::io::Write::write_all(&mut write_end, format!("{hello}\n").as_bytes())
            .map_err(|e| fail(format!("cannot write to `{}`: {e}", cmd.line())))?;
        let mut lines = BufReader::new(&reader);
        let mut first = String::new();
        let read = lines.read_line(&mut first);
        if read.is_ok() && first.trim_end() == hello {
            return Ok(Held { reader: Some(reader), stdin: Some(write_end), cmd: cmd.clone() });
        }
        drop(write_end);
        let status = loop {
            match reader.try_wait() {
                Ok(Some(out)) => break Some(out.status),
                Ok(None) => {
                    let _ = reader.kill();
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => break None,
            }
        };
        let stderr =
            reader.try_wait().ok().flatten().map(|out| String::from_utf8_lossy(&out.stderr).trim().to_string());
        let stderr = stderr.filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default();
        let why = match status {
            Some(status) => format!("`{}` {}{stderr}", cmd.line(), status_text(status)),
            None => format!("`{}` ended without answering{stderr}", cmd.line()),
        };
        Err((status, why))
    }

    /// Whether it still runs (it ends when what it holds was lost: the connection dropped).
    pub fn alive(&self) -> bool {
        self.reader.as_ref().is_some_and(|r| matches!(r.try_wait(), Ok(None)))
    }

    /// Closes its stdin, so that it ends and lets go, and waits for that.
    pub fn release(&mut self) {
        drop(self.stdin.take());
        if let Some(mut reader) = self.reader.take() {
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(unix)]
fn interrupted_status(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(2) || status.code() == Some(130)
}

#[cfg(not(unix))]
fn interrupted_status(status: ExitStatus) -> bool {
    status.code() == Some(0xC000013A_u32 as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_a_pipe_buffer_goes_through_stdin_and_back_without_deadlock() {
        let text = "0123456789abcdef\n".repeat(128 * 1024); // 2 MiB
        let cmd = Cmd::new("cat", Path::new(".")).stdin(text.clone());
        assert_eq!(output(&cmd).unwrap(), text);
    }

    #[test]
    fn a_failure_names_the_command_its_status_and_the_end_of_stderr() {
        let cmd = Cmd::new("ls", Path::new(".")).arg("/xtask-no-such-path");
        let err = output(&cmd).unwrap_err();
        assert!(err.starts_with("`ls /xtask-no-such-path` failed with exit status: 2: "), "{err}");
        assert!(err.contains("No such file or directory"), "{err}");
        let err = format!("{:#}", run(&Cmd::new("xtask-no-such-program", Path::new("."))).unwrap_err());
        assert!(err.starts_with("cannot start `xtask-no-such-program`"), "{err}");
    }

    #[test]
    fn a_held_stdin_stays_open_while_the_program_runs() {
        // `cat` reads until end of file: only an open stdin keeps it running until `timeout`.
        let until_eof = ["-c", "timeout 1 cat; test $? = 124"];
        run(&Cmd::new("sh", Path::new(".")).args(&until_eof).stdin_held()).unwrap();
        assert!(run(&Cmd::new("sh", Path::new(".")).args(&until_eof)).is_err(), "stdin was open without it");
    }

    #[test]
    fn a_background_program_is_killed_not_waited_out() {
        let bg = Background::start(&Cmd::new("sleep", Path::new(".")).arg("30"), None).unwrap();
        assert!(bg.poll().unwrap().is_none());
        let start = std::time::Instant::now();
        bg.kill();
        let out = bg.wait().unwrap();
        assert!(!out.status.success());
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
    }

    #[test]
    fn a_held_program_runs_until_released_and_a_refusal_says_how_it_ended() {
        // `cat` echoes the hello line and runs until its stdin closes.
        let mut held = Held::start(&Cmd::new("cat", Path::new(".")), "holder ana").unwrap();
        assert!(held.alive());
        held.release();
        assert!(!held.alive());
        let refused = Held::start(&Cmd::new("sh", Path::new(".")).args(&["-c", "exit 75"]), "x").err().unwrap();
        assert_eq!(refused.0.and_then(|s| s.code()), Some(75));
        assert!(refused.1.ends_with("exited with status 75"), "{}", refused.1);
    }
}
