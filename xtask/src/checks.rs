//! Preconditions: what must hold before a plan's first step runs. Each one is data (so plans
//! can print and compare them) and knows how to verify itself and what fixes it.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Deserialize;

use crate::cmd::{Cmd, Named};
use crate::process::output;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `program` is on PATH, and `version` prints a version of at least `min`.
    Tool { program: String, version: Cmd, min: Option<(u32, u32)>, fix: String },
    /// `probe` succeeds (and, with `line`, prints that line).
    Probe { what: String, probe: Cmd, line: Option<String>, fix: String },
    /// The stack's `service` runs (`probe` lists the running services): for the commands that
    /// act in it. A state the user chooses, not a fault: `doctor` reports it without failing.
    Running { service: String, probe: Cmd },
    /// The npm project `package` (a package.json) has the script `script`, which `command` runs.
    NpmScript { package: PathBuf, script: String, command: String },
    /// The outputs of `probes` (each must succeed) pass `judge`, a pure function that says what
    /// is wrong (a file's syntax, which release serves): for what one probe's success cannot say.
    Judged { what: String, probes: Vec<Cmd>, judge: Judge, fix: String },
    /// `check`, verified only once `guard` holds (nginx's `nginx -t`, which loads the upstream
    /// file as root, only once that file holds what a deploy writes): the guard's failure is
    /// the check's.
    Guarded { guard: Box<Check>, check: Box<Check> },
    /// `host` answers over ssh (`probe` is `ssh HOST true`): checked before the checks that
    /// need it, which are not run when it fails (they would all fail for the same reason), and
    /// their ssh connections then share the one it opened.
    Reach { host: String, probe: Cmd, fix: String },
    /// `probe` succeeds: `what` (a lock) is free. When it exits with `taken`, someone holds it
    /// and `holder` prints who.
    Free { what: String, probe: Cmd, taken: i32, holder: Cmd, fix: String },
    /// HEAD is pushed to its upstream branch.
    GitPushed { root: PathBuf },
    /// A file the plan reads is present.
    File { path: PathBuf, what: String, fix: String },
    /// Nothing else listens on a port the stack publishes; `owner` lists the running services
    /// of this stack, and `service` there means the port is already ours.
    PortFree { port: u16, service: String, owner: Cmd },
    /// `docker login` to `registry` was done (`~/.docker/config.json` or its credential helper).
    RegistryLogin { registry: String },
    /// The git working tree has no uncommitted changes.
    GitClean { root: PathBuf },
    /// HEAD is on `branch`.
    GitBranch { root: PathBuf, branch: String },
    /// The user agrees to something that destroys data (asked on a terminal, else `--yes`).
    Confirm { prompt: String },
    /// This process's stdin holds `what` (a secret, read once, never printed: `stdin_secret`).
    Stdin { what: String, fix: String },
}

/// The function of a `Check::Judged`: the probes' outputs in, what is wrong out (or, when
/// nothing is, what `doctor` says beside `ok`, often nothing).
pub type Judging = dyn Fn(&[String]) -> Result<String, String> + Send + Sync;

/// A named judge of probes' outputs.
pub type Judge = Named<Judging>;

impl Judge {
    pub fn new(what: &str, judge: impl Fn(&[String]) -> Result<(), String> + Send + Sync + 'static) -> Judge {
        Judge::noting(what, move |outputs| judge(outputs).map(|()| String::new()))
    }

    /// A judge that says what it found when nothing is wrong (a certificate's days left).
    pub fn noting(what: &str, judge: impl Fn(&[String]) -> Result<String, String> + Send + Sync + 'static) -> Judge {
        Named { what: what.to_string(), call: std::sync::Arc::new(judge) }
    }
}

/// Why a precondition does not hold, and the exact fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub problem: String,
    pub fix: String,
}

fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Result<(), Failure> {
    Err(Failure { problem: problem.into(), fix: fix.into() })
}

impl Check {
    /// The host a check reaches over ssh (the alias before `--` in its probe), if any.
    pub fn ssh_host(&self) -> Option<&str> {
        let probe = match self {
            Check::Probe { probe, .. } | Check::Reach { probe, .. } | Check::Free { probe, .. } => probe,
            Check::Judged { probes, .. } => probes.first()?,
            Check::Guarded { guard, .. } => return guard.ssh_host(),
            _ => return None,
        };
        if probe.program != "ssh" {
            return None;
        }
        let dash = probe.args.iter().position(|a| a == "--")?;
        dash.checked_sub(1).map(|i| probe.args[i].as_str())
    }

