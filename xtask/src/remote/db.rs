//! An environment's database, from its host: backups (`pg_dump --format=custom` in a throwaway
//! container of `backups.image`, which reads the database's address and login from the env
//! file there: no value leaves the host), kept in `backups.dir/ENV` as
//! `ENV-<time>-<release>.dump`, the newest `backups.keep` of them; and restores.

use anyhow::bail;

use super::ssh::words;
use super::target::Target;
use crate::checks::Check;
use crate::cmd::{sh, Cmd};
use crate::plan::{Action, Decided, Decision, Plan};
use crate::project::Project;

/// The environment's directory of backups on its host.
pub fn dir(p: &Project, env: &str) -> String {
    format!("{}/{env}", p.config.backups.dir)
}

/// `2026-11-28T12:00:00Z` as a file name's part: `20261128T120000Z`.
pub fn stamp(now: &str) -> String {
    now.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// `docker run` of the client image as the deploy user (`%{uid}:%{gid}`, so that the dumps are
/// its), with the environment's env file and the backups of `env` (only that directory; read-only
/// unless `writes`) as /backups, running `argv`.
fn client(p: &Project, t: &Target, env: &str, writes: bool, argv: &[&str]) -> Vec<String> {
    let mount = format!("{}:/backups{}", dir(p, env), if writes { "" } else { ":ro" });
    let mut run = words(&["docker", "run", "--rm", "--user", "%{uid}:%{gid}", "--env", "HOME=/tmp"]);
    run.extend(words(&["--env-file", &t.env.env_file, "--volume", &mount, &p.config.backups.image]));
    run.extend(words(argv));
    run
}

/// The database the env file names logs in, from a throwaway container of the client image on
/// the host, as a release would (its values never leave the host): what `doctor ENV` checks of
/// a database `setup` made, or an external one.
pub fn logs_in(p: &Project, t: &Target) -> Check {
    Check::Probe {
        what: format!("the database {} names logs in, from a container on {}", t.env.env_file, t.host),
        probe: login(p, t, &t.host),
        line: None,
        fix: format!(
            "correct PGHOST, PGPORT, PGDATABASE, PGUSER and PGPASSWORD in {} on {} (`cargo xtask setup {}` \
             makes a database on the host and fills them in; config/nginx/README.md)",
            t.env.env_file, t.host, t.name
        ),
    }
}

/// A login to the database the env file names, from a throwaway container of the client image
/// on `host` (the environment's, or another manager of its Swarm), as the deploy user.
pub fn login(p: &Project, t: &Target, host: &str) -> Cmd {
    let mut run = words(&["docker", "run", "--rm", "--env", "PGCONNECT_TIMEOUT=5", "--env-file", &t.env.env_file]);
    run.extend(words(&[&p.config.backups.image, "psql", "-X", "-q", "-c", "SELECT 1"]));
    super::ssh::ssh(p, host, &run)
}

/// What a backup needs on the host: its directory, writable by the deploy user.
pub fn checks(p: &Project, t: &Target) -> Vec<Check> {
    let (host, dir) = (&t.host, dir(p, &t.name));
    vec![Check::Probe {
        what: format!("{dir} is writable on {host} for {} (the backups)", t.user),
        probe: t.ssh(p, &["test", "-w", &dir]),
        line: None,
        fix: format!(
            "on {host}, as root: `install -d -o {user} -g {user} -m 750 {}` (config/nginx/setup-host.sh makes it)",
            sh(&dir),
            user = t.user
        ),
    }]
}

/// The deploy user's ids on the host, into `%{uid}` and `%{gid}`.
fn user_ids(p: &Project, t: &Target, plan: &mut Plan) {
    plan.step(
        "Read the deploy user's ids",
        Action::Capture { cmd: t.ssh(p, &["id", "-u"]), var: "uid".into(), optional: false },
    )
    .step(
        "Read the deploy user's group",
        Action::Capture { cmd: t.ssh(p, &["id", "-g"]), var: "gid".into(), optional: false },
    );
}

/// Backs the database up into `%{backup}` (named for the time and `%{live}`, the release that
/// serves, or `what` when none is given), says its size, and removes the backups beyond the
/// newest `backups.keep`. A failure says why (a full disk, the database unreachable) and changes
/// nothing else.
pub fn backup(p: &Project, t: &Target, plan: &mut Plan, what: Option<&str>) {
    let (env, dir, keep) = (t.name.clone(), dir(p, &t.name), p.config.backups.keep);
    let (stamp, what) = (stamp(&p.facts.now), what.map(str::to_string));
    user_ids(p, t, plan);
    plan.step(
        "Name the backup",
        Action::Decide(Decision::new("%{backup} = ENV-<time>-<the release that serves>.dump", move |vars| {
            let release = what.clone().unwrap_or_else(|| match vars.get("live") {
                "" => "none".to_string(),
                live => live.to_string(),
            });
            Ok(Decided::default().set("backup", format!("{env}-{stamp}-{release}.dump")))
        })),
    )
    .step(
        &format!("Back the database of {} up, on {}", t.name, t.host),
        Action::Run(t.ssh(p, &client(p, t, &t.name, true, &["sh", "-c", DUMP, "/backups/%{backup}"])).quiet()),
    )
    .timed()
    .hint(&format!(
        "the backup failed, and nothing changed: its last lines say why. A full disk: `df -h {dir}` on {host}; \
         the database unreachable: its address and login are in {file} on {host} (`cargo xtask doctor {env}`)",
        host = t.host,
        file = t.env.env_file,
        env = t.name
    ))
    .step(
        "Measure it",
        Action::Capture {
            cmd: t.ssh(p, &["stat", "-c", "%s", "--", &format!("{dir}/%{{backup}}")]),
            var: "backup_size".into(),
            optional: false,
        },
    )
    .step(
        "List the backups",
        Action::Capture { cmd: t.ssh(p, &list(&dir, &t.name)), var: "backups".into(), optional: false },
    )
    .step(
        &format!("Keep the newest {keep} backups"),
        Action::Decide(Decision::new(
            &format!("%{{prune}} = the backups beyond the newest {keep}, from %{{backups}}"),
            move |vars| {
                let size = vars.get("backup_size").parse::<u64>().unwrap_or(0);
                let prune = beyond(vars.get("backups"), keep, vars.get("restore"));
                Ok(Decided::default().set("prune", prune.join("\n")).note(format!(
                    "backup {}/{}: {}",
                    dir,
                    vars.get("backup"),
                    human(size)
                )))
            },
        )),
    )
    .step(
        "Remove the older backups",
        Action::ForEach {
            var: "prune".into(),
            each: t.ssh(p, &["rm", "-f", "--", &format!("{}/%{{line}}", self::dir(p, &t.name))]),
        },
    );
}

/// The dump, in the client's container (`$0`: the backup's path there): written under a
/// `.partial` name, read back whole (`pg_restore` to /dev/null reads every entry: a dump cut
/// short by a full disk fails here, though pg_dump may not notice), only then given its name; a
/// dump that fails leaves no file a restore could take for a backup.
const DUMP: &str = concat!(
    r#"trap 'rm -f -- "$0.partial"' EXIT; set -e; "#,
    r#"pg_dump --format=custom --file="$0.partial"; "#,
    r#"pg_restore --file=/dev/null "$0.partial" || { echo "the dump does not read back whole:" $(df -h /backups | tail -n 1); exit 1; }; "#,
    r#"mv -- "$0.partial" "$0""#
);

/// The environment's backups in `dir`, one a line: name, size.
pub fn list(dir: &str, env: &str) -> Vec<String> {
    words(&["find", dir, "-maxdepth", "1", "-type", "f", "-name", &format!("{env}-*.dump"), "-printf", "%f\\t%s\\n"])
}

/// The backups' names in what `list` printed.
fn names(listed: &str) -> Vec<&str> {
    listed.lines().filter_map(|l| l.split('\t').next()).filter(|n| !n.is_empty()).collect()
}

/// The names (sorted: they start with their time) of the backups listed, beyond the newest `keep`,
/// never `restoring` (the backup a restore is about to read).
pub fn beyond(listed: &str, keep: usize, restoring: &str) -> Vec<String> {
    let mut names = names(listed);
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.into_iter().skip(keep).filter(|n| *n != restoring).map(str::to_string).collect()
}

/// A size in bytes, for people.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / (1u64 << 10) as f64),
        b => format!("{b} bytes"),
    }
}

