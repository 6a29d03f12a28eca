//! Golden tests of every command's plan, for both compose flavours: the exact preconditions
//! and argument vectors, compared with xtask/tests/golden/. No Docker needed.
//! `UPDATE_GOLDEN=1 cargo test -p xtask --test plans` rewrites the files after a deliberate change.

use std::path::{Path, PathBuf};

use clap::Parser;
use xtask::cli::{Cli, Command};
use xtask::config::Config;
use xtask::engine::EngineSetup;
use xtask::plan::{Action, Plan};
use xtask::project::{Facts, Flavor, Project};

const ROOT: &str = "/srv/recordsponge";

fn project(flavor: Flavor, ca: bool) -> Project {
    let config_path = xtask::root().join("config/recordsponge.toml");
    Project {
        root: PathBuf::from(ROOT),
        config: Config::load(&config_path).unwrap(),
        flavor,
        facts: Facts {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: "master".into(),
            terminal: false,
            ca_bundle: ca.then(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
            now: "2026-11-28T12:00:00Z".into(),
            engine: EngineSetup::Present,
            user: "dev".into(),
            ssh_multiplex: true,
        },
    }
}

fn plan_of(project: &Project, argv: &str) -> Plan {
    let cli = Cli::try_parse_from(std::iter::once("xtask").chain(argv.split_whitespace()))
        .unwrap_or_else(|e| panic!("`{argv}` does not parse: {e}"));
    xtask::plan(project, &cli.command.expect("a command")).unwrap_or_else(|e| panic!("`{argv}`: {e:#}"))
}

/// Every command line with a plan, and the golden file it renders to.
const COMMANDS: &[(&str, &str)] = &[
    ("new", "new"),
    ("pull", "pull"),
    ("up", "up"),
    ("down", "down"),
    ("clobber", "clobber"),
    ("push", "push-dev"),
    ("initdb", "initdb"),
    ("dropdb", "dropdb"),
    ("psql", "psql"),
    ("clean", "clean"),
    ("test", "test"),
    ("lint", "lint"),
    ("backend-build", "backend-build"),
    ("backend-reload", "backend-reload"),
    ("backend-logs", "backend-logs"),
    ("backend-test", "backend-test"),
    ("backend-test --watch", "backend-test-watch"),
    ("backend-lock", "backend-lock"),
    ("frontend-build", "frontend-build"),
    ("frontend-image", "frontend-image"),
    ("frontend-clean", "frontend-clean"),
    ("frontend-down", "frontend-down"),
    ("frontend-logs", "frontend-logs"),
    ("frontend-restart", "frontend-restart"),
    ("frontend-test", "frontend-test"),
    ("frontend-test-no-watch", "frontend-test-no-watch"),
    ("image staging", "image-staging"),
    ("push staging", "push-staging"),
    ("deploy staging", "deploy-staging"),
    ("deploy prod --tag prod-0123456789ab", "deploy-prod-tag"),
    ("staging", "staging"),
    ("prod", "prod"),
    ("compose ps --all", "compose-ps"),
    ("rollback staging", "rollback-staging"),
    ("rollback prod prod-0123456789ab", "rollback-prod-release"),
    ("releases staging", "releases-staging"),
    ("lock staging status", "lock-staging-status"),
    ("lock staging release", "lock-staging-release"),
];

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_GOLDEN=1 once", path.display()));
    assert_eq!(actual, expected, "the plan differs from {}", path.display());
}

#[test]
fn every_plan_matches_its_golden_file_for_both_compose_flavours() {
    for (flavor, dir) in [(Flavor::V2, "v2"), (Flavor::V1, "v1")] {
        let p = project(flavor, false);
        for (argv, name) in COMMANDS {
            golden(&format!("{dir}/{name}"), &plan_of(&p, argv).render());
        }
    }
}

#[test]
fn a_ca_bundle_is_handed_to_builds_and_containers() {
    let p = project(Flavor::V2, true);
    golden("v2/backend-build-with-ca", &plan_of(&p, "backend-build").render());
    let up = plan_of(&p, "up");
    let Action::Run(cmd) = &up.steps[0].action else { panic!("up starts with a command") };
    assert!(cmd.env.contains(&("RS_CA_BUNDLE".into(), "/etc/ssl/certs/ca-certificates.crt".into())));
}

