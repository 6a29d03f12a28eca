//! Tools: `doctor` (every precondition of every command, checked once each, as a table),
//! `compose` (compose with the project's file, name and variables) and `bench` (the test rig's
//! benchmarks, xtask/testbed).

use anyhow::{bail, Result};

use crate::checks::{Check, Failure};
use crate::cli::Bench;
use crate::plan::{Action, Plan};
use crate::project::Project;

/// Every distinct precondition (confirmations aside) of the plans, with the commands that need
/// it, and the checks of what runs (`serving`).
fn all_checks<'a>(plans: &'a [(String, Plan)], serving: &'a [Check]) -> Vec<(&'a Check, Vec<&'a str>)> {
    let mut checks: Vec<(&Check, Vec<&str>)> = Vec::new();
    for (command, plan) in plans {
        for check in plan.checks.iter().filter(|c| !matches!(c, Check::Confirm { .. })) {
            match checks.iter_mut().find(|(c, _)| *c == check) {
                Some((_, users)) => users.push(command),
                None => checks.push((check, vec![command])),
            }
        }
    }
    checks.extend(serving.iter().map(|check| (check, vec!["the environment itself"])));
    checks
}

/// `doctor`: checks the preconditions of every plan and what runs (at once), and prints `ok` or
/// the failure and its fix for each, then the environments not set up yet and the warnings
/// (what holds but should not): neither is a failure. A stack service that is not running is
/// reported, not failed: stopping it (or working backend-only) is a choice.
pub fn doctor(
    plans: &[(String, Plan)],
    serving: Vec<Check>,
    not_set_up: &[Failure],
    warnings: &[String],
) -> Result<()> {
    let checks = all_checks(plans, &serving);
    let mut failed = 0;
    let results = crate::checks::verify_all(&checks.iter().map(|(c, _)| *c).collect::<Vec<_>>());
    for ((check, users), result) in checks.iter().zip(results) {
        match result {
            Some(Ok(())) => println!("ok      {}", check.describe()),
            None => {
                println!("SKIPPED {} ({} cannot be reached)", check.describe(), check.ssh_host().unwrap_or("its host"))
            }
            Some(Err(failure)) if matches!(check, Check::Running { .. }) => {
                println!("not now {}: no\n        needed by: {}; {}", check.describe(), users.join(", "), failure.fix);
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
    println!("{} checks, {failed} failed, {} warning{}{not_yet}", checks.len(), warnings.len(), plural(warnings.len()));
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
