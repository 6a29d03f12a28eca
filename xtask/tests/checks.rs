//! Every kind of precondition fails with a message that says what is wrong and names the fix,
//! and a plan whose preconditions fail runs nothing.

use std::path::{Path, PathBuf};

use xtask::checks::{confirm_on, verify_login_in, Check};
use xtask::cmd::Cmd;
use xtask::plan::{Action, Fs, Plan, Probe, ServiceExec, Wait};
use xtask::run::{execute, Options};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-checks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn echo(text: &str) -> Cmd {
    Cmd::new("echo", Path::new(".")).arg(text)
}

fn failure(check: Check) -> (String, String) {
    let f = check.verify(false).expect_err("the check must fail");
    (f.problem, f.fix)
}

#[test]
fn a_missing_tool_names_its_install_command() {
    let (problem, fix) = failure(Check::Tool {
        program: "xtask-no-such-tool".into(),
        version: echo("1.0"),
        min: None,
        fix: "sudo apt-get install xtask-no-such-tool".into(),
    });
    assert_eq!(problem, "`xtask-no-such-tool` is not on PATH");
    assert_eq!(fix, "sudo apt-get install xtask-no-such-tool");
}

#[test]
fn a_tool_older_than_needed_says_which_version_it_found() {
    let old = Check::Tool {
        program: "echo".into(),
        version: echo("Docker version 19.03.1, build x"),
        min: Some((20, 10)),
        fix: "upgrade".into(),
    };
    let (problem, fix) = failure(old);
    assert_eq!(problem, "`echo 'Docker version 19.03.1, build x'` is version 19.3; 20.10 or newer is needed");
    assert_eq!(fix, "upgrade");
    let new = Check::Tool {
        program: "echo".into(),
        version: echo("Docker Compose version v2.29.1"),
        min: Some((2, 0)),
        fix: "x".into(),
    };
    assert_eq!(new.verify(false), Ok(()));
}

#[test]
fn a_failing_probe_shows_the_command_and_its_error() {
    let (problem, fix) = failure(Check::Probe {
        what: "the Docker daemon answers".into(),
        probe: Cmd::new("ls", Path::new(".")).arg("/xtask-no-such-path"),
        line: None,
        fix: "sudo systemctl start docker".into(),
    });
    assert!(
        problem.starts_with("the Docker daemon answers: no (`ls /xtask-no-such-path` failed with exit status: 2"),
        "{problem}"
    );
    assert!(problem.contains("No such file or directory"), "{problem}");
    assert_eq!(fix, "sudo systemctl start docker");
}

#[test]
fn a_probe_for_a_running_service_needs_its_line() {
    let check = |line: &str| Check::Probe {
        what: "the postgres service is running".into(),
        probe: echo("node\npostgres"),
        line: Some(line.into()),
        fix: "cargo xtask up".into(),
    };
    assert_eq!(check("postgres").verify(false), Ok(()));
    let (problem, fix) = failure(check("expungeservice"));
    assert!(problem.contains("does not list expungeservice"), "{problem}");
    assert_eq!(fix, "cargo xtask up");
}

#[test]
fn a_missing_file_is_named() {
    let (problem, fix) = failure(Check::File {
        path: "/xtask/none/dev.env".into(),
        what: "an env file the compose file reads".into(),
        fix: "git checkout -- config/env/dev.env".into(),
    });
    assert_eq!(problem, "an env file the compose file reads is missing: /xtask/none/dev.env");
    assert_eq!(fix, "git checkout -- config/env/dev.env");
}

#[test]
fn a_taken_port_fails_unless_this_stack_holds_it() {
    // A port below the ephemeral range (32768+), so that no outgoing connection takes it meanwhile.
    let (listener, port) = (20_000 + (std::process::id() % 10_000) as u16..30_000)
        .find_map(|port| std::net::TcpListener::bind(("0.0.0.0", port)).ok().map(|l| (l, port)))
        .expect("a free port");
    let check = |running: &str| Check::PortFree { port, service: "expungeservice".into(), owner: echo(running) };
    let (problem, fix) = failure(check("node"));
    assert_eq!(problem, format!("port {port} is taken by another program, so expungeservice cannot publish it"));
    assert!(fix.contains(&format!("sport = :{port}")) && fix.contains("[ports]"), "{fix}");
    assert_eq!(check("node\nexpungeservice").verify(false), Ok(()), "our own running service holds it");
    drop(listener);
    assert_eq!(check("node").verify(false), Ok(()), "free again");
}

