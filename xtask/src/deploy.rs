//! The deploy environments' hosts: `deploy` (an image through the health-gated switch),
//! `rollback`, `releases` (the history and what serves) and `lock` (who holds it, or end a
//! keeper whose connection hangs). What they run on the hosts is `remote`'s.

use anyhow::Result;

use crate::checks::Check;
use crate::cli::{Deploy, LockAction};
use crate::config::check_tag;
use crate::plan::{Action, Decided, Decision, Plan};
use crate::project::Project;
use crate::remote::docker;
use crate::remote::lock::{self, lock_holders, lock_status};
use crate::remote::log::{history_table, parse_log, rollback_target};
use crate::remote::switch::{self, read_state};
use crate::remote::target::{reach_checks, short, Target};

pub fn plan(p: &Project, command: &Deploy) -> Result<Plan> {
    Ok(match command {
        Deploy::Deploy { env, tag } => {
            let t = Target::new(p, env)?;
            let image = match tag {
                Some(tag) => {
                    check_tag(tag)?;
                    format!("{}:{tag}", p.config.deploy.repository)
                }
                None => t.moving.clone(),
            };
            switch::deploy(p, &t, &image, None)
        }
        Deploy::Rollback { env, release } => rollback(p, &Target::new(p, env)?, release.as_deref())?,
        Deploy::Releases { env } => releases(p, &Target::new(p, env)?),
        Deploy::Lock { env, action: LockAction::Status } => lock_state(p, &Target::new(p, env)?),
        Deploy::Lock { env, action: LockAction::Release } => lock_release(p, &Target::new(p, env)?),
    })
}

/// `rollback ENV [RELEASE]`: one release further back than the live one (or RELEASE: a
/// release, tag, commit or digest from `releases ENV`), by its image digest, through the same
/// health-gated switch.
fn rollback(p: &Project, t: &Target, release: Option<&str>) -> Result<Plan> {
    if let Some(release) = release {
        check_tag(release)?;
    }
    let mut plan = p.plan();
    plan.checks(switch::checks(p, t));
    lock::take(p, t, &mut plan, &format!("rollback to {}", release.unwrap_or("the previous release")));
    read_state(p, t, &mut plan);
    switch::backup_first(p, t, &mut plan);
    let which = release.map(|r| format!("release {r}")).unwrap_or("one release further back than the live one".into());
    let wanted = release.map(str::to_string);
    plan.step(
        "Choose the release to roll back to",
        Action::Decide(Decision::new(
            &format!("%{{image}} = the image digest of {which}, from %{{log}} and %{{live_digest}}"),
            move |vars| {
                let attempts = parse_log(vars.get("log"));
                let to = rollback_target(&attempts, vars.get("live_digest"), wanted.as_deref())?;
                Ok(Decided::default().set("image", to.digest.clone()).note(format!(
                    "rolling back to {} ({}, commit {})",
                    to.release,
                    to.digest,
                    short(&to.commit)
                )))
            },
        )),
    );
    switch::switch(p, t, &mut plan, "rollback", "%{image}", "%{image}");
    Ok(plan)
}

/// The release history from the host's log, and what runs now.
fn releases(p: &Project, t: &Target) -> Plan {
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t));
    read_state(p, t, &mut plan);
    plan.step(
        "Read what the live release was built from",
        Action::Capture {
            cmd: t.ssh(p, &docker::inspect_labels("%{live_digest}")),
            var: "labels".into(),
            optional: true,
        },
    )
    .when("live_digest")
    .step(
        "Tabulate them",
        Action::Decide(Decision::new(
            "%{report} = the history in %{log}, what serves now and what it was built from",
            |vars| {
                let mut report =
                    format!("{}\n{}", history_table(&parse_log(vars.get("log"))), vars.get("serving_note"));
                if let Some(built) = docker::built_from(vars.get("labels")) {
                    report.push_str(&format!("\nbuilt from: {built}"));
                }
                Ok(Decided::default().set("report", report))
            },
        )),
    )
    .step("Show them", Action::Say("%{report}".into()));
    plan
}

/// `lock ENV status`: who holds the lock, or that it is free and how the last attempt ended.
fn lock_state(p: &Project, t: &Target) -> Plan {
    let mut plan = p.plan();
    let capture = |cmd, var: &str, optional| Action::Capture { cmd, var: var.into(), optional };
    plan.checks(reach_checks(p, t))
        .step("Read the lock", capture(t.ssh(p, &lock::probe(&t.state(p, "lock"), &["echo", "free"])), "free", true))
        .step("Read its holder", capture(t.cat_state(p, "holder"), "holder", false))
        .step("Read the release log", capture(t.cat_state(p, "releases.log"), "log", false))
        .step(
            "Describe it",
            Action::Decide(Decision::new("%{report} = the lock's state, from %{free}, %{holder} and %{log}", {
                let (env, host) = (t.name.clone(), t.host.clone());
                move |vars| {
                    let free = vars.get("free") == "free";
                    let text = lock_status(&env, &host, free, vars.get("holder"), &parse_log(vars.get("log")));
                    Ok(Decided::default().set("report", text))
                }
            })),
        )
        .step("Show it", Action::Say("%{report}".into()));
    plan
}

/// `lock ENV release`: ends the lock's keeper (asks first).
fn lock_release(p: &Project, t: &Target) -> Plan {
    let (host, path) = (&t.host, t.state(p, "lock"));
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t))
        .check(Check::Confirm {
            prompt: format!("end the process that holds the {} deploy lock on {host} (its deploy stops)", t.name),
        })
        .step(
            "Find the lock's keeper",
            Action::Capture { cmd: t.ssh(p, &lock::list()), var: "locks".into(), optional: false },
        )
        .step(
            "Choose what to end",
            Action::Decide(Decision::new(&format!("%{{pids}} = the processes holding {path}, from %{{locks}}"), {
                let path = path.clone();
                move |vars| {
                    let pids = lock_holders(vars.get("locks"), &path);
                    let note = if pids.is_empty() {
                        "the lock is free: nothing to end".to_string()
                    } else {
                        format!("its keeper: process {}", pids.join(", "))
                    };
                    Ok(Decided::default().set("pids", pids.join("\n")).note(note))
                }
            })),
        )
        .step("End it", Action::ForEach { var: "pids".into(), each: t.ssh(p, &["kill", "%{line}"]) });
    plan
}