    /// One line for plans and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Check::Tool { program, min: Some((major, minor)), .. } => {
                format!("`{program}` {major}.{minor} or newer is on PATH")
            }
            Check::Tool { program, min: None, .. } => format!("`{program}` is on PATH"),
            Check::Probe { what, .. } | Check::Judged { what, .. } => what.clone(),
            Check::Guarded { guard, check } => format!("{} (once {})", check.describe(), guard.describe()),
            Check::Running { service, .. } => format!("the {service} service is running"),
            Check::Reach { host, .. } => format!("ssh to {host} works without prompts"),
            Check::NpmScript { package, script, .. } => format!("{} has a `{script}` script", package.display()),
            Check::Free { what, .. } => format!("{what} is free"),
            Check::GitPushed { .. } => "git HEAD is pushed to its upstream branch".to_string(),
            Check::File { path, what, .. } => format!("{what} exists: {}", path.display()),
            Check::PortFree { port, service, .. } => {
                format!("port {port} is free (or already published by this stack's {service})")
            }
            Check::RegistryLogin { registry } => format!("logged in to the registry {registry}"),
            Check::GitClean { .. } => "the git working tree is clean".to_string(),
            Check::GitBranch { branch, .. } => format!("git HEAD is on branch {branch}"),
            Check::Confirm { prompt } => format!("confirmed: {prompt} (asked on a terminal, or --yes)"),
            Check::Stdin { what, .. } => format!("{what} is on stdin"),
        }
    }

    /// Verifies the precondition. `yes` answers confirmations.
    pub fn verify(&self, yes: bool) -> Result<(), Failure> {
        self.verify_noting(yes).map(drop)
    }

    /// `verify`, and what a judge found when nothing is wrong (empty for most checks).
    pub fn verify_noting(&self, yes: bool) -> Result<String, Failure> {
        if let Check::Judged { what, probes, judge, fix } = self {
            let outputs: Result<Vec<String>, String> = probes.iter().map(output).collect();
            return outputs
                .and_then(|outputs| (judge.call)(&outputs))
                .or_else(|why| fail(format!("{what}: no ({why})"), fix.as_str()).map(|()| String::new()));
        }
        self.verify_plain(yes).map(|()| String::new())
    }

    fn verify_plain(&self, yes: bool) -> Result<(), Failure> {
        match self {
            Check::Tool { program, version, min, fix } => verify_tool(program, version, *min, fix),
            Check::Probe { what, probe, line, fix } => verify_probe(what, probe, line.as_deref(), fix),
            Check::Running { service, probe } => verify_probe(
                &self.describe(),
                probe,
                Some(service),
                "start the stack: `cargo xtask up` (on a fresh checkout: `cargo xtask new`)",
            ),
            Check::Judged { .. } => self.verify_noting(yes).map(drop),
            Check::NpmScript { package, script, command } => verify_npm_script(package, script, command),
            Check::Guarded { guard, check } => guard.verify(yes).and_then(|()| check.verify(yes)),
            Check::Reach { host, probe, fix } => match output(probe) {
                Ok(_) => Ok(()),
                Err(err) => fail(format!("ssh to {host} works without prompts: no ({err})"), fix.as_str()),
            },
            Check::Free { what, probe, taken, holder, fix } => verify_free(what, probe, *taken, holder, fix),
            Check::GitPushed { root } => verify_pushed(root),
            Check::File { path, .. } if path.is_file() => Ok(()),
            Check::File { path, what, fix } => fail(format!("{what} is missing: {}", path.display()), fix.as_str()),
            Check::PortFree { port, service, owner } => verify_port(*port, service, owner),
            Check::RegistryLogin { registry } => verify_login(registry),
            Check::GitClean { root } => verify_clean(root),
            Check::GitBranch { root, branch } => verify_branch(root, branch),
            Check::Confirm { prompt } => confirm(prompt, yes),
            Check::Stdin { what, fix } => match stdin_secret() {
                Ok(_) => Ok(()),
                Err(why) => fail(format!("{what} is not on stdin: {why}"), fix.as_str()),
            },
        }
    }
}

