//! A deploy environment day to day: `logs` (the live release's, from its host), `exec` (a
//! one-off command in a new container of a release, never in one that serves) and `db` (the
//! database's backups on its host, and restores). Which release is live is read from the host,
//! as every deploy command does.

use std::path::Path;

use anyhow::{bail, Result};

use crate::checks::Check;
use crate::cli::{DbAction, Operate};
use crate::cmd::{literal, sh_join};
use crate::config::{check_tag, Engine};
use crate::plan::{Action, Decided, Decision, Plan};
use crate::project::Project;
use crate::remote::log::{self, clean_field, find, parse_log};
use crate::remote::ssh::{ssh_terminal, words};
use crate::remote::switch::{env_file_readable, read_state};
use crate::remote::target::{reach_checks, Target, ENV_LABEL};
use crate::remote::{db, lock};

pub fn plan(p: &Project, command: &Operate) -> Result<Plan> {
    Ok(match command {
        Operate::Logs { env, follow, since, lines } => {
            logs(p, &Target::new(p, env)?, *follow, since.as_deref(), *lines)?
        }
        Operate::Exec { env, release, command } => exec(p, &Target::new(p, env)?, release.as_deref(), command)?,
        Operate::Db { action: DbAction::Backup, env, download, .. } => {
            backup(p, &Target::new(p, env)?, download.as_deref())
        }
        Operate::Db { action: DbAction::Backups, env, .. } => backups(p, &Target::new(p, env)?),
        Operate::Db { action: DbAction::Restore, env, backup, from, .. } => {
            let Some(backup) = backup else {
                bail!("name the backup to restore: `cargo xtask db restore {env} latest`, or one `cargo xtask db backups {env}` lists")
            };
            restore(p, &Target::new(p, env)?, backup, from.as_deref())?
        }
    })
}

/// A time or duration for `docker logs --since`: `10m`, `2h30m`, `2026-12-01T10:00:00`.
pub fn check_since(since: &str) -> Result<()> {
    let ok = since.starts_with(|c: char| c.is_ascii_digit())
        && since.chars().all(|c| c.is_ascii_alphanumeric() || ":.+-".contains(c));
    if !ok {
        bail!("`{since}` is not a time or a duration for --since: 10m, 2h, 2026-12-01T10:00:00");
    }
    Ok(())
}

/// `logs ENV`: the live release's logs, or, on a Swarm, every task's (each line names its task
/// and node); `--follow` until Ctrl-C.
fn logs(p: &Project, t: &Target, follow: bool, since: Option<&str>, lines: u32) -> Result<Plan> {
    since.map(check_since).transpose()?;
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t));
    read_state(p, t, &mut plan);
    let mut options = vec!["--tail".to_string(), lines.to_string()];
    if follow {
        options.push("--follow".into());
    }
    if let Some(since) = since {
        options.extend(["--since".to_string(), since.to_string()]);
    }
    let argv = match t.env.engine {
        Engine::Host => {
            live_release(t, &mut plan);
            [words(&["docker", "logs"]), options, words(&["%{live}"])].concat()
        }
        Engine::Swarm => {
            [words(&["docker", "service", "logs"]), options, vec![format!("{}_app", t.env.container)]].concat()
        }
    };
    let title = if follow { "Follow the live release's logs (Ctrl-C stops)" } else { "Show the live release's logs" };
    plan.step(title, Action::Run(ssh_terminal(p, &t.host, &argv)));
    Ok(plan)
}

/// Fails when no release serves (`%{live}` empty): there is nothing to show or run in.
fn live_release(t: &Target, plan: &mut Plan) {
    let env = t.name.clone();
    plan.step(
        "Name the live release",
        Action::Decide(Decision::new("the release that serves is %{live}", move |vars| match vars.get("live") {
            "" => bail!("no release serves {env}: `cargo xtask releases {env}` shows what runs and the history"),
            live => Ok(Decided::default().note(format!("the live release: {live}"))),
        })),
    );
}

/// `exec ENV [--release R] -- COMMAND...`: COMMAND in a new container of the live release's
/// image (or R's), by digest, with the environment's env file, logging and network as a release
/// has; interactive on a terminal; its exit status is this command's. The run is logged first
/// (who, when, which release, the command line).
fn exec(p: &Project, t: &Target, release: Option<&str>, command: &[String]) -> Result<Plan> {
    if let Some(release) = release {
        check_tag(release)?;
    }
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t)).check(env_file_readable(p, t));
    read_state(p, t, &mut plan);
    let wanted = release.map(str::to_string);
    plan.step(
        "Choose the release",
        Action::Decide(Decision::new(
            "%{digest}, %{commit} = the image of the live release (or the one named), from %{log}",
            move |vars| {
                let attempts = parse_log(vars.get("log"));
                let (digest, commit) = match &wanted {
                    Some(w) => match find(&attempts, w) {
                        Some(a) => (a.digest.clone(), a.commit.clone()),
                        None => bail!(
                            "no successful release `{w}` in the release log (`cargo xtask releases ENV` lists them)"
                        ),
                    },
                    None if vars.get("live_digest").is_empty() => bail!("no release serves: name one with --release"),
                    None => {
                        let live = vars.get("live_digest").to_string();
                        let commit = attempts.iter().rev().find(|a| a.digest == live).map(|a| a.commit.clone());
                        (live, commit.unwrap_or_else(|| "unknown".into()))
                    }
                };
                Ok(Decided::default()
                    .set("digest", digest.clone())
                    .set("commit", commit)
                    .note(format!("in a new container of {digest}")))
            },
        )),
    );
    let command: Vec<String> = command.iter().map(|w| literal(w)).collect();
    let line = clean_field(&sh_join(&command));
    let exec_name = format!("{}-exec", t.container);
    let entry = log::line_of(p, &exec_name, "exec", "%{digest}", &format!("ran: {line}"));
    plan.step("Log the run", log::append(p, t, entry)).step(
        &format!("Run `{line}`"),
        Action::Run(ssh_terminal(p, &t.host, &one_off(p, t, &exec_name, &command)).passes_status()),
    );
    Ok(plan)
}

