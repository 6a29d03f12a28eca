//! `doctor`: every precondition of every command (each deploy command for every configured
//! environment), checked once each, as a table.

use anyhow::{bail, Result};

use crate::checks::Check;
use crate::cli;
use crate::project::Project;

/// Every distinct precondition (confirmations aside) of every command, with the commands
/// that need it.
pub fn all_checks(p: &Project) -> Result<Vec<(Check, Vec<String>)>> {
    let envs: Vec<&str> = p.config.environments.keys().map(String::as_str).collect();
    let mut checks: Vec<(Check, Vec<String>)> = Vec::new();
    for argv in cli::every_invocation(&envs) {
        let Some(plan) = cli::parse(&argv)?.plan(p)? else { continue };
        let command = argv.join(" ");
        for check in plan.checks {
            if matches!(check, Check::Confirm { .. }) {
                continue;
            }
            match checks.iter_mut().find(|(c, _)| *c == check) {
                Some((_, users)) => users.push(command.clone()),
                None => checks.push((check, vec![command.clone()])),
            }
        }
    }
    Ok(checks)
}

/// Checks them all (at once) and prints `ok` or the failure and its fix. A stack service that
/// is not running is reported, not failed: stopping it (or working backend-only) is a choice.
pub fn doctor(p: &Project) -> Result<()> {
    let checks = all_checks(p)?;
    let mut failed = 0;
    let results = crate::checks::verify_all(&checks.iter().map(|(c, _)| c).collect::<Vec<_>>());
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
    println!("{} checks, {} failed", checks.len(), failed);
    if failed > 0 {
        bail!("{failed} precondition{} failed (fixes above)", if failed == 1 { "" } else { "s" });
    }
    Ok(())
}
