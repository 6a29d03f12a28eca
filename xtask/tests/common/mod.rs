//! What the end-to-end suites share: finding the test bed (provisioned by
//! `bash xtask/testbed/run-tests.sh`), running the real xtask binary, and small HTTP and docker helpers.

#![allow(dead_code)] // Each suite uses its own part of this module.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// The provisioned test bed: the engine answers; the registry (and, for deploys, the host) is up.
pub struct Testbed {
    pub root: PathBuf,
    /// Our own temporary directory (removed on drop).
    pub dir: PathBuf,
    /// The Docker client config holding the registry login (from xtask/testbed/registry.sh).
    pub docker_config: PathBuf,
    pub registry: String,
    /// xtask/testbed/host.sh's host.env, when the suite needs the deploy host.
    pub host: BTreeMap<String, String>,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_env(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|_| format!("{} is missing", path.display()))?;
    Ok(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn find(needs_host: bool) -> Result<Testbed, String> {
    let root = xtask::root().unwrap();
    let docker = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    if !docker.is_ok_and(|o| o.status.success()) {
        return Err("no Docker engine answers `docker info`".into());
    }
    let state = root.join("target/testbed");
    let registry =
        read_env(&state.join("registry.env"))?.remove("RS_REGISTRY").ok_or("registry.env names no registry")?;
    let host = if needs_host { read_env(&state.join("host/host.env"))? } else { BTreeMap::new() };
    let dir = std::env::temp_dir().join(format!("rs-e2e-{}-{}", std::process::id(), needs_host));
    std::fs::create_dir_all(&dir).unwrap();
    Ok(Testbed { root, dir, docker_config: state.join("docker-config"), registry, host })
}

/// The test bed, or None (with a loud message) where it is not provisioned; with RS_E2E=required
/// or in CI a missing test bed fails the suite instead.
pub fn testbed(needs_host: bool) -> Option<Testbed> {
    match find(needs_host) {
        Ok(bed) => Some(bed),
        Err(why) if std::env::var("RS_E2E").as_deref() == Ok("required") || std::env::var_os("CI").is_some() => {
            panic!(
                "the end-to-end suite cannot run: {why}. Run `bash xtask/testbed/run-tests.sh`, which provisions it."
            )
        }
        Err(why) => {
            eprintln!(
                "\n*** The end-to-end suite DID NOT RUN: {why}. ***\n*** `bash xtask/testbed/run-tests.sh` provisions the test bed and runs it. ***\n"
            );
            None
        }
    }
}

/// `text` with each `from` replaced, each of which must be there.
pub fn replace_all(text: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(text.to_string(), |text, (from, to)| {
        assert!(text.contains(from), "`{from}` is not in the configuration");
        text.replace(from, to)
    })
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    /// stdout and stderr.
    pub out: String,
    pub seconds: f64,
}

impl Testbed {
    /// Writes a configuration: the shipped one with `pairs` replaced.
    pub fn config(&self, name: &str, pairs: &[(&str, &str)]) -> PathBuf {
        let shipped = std::fs::read_to_string(self.root.join("config/recordsponge.toml")).unwrap();
        let path = self.dir.join(name);
        std::fs::write(&path, replace_all(&shipped, pairs)).unwrap();
        path
    }

    /// A configuration like `base` with one more replacement.
    pub fn variant(&self, base: &Path, name: &str, from: &str, to: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, replace_all(&std::fs::read_to_string(base).unwrap(), &[(from, to)])).unwrap();
        path
    }

    /// The xtask binary with `--config`, no terminal, the test registry's login.
    pub fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--config").arg(config).args(args).current_dir(&self.root).stdin(Stdio::null());
        cmd.env("DOCKER_CONFIG", &self.docker_config).env_remove("RS_ENV").env_remove("DEPLOY_TAG");
        cmd
    }

    pub fn run_with(&self, mut cmd: Command, label: &str) -> Run {
        let start = Instant::now();
        let Output { status, stdout, stderr } = cmd.output().expect("the xtask binary runs");
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let out = format!("{stdout}{}", String::from_utf8_lossy(&stderr));
        let seconds = start.elapsed().as_secs_f64();
        eprintln!("--- xtask {label} ({seconds:.1}s, {status})\n{out}");
        Run { ok: status.success(), stdout, out, seconds }
    }

    pub fn run(&self, config: &Path, args: &[&str]) -> Run {
        self.run_with(self.command(config, args), &args.join(" "))
    }

    pub fn ok(&self, config: &Path, args: &[&str]) -> Run {
        let run = self.run(config, args);
        assert!(run.ok, "`cargo xtask {}` failed:\n{}", args.join(" "), run.out);
        run
    }
}

/// The command failed, saying `expect`, before running any step.
pub fn refused(run: &Run, what: &str, expect: &str) {
    assert!(!run.ok, "{what} should have failed:\n{}", run.out);
    assert!(run.out.contains(expect), "{what} should say `{expect}`:\n{}", run.out);
    assert!(run.out.contains("nothing was run"), "{what} should fail before any step:\n{}", run.out);
    assert!(!run.out.contains("[1/"), "{what} ran a step:\n{}", run.out);
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Status and body of `GET http://127.0.0.1:PORT/PATH` (status 0: no answer).
pub fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
