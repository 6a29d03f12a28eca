//! `bench`: speed targets measured against their baselines, side by side, in one run on this
//! machine (never a timed test). Run them on a quiet machine; the figures are medians or bests
//! of several interleaved runs, and the ratio is what counts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::fleet::{Fleet, Load, USER};
use xtask::cli::Bench;
use xtask::config::Config;
use xtask::project::Project;

pub fn run(p: &Project, what: Bench) -> Result<()> {
    match what {
        Bench::Compile => compile(p, 3, 15),
        Bench::New => new(p, 3),
        Bench::Deploy => deploy(p),
    }
}

/// The xtask binary that `cargo xtask bench` built and ran before it ran this one: beside this
/// program, in the same target directory.
fn xtask_binary() -> Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("{} is missing: run the benchmark as `cargo xtask bench ...`, which builds it", bin.display());
    }
    Ok(bin)
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

/// A row of figures: the baseline, ours, their ratio and, when there is one, the target
/// (`at_most` the ratio) and whether it was met.
fn row(what: &str, baseline: Duration, ours: Duration, target: Option<f64>) {
    let ratio = ours.as_secs_f64() / baseline.as_secs_f64();
    let (target, met) = match target {
        Some(t) => (format!("<={t:.2}"), if ratio <= t { "ok" } else { "MISSED" }),
        None => ("-".to_string(), "(reported)"),
    };
    println!("{what:<34}{:>12.0}{:>12.0}{ratio:>8.2}{target:>8}  {met}", ms(baseline), ms(ours));
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

/// What every command needs before any family's code runs: the command table, the configuration
/// and the process layer (core modules that import only each other, by the layers in lib.rs),
/// built as a crate of their own from the xtask's sources with its dependencies.
const BASE_MODULES: [&str; 5] = ["cli", "cmd", "config", "interrupt", "process"];
const BASE_MAIN: &str = "fn main() {\n    let _ = base::cli::command().get_matches();\n}\n";

/// Cold builds (empty target directories) of the xtask, of the floor crate and of the floor with
/// every dependency of the xtask (what they cost apart from the xtask's own code), in a copy of
/// this workspace that has them all as members, `cold` times each, interleaved: the best of each.
/// Then warm `--help` of both from that workspace, `warm` times each, interleaved: the medians.
/// Then rebuilds after an edit, which time a crate's own code: the floor's, the xtask's, and that
/// of the modules every command needs (`BASE_MODULES`), set against what the 1.3x target leaves
/// the xtask's own code in a cold build.
fn compile(p: &Project, cold: usize, warm: usize) -> Result<()> {
    let scratch = Scratch::new("compile")?;
    let ws = scratch.0.join("ws");
    let r = |rel: &str| p.root.join(rel);
    // The test rig is copied too: the xtask's manifest names it (a dev-dependency), and cargo
    // reads every member's manifest; `cargo build -p xtask` does not build it.
    xtask::fsops::assemble(
        &ws,
        &[
            (r("Cargo.toml"), "Cargo.toml".into()),
            (r("Cargo.lock"), "Cargo.lock".into()),
            (r(".cargo"), ".cargo".into()),
            (r("xtask/Cargo.toml"), "xtask/Cargo.toml".into()),
            (r("xtask/src"), "xtask/src".into()),
            (r("xtask/testbed/Cargo.toml"), "xtask/testbed/Cargo.toml".into()),
            (r("xtask/testbed/src"), "xtask/testbed/src".into()),
        ],
        &[],
    )?;
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml"))?;
    let members = "members = [\"xtask\", \"xtask/testbed\"]";
    if !manifest.contains(members) {
        bail!("the workspace's Cargo.toml no longer says `{members}`: update xtask/testbed/src/bench.rs");
    }
    std::fs::write(
        ws.join("Cargo.toml"),
        manifest.replace(members, "members = [\"xtask\", \"xtask/testbed\", \"floor\", \"withdeps\", \"base\"]"),
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
    // The xtask's manifest without its dev-dependencies (the test rig), for the floor's code.
    let xtask_manifest = std::fs::read_to_string(ws.join("xtask/Cargo.toml"))?;
    let (deps_manifest, dev) = xtask_manifest.split_once("\n[dev-dependencies]").unwrap_or((&xtask_manifest, ""));
    if dev.lines().skip(1).any(|l| l.starts_with('[')) || !deps_manifest.contains("name = \"xtask\"") {
        bail!("xtask/Cargo.toml no longer ends with its [dev-dependencies]: update xtask/testbed/src/bench.rs");
    }
    std::fs::create_dir_all(ws.join("withdeps/src"))?;
    std::fs::write(ws.join("withdeps/Cargo.toml"), deps_manifest.replace("name = \"xtask\"", "name = \"withdeps\""))?;
    std::fs::write(ws.join("withdeps/src/main.rs"), FLOOR_MAIN)?;
    std::fs::create_dir_all(ws.join("base/src"))?;
    std::fs::write(ws.join("base/Cargo.toml"), deps_manifest.replace("name = \"xtask\"", "name = \"base\""))?;
    for module in BASE_MODULES {
        std::fs::copy(ws.join(format!("xtask/src/{module}.rs")), ws.join(format!("base/src/{module}.rs")))?;
    }
    let lib: String = BASE_MODULES.iter().map(|m| format!("pub mod {m};\n")).collect();
    std::fs::write(ws.join("base/src/lib.rs"), lib)?;
    std::fs::write(ws.join("base/src/main.rs"), BASE_MAIN)?;

    let sh = Shell::new()?;
    sh.change_dir(&ws);
    // Fetched (and the lock file completed with the floor) before anything is timed.
    cmd!(sh, "cargo fetch --quiet").run()?;
    let build = |krate: &str, target: &Path| -> Result<()> {
        let _ = std::fs::remove_dir_all(target);
        cmd!(sh, "cargo build --quiet --offline -p {krate} --bin {krate}").env("CARGO_TARGET_DIR", target).run()?;
        Ok(())
    };
    let crates = ["floor", "withdeps", "xtask"];
    let mut cold_times: Vec<Vec<Duration>> = vec![Vec::new(); crates.len()];
    for i in 0..cold {
        // Taking turns at going first, so that none always gets the warmer disk cache.
        for k in (0..crates.len()).map(|k| (k + i) % crates.len()) {
            let target = scratch.0.join(format!("t-{}", crates[k]));
            cold_times[k].push(timed(|| build(crates[k], &target))?);
        }
        let said: Vec<String> =
            crates.iter().zip(&cold_times).map(|(c, t)| format!("{c} {:.1}s", t[i].as_secs_f64())).collect();
        eprintln!("cold run {}: {}", i + 1, said.join(", "));
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

    // A rebuild after an edit: one family's file of the xtask, the floor's only file, the base's
    // module list (each rebuilds its whole crate: no incremental compilation in this profile).
    let touch = |file: &Path| -> Result<()> {
        let text = std::fs::read(file)?;
        std::fs::write(file, text)?;
        Ok(())
    };
    let rebuild = |krate: &str, file: &Path| -> Result<Duration> {
        touch(file)?;
        timed(|| {
            cmd!(sh, "cargo build --quiet --offline -p {krate} --bin {krate}")
                .env("CARGO_TARGET_DIR", &target)
                .run()?;
            Ok(())
        })
    };
    rebuild("base", &ws.join("base/src/lib.rs"))?;
    let (mut floor_edit, mut xtask_edit, mut base_edit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        floor_edit.push(rebuild("floor", &ws.join("floor/src/main.rs"))?);
        xtask_edit.push(rebuild("xtask", &ws.join("xtask/src/dev.rs"))?);
        base_edit.push(rebuild("base", &ws.join("base/src/lib.rs"))?);
    }

    header("six crates", "xtask");
    let best = |d: &[Duration]| *d.iter().min().unwrap();
    let [floor_cold, deps_cold, xtask_cold] = [0, 1, 2].map(|k| best(&cold_times[k]));
    row(&format!("cold build, best of {cold} (ms)"), floor_cold, xtask_cold, Some(1.3));
    row("  the dependencies alone", floor_cold, deps_cold, None);
    row(&format!("warm --help, median of {warm} (ms)"), median(floor_warm), median(xtask_warm), Some(1.15));
    let floor_edit = median(floor_edit);
    row("rebuild after an edit, median of 3", floor_edit, median(xtask_edit), None);
    row("  the table, config, processes alone", floor_edit, median(base_edit), None);
    // At 1.3x, the cold build leaves the xtask's own code what the dependencies do not take.
    let budget = floor_cold.mul_f64(1.3).saturating_sub(deps_cold);
    println!(
        "at 1.3x the xtask's own code may take {:.0} ms of a cold build; it takes {:.0} ms (xtask - the dependencies alone)",
        ms(budget),
        ms(xtask_cold.saturating_sub(deps_cold))
    );
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
        xtask::project::Flavor::V2 => "v2",
        xtask::project::Flavor::V1 => "v1",
    };

    let sh = Shell::new()?;
    sh.change_dir(&p.root);
    let xtask = xtask_binary()?;
    let ours = || -> Result<()> {
        let out = cmd!(sh, "{xtask} --config {path} --compose {flavor} new --yes").ignore_status().output()?;
        if !out.status.success() {
            bail!("`cargo xtask new` failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let compose = |args: &[&str]| -> Result<()> {
        xtask::process::output(&bench.compose(args)).map(|_| ()).map_err(|e| anyhow::anyhow!(e))
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
            if let Ok(sh) = Shell::new() {
                let images = &self.1;
                let _ = cmd!(sh, "docker image rm --force {images...}").quiet().ignore_stdout().ignore_stderr().run();
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
    row(&format!("median of {runs} runs, ms (compose {flavor})"), median(old_t), median(ours_t), Some(0.60));
    Ok(())
}

/// The same release deployed under a request loop through the host's nginx, once with the old
/// sequence (one ssh command: docker pull; docker stop; docker rm; docker run, as
/// src/ops/Makefile's ssh_deploy did) on the prod site, once with `cargo xtask deploy` on the
/// staging site, each replacing a running release; then how soon a deploy that cannot succeed
/// (no registry login) and a second deploy while one runs are refused. On a fleet host
/// (xtask::fleet), set up untimed by `cargo xtask staging` (so from a clean tree).
fn deploy(p: &Project) -> Result<()> {
    let fleet = Fleet::start(p, &format!("rsbench{}", std::process::id()), "host", 1, Some(0), &[8080, 8081])?;
    let host = fleet.hosts[0].name.clone();
    fleet.set_up(p, &host, &["staging=_@8080".into(), "prod=_@8081".into()], true)?;
    let env_text = fleet.app_database(p, &host, "staging", false)?;
    for env in ["staging", "prod"] {
        fleet.exec(&host, None, &["dd", &format!("of=/etc/recordsponge/{env}.env"), "status=none"], Some(&env_text))?;
    }
    let mut config = p.config.clone();
    let repository = format!("{}/recordsponge/bench-expungeservice", fleet.registry);
    config.compose.project = fleet.prefix.clone();
    config.deploy.repository = repository.clone();
    config.deploy.ssh_config = fleet.ssh_config.display().to_string();
    for (name, env) in config.environments.iter_mut() {
        env.host = host.clone();
        env.check_url = format!("http://127.0.0.1:{}/api/version", if name == "prod" { 8081 } else { 8080 });
    }
    let path = fleet.dir.join("bench.toml");
    config.write(&path)?;
    let home = fleet.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh"))?;

    let sh = Shell::new()?;
    sh.change_dir(&p.root);
    sh.set_var("DOCKER_CONFIG", &fleet.docker_config);
    sh.set_var("HOME", &home);
    let xtask = xtask_binary()?;
    let quietly = |args: &[&str]| -> Result<()> {
        let out = cmd!(sh, "{xtask} --config {path} {args...}").ignore_status().output()?;
        if !out.status.success() {
            bail!("`cargo xtask {}` failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };

    eprintln!(
        "set-up (untimed): the release built, pushed and deployed to staging; the old sequence's first run on prod"
    );
    let build = timed(|| quietly(&["staging"]))?;
    let tag = format!("staging-{}", p.facts.commit.chars().take(12).collect::<String>());
    let image = format!("{repository}:{tag}");
    let ssh_config = &fleet.ssh_config;
    let old_name = "rs-bench-old";
    let old_sequence = format!(
        "docker pull {image} > /dev/null && (docker stop {old_name}; docker rm --force {old_name}) > /dev/null 2>&1; \
         docker run --detach --name {old_name} --env-file /etc/recordsponge/prod.env --publish 127.0.0.1:3040:5000 \
         --log-driver syslog --log-opt syslog-facility=local0 --log-opt tag={old_name} {image} > /dev/null"
    );
    let old = || -> Result<()> {
        cmd!(sh, "ssh -F {ssh_config} {host} {old_sequence}").run()?;
        Ok(())
    };
    fleet.exec(
        &host,
        Some(USER),
        &["dd", "of=/etc/nginx/recordsponge/prod.upstream.conf", "status=none"],
        Some("upstream recordsponge_prod { server 127.0.0.1:3040; }\n"),
    )?;
    fleet.exec(&host, Some(USER), &["sudo", "-n", "nginx", "-s", "reload"], None)?;
    old()?;
    let (staging, prod) = (fleet.hosts[0].ports[&8080], fleet.hosts[0].ports[&8081]);
    let answers = |port: u16| crate::fleet::get(port, "/api/health").0 == 200;
    let until = |port: u16| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(prod);

    eprintln!("the old sequence under a request loop through nginx");
    let load = Load::start(prod, "/api/health");
    let start = Instant::now();
    old()?;
    let old_time = start.elapsed();
    // It returns before the app answers: the outage lasts until it does.
    until(prod);
    let old_serves = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (old_failed, old_total) = load.stop("the old sequence");

    eprintln!("`cargo xtask deploy` under a request loop through nginx");
    let release = || crate::fleet::get(staging, "/api/version").1;
    let before = release();
    let load = Load::start(staging, "/api/health");
    let start = Instant::now();
    let (ours, our_serves) = std::thread::scope(|scope| -> Result<(Duration, Duration)> {
        // When the new release (another name) first answers through nginx.
        let serves = scope.spawn(|| {
            while release() == before && start.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(20));
            }
            start.elapsed()
        });
        quietly(&["deploy", "staging", "--tag", &tag])?;
        let ours = start.elapsed();
        Ok((ours, serves.join().expect("the poll of the release")))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let (our_failed, our_total) = load.stop("cargo xtask deploy");

    eprintln!("a deploy that cannot succeed (no registry login), and a second deploy while one runs");
    let empty = fleet.dir.join("no-login");
    std::fs::create_dir_all(&empty)?;
    let doomed = timed(|| {
        let out = cmd!(sh, "{xtask} --config {path} staging").env("DOCKER_CONFIG", &empty).ignore_status().output()?;
        if out.status.success() {
            bail!("`staging` without a registry login did not refuse");
        }
        Ok(())
    })?;
    let first = xtask::process::Background::start(
        &xtask::cmd::Cmd::new(&xtask.display().to_string(), &p.root)
            .args(&["--config", &path.display().to_string(), "deploy", "staging", "--tag", &tag])
            .env("DOCKER_CONFIG", fleet.docker_config.display().to_string())
            .env("HOME", home.display().to_string()),
        Some(&fleet.dir.join("first-deploy.log")),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let second = timed(|| {
        let out = cmd!(sh, "{xtask} --config {path} deploy staging --tag {tag}").ignore_status().output()?;
        if out.status.success() {
            bail!("a second deploy ran while one was running");
        }
        Ok(())
    })?;
    first.wait()?;

    println!("{:<40}{:>12}{:>12}  target", "", "old", "xtask");
    println!(
        "{:<40}{:>12}{:>12}  0 for xtask  {}",
        "failed requests (of the loop)",
        format!("{old_failed}/{old_total}"),
        format!("{our_failed}/{our_total}"),
        if our_failed == 0 { "ok" } else { "MISSED" }
    );
    let ratio = our_serves.as_secs_f64() / old_serves.as_secs_f64();
    println!(
        "{:<40}{:>12.0}{:>12.0}  ratio {ratio:.2} <= 1.30  {}",
        "until the new release serves (ms)",
        ms(old_serves),
        ms(our_serves),
        if ratio <= 1.30 { "ok" } else { "MISSED" }
    );
    println!(
        "{:<40}{:>12.0}{:>12.0}  (ours returns after the old release has drained and stopped)",
        "command wall time (ms, build excluded)",
        ms(old_time),
        ms(ours)
    );
    println!(
        "{:<40}{:>12}{:>12.0}  < 2000  {}",
        "refusal of a doomed deploy (ms)",
        format!(">{:.0}", ms(build)),
        ms(doomed),
        if doomed < Duration::from_secs(2) { "ok" } else { "MISSED" }
    );
    println!(
        "{:<40}{:>12}{:>12.0}  < 2000  {}",
        "refusal of a second deploy (ms)",
        "none",
        ms(second),
        if second < Duration::from_secs(2) { "ok" } else { "MISSED" }
    );
    println!(
        "(the old sequence had no checks: it failed only after its build, which took the time shown, and had no lock)"
    );
    Ok(())
}
