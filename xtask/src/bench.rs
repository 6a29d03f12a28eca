//! `bench`: speed targets measured against their baselines, side by side, in one run on this
//! machine (never a timed test). Run them on a quiet machine; the figures are medians or bests
//! of several interleaved runs, and the ratio is what counts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::config::Config;
use crate::project::Project;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    /// Cold build of the xtask against a crate of the design's six crates alone (target: at
    /// most 1.25x), and a warm `cargo xtask --help` against that crate's `--help` (at most 1.15x)
    Compile,
    /// `new` on a fresh volume set against the sequence it replaced: up -d, sleep 10, initdb
    /// (target: at most 0.60x)
    New,
}

pub fn run(p: &Project, what: Bench) -> Result<()> {
    match what {
        Bench::Compile => compile(p, 2, 15),
        Bench::New => new(p, 3),
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("rs-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(what: &str, baseline: Duration, ours: Duration, target: f64, at_most: bool) {
    let ratio = ours.as_secs_f64() / baseline.as_secs_f64();
    let met = if at_most { ratio <= target } else { ratio >= target };
    println!(
        "{what:<34}{:>12.0}{:>12.0}{ratio:>8.2}{:>8}  {}",
        ms(baseline),
        ms(ours),
        format!("{}{target:.2}", if at_most { "<=" } else { ">=" }),
        if met { "ok" } else { "MISSED" }
    );
}

fn header(baseline: &str, ours: &str) {
    println!("{:<34}{baseline:>12}{ours:>12}{:>8}{:>8}", "", "ratio", "target");
}

/// The floor: a binary that uses each of the six crates once, so that all are built and linked.
const FLOOR_MAIN: &str = r#"
#[derive(clap::Parser, serde::Deserialize)]
/// The design's six crates and nothing else: the compile-time floor of the xtask.
struct Cli {
    name: Option<String>,
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    let sh = xshell::Shell::new().unwrap();
    let _ = (cli.name, sh.current_dir(), which::which("cargo"), walkdir::WalkDir::new(".").max_depth(0).into_iter().count());
    let _ = duct::cmd!("true").stdout_null();
}
"#;

/// Cold builds (empty target directories) of the xtask and of the floor crate, in a copy of
/// this workspace that has both as members, `cold` times each, interleaved: the best of each.
/// Then warm `--help` of both from that workspace, `warm` times each, interleaved: the medians.
fn compile(p: &Project, cold: usize, warm: usize) -> Result<()> {
    let scratch = Scratch::new("compile")?;
    let ws = scratch.0.join("ws");
    let r = |rel: &str| p.root.join(rel);
    crate::fsops::assemble(
        &ws,
        &[
            (r("Cargo.toml"), "Cargo.toml".into()),
            (r("Cargo.lock"), "Cargo.lock".into()),
            (r(".cargo"), ".cargo".into()),
            (r("xtask/Cargo.toml"), "xtask/Cargo.toml".into()),
            (r("xtask/src"), "xtask/src".into()),
        ],
        &[],
    )?;
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml"))?;
    if !manifest.contains("members = [\"xtask\"]") {
        bail!("the workspace's Cargo.toml no longer says `members = [\"xtask\"]`: update bench.rs");
    }
    std::fs::write(
        ws.join("Cargo.toml"),
        manifest.replace("members = [\"xtask\"]", "members = [\"xtask\", \"floor\"]"),
    )?;
    std::fs::create_dir_all(ws.join("floor/src"))?;
    let deps: String = ["clap", "duct", "serde", "walkdir", "which", "xshell"]
        .iter()
        .map(|c| format!("{c} = {{ workspace = true }}\n"))
        .collect();
    std::fs::write(
        ws.join("floor/Cargo.toml"),
        format!("[package]\nname = \"floor\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}"),
    )?;
    std::fs::write(ws.join("floor/src/main.rs"), FLOOR_MAIN)?;

    let sh = Shell::new()?;
    sh.change_dir(&ws);
    // Fetched (and the lock file completed with the floor) before anything is timed.
    cmd!(sh, "cargo fetch --quiet").run()?;
    let build = |krate: &str, target: &Path| -> Result<()> {
        let _ = std::fs::remove_dir_all(target);
        cmd!(sh, "cargo build --quiet --offline -p {krate} --bin {krate}").env("CARGO_TARGET_DIR", target).run()?;
        Ok(())
    };
    let (mut floor_cold, mut xtask_cold) = (Vec::new(), Vec::new());
    for i in 0..cold {
        let (a, b) = (scratch.0.join("t-floor"), scratch.0.join("t-xtask"));
        // Alternating which goes first, so that neither always gets the warmer disk cache.
        if i % 2 == 0 {
            floor_cold.push(timed(|| build("floor", &a))?);
            xtask_cold.push(timed(|| build("xtask", &b))?);
        } else {
            xtask_cold.push(timed(|| build("xtask", &b))?);
            floor_cold.push(timed(|| build("floor", &a))?);
        }
        eprintln!(
            "cold run {}: floor {:.1}s, xtask {:.1}s",
            i + 1,
            floor_cold[i].as_secs_f64(),
            xtask_cold[i].as_secs_f64()
        );
    }

    let target = scratch.0.join("t-warm");
    let help = |krate: &str| -> Result<()> {
        cmd!(sh, "cargo run --quiet --offline -p {krate} --bin {krate} -- --help")
            .env("CARGO_TARGET_DIR", &target)
            .ignore_stdout()
            .run()?;
        Ok(())
    };
    help("floor")?;
    help("xtask")?;
    let (mut floor_warm, mut xtask_warm) = (Vec::new(), Vec::new());
    for _ in 0..warm {
        floor_warm.push(timed(|| help("floor"))?);
        xtask_warm.push(timed(|| help("xtask"))?);
    }

    header("six crates", "xtask");
    row(
        &format!("cold build, best of {cold} (ms)"),
        *floor_cold.iter().min().unwrap(),
        *xtask_cold.iter().min().unwrap(),
        1.25,
        true,
    );
    row(&format!("warm --help, median of {warm} (ms)"), median(floor_warm), median(xtask_warm), 1.15, true);
    Ok(())
}

/// `cargo xtask new --yes` from a fresh volume set (images present) against the sequence it
/// replaced, with the same compose file, project and variables: `compose up -d`, a fixed
/// `sleep 10`, then the init script. `runs` of each, interleaved; the medians. It uses its own
/// compose project (`rsbench`), ports (25080/23080) and dev image tags, removed at the end.
fn new(p: &Project, runs: usize) -> Result<()> {
    let scratch = Scratch::new("new")?;
    let mut config: Config = p.config.clone();
    config.compose.project = "rsbench".into();
    config.ports.backend = 25080;
    config.ports.frontend = 23080;
    config.images.backend_dev = "rsbench/expungeservice:dev".into();
    config.images.frontend_dev = "rsbench/frontend:dev".into();
    let path = scratch.0.join("bench.toml");
    config.write(&path)?;
    let bench = Project { config, root: p.root.clone(), flavor: p.flavor, facts: p.facts.clone() };
    let flavor = match p.flavor {
        crate::project::Flavor::V2 => "v2",
        crate::project::Flavor::V1 => "v1",
    };

    let sh = Shell::new()?;
    sh.change_dir(&p.root);
    let xtask = std::env::current_exe()?;
    let ours = || -> Result<()> {
        let out = cmd!(sh, "{xtask} --config {path} --compose {flavor} new --yes").ignore_status().output()?;
        if !out.status.success() {
            bail!("`cargo xtask new` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let compose = |args: &[&str]| -> Result<()> {
        crate::process::output(&bench.compose(args)).map(|_| ()).map_err(|e| anyhow::anyhow!(e))
    };
    let old = || -> Result<()> {
        let db = &bench.config.services.database;
        compose(&["up", "-d"])?;
        std::thread::sleep(Duration::from_secs(10));
        compose(&["exec", "-T", "-u", "postgres", db, "bash", &bench.config.database.init_script])
    };
    let fresh = || -> Result<()> {
        compose(&["down", "--volumes", "--remove-orphans"])?;
        // The disk's write-back of the previous run done, so that no run pays for the one before.
        cmd!(sh, "sync").run()?;
        Ok(())
    };
    struct Cleanup<'a>(&'a dyn Fn() -> Result<()>, Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)();
            for image in &self.1 {
                let _ = duct::cmd("docker", ["image", "rm", "--force", image])
                    .stdout_null()
                    .stderr_null()
                    .unchecked()
                    .run();
            }
        }
    }
    let _cleanup =
        Cleanup(&fresh, vec![bench.config.images.backend_dev.clone(), bench.config.images.frontend_dev.clone()]);

    eprintln!("set-up (untimed): the images, one `new`, then a fresh volume set");
    ours()?;
    let (mut ours_t, mut old_t) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let mut one = |which: &str| -> Result<()> {
            fresh()?;
            let t = if which == "ours" { timed(ours)? } else { timed(old)? };
            eprintln!("run {}: {which} {:.1}s", i + 1, t.as_secs_f64());
            if which == "ours" {
                ours_t.push(t)
            } else {
                old_t.push(t)
            }
            Ok(())
        };
        if i % 2 == 0 {
            one("ours")?;
            one("old")?;
        } else {
            one("old")?;
            one("ours")?;
        }
    }
    header("up; sleep 10; init", "new");
    row(&format!("median of {runs} runs, ms (compose {flavor})"), median(old_t), median(ours_t), 0.60, true);
    Ok(())
}