#[test]
fn a_push_needs_a_login_for_its_registry() {
    let dir = temp("login");
    let err = verify_login_in("127.0.0.1:5999", &dir).unwrap_err();
    assert!(err.problem.starts_with("not logged in to 127.0.0.1:5999"), "{}", err.problem);
    assert!(err.problem.contains("config.json does not exist"), "{}", err.problem);
    assert_eq!(err.fix, "docker login 127.0.0.1:5999");

    std::fs::write(dir.join("config.json"), r#"{"auths": {"registry.example:443": {"auth": "eDp5"}}}"#).unwrap();
    let err = verify_login_in("127.0.0.1:5999", &dir).unwrap_err();
    assert!(err.problem.contains("has no login for it"), "{}", err.problem);

    std::fs::write(dir.join("config.json"), r#"{"auths": {"127.0.0.1:5999": {"auth": "eDp5"}}}"#).unwrap();
    assert_eq!(verify_login_in("127.0.0.1:5999", &dir), Ok(()));

    std::fs::write(dir.join("config.json"), r#"{"auths": {"https://index.docker.io/v1/": {"auth": "eDp5"}}}"#).unwrap();
    assert_eq!(verify_login_in("docker.io", &dir), Ok(()));
    let err = verify_login_in("127.0.0.1:5999", &dir).unwrap_err();
    assert!(err.problem.contains("has no login"), "{}", err.problem);

    std::fs::write(dir.join("config.json"), r#"{"auths": {}, "credsStore": "xtask-no-such-helper"}"#).unwrap();
    let err = verify_login_in("docker.io", &dir).unwrap_err();
    assert!(err.problem.contains("docker-credential-xtask-no-such-helper` holds no login"), "{}", err.problem);
    assert_eq!(err.fix, "docker login");
    std::fs::remove_dir_all(dir).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&status.stderr));
}

#[test]
fn image_builds_need_a_clean_tree_and_prod_its_branch() {
    let dir = temp("git");
    git(&dir, &["init", "-q", "-b", "feature"]);
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    git(&dir, &["add", "a.txt"]);
    git(&dir, &["commit", "-qm", "a"]);
    assert_eq!(Check::GitClean { root: dir.clone() }.verify(false), Ok(()));

    std::fs::write(dir.join("a.txt"), "changed").unwrap();
    let (problem, fix) = failure(Check::GitClean { root: dir.clone() });
    assert!(problem.contains("uncommitted changes (M a.txt)"), "{problem}");
    assert_eq!(fix, "commit them, or set them aside with `git stash --include-untracked`");

    let (problem, fix) = failure(Check::GitBranch { root: dir.clone(), branch: "master".into() });
    assert_eq!(problem, "HEAD is on `feature`, and this environment deploys only from `master`");
    assert_eq!(fix, "git switch master");
    assert_eq!(Check::GitBranch { root: dir.clone(), branch: "feature".into() }.verify(false), Ok(()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn destructive_commands_refuse_without_a_terminal_or_yes() {
    let err = confirm_on("drop the database", false, false).unwrap_err();
    assert_eq!(err.problem, "this would drop the database, and there is no terminal to ask for confirmation");
    assert_eq!(err.fix, "rerun with --yes if that is what you want");
    assert_eq!(confirm_on("drop the database", true, false), Ok(()));
}

#[test]
fn failed_preconditions_are_all_reported_and_nothing_runs() {
    let dir = temp("plan");
    let marker = dir.join("step-ran");
    let mut plan = Plan::new("the demo", &dir);
    plan.check(Check::File { path: dir.join("missing-1"), what: "one".into(), fix: "make one".into() })
        .check(Check::File { path: dir.join("missing-2"), what: "two".into(), fix: "make two".into() })
        .check(Check::Confirm { prompt: "delete everything".into() })
        .step("write", Action::Fs(Fs::WriteFile { path: marker.clone(), contents: "ran".into() }));
    let err = execute(&plan, &Options { yes: false, verbose: false }).unwrap_err();
    assert_eq!(err.to_string(), "`the demo`: 2 preconditions failed; nothing was run");
    assert!(!marker.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failing_step_stops_the_plan_with_its_exit_code_and_the_fix() {
    let dir = temp("step");
    let marker = dir.join("after");
    let mut plan = Plan::new("the demo", &dir);
    plan.step("Fail", Action::Run(Cmd::new("ls", &dir).arg("/xtask-no-such-path")))
        .hint("create the path")
        .step("After", Action::Fs(Fs::WriteFile { path: marker.clone(), contents: "ran".into() }));
    let err = execute(&plan, &Options { yes: true, verbose: false }).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.starts_with("step [1/2] Fail failed\n  fix: create the path"), "{text}");
    assert!(text.contains("`ls /xtask-no-such-path` exited with status 2"), "{text}");
    assert!(!marker.exists(), "the step after a failure must not run");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn preconditions_are_checked_concurrently() {
    let dir = temp("concurrent");
    let mut plan = Plan::new("the demo", &dir);
    for i in 0..4 {
        plan.check(Check::Probe {
            what: format!("probe {i}"),
            probe: Cmd::new("sleep", &dir).arg("1"),
            line: None,
            fix: "none".into(),
        });
    }
    let start = std::time::Instant::now();
    execute(&plan, &Options { yes: false, verbose: false }).unwrap();
    assert!(start.elapsed() < std::time::Duration::from_millis(2500), "took {:?}", start.elapsed());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failing_background_program_stops_the_plan_without_waiting_for_the_timeout() {
    let dir = temp("background-fails");
    let marker = dir.join("after");
    let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
    let mut plan = Plan::new("the demo", &dir);
    plan.step(
        "Start",
        Action::Background { name: "start of the demo".into(), cmd: Cmd::new("ls", &dir).arg("/xtask-no-such-path") },
    )
    .hint("look at its logs")
    .step(
        "Wait",
        Action::wait(Wait {
            probe: Probe::Http { port, path: "/".into() },
            timeout: std::time::Duration::from_secs(60),
            service: "nothing".into(),
            logs: echo("logs"),
            states: None,
        }),
    )
    .step("After", Action::Fs(Fs::WriteFile { path: marker.clone(), contents: "ran".into() }));
    let start = std::time::Instant::now();
    let err = execute(&plan, &Options { yes: true, verbose: false }).unwrap_err();
    let text = format!("{err:#}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(text.starts_with("step [2/3] Wait failed"), "{text}");
    assert!(text.contains("the start of the demo failed: `ls /xtask-no-such-path` exited with status 2"), "{text}");
    assert!(text.contains("fix: look at its logs"), "{text}");
    assert!(!marker.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_step_after_a_background_program_runs_once_it_has_succeeded() {
    let dir = temp("background-ok");
    let marker = dir.join("after");
    let mut plan = Plan::new("the demo", &dir);
    plan.step("Start", Action::Background { name: "sleep".into(), cmd: Cmd::new("sleep", &dir).arg("1") }).step(
        "After",
        Action::AfterBackground {
            name: "sleep".into(),
            action: Box::new(Action::Fs(Fs::WriteFile { path: marker.clone(), contents: "ran".into() })),
        },
    );
    let start = std::time::Instant::now();
    execute(&plan, &Options { yes: true, verbose: false }).unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_secs(1), "did not wait: {:?}", start.elapsed());
    assert!(marker.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_service_exec_runs_in_the_container_its_lookup_lists() {
    let dir = temp("service-exec");
    let exec = |find: Cmd| ServiceExec {
        service: "db".into(),
        find,
        exec: Cmd::new("test", &dir),
        argv: vec!["=".into(), "c0ffee".into()],
    };
    let mut plan = Plan::new("the demo", &dir);
    plan.step("Run", Action::RunIn(exec(echo("c0ffee")))).step(
        "Wait",
        Action::wait(Wait {
            probe: Probe::In(Box::new(exec(echo("c0ffee")))),
            timeout: std::time::Duration::from_secs(5),
            service: "db".into(),
            logs: echo("logs"),
            states: None,
        }),
    );
    execute(&plan, &Options { yes: true, verbose: false }).unwrap();

    let mut plan = Plan::new("the demo", &dir);
    plan.step("Run", Action::RunIn(exec(Cmd::new("true", &dir))));
    let text = format!("{:#}", execute(&plan, &Options { yes: true, verbose: false }).unwrap_err());
    assert!(text.contains("the db service has no running container (`true` lists none)"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checks_on_a_host_that_cannot_be_reached_are_not_run() {
    let dir = temp("reach");
    // Nothing listens on port 1 of loopback: ssh fails at once.
    let ssh = |words: &[&str]| {
        Cmd::new("ssh", &dir)
            .args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "-p", "1", "127.0.0.1", "--"])
            .remote(words)
    };
    let reach = Check::Reach { host: "127.0.0.1".into(), probe: ssh(&["true"]), fix: "start sshd".into() };
    let remote = Check::Probe {
        what: "docker answers there".into(),
        probe: ssh(&["docker", "info"]),
        line: None,
        fix: "x".into(),
    };
    let local = Check::File { path: dir.join("missing"), what: "a local file".into(), fix: "make it".into() };
    assert_eq!(remote.ssh_host(), Some("127.0.0.1"));
    let results = xtask::checks::verify_all(&[&reach, &remote, &local]);
    let problem = results[0].clone().unwrap().unwrap_err().problem;
    assert!(
        problem.starts_with("ssh to 127.0.0.1 works without prompts: no (the ssh connection to 127.0.0.1 failed"),
        "{problem}"
    );
    assert_eq!(results[1], None, "a check on that host was run");
    assert!(results[2].clone().unwrap().is_err(), "the local check still runs");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checks_run_at_once_but_never_more_than_a_host_s_sshd_takes() {
    let dir = temp("at-once");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::create_dir_all(dir.join("seen")).unwrap();
    // Each check marks itself running, waits, and notes how many were running with it.
    let script = "touch run/$$; sleep 0.3; ls run | wc -l > seen/$$; rm run/$$";
    let checks: Vec<Check> = (0..20)
        .map(|i| Check::Probe {
            what: format!("check {i}"),
            probe: Cmd::new("sh", &dir).args(&["-c", script]),
            line: None,
            fix: "x".into(),
        })
        .collect();
    let results = xtask::checks::verify_all(&checks.iter().collect::<Vec<_>>());
    assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))), "{results:?}");
    let seen: Vec<usize> = std::fs::read_dir(dir.join("seen"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(seen.len(), 20, "every check ran once");
    let most = seen.iter().max().copied().unwrap();
    // sshd's MaxSessions is 10 by default: beyond it, the checks of one host fail at random.
    assert!((2..=8).contains(&most), "{most} checks ran at once");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn quiet_work_keeps_its_output_in_the_steps_log_and_explains_a_known_failure() {
    let dir = temp("quiet");
    let mut plan = Plan::new("the demo", &dir);
    plan.diagnose(xtask::project::tls_failure());
    let noisy = "for i in $(seq 100); do echo line $i; done; echo 'pip: CERTIFICATE_VERIFY_FAILED'; exit 1";
    plan.step("Build the image", Action::Run(Cmd::new("sh", &dir).args(&["-c", noisy]).quiet()));
    let err = format!("{:#}", execute(&plan, &Options { yes: true, verbose: false }).unwrap_err());
    let log = dir.join("target/logs/build-the-image.log");
    assert!(err.contains(&format!("the whole output is in {}", log.display())), "{err}");
    assert!(err.contains("a TLS certificate could not be verified") && err.contains("RS_CA_BUNDLE"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("line 1\n") && text.contains("line 100\n"), "the log lacks the output");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_npm_script_names_the_script_the_file_and_who_runs_it() {
    let dir = temp("npm");
    let package = dir.join("package.json");
    std::fs::write(&package, r#"{"scripts": {"start": "react-scripts start", "test": "react-scripts test"}}"#).unwrap();
    let check = |script: &str| Check::NpmScript {
        package: package.clone(),
        script: script.into(),
        command: "`cargo xtask lint`".into(),
    };
    assert_eq!(check("test").verify(false), Ok(()));
    let (problem, fix) = failure(check("lint"));
    assert_eq!(
        problem,
        format!("{} has no `lint` script, which `cargo xtask lint` runs (`npm run lint`)", package.display())
    );
    assert!(fix.starts_with("add one to its \"scripts\""), "{fix}");
    std::fs::remove_file(&package).unwrap();
    assert!(failure(check("lint")).0.contains("is missing or not JSON"));
    std::fs::remove_dir_all(dir).unwrap();
}
