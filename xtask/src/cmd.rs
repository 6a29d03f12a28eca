//! Commands as data: a program with its argument vector, environment and working directory,
//! never a shell string on this machine. Plans hold, print and compare them; `process` runs them.
//!
//! A command for a remote shell (ssh) carries its remote words apart: ssh joins its arguments
//! with spaces into one string that the remote shell parses again, so every remote word is
//! quoted here, one by one (POSIX shell quoting), after the plan's `%{variables}` are filled in,
//! so that no value can become syntax. The same quoting renders plans as copy-pasteable lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

/// One program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    /// The child gets the terminal (stdin too), and Ctrl-C ends it quietly: logs, psql, watchers.
    pub terminal: bool,
    /// Work whose output matters only when it fails (image builds, package installs, a deploy's
    /// calls to docker, nginx and dd on the host): no `$` line, its output goes to a log file
    /// under `target/logs`, shown with its last lines when it fails, and a status line shows long
    /// work runs (`--verbose` streams it all instead).
    pub quiet: bool,
    /// Text written to the child's standard input (never a secret: plans are printed).
    pub stdin: Option<String>,
    /// A file the child reads as its standard input (read when it runs).
    pub stdin_file: Option<PathBuf>,
    /// The child's standard input is a pipe this process holds open, without writing to it,
    /// until the child ends; it closes when this process ends, however it ends (`kill -9` too):
    /// a watcher in a container without a terminal ends with it (see `Project::watch`). For
    /// `process::run`, which runs commands to their end.
    pub stdin_held: bool,
    /// A file of this machine the child's standard output goes to (a download): written as
    /// `PATH.partial`, readable by this user only, and named PATH once the command succeeded.
    pub stdout_file: Option<PathBuf>,
    /// The child's exit status is the command's: a failure ends the plan with that status, for
    /// scripts to read (a one-off command in a release).
    pub passes_status: bool,
    /// The command for a remote shell: its words are quoted one by one and joined into the last
    /// argument (see the module's documentation).
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
            quiet: false,
            stdin: None,
            stdin_file: None,
            stdin_held: false,
            stdout_file: None,
            passes_status: false,
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

    pub fn quiet(mut self) -> Cmd {
        self.quiet = true;
        self
    }

    pub fn stdin(mut self, text: impl Into<String>) -> Cmd {
        self.stdin = Some(text.into());
        self
    }

    pub fn stdin_file(mut self, path: &Path) -> Cmd {
        self.stdin_file = Some(path.to_path_buf());
        self
    }

    pub fn stdin_held(mut self) -> Cmd {
        self.stdin_held = true;
        self
    }

    pub fn stdout_file(mut self, path: &Path) -> Cmd {
        self.stdout_file = Some(path.to_path_buf());
        self
    }

    pub fn passes_status(mut self) -> Cmd {
        self.passes_status = true;
        self
    }

    /// Sets the remote command (see `remote`).
    pub fn remote<S: AsRef<str>>(mut self, words: &[S]) -> Cmd {
        self.remote = words.iter().map(|w| w.as_ref().to_string()).collect();
        self
    }

    /// The argument vector: `args`, then the remote command as one quoted string.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.args.clone();
        if !self.remote.is_empty() {
            argv.push(sh_join(&self.remote));
        }
        argv
    }

    /// The command with every `%{name}` in its arguments and stdin replaced by the value of
    /// the plan variable `name` (set by earlier steps).
    pub fn resolve(&self, vars: &Vars) -> Result<Cmd> {
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
        let mut words = vec![sh(&self.program)];
        words.extend(self.argv().iter().map(|a| sh(a)));
        words.join(" ")
    }
}

/// A pure function a plan or a check carries (owned and unit-tested by the module that makes
/// it), named by `what`, how plans print it. The executor only calls it. Two are the same when
/// they say the same `what`.
pub struct Named<F: ?Sized> {
    pub what: String,
    pub call: std::sync::Arc<F>,
}

impl<F: ?Sized> Clone for Named<F> {
    fn clone(&self) -> Named<F> {
        Named { what: self.what.clone(), call: self.call.clone() }
    }
}

impl<F: ?Sized> std::fmt::Debug for Named<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.what)
    }
}

impl<F: ?Sized> PartialEq for Named<F> {
    fn eq(&self, other: &Named<F>) -> bool {
        self.what == other.what
    }
}

impl<F: ?Sized> Eq for Named<F> {}

/// Values learned while a plan runs (what a host runs, say), used as `%{name}` in later steps'
/// arguments; `%%{` is a literal `%{`. Dry runs print the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), value.into());
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// `text` with each `%{name}` replaced; a name no step has set is a bug in the plan.
    pub fn fill(&self, text: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            if rest[..start].ends_with('%') {
                out.push_str(&rest[..start - 1]);
                out.push_str("%{");
                rest = &rest[start + 2..];
                continue;
            }
            let end = rest[start..].find('}').map(|e| start + e).ok_or_else(|| anyhow!("unclosed %{{ in `{text}`"))?;
            let name = &rest[start + 2..end];
            let value = self.0.get(name).ok_or_else(|| anyhow!("the plan uses %{{{name}}} before any step set it"))?;
            out.push_str(&rest[..start]);
            out.push_str(value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `text` as it is, once the plan's variables are filled in (a user's words in a plan: their
/// `%{` is not a variable).
pub fn literal(text: &str) -> String {
    text.replace("%{", "%%{")
}

/// Quotes one argument so that a POSIX shell reads it back as exactly one word, unchanged.
pub fn sh(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Quotes every argument and joins them with spaces: one string for a remote shell.
pub fn sh_join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(|a| sh(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &[&str] = &[
        "plain",
        "with space",
        "it's",
        "a;b",
        "$(reboot)",
        "`id`",
        "\"double\"",
        "back\\slash",
        "new\nline",
        "*",
        "",
        "-rf",
        "~root",
        "a&&b|c>d",
    ];

    #[test]
    fn safe_words_stay_as_they_are() {
        assert_eq!(sh("recordsponge/expungeservice:staging-0123abc"), "recordsponge/expungeservice:staging-0123abc");
        assert_eq!(sh("--log-opt=syslog-facility=local1"), "--log-opt=syslog-facility=local1");
    }

    #[test]
    fn metacharacters_are_quoted() {
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$(reboot)"), "'$(reboot)'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh_join(&["docker", "rm", "a b;c"]), "docker rm 'a b;c'");
    }

    /// A real POSIX shell (what ssh hands the remote command to) reads every argument back unchanged.
    #[test]
    fn a_shell_reads_every_quoted_argument_back_unchanged() {
        let sh = xshell::Shell::new().unwrap();
        let script = format!("printf '%s\\0' {}", sh_join(NASTY));
        let out = xshell::cmd!(sh, "sh -c {script}").output().unwrap();
        let words: Vec<String> =
            out.stdout.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        assert_eq!(&words[..NASTY.len()], NASTY);
        assert_eq!(words.len(), NASTY.len() + 1, "one trailing empty piece after the last NUL");
    }

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

    #[test]
    fn a_doubled_percent_is_a_literal_placeholder() {
        let mut vars = Vars::default();
        vars.set("port", "3101");
        let filled = vars.fill("curl -w '%%{http_code}' http://127.0.0.1:%{port}/ 100%").unwrap();
        assert_eq!(filled, "curl -w '%{http_code}' http://127.0.0.1:3101/ 100%");
        assert_eq!(vars.fill("%%{nobody}").unwrap(), "%{nobody}");
        assert_eq!(vars.fill(&literal("echo %{digest} 100%")).unwrap(), "echo %{digest} 100%");
    }
}