/// The backups as a table, newest first.
pub fn table(listed: &str) -> String {
    let mut rows: Vec<(&str, u64)> = listed
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, size)| (name, size.trim().parse().unwrap_or(0)))
        .collect();
    rows.sort_unstable_by(|a, b| b.0.cmp(a.0));
    if rows.is_empty() {
        return "(no backup yet)".into();
    }
    rows.iter().map(|(name, size)| format!("{name}  {}", human(*size))).collect::<Vec<_>>().join("\n")
}

/// The backup `wanted` (a name, a prefix of one, or `latest`) among those listed of `env`.
pub fn choose(listed: &str, env: &str, wanted: &str) -> anyhow::Result<String> {
    let mut names = names(listed);
    names.sort_unstable();
    let found: Vec<&&str> = match wanted {
        "latest" => names.last().into_iter().collect(),
        w => names.iter().filter(|n| n.starts_with(w) || **n == w).collect(),
    };
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] if names.is_empty() => bail!("{env} has no backup yet: `cargo xtask db backup {env}` makes one"),
        [] => bail!("no backup of {env} is `{wanted}`: `cargo xtask db backups {env}` lists them"),
        many => bail!(
            "`{wanted}` names {} backups of {env} ({}): give more of the name",
            many.len(),
            many.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Restores `%{restore}` (a backup of `from`) into the environment's database, in one
/// transaction (`--clean`: what it replaces is dropped first), then checks that the database
/// holds the dump's tables.
pub fn restore(p: &Project, t: &Target, plan: &mut Plan, from: &str) {
    let file = "/backups/%{restore}";
    // The database's name is read inside the container, from the env file (never here); the
    // backup's path is the script's `$0`.
    let script = "exec pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
                  --exit-on-error --dbname=\"$PGDATABASE\" \"$0\"";
    plan.step(
        &format!("Restore %{{restore}} into the database of {}", t.name),
        Action::Run(t.ssh(p, &client(p, t, from, false, &["sh", "-c", script, file])).quiet()),
    )
    .timed()
    .step(
        "List the backup's tables",
        Action::Capture {
            cmd: t.ssh(p, &client(p, t, from, false, &["pg_restore", "--list", file])),
            var: "dumped".into(),
            optional: false,
        },
    )
    .step(
        "Count the database's tables",
        Action::Capture {
            cmd: t.ssh(
                p,
                &client(
                    p,
                    t,
                    from,
                    false,
                    &["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", TABLES],
                ),
            ),
            var: "tables".into(),
            optional: false,
        },
    )
    .step(
        "Check the restore",
        Action::Decide(Decision::new("the database holds every table of %{restore}", |vars| {
            let dumped = dumped_tables(vars.get("dumped"));
            let tables: usize = vars.get("tables").trim().parse().unwrap_or(0);
            if tables != dumped {
                bail!(
                    "the restore of {} is committed, but the database's public schema holds {tables} tables and the \
                     backup {dumped}: tables the backup does not have stay as they were (a restore replaces only \
                     what it holds); look at them before deploying",
                    vars.get("restore")
                );
            }
            Ok(Decided::default().note(format!("restored {} ({tables} tables)", vars.get("restore"))))
        })),
    );
}

/// How many tables of the public schema a dump holds, from `pg_restore --list` (a line an
/// entry: `ID; OID OID KIND SCHEMA NAME OWNER`; a table's data is a `TABLE DATA` entry).
pub fn dumped_tables(list: &str) -> usize {
    let entry = |l: &&str| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        !l.starts_with(';') && fields.get(3) == Some(&"TABLE") && fields.get(4) == Some(&"public")
    };
    list.lines().filter(entry).count()
}