/// `docker run` of a one-off container of `%{digest}`, set up as a release (env file, syslog,
/// the stack's network on a Swarm), never published, removed when it ends.
fn one_off(p: &Project, t: &Target, name: &str, command: &[String]) -> Vec<String> {
    let e = t.env;
    let tty: &[&str] = if p.facts.terminal { &["--tty"] } else { &[] };
    let mut run = words(&["docker", "run", "--rm", "--interactive"]);
    run.extend(words(tty));
    run.extend(words(&[
        "--label",
        &format!("{ENV_LABEL}={}", t.name),
        "--env",
        &format!("RS_RELEASE={name}"),
        "--env-file",
        &e.env_file,
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-facility={}", e.syslog_facility),
        "--log-opt",
        &format!("tag={name}"),
    ]));
    if e.engine == Engine::Swarm {
        run.extend(words(&["--network", &format!("{}_app", e.container)]));
    }
    run.push("%{digest}".into());
    run.extend(command.iter().cloned());
    run
}

/// `db backup ENV [--download PATH]`: a backup of the database, on its host (and here too).
fn backup(p: &Project, t: &Target, download: Option<&Path>) -> Plan {
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t)).check(env_file_readable(p, t)).checks(db::checks(p, t));
    read_state(p, t, &mut plan);
    db::backup(p, t, &mut plan, None);
    if let Some(to) = download {
        plan.step(&format!("Copy %{{backup}} to {}", to.display()), db::download(p, t, to));
    }
    plan
}

/// `db backups ENV`: the backups on the host, newest first.
fn backups(p: &Project, t: &Target) -> Plan {
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t))
        .step(
            "List the backups",
            Action::Capture {
                cmd: t.ssh(p, &db::list(&db::dir(p, &t.name), &t.name)),
                var: "backups".into(),
                optional: false,
            },
        )
        .hint(&unreadable(p, t, &t.name))
        .step(
            "Tabulate them",
            Action::Decide(Decision::new("%{report} = the backups in %{backups}, newest first", |vars| {
                Ok(Decided::default().set("report", db::table(vars.get("backups"))))
            })),
        )
        .step("Show them", Action::Say("%{report}".into()));
    plan
}

/// Why the backups of `env` could not be listed, and the fix.
fn unreadable(p: &Project, t: &Target, env: &str) -> String {
    format!(
        "{} on {} is missing or not readable by {}: config/nginx/setup-host.sh makes it, for that environment's deploy \
         user (another environment's backups are readable only where both deploy as one user)",
        db::dir(p, env),
        t.host,
        t.user
    )
}

/// `db restore ENV BACKUP [--from OTHER]`: under the deploy lock, the database as it is backed
/// up first, then BACKUP restored into it and checked.
fn restore(p: &Project, t: &Target, wanted: &str, from: Option<&str>) -> Result<Plan> {
    let from = match from {
        Some(other) => p.config.environment(other).map(|_| other.to_string())?,
        None => t.name.clone(),
    };
    let mut plan = p.plan();
    plan.checks(reach_checks(p, t))
        .check(env_file_readable(p, t))
        .checks(db::checks(p, t))
        .check(lock::free(p, t))
        .check(Check::Confirm {
            prompt: format!(
                "replace the database of {} with the backup {wanted} of {from} (it is backed up first)",
                t.name
            ),
        });
    lock::take(p, t, &mut plan, &format!("restore of {wanted}"));
    read_state(p, t, &mut plan);
    let others: Vec<String> = p.config.environments.keys().filter(|e| **e != from).cloned().collect();
    let (env, wanted_name, from_env) = (t.name.clone(), wanted.to_string(), from.clone());
    plan.step(
        "List the backups",
        Action::Capture { cmd: t.ssh(p, &db::list(&db::dir(p, &from), &from)), var: "listed".into(), optional: false },
    )
    .hint(&unreadable(p, t, &from))
    .step(
        "Choose the backup",
        Action::Decide(Decision::new(
            &format!("%{{restore}} = the backup {wanted} of {from}, from %{{listed}}"),
            move |vars| {
                // ENV-<time>-...: the environment's name, then a digit.
                let of = |o: &&String| {
                    wanted_name
                        .strip_prefix(&format!("{o}-"))
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                };
                if let Some(other) = others.iter().find(of) {
                    bail!("{wanted_name} is a backup of {other}: `--from {other}` restores it into {env}");
                }
                let chosen = db::choose(vars.get("listed"), &from_env, &wanted_name)?;
                Ok(Decided::default().set("restore", chosen.clone()).note(format!("restoring {chosen}")))
            },
        )),
    );
    db::backup(p, t, &mut plan, Some("before-restore"));
    db::restore(p, t, &mut plan, &from);
    plan.step(
        "Done",
        Action::Say(format!(
            "restored %{{restore}} into the database of {}; what it replaced is the backup %{{backup}}",
            t.name
        )),
    );
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_duration_or_a_time_never_an_option() {
        for good in ["10m", "2h30m", "2026-12-01T10:00:00", "1733000000"] {
            assert!(check_since(good).is_ok(), "{good}");
        }
        for bad in ["-10m", "10 m", "$(x)", "", "a;b"] {
            assert!(check_since(bad).is_err(), "{bad}");
        }
    }
}
