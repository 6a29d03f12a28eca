//! The environment's release log on its host (`ENV.releases.log` in `state_dir`): every attempt,
//! one tab-separated line when it starts and one when it ends; read back into `Attempt`s, from
//! which rollbacks choose their release and `releases` makes its table.

use anyhow::{bail, Result};

use super::ssh::append_file;
use super::target::{short, Target};
use crate::plan::Action;
use crate::project::Project;

/// A value for a log line or the holder file: one line, no tabs.
pub fn clean_field(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

/// Appends a line to the environment's release log.
pub fn append(p: &Project, t: &Target, line: String) -> Action {
    Action::Run(t.ssh(p, &append_file(&t.state(p, "releases.log"))).stdin(line).quiet())
}

/// One line of the release log: `time user action release image digest commit result`, the
/// digest and commit those the plan learned (`%{digest}`, `%{commit}`).
pub fn line(p: &Project, t: &Target, action: &str, image: &str, result: &str) -> String {
    line_of(p, &t.container, action, image, result)
}

/// A line of the release log for `release` (a deploy's new release, or a one-off run's name).
pub fn line_of(p: &Project, release: &str, action: &str, image: &str, result: &str) -> String {
    let f = &p.facts;
    let user = clean_field(&format!("{}@{}", f.user, f.machine));
    format!("{}\t{user}\t{action}\t{release}\t{image}\t%{{digest}}\t%{{commit}}\t{result}\n", f.now)
}

/// One attempt in the release log: the line of its start, with the result of its end
/// (`started` when it never ended: interrupted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub time: String,
    pub user: String,
    pub action: String,
    pub release: String,
    pub image: String,
    pub digest: String,
    pub commit: String,
    pub result: String,
}

/// The release log's attempts in order; lines of one attempt (by release) are folded into one.
pub fn parse_log(log: &str) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 {
            continue;
        }
        let attempt = Attempt {
            time: f[0].into(),
            user: f[1].into(),
            action: f[2].into(),
            release: f[3].into(),
            image: f[4].into(),
            digest: f[5].into(),
            commit: f[6].into(),
            result: f[7].into(),
        };
        match attempts.iter_mut().rev().find(|a| a.release == attempt.release) {
            Some(known) => known.result = attempt.result,
            None => attempts.push(attempt),
        }
    }
    attempts
}

/// The releases that served, oldest first, as rollbacks walk them: a deploy puts its release on
/// top (unless the same build is already there); a rollback to a release on the stack removes
/// what is above it (the releases it left), a rollback to one that is not puts it on top.
pub fn release_stack(attempts: &[Attempt]) -> Vec<&Attempt> {
    let mut stack: Vec<&Attempt> = Vec::new();
    for a in attempts.iter().filter(|a| a.result == "ok") {
        match stack.iter().rposition(|s| s.digest == a.digest) {
            Some(i) if a.action == "rollback" => stack.truncate(i + 1),
            Some(i) if i + 1 == stack.len() => {}
            _ => stack.push(a),
        }
    }
    stack
}

/// The release a rollback goes to: `wanted` (a release, tag, commit prefix or digest prefix of
/// a successful attempt) when given, else the one below the live release (by digest: what
/// really serves) in the stack of releases; a live release the log does not know is above
/// them all.
pub fn rollback_target<'a>(attempts: &'a [Attempt], live: &str, wanted: Option<&str>) -> Result<&'a Attempt> {
    if let Some(w) = wanted {
        return match find(attempts, w) {
            Some(a) if a.digest == live => bail!("{w} is the live release already ({})", a.digest),
            Some(a) => Ok(a),
            None => bail!("no successful release `{w}` in the release log (`cargo xtask releases ENV` lists them)"),
        };
    }
    let stack = release_stack(attempts);
    let below = match stack.iter().rposition(|a| a.digest == live) {
        Some(i) => i.checked_sub(1).map(|j| stack[j]),
        None => stack.last().copied(),
    };
    match below {
        Some(a) => Ok(a),
        None if stack.is_empty() => bail!("the release log has no successful release to roll back to"),
        None => bail!("the live release is the oldest one in the release log: there is nothing further back"),
    }
}

/// The newest successful release that `wanted` names: its release name, its tag, or a prefix
/// (4+ characters) of its commit or digest.
pub fn find<'a>(attempts: &'a [Attempt], wanted: &str) -> Option<&'a Attempt> {
    attempts.iter().rev().filter(|a| a.result == "ok").find(|a| {
        a.release == wanted
            || a.image.rsplit(':').next() == Some(wanted)
            || (wanted.len() >= 4
                && (a.commit.starts_with(wanted) || a.digest.rsplit(':').next().is_some_and(|d| d.starts_with(wanted))))
    })
}