/// How many tables the database's public schema holds.
const TABLES: &str = "select count(*) from pg_tables where schemaname = 'public'";

/// `cat` of a backup on the host, its bytes to a file here (`--download`).
pub fn download(p: &Project, t: &Target, to: &std::path::Path) -> Action {
    Action::Run(t.ssh(p, &["cat", "--", &format!("{}/%{{backup}}", dir(p, &t.name))]).stdout_file(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = "staging-20261201T100000Z-r1.dump\t100\nstaging-20261203T100000Z-r3.dump\t300\nstaging-20261202T100000Z-r2.dump\t2000000\n";

    #[test]
    fn the_newest_backups_are_kept_and_the_rest_named_for_removal() {
        assert_eq!(beyond(LISTED, 2, ""), ["staging-20261201T100000Z-r1.dump"]);
        assert!(beyond(LISTED, 3, "").is_empty());
        assert_eq!(
            beyond(LISTED, 1, "staging-20261201T100000Z-r1.dump"),
            ["staging-20261202T100000Z-r2.dump"],
            "the backup a restore reads is never pruned"
        );
        assert_eq!(stamp("2026-11-28T12:00:00Z"), "20261128T120000Z");
        assert_eq!(human(2_000_000), "1.9 MB");
        assert_eq!(
            table(LISTED),
            "staging-20261203T100000Z-r3.dump  300 bytes\nstaging-20261202T100000Z-r2.dump  1.9 MB\n\
             staging-20261201T100000Z-r1.dump  100 bytes"
        );
        assert_eq!(table(""), "(no backup yet)");
        assert_eq!(
            list("/b/staging", "staging"),
            ["find", "/b/staging", "-maxdepth", "1", "-type", "f", "-name", "staging-*.dump", "-printf", "%f\\t%s\\n"]
        );
    }

    #[test]
    fn a_dumps_tables_are_its_table_entries_not_their_data() {
        let list = ";\n; Archive created at 2026-12-04 15:02:15 UTC\n;     dbname: recordsponge\n\
                    215; 1259 16385 TABLE public users recordsponge\n\
                    216; 1259 16384 SEQUENCE public users_user_id_seq recordsponge\n\
                    217; 1259 16399 TABLE public bulk recordsponge\n\
                    3330; 0 16385 TABLE DATA public users recordsponge\n\
                    3331; 0 16399 TABLE DATA public bulk recordsponge\n\
                    3180; 2606 16392 CONSTRAINT public users users_pkey recordsponge\n";
        assert_eq!(dumped_tables(list), 2);
        assert_eq!(dumped_tables(""), 0);
    }

    #[test]
    fn a_backup_to_restore_is_named_by_its_name_a_prefix_or_latest() {
        assert_eq!(choose(LISTED, "staging", "latest").unwrap(), "staging-20261203T100000Z-r3.dump");
        assert_eq!(choose(LISTED, "staging", "staging-20261202").unwrap(), "staging-20261202T100000Z-r2.dump");
        let many = choose(LISTED, "staging", "staging-2026120").unwrap_err().to_string();
        assert!(many.contains("names 3 backups"), "{many}");
        assert!(choose(LISTED, "staging", "prod-1").unwrap_err().to_string().contains("no backup of staging is"));
        assert!(choose("", "staging", "latest").unwrap_err().to_string().contains("has no backup yet"));
    }
}
