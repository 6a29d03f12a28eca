//! Tools: `doctor` (every precondition of every command, checked once each, as a table),
//! `compose` (compose with the project's file, name and variables) and `bench` (the test rig's
//! benchmarks, xtask/testbed).

use anyhow::{bail, Result};

use crate::checks::{Check, Failure};
use crate::cli::Bench;
use crate::plan::{Action, Plan};
use crate::project::Project;

/// A command's plan, as `doctor` checks it: its command line, and whether the command works on
/// the dev stack (`Command::works_on_the_dev_stack`).
pub struct Planned {
    pub line: String,
    pub plan: Plan,
    pub dev: bool,
}

/// A distinct precondition, the commands that need it, and whether they all work on the dev
/// stack.
struct Needed<'a> {
    check: &'a Check,
    users: Vec<&'a str>,
    dev_only: bool,
}

/// Every distinct precondition (confirmations aside) of the plans, with the commands that need
/// it, and the checks of what runs (`serving`).
fn all_checks<'a>(plans: &'a [Planned], serving: &'a [Check]) -> Vec<Needed<'a>> {
    let mut checks: Vec<Needed> = Vec::new();
    for planned in plans {
        for check in planned.plan.checks.iter().filter(|c| !matches!(c, Check::Confirm { .. })) {
            match checks.iter_mut().find(|needed| needed.check == check) {
                Some(needed) => {
                    needed.users.push(&planned.line);
                    needed.dev_only &= planned.dev;
                }
                None => checks.push(Needed { check, users: vec![&planned.line], dev_only: planned.dev }),
            }
        }
    }
    checks.extend(serving.iter().map(|check| Needed { check, users: vec!["the environment itself"], dev_only: false }));
    checks
}

/// `doctor`: checks the preconditions of every plan and what runs (at once), and prints `ok` or
/// the failure and its fix for each, then the environments not set up yet and the warnings
/// (what holds but should not): neither is a failure. A stack service that is not running is
/// reported, not failed: stopping it (or working backend-only) is a choice; so is a check only
/// the dev stack's commands need, on a machine without the dev stack (`dev_stack`: an
/// operator's).
pub fn doctor(
    plans: &[Planned],
    serving: Vec<Check>,
    not_set_up: &[Failure],
    warnings: &[String],
    dev_stack: bool,
) -> Result<()> {
    let checks = all_checks(plans, &serving);
    let (mut failed, mut dev_only) = (0, 0);
    let results = crate::checks::verify_all(&checks.iter().map(|needed| needed.check).collect::<Vec<_>>());
    for (Needed { check, users, dev_only: for_dev }, result) in checks.iter().zip(results) {
        match result {
            Some(Ok(found)) if found.is_empty() => println!("ok      {}", check.describe()),
            Some(Ok(found)) => println!("ok      {} ({found})", check.describe()),
            None => {
                println!("SKIPPED {} ({} cannot be reached)", check.describe(), check.ssh_host().unwrap_or("its host"))
            }
            Some(Err(failure)) if matches!(check, Check::Running { .. }) => {
                println!("not now {}: no\n        needed by: {}; {}", check.describe(), users.join(", "), failure.fix);
            }
            Some(Err(failure)) if *for_dev && !dev_stack => {
                dev_only += 1;
                println!(
                    "dev     {}: no (only the dev stack's commands need it, and this machine has none)",
                    check.describe()
                );
                println!(
                    "        {}\n        fix: {}\n        needed by: {}",
                    failure.problem,
                    failure.fix,
                    users.join(", ")
                );
            }
            Some(Err(failure)) => {
                failed += 1;
                println!("FAILED  {}\n        {}\n        fix: {}", check.describe(), failure.problem, failure.fix);
                println!("        needed by: {}", users.join(", "));
            }
        }
    }
    for env in not_set_up {
        println!("not yet {}\n        fix: {}", env.problem, env.fix);
    }
    for warning in warnings {
        println!("warning {warning}");
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let not_yet = match not_set_up.len() {
        0 => String::new(),
        n => format!(", {n} environment{} not set up", plural(n)),
    };
    let dev = match dev_only {
        0 => String::new(),
        n => format!(", {n} for the dev stack only"),
    };
    println!(
        "{} checks, {failed} failed{dev}, {} warning{}{not_yet}",
        checks.len(),
        warnings.len(),
        plural(warnings.len())
    );
    if failed > 0 {
        bail!("{failed} precondition{} failed (fixes above)", if failed == 1 { "" } else { "s" });
    }
    Ok(())
}

/// `compose ARGS...`: any compose command, with the project's file, project name and variables.
pub fn compose(p: &Project, args: &[String]) -> Plan {
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).step("compose", Action::Run(p.compose(args).terminal(true)));
    plan
}

/// `bench WHAT`: the test rig's benchmark, built and run by cargo (the rig is not part of the
/// xtask, so that a fresh clone's first command does not compile it).
pub fn bench(p: &Project, what: Bench) -> Plan {
    let value = clap::ValueEnum::to_possible_value(&what).expect("every benchmark has a name");
    let name = value.get_name();
    let mut plan = p.plan();
    plan.check(Check::Tool {
        program: "cargo".into(),
        version: p.cmd("cargo").arg("--version"),
        min: None,
        fix: "install Rust with rustup (https://rustup.rs), as for `cargo xtask` itself".into(),
    })
    .step(
        &format!("Measure `{name}` against its baseline (the test rig, xtask/testbed)"),
        Action::Run(p.cmd("cargo").args(&["run", "--quiet", "--package", "xtask-testbed", "--", "bench", name])),
    );
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    #[test]
    fn a_check_is_the_dev_stack_s_only_when_every_command_that_needs_it_works_on_it() {
        let p = crate::project::fixture();
        let dev_port = Check::File { path: "a".into(), what: "a".into(), fix: "a".into() };
        let shared = Check::File { path: "b".into(), what: "b".into(), fix: "b".into() };
        let planned = |argv: &[&str], checks: Vec<Check>| {
            let invocation = parse(&argv.iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap();
            let mut plan = p.plan();
            plan.checks(checks);
            Planned { line: argv.join(" "), plan, dev: invocation.command.works_on_the_dev_stack() }
        };
        let plans = [
            planned(&["up"], vec![dev_port.clone(), shared.clone()]),
            planned(&["backend-test"], vec![dev_port.clone()]),
            planned(&["deploy", "staging"], vec![shared.clone()]),
        ];
        let checks = all_checks(&plans, &[]);
        let dev_only: Vec<(&str, bool)> = checks.iter().map(|n| (n.users[0], n.dev_only)).collect();
        assert_eq!(dev_only, [("up", true), ("up", false)]);
        assert_eq!(checks[0].users, ["up", "backend-test"]);
    }

    #[test]
    fn the_dev_stack_s_commands_are_the_dev_environment_s_and_compose() {
        let works = |line: &str| {
            let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            parse(&argv).unwrap().command.works_on_the_dev_stack()
        };
        for dev in ["new", "push", "push dev", "backend-build", "frontend-test", "compose ps"] {
            assert!(works(dev), "{dev}");
        }
        for not in
            ["push staging", "image staging", "deploy prod", "logs prod", "setup staging", "doctor", "bench compile"]
        {
            assert!(!works(not), "{not}");
        }
    }
}
