//! `doctor`: every precondition of every command, checked once each, as a table.

use anyhow::{bail, Result};

use crate::checks::Check;
use crate::images::DevImage;
use crate::plan::Plan;
use crate::project::Project;

impl Project {
    /// The plans of every command (deploy commands for every configured environment).
    pub fn all_plans(&self) -> Result<Vec<Plan>> {
        let mut plans = vec![
            self.new_env(),
            self.pull(),
            self.up(),
            self.down(),
            self.clobber(),
            self.push_dev(),
            self.initdb(),
            self.dropdb(),
            self.psql(),
            self.clean(),
            self.test(),
            self.lint(),
            self.dev_image_plan("backend-build", DevImage::Backend),
            self.backend_reload(),
            self.backend_logs(),
            self.backend_test(false),
            self.backend_lock(),
            self.frontend_build(),
            self.dev_image_plan("frontend-image", DevImage::Frontend),
            self.frontend_clean(),
            self.frontend_down(),
            self.frontend_logs(),
            self.frontend_restart(),
            self.frontend_test(true),
        ];
        for name in self.config.environments.keys() {
            let target = self.target(name)?;
            plans.push(self.release(&target));
        }
        Ok(plans)
    }
}

/// Checks every distinct precondition (confirmations aside) and prints `ok` or the failure and its fix.
pub fn doctor(project: &Project) -> Result<()> {
    let mut checks: Vec<(Check, Vec<String>)> = Vec::new();
    for plan in project.all_plans()? {
        let command = plan.command.trim_start_matches("cargo xtask ").to_string();
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
    let mut failed = 0;
    let results = crate::checks::verify_all(&checks.iter().map(|(c, _)| c).collect::<Vec<_>>());
    for ((check, users), result) in checks.iter().zip(results) {
        match result {
            Ok(()) => println!("ok      {}", check.describe()),
            Err(failure) => {
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
