//! The environment's deploy lock on its host: an `flock` on `ENV.lock`, held by a keeper
//! process (`flock ... tee ENV.holder`) for as long as the command's ssh connection lives, so
//! that a lock is never stale; `ENV.holder` says who holds (or last held) it.

use super::log::{clean_field, Attempt};
use super::ssh::words;
use super::target::Target;
use crate::checks::Check;
use crate::plan::{Action, Hold, Plan};
use crate::project::Project;

/// The exit status of the lock's `flock` when another holds it.
pub const TAKEN: i32 = 75;

/// `flock` on the lock for an instant, shared (a keeper waits it out), running `argv` under it:
/// fails with `TAKEN` when a keeper holds the lock.
pub fn probe(lock: &str, argv: &[&str]) -> Vec<String> {
    let mut probe = words(&["flock", "--shared", "--nonblock", "--conflict-exit-code", &TAKEN.to_string(), lock]);
    probe.extend(words(argv));
    probe
}

/// The keeper: takes the lock (waiting a second at most), writes what it reads on its stdin (the
/// holder's line) to the holder file and back, and holds the lock until its stdin closes.
pub fn keeper(lock: &str, holder: &str) -> Vec<String> {
    words(&["flock", "--no-fork", "--wait", "1", "--conflict-exit-code", &TAKEN.to_string(), lock, "tee", holder])
}

/// Every lock on the host and the process that holds it (`lock_holders` reads it).
pub fn list() -> Vec<String> {
    words(&["lslocks", "--noheadings", "--raw", "--output", "PID,PATH"])
}

/// The lock is free (a shared flock for an instant, which a deploy's keeper waits out).
pub fn free(p: &Project, t: &Target) -> Check {
    Check::Free {
        what: format!("the {} deploy lock on {}", t.name, t.host),
        probe: t.ssh(p, &probe(&t.state(p, "lock"), &["true"])),
        taken: TAKEN,
        holder: t.ssh(p, &["cat", "--", &t.state(p, "holder")]),
        fix: format!(
            "wait for that deploy to end (the lock ends with its connection); `cargo xtask lock {} status` shows it",
            t.name
        ),
    }
}

/// The first step of a plan that changes the environment: its lock, held until the plan ends.
pub fn take(p: &Project, t: &Target, plan: &mut Plan, doing: &str) {
    let f = &p.facts;
    plan.step(
        &format!("Take the {} deploy lock", t.name),
        Action::Hold(Hold {
            what: format!("the {} deploy lock on {}", t.name, t.host),
            cmd: t.ssh(p, &keeper(&t.state(p, "lock"), &t.state(p, "holder"))).quiet(),
            hello: clean_field(&format!("{}@{}: {doing} as {}, since {}", f.user, f.machine, t.container, f.now)),
            taken: TAKEN,
            holder: t.ssh(p, &["cat", "--", &t.state(p, "holder")]),
        }),
    )
    .hint(&format!("another deploy of {} runs; `cargo xtask lock {} status` shows it", t.name, t.name));
}

/// The processes that hold `lock`, from `list`.
pub fn lock_holders(lslocks: &str, lock: &str) -> Vec<String> {
    lslocks
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(_, path)| *path == lock)
        .map(|(pid, _)| pid.to_string())
        .collect()
}

/// What `lock ENV status` says: held (by whom) or free, and whether the last holder's attempt
/// ended without finishing.
pub fn lock_status(env: &str, host: &str, free: bool, holder: &str, attempts: &[Attempt]) -> String {
    let holder = holder.trim();
    if !free {
        let who = if holder.is_empty() { "someone (not recorded)" } else { holder };
        return format!(
            "the {env} deploy lock on {host} is held by {who}; it ends when that command ends or loses its connection"
        );
    }
    let mut text = format!("the {env} deploy lock on {host} is free");
    if !holder.is_empty() {
        text.push_str(&format!("; it was last held by {holder}"));
    }
    if let Some(last) = attempts.last().filter(|a| a.result == "started") {
        text.push_str(&format!(
            "; the last {} ({}) ended without finishing: its process or connection is gone. \
             The next deploy reads what runs and carries on from there",
            last.action, last.release
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::log::parse_log;

    #[test]
    fn the_lock_is_an_flock_probed_shared_and_held_by_a_keeper() {
        assert_eq!(
            probe("/s/staging.lock", &["echo", "free"]).join(" "),
            "flock --shared --nonblock --conflict-exit-code 75 /s/staging.lock echo free"
        );
        assert_eq!(
            keeper("/s/staging.lock", "/s/staging.holder").join(" "),
            "flock --no-fork --wait 1 --conflict-exit-code 75 /s/staging.lock tee /s/staging.holder"
        );
        assert_eq!(list().join(" "), "lslocks --noheadings --raw --output PID,PATH");
    }

    #[test]
    fn the_lock_says_who_holds_it_and_what_an_interrupted_attempt_left() {
        let held = lock_status("staging", "h", false, "ana@lap: deploy of x as r, since t\n", &[]);
        assert!(
            held.starts_with("the staging deploy lock on h is held by ana@lap: deploy of x as r, since t;"),
            "{held}"
        );
        let log = "t\tana@lap\tdeploy\trs-staging-1\trs:x\trs@sha256:a\ta000\tstarted\n";
        let free = lock_status("staging", "h", true, "ana@lap: deploy", &parse_log(log));
        assert!(
            free.contains(
                "is free; it was last held by ana@lap: deploy; the last deploy (rs-staging-1) ended without finishing"
            ),
            "{free}"
        );
        assert_eq!(lock_status("staging", "h", true, "", &[]), "the staging deploy lock on h is free");
    }

    #[test]
    fn the_keeper_of_a_lock_is_found_by_its_path() {
        let lslocks =
            "123 /var/lib/recordsponge/staging.lock\n456 /var/lib/recordsponge/prod.lock\n789 /run/other.lock\n";
        assert_eq!(lock_holders(lslocks, "/var/lib/recordsponge/staging.lock"), ["123"]);
        assert!(lock_holders("", "/x").is_empty());
    }
}
