//! What the end-to-end suites share: the engine they need, running the real xtask binary, and
//! small HTTP and request-loop helpers. The suites make what else they need as containers
//! (xtask_testbed::fleet) and remove it at the end.

#![allow(dead_code)] // Each suite uses its own part of this module.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Docker engine answers, or the suite fails. The suites that need one are `#[ignore]`d, so
/// that plain `cargo test` lists them as not run; the test command runs them.
pub fn engine(suite: &str) {
    let answers = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    assert!(
        answers.is_ok_and(|o| o.status.success()),
        "the {suite} cannot run: no Docker engine answers `docker info`. `bash xtask/testbed/run-tests.sh` provisions one."
    );
}

pub struct Run {
    pub ok: bool,
    /// The exit code (none when a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    /// stdout and stderr.
    pub out: String,
    pub seconds: f64,
}

/// The xtask binary, run as a user would, with a configuration and environment of the suite's.
pub struct Xtask {
    pub root: PathBuf,
    pub config: PathBuf,
    pub env: Vec<(String, PathBuf)>,
    /// Every output so far (to look for secrets).
    pub outputs: RefCell<Vec<String>>,
}

impl Xtask {
    pub fn new(config: &Path, env: &[(&str, &Path)]) -> Xtask {
        Xtask {
            root: xtask::root().unwrap(),
            config: config.to_path_buf(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_path_buf())).collect(),
            outputs: RefCell::default(),
        }
    }

    /// The command with another configuration.
    pub fn command_with(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--config").arg(config).args(args).current_dir(&self.root).stdin(Stdio::null());
        // The checkout is the working directory's (never the one cargo built the tests in).
        cmd.env_remove("RS_ENV").env_remove("DEPLOY_TAG").env_remove("CARGO_MANIFEST_DIR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(&self.config, args)
    }

    pub fn run_with(&self, cmd: Command, label: &str) -> Run {
        self.run_fed(cmd, label, None)
    }

    /// The command, `stdin` written to its stdin (else it has none).
    pub fn run_fed(&self, mut cmd: Command, label: &str, stdin: Option<&str>) -> Run {
        let start = Instant::now();
        let out = match stdin {
            None => cmd.output().expect("the xtask binary runs"),
            Some(text) => {
                let mut child =
                    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
                std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
                child.wait_with_output().expect("the xtask binary runs")
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let seconds = start.elapsed().as_secs_f64();
        eprintln!("--- xtask {label} ({seconds:.1}s, {})\n{text}", out.status);
        self.outputs.borrow_mut().push(text.clone());
        Run { ok: out.status.success(), code: out.status.code(), stdout, out: text, seconds }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args), &args.join(" "))
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
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

#[allow(unused_imports)] // The suites that loop requests through a proxy use Load.
pub use xtask_testbed::fleet::{get, Load};

/// A command started in the background, in a process group of its own (as a shell starts a
/// foreground job), its output lines arriving on a channel.
pub struct Spawned {
    pub child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Spawned {
    pub fn start(mut cmd: Command) -> Spawned {
        use std::io::{BufRead, BufReader};
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Spawned { child, rx, seen: Vec::new() }
    }

    /// Waits for an output line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Ok(line) = self.rx.recv_timeout(Duration::from_secs(1)) {
                eprintln!("    | {line}");
                let hit = line.contains(needle);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
        }
        panic!("no line with `{needle}` within 300 s:\n{}", self.seen.join("\n"));
    }

    /// Sends the signal `-SIG` (e.g. `-KILL`) to the process the suite started, alone.
    pub fn signal(&self, sig: &str) {
        Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
    }

    /// Ctrl-C, as a terminal sends it: SIGINT to the whole process group, the programs the
    /// command runs included.
    pub fn interrupt(&self) {
        Command::new("kill").args(["-INT", "--", &format!("-{}", self.child.id())]).status().unwrap();
    }

    /// Waits for its end (at most 300 s): whether it succeeded, and all its output.
    pub fn finish(mut self, xtask: &Xtask) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running after 300 s:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(500)) {
            eprintln!("    | {line}");
            self.seen.push(line);
        }
        let out = self.seen.join("\n");
        xtask.outputs.borrow_mut().push(out.clone());
        (status.success(), out)
    }
}