/// This process's stdin, read to its end the first time it is asked for (a password piped in,
/// without its last line break): an error when stdin is a terminal (a secret is piped, never
/// typed where it shows) or holds nothing.
pub fn stdin_secret() -> Result<&'static str, String> {
    static SECRET: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let read = || {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            return Err("stdin is a terminal".to_string());
        }
        let text = std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read stdin ({e})"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() {
            return Err("stdin is empty".to_string());
        }
        Ok(text.to_string())
    };
    SECRET.get_or_init(read).as_deref().map_err(Clone::clone)
}

/// `probe` succeeds (and, with `line`, prints that line).
fn verify_probe(what: &str, probe: &Cmd, line: Option<&str>, fix: &str) -> Result<(), Failure> {
    let out = match output(probe) {
        Ok(out) => out,
        Err(err) => return fail(format!("{what}: no ({err})"), fix),
    };
    match line {
        Some(line) if !out.lines().any(|l| l.trim() == line) => {
            fail(format!("{what}: no (`{}` does not list {line})", probe.line()), fix)
        }
        _ => Ok(()),
    }
}

/// `probe` succeeds: something is free; its exit status `taken` means someone holds it, and
/// `holder` prints who.
fn verify_free(what: &str, probe: &Cmd, taken: i32, holder: &Cmd, fix: &str) -> Result<(), Failure> {
    match crate::process::capture(probe) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) if out.status.code() == Some(taken) => {
            let who = output(holder).unwrap_or_default();
            let who = if who.trim().is_empty() { "someone (not recorded)" } else { who.trim() };
            fail(format!("{what} is held by {who}"), fix)
        }
        Ok(out) => fail(format!("{what}: cannot tell ({})", crate::process::failure_text(probe, &out)), fix),
        Err(err) => fail(format!("{what}: cannot tell ({err:#})"), fix),
    }
}

fn verify_pushed(root: &Path) -> Result<(), Failure> {
    let ahead = output(&Cmd::new("git", root).args(&["rev-list", "--count", "@{upstream}..HEAD"]));
    match ahead.as_deref().map(str::trim) {
        Ok("0") => Ok(()),
        Ok(n) => fail(
            format!(
                "HEAD is {n} commit(s) ahead of its upstream branch: the release would not be in the shared history"
            ),
            "git push",
        ),
        Err(_) => fail(
            "HEAD's branch has no upstream branch: the release would not be in the shared history",
            "git push --set-upstream origin HEAD",
        ),
    }
}

/// Runs git in the checkout; a failure means this is not one.
fn git(root: &Path, args: &[&str], what: &str) -> Result<String, Failure> {
    output(&Cmd::new("git", root).args(args)).map_err(|e| Failure {
        problem: format!("cannot read the git {what}: {e}"),
        fix: "run from a git checkout of RecordSponge".into(),
    })
}

fn verify_clean(root: &Path) -> Result<(), Failure> {
    let status = git(root, &["status", "--porcelain"], "status")?;
    if status.trim().is_empty() {
        return Ok(());
    }
    let files: Vec<&str> = status.lines().map(str::trim).take(5).collect();
    fail(
        format!(
            "the working tree has uncommitted changes ({}): they would not ship (a release is built from the commit \
             alone), which is rarely what you mean",
            files.join(", ")
        ),
        "commit them, or set them aside with `git stash --include-untracked`",
    )
}

fn verify_branch(root: &Path, branch: &str) -> Result<(), Failure> {
    let head = git(root, &["rev-parse", "--abbrev-ref", "HEAD"], "branch")?;
    if head.trim() == branch {
        return Ok(());
    }
    fail(
        format!("HEAD is on `{}`, and this environment deploys only from `{branch}`", head.trim()),
        format!("git switch {branch}"),
    )
}

fn verify_tool(program: &str, version: &Cmd, min: Option<(u32, u32)>, fix: &str) -> Result<(), Failure> {
    if which::which(program).is_err() {
        return fail(format!("`{program}` is not on PATH"), fix);
    }
    let Some(min) = min else { return Ok(()) };
    let out = output(version).map_err(|e| Failure { problem: e, fix: fix.to_string() })?;
    match parse_version(&out) {
        Some(found) if found >= min => Ok(()),
        Some((major, minor)) => fail(
            format!("`{}` is version {major}.{minor}; {}.{} or newer is needed", version.line(), min.0, min.1),
            fix,
        ),
        None => fail(format!("cannot read a version from `{}`: {}", version.line(), out.trim()), fix),
    }
}