/// The release history as a table, newest last.
pub fn history_table(attempts: &[Attempt]) -> String {
    let mut out =
        format!("{:<21} {:<24} {:<9} {:<44} {:<13} {}\n", "time", "who", "action", "release", "commit", "result");
    for a in attempts {
        let result = if a.result == "started" { "interrupted" } else { &a.result };
        out.push_str(&format!(
            "{:<21} {:<24} {:<9} {:<44} {:<13} {result}\n",
            a.time,
            a.user,
            a.action,
            a.release,
            short(&a.commit)
        ));
    }
    if attempts.is_empty() {
        out.push_str("(no release yet)\n");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, action: &str, digest: &str, result: &str) -> String {
        format!("2026-11-0{n}T10:00:00Z\tana@lap\t{action}\trs-staging-{n}\trs:staging-{digest}\trs@sha256:{digest}\t{digest}000\t{result}\n")
    }

    /// A log of attempts: (action, digest, result) each, started then ended.
    fn log(attempts: &[(&str, &str, &str)]) -> String {
        let mut text = String::new();
        for (n, (action, digest, result)) in attempts.iter().enumerate() {
            text.push_str(&entry(n as u32 + 1, action, digest, "started"));
            if *result != "started" {
                text.push_str(&entry(n as u32 + 1, action, digest, result));
            }
        }
        text
    }

    fn target(text: &str, live: &str, wanted: Option<&str>) -> Result<String> {
        let attempts = parse_log(text);
        rollback_target(&attempts, &format!("rs@sha256:{live}"), wanted).map(|a| a.digest.clone())
    }

    #[test]
    fn a_line_is_one_attempt_of_tab_separated_fields_without_stray_tabs() {
        let p = crate::project::fixture();
        let t = Target::new(&p, "staging").unwrap();
        assert_eq!(
            line(&p, &t, "deploy", "rs:staging", "ok"),
            "2026-11-28T12:00:00Z\tdev@laptop\tdeploy\trecordsponge-staging-20261128t120000z-4242\trs:staging\t\
             %{digest}\t%{commit}\tok\n"
        );
        assert_eq!(clean_field("a\tb\nc"), "a b c");
        let Action::Run(cmd) = append(&p, &t, "x\n".into()) else { panic!("a command") };
        assert_eq!(
            cmd.remote,
            ["dd", "of=/var/lib/recordsponge/staging.releases.log", "oflag=append", "conv=notrunc", "status=none"]
        );
        assert_eq!(cmd.stdin.as_deref(), Some("x\n"));
    }

    #[test]
    fn an_attempt_is_one_entry_with_the_result_of_its_end() {
        let attempts =
            parse_log(&log(&[("deploy", "aaa", "ok"), ("deploy", "bbb", "failed"), ("deploy", "ccc", "started")]));
        let results: Vec<&str> = attempts.iter().map(|a| a.result.as_str()).collect();
        assert_eq!(results, ["ok", "failed", "started"]);
        assert_eq!(attempts[0].digest, "rs@sha256:aaa");
        assert!(parse_log("a line from another format\n").is_empty());
    }

    #[test]
    fn rollback_goes_one_release_further_back_each_time_skipping_failures() {
        let mut text = log(&[
            ("deploy", "aaa", "ok"),
            ("deploy", "bbb", "ok"),
            ("deploy", "ccc", "failed"),
            ("deploy", "ddd", "ok"),
        ]);
        assert_eq!(target(&text, "ddd", None).unwrap(), "rs@sha256:bbb");
        text.push_str(&entry(8, "rollback", "bbb", "ok"));
        // The second rollback goes further back, not forward to the release the first one left.
        assert_eq!(target(&text, "bbb", None).unwrap(), "rs@sha256:aaa");
        text.push_str(&entry(9, "rollback", "aaa", "ok"));
        assert!(target(&text, "aaa", None).unwrap_err().to_string().contains("nothing further back"));
    }

    #[test]
    fn redeploys_of_one_build_are_one_release_and_a_deploy_after_rollbacks_goes_on_top() {
        let text = log(&[
            ("deploy", "aaa", "ok"),
            ("deploy", "bbb", "ok"),
            ("deploy", "bbb", "ok"),
            ("rollback", "aaa", "ok"),
            ("deploy", "ccc", "ok"),
        ]);
        assert_eq!(target(&text, "ccc", None).unwrap(), "rs@sha256:aaa");
        let attempts = parse_log(&text);
        let stack: Vec<&str> = release_stack(&attempts).iter().map(|a| a.digest.as_str()).collect();
        assert_eq!(stack, ["rs@sha256:aaa", "rs@sha256:ccc"]);
    }

    #[test]
    fn the_live_release_is_what_serves_not_what_the_log_says_last() {
        // The last deploy switched nginx but was cut off before it logged the end.
        let text = log(&[("deploy", "aaa", "ok"), ("deploy", "bbb", "ok"), ("deploy", "ccc", "started")]);
        assert_eq!(target(&text, "bbb", None).unwrap(), "rs@sha256:aaa");
        // Something the log does not know serves (e.g. a release started by hand): back to the last known.
        assert_eq!(target(&text, "zzz", None).unwrap(), "rs@sha256:bbb");
    }

    #[test]
    fn a_named_release_is_found_by_name_tag_commit_or_digest() {
        let text = log(&[("deploy", "aaa1", "ok"), ("deploy", "bbb2", "ok"), ("deploy", "ccc3", "failed")]);
        assert_eq!(target(&text, "bbb2", Some("rs-staging-1")).unwrap(), "rs@sha256:aaa1");
        assert_eq!(target(&text, "bbb2", Some("staging-aaa1")).unwrap(), "rs@sha256:aaa1");
        assert_eq!(target(&text, "bbb2", Some("aaa1000")).unwrap(), "rs@sha256:aaa1");
        assert!(target(&text, "bbb2", Some("ccc3000"))
            .unwrap_err()
            .to_string()
            .contains("no successful release `ccc3000`"));
        assert!(target(&text, "bbb2", Some("bbb2000"))
            .unwrap_err()
            .to_string()
            .contains("is the live release already"));
        assert!(target("", "aaa", None).unwrap_err().to_string().contains("no successful release"));
    }

    #[test]
    fn the_history_is_a_table_with_interrupted_attempts_named() {
        let table = history_table(&parse_log(&log(&[("deploy", "aaa", "ok"), ("deploy", "bbb", "started")])));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("time ") && lines[0].ends_with("result"), "{table}");
        assert!(lines[1].contains("rs-staging-1") && lines[1].ends_with("ok"), "{table}");
        assert!(lines[2].contains("bbb000") && lines[2].ends_with("interrupted"), "{table}");
        assert!(history_table(&[]).ends_with("(no release yet)"));
    }
}