#[test]
fn every_old_make_target_is_an_alias_with_the_same_plan() {
    let p = project(Flavor::V2, false);
    for (old, new) in [
        ("backend_build", "backend-build"),
        ("backend_reload", "backend-reload"),
        ("backend_logs", "backend-logs"),
        ("backend_test", "backend-test"),
        ("requirements.txt", "backend-lock"),
        ("backend_lock", "backend-lock"),
        ("frontend_build", "frontend-build"),
        ("frontend_clean", "frontend-clean"),
        ("frontend_down", "frontend-down"),
        ("frontend_logs", "frontend-logs"),
        ("frontend_restart", "frontend-restart"),
        ("frontend_test", "frontend-test"),
        ("frontend_test_no_watch", "frontend-test-no-watch"),
        ("ssh_deploy staging", "deploy staging"),
    ] {
        let (a, b) = (plan_of(&p, old), plan_of(&p, new));
        assert_eq!(a.steps, b.steps, "{old} and {new} differ");
        assert_eq!(a.checks, b.checks, "{old} and {new} differ");
    }
}

#[test]
fn no_plan_names_a_container_or_runs_a_shell_on_the_host() {
    for flavor in [Flavor::V2, Flavor::V1] {
        let p = project(flavor, true);
        for (argv, _) in COMMANDS {
            for step in plan_of(&p, argv).steps {
                let text = format!("{:?}", step.action);
                assert!(!text.contains("_1\"") && !text.contains("-1\""), "{argv}: a container name in {text}");
                for shell in ["\"sh\"", "\"bash\", \"-c\"", "\"cmd\"", "\"-c\""] {
                    assert!(!text.contains(&format!("program: {shell}")), "{argv}: a host shell in {text}");
                }
            }
        }
    }
}

#[test]
fn the_grouped_help_lists_every_command_exactly_once() {
    let cmd = xtask::cli::command();
    let declared: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let grouped: Vec<&str> = xtask::cli::GROUPS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
    for name in &declared {
        assert_eq!(grouped.iter().filter(|g| *g == name).count(), 1, "{name} must be in exactly one group");
    }
    assert_eq!(declared.len(), grouped.len(), "a grouped name is not a command");
}

#[test]
fn environments_come_from_rs_env_and_tags_from_deploy_tag() {
    // Parsed as the old CI ran it: `RS_ENV=staging make ...`, `DEPLOY_TAG=... make ssh_deploy`.
    let cli = Cli::try_parse_from(["xtask", "deploy", "staging", "--tag", "staging-abc"]).unwrap();
    assert_eq!(cli.command, Some(Command::Deploy { env: "staging".into(), tag: Some("staging-abc".into()) }));
    let arg = xtask::cli::command()
        .find_subcommand("deploy")
        .unwrap()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect::<Vec<_>>();
    assert_eq!(arg, ["RS_ENV", "DEPLOY_TAG"]);
}

#[test]
fn bad_environments_and_tags_are_refused_before_any_plan() {
    let p = project(Flavor::V2, false);
    let parse = |argv: &[&str]| Cli::try_parse_from(std::iter::once("xtask").chain(argv.iter().copied())).unwrap();
    for (argv, expect) in [
        (&["image", "dev"][..], "`dev` is the local environment"),
        (&["image", "qa"][..], "the configured ones are prod, staging"),
        (&["deploy", "staging; rm -rf /"][..], "is not a valid environment name"),
        (&["deploy", "$(reboot)"][..], "is not a valid environment name"),
        (&["deploy", "staging", "--tag", "x;reboot"][..], "is not a valid image tag"),
        (&["deploy", "staging", "--tag=-rm"][..], "is not a valid image tag"),
        (&["push", "Staging"][..], "is not a valid environment name"),
    ] {
        let err = xtask::plan(&p, &parse(argv).command.unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains(expect), "{argv:?}: {err:#}");
    }
}

#[test]
fn new_offers_to_install_a_missing_engine_on_debian() {
    for (name, setup) in [
        ("new-install-root", EngineSetup::Installable { sudo: false, systemd: false }),
        ("new-install-sudo-systemd", EngineSetup::Installable { sudo: true, systemd: true }),
    ] {
        let mut p = project(Flavor::V1, false);
        p.facts.engine = setup;
        golden(&format!("v1/{name}"), &plan_of(&p, "new").render());
    }
    // Where it cannot be installed from here, the docker checks say how.
    let mut p = project(Flavor::V2, false);
    p.facts.engine = EngineSetup::Missing;
    assert_eq!(plan_of(&p, "new"), plan_of(&project(Flavor::V2, false), "new"));
}