/// How many checks run at once. A host's checks share one ssh connection, each a session on it,
/// and sshd refuses sessions past its MaxSessions (10 by default): ssh then logs in anew for each,
/// and past MaxStartups (10 unauthenticated at once) sshd drops logins at random, failing checks
/// of a host that is fine.
const AT_ONCE: usize = 8;

/// Verifies independent checks at once, `AT_ONCE` at a time (most wait on a program: docker,
/// compose, ssh), so a plan that cannot succeed is refused in about the time of its slowest
/// checks. No confirmations here. The hosts (reached with `ssh`) are checked first, then the
/// rest; a check that needs a host that cannot be reached is not run (None). What a judge found
/// is beside each success.
pub fn verify_all(checks: &[&Check]) -> Vec<Option<Result<String, Failure>>> {
    let at_once = |indices: &[usize]| -> Vec<(usize, Result<String, Failure>)> {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..AT_ONCE.min(indices.len()) {
                scope.spawn(|| {
                    while let Some(&i) = indices.get(next.fetch_add(1, Ordering::SeqCst)) {
                        let result = checks[i].verify_noting(false);
                        done.lock().expect("a check panicked").push((i, result));
                    }
                });
            }
        });
        done.into_inner().expect("a check panicked")
    };
    let mut results = vec![None; checks.len()];
    let gates: Vec<usize> = (0..checks.len()).filter(|&i| matches!(checks[i], Check::Reach { .. })).collect();
    let mut unreachable = Vec::new();
    for (i, result) in at_once(&gates) {
        if result.is_err() {
            unreachable.extend(checks[i].ssh_host());
        }
        results[i] = Some(result);
    }
    let rest: Vec<usize> = (0..checks.len())
        .filter(|i| !gates.contains(i) && !checks[*i].ssh_host().is_some_and(|h| unreachable.contains(&h)))
        .collect();
    for (i, result) in at_once(&rest) {
        results[i] = Some(result);
    }
    results
}

/// The first `MAJOR.MINOR` in a version banner (`Docker version 28.2.2`, `v2.29.1`).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| {
            let mut parts = word.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some((major, minor))
        })
        .next()
}

fn verify_port(port: u16, service: &str, owner: &Cmd) -> Result<(), Failure> {
    if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
        return Ok(());
    }
    if let Ok(running) = output(owner) {
        if running.lines().any(|l| l.trim() == service) {
            return Ok(());
        }
    }
    fail(
        format!("port {port} is taken by another program, so {service} cannot publish it"),
        format!(
            "stop what listens there (`ss -ltnp 'sport = :{port}'` or `lsof -i :{port}` shows it), \
             or choose another port in config/recordsponge.toml [ports]"
        ),
    )
}

fn confirm(prompt: &str, yes: bool) -> Result<(), Failure> {
    confirm_on(prompt, yes, std::io::stdin().is_terminal())
}

/// Asks on the terminal when there is one; without one, only `yes` confirms.
pub fn confirm_on(prompt: &str, yes: bool, terminal: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !terminal {
        return fail(
            format!("this would {prompt}, and there is no terminal to ask for confirmation"),
            "rerun with --yes if that is what you want",
        );
    }
    eprint!("This will {prompt}. Continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        fail(format!("not confirmed: this would {prompt}"), "rerun and answer `y`, or pass --yes")
    }
}

fn verify_npm_script(package: &std::path::Path, script: &str, command: &str) -> Result<(), Failure> {
    let json: Option<Package> = std::fs::read_to_string(package).ok().and_then(|t| serde_json::from_str(&t).ok());
    let Some(json) = json else {
        return fail(
            format!(
                "{} is missing or not JSON: the frontend is an npm project, and {command} needs it",
                package.display()
            ),
            format!("restore it: `git checkout -- {}`", package.display()),
        );
    };
    if json.scripts.get(script).is_some_and(serde_json::Value::is_string) {
        return Ok(());
    }
    fail(
        format!("{} has no `{script}` script, which {command} runs (`npm run {script}`)", package.display()),
        format!("add one to its \"scripts\", e.g. \"{script}\": \"...\" (the command your frontend uses for it)"),
    )
}

