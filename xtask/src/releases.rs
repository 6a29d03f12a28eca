//! The release log kept on the host (`state_dir/ENV/releases.log`): one tab-separated line a
//! deploy or rollback: time, user, action, image, commit, result (ok or failed).

use anyhow::{bail, Result};

pub const HEADER: &str = "time\tuser\taction\timage\tcommit\tresult";

struct Entry<'a> {
    image: &'a str,
    commit: &'a str,
    ok: bool,
}

fn entries(log: &str) -> Vec<Entry<'_>> {
    log.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 6).then(|| Entry { image: fields[3], commit: fields[4], ok: fields[5] == "ok" })
        })
        .collect()
}

/// The image and commit to roll back to: `release` (an image tag or a commit prefix) when
/// given, else the newest successful release whose image differs from the live one (the
/// newest successful release).
pub fn pick(log: &str, release: Option<&str>) -> Result<(String, String)> {
    let ok: Vec<Entry> = entries(log).into_iter().filter(|e| e.ok).collect();
    let Some(live) = ok.last() else { bail!("the release log has no successful release to roll back from") };
    let found = match release {
        Some(r) => ok.iter().rev().find(|e| e.image.rsplit(':').next() == Some(r) || e.commit.starts_with(r)),
        None => ok.iter().rev().find(|e| e.image != live.image),
    };
    match found {
        Some(e) => Ok((e.image.to_string(), e.commit.to_string())),
        None => match release {
            Some(r) => bail!("no successful release `{r}` in the release log (`cargo xtask releases ENV` lists them)"),
            None => bail!("the release log has no earlier release than the live one ({})", live.image),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-01T10:00:00Z\tana\tdeploy\trs:staging-aaa\taaa111\tok
2026-11-02T10:00:00Z\tbo\tdeploy\trs:staging-bbb\tbbb222\tok
2026-11-03T10:00:00Z\tbo\tdeploy\trs:staging-ccc\tccc333\tfailed
2026-11-04T10:00:00Z\tana\tdeploy\trs:staging-ddd\tddd444\tok
";

    #[test]
    fn the_default_is_the_release_before_the_live_one_skipping_failures() {
        assert_eq!(pick(LOG, None).unwrap(), ("rs:staging-bbb".into(), "bbb222".into()));
    }

    #[test]
    fn after_a_rollback_the_default_goes_back_further_than_the_rolled_back_release() {
        let log = format!("{LOG}2026-11-05T10:00:00Z\tana\trollback\trs:staging-bbb\tbbb222\tok\n");
        assert_eq!(pick(&log, None).unwrap(), ("rs:staging-ddd".into(), "ddd444".into()));
    }

    #[test]
    fn a_release_is_named_by_tag_or_commit_prefix() {
        assert_eq!(pick(LOG, Some("staging-aaa")).unwrap().1, "aaa111");
        assert_eq!(pick(LOG, Some("aaa1")).unwrap().0, "rs:staging-aaa");
        assert!(pick(LOG, Some("ccc333")).unwrap_err().to_string().contains("no successful release `ccc333`"));
    }

    #[test]
    fn nothing_to_roll_back_to_is_an_error() {
        assert!(pick("", None).is_err());
        let one = LOG.lines().next().unwrap();
        assert!(pick(one, None).unwrap_err().to_string().contains("no earlier release"));
    }
}