/// What a `package.json` says that the checks read: its npm scripts.
#[derive(Deserialize)]
struct Package {
    #[serde(default)]
    scripts: BTreeMap<String, serde_json::Value>,
}

/// What a Docker client configuration (`config.json`) says of the logins: one stored for a
/// registry (`auths`), or the credential helper that holds it (`credHelpers` for one registry,
/// `credsStore` for all).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientConfig {
    #[serde(default)]
    auths: BTreeMap<String, Auth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct Auth {
    #[serde(default)]
    auth: Option<String>,
}

/// The registry part of an image repository (`docker.io` when it names none).
pub fn registry_of(repository: &str) -> String {
    match repository.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".docker"))
}

fn verify_login(registry: &str) -> Result<(), Failure> {
    match docker_config_dir() {
        Some(dir) => verify_login_in(registry, &dir),
        None => fail(
            format!("not logged in to {registry}: no home directory to find ~/.docker/config.json in"),
            "set HOME (or DOCKER_CONFIG), then `docker login`",
        ),
    }
}

/// Whether `dir/config.json` (a Docker client configuration) holds a login for `registry`,
/// directly or through its credential helper.
pub fn verify_login_in(registry: &str, dir: &std::path::Path) -> Result<(), Failure> {
    stored_login(registry, dir).map(drop).map_err(|why| Failure {
        problem: format!("not logged in to {registry}: {why}; the push would fail after the build"),
        fix: login_fix(registry),
    })
}

/// `docker login [REGISTRY]`.
fn login_fix(registry: &str) -> String {
    format!("docker login {}", if registry == "docker.io" { "" } else { registry }).trim_end().to_string()
}

/// Where a Docker client configuration keeps a login: in itself (`auth`: base64 of
/// `user:password`), or in a credential helper, under a server's name.
enum Stored {
    Auth(String),
    Helper { program: String, server: String },
}

/// The login to `registry` that `dir/config.json` holds, or why there is none.
fn stored_login(registry: &str, dir: &std::path::Path) -> Result<Stored, String> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|_| format!("{} does not exist", path.display()))?;
    let config: ClientConfig =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON ({e})", path.display()))?;
    let keys: Vec<String> = if registry == "docker.io" {
        vec!["https://index.docker.io/v1/".into(), "index.docker.io".into(), "docker.io".into()]
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    };
    if let Some(auth) = keys.iter().find_map(|k| config.auths.get(k).and_then(|entry| entry.auth.clone())) {
        return Ok(Stored::Auth(auth));
    }
    let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)).cloned().or(config.creds_store) else {
        return Err(format!("{} has no login for it", path.display()));
    };
    let program = format!("docker-credential-{helper}");
    let listed = output(&Cmd::new(&program, dir).arg("list"));
    let servers: BTreeMap<String, String> = listed.ok().and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default();
    match keys.iter().find(|k| servers.contains_key(*k)) {
        Some(server) => Ok(Stored::Helper { program, server: server.clone() }),
        None => Err(format!("the credential helper `{program}` holds no login for it")),
    }
}

/// A login of this machine to a registry: its user and password (or token).
pub struct Login {
    pub user: String,
    pub secret: String,
}

/// What a credential helper's `get` answers.
#[derive(Deserialize)]
struct HelperLogin {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// This machine's login to `registry` (`docker login`'s), to hand to a host's docker.
pub fn registry_login(registry: &str) -> Result<Login, Failure> {
    let not = |why: String| Failure {
        problem: format!("no login to {registry} to pass on: {why}"),
        fix: login_fix(registry),
    };
    let dir = docker_config_dir().ok_or_else(|| not("no home directory to find ~/.docker/config.json in".into()))?;
    match stored_login(registry, &dir).map_err(not)? {
        Stored::Auth(auth) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(auth.trim()).unwrap_or_default();
            let text = String::from_utf8(bytes).unwrap_or_default();
            let (user, secret) =
                text.split_once(':').ok_or_else(|| not("its `auth` is not base64 of user:password".into()))?;
            Ok(Login { user: user.to_string(), secret: secret.to_string() })
        }
        Stored::Helper { program, server } => {
            let got = output(&Cmd::new(&program, &dir).arg("get").stdin(server));
            let login: HelperLogin = got
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .ok_or_else(|| not(format!("`{program} get` does not answer for it")))?;
            Ok(Login { user: login.username, secret: login.secret })
        }
    }
}
