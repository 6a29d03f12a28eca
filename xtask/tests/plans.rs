//! Golden tests of every command's plan: the exact preconditions and argument vectors,
//! compared with xtask/tests/golden/NAME.txt (rendered with the compose v2 plugin; the test of
//! compose v1 derives its expectation from the same file). The list of commands comes from the
//! command table itself, so a command without a golden plan fails here. No Docker needed.
//! `UPDATE_GOLDEN=1 cargo test -p xtask --test plans` rewrites the files after a deliberate change.

use std::path::{Path, PathBuf};

use xtask::cli::{self, Command, Deploy};
use xtask::config::Config;
use xtask::plan::{Action, Plan};
use xtask::project::EngineSetup;
use xtask::project::{Facts, Flavor, Inputs, Project};

const ROOT: &str = "/srv/recordsponge";

fn project(flavor: Flavor, ca: bool) -> Project {
    let config_path = xtask::root().unwrap().join(xtask::CONFIG);
    Project {
        root: PathBuf::from(ROOT),
        config: Config::load(&config_path).unwrap(),
        flavor,
        facts: Facts {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            commit_time: "2026-11-27T09:30:00Z".into(),
            terminal: false,
            ca_bundle: ca.then(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
            now: "2026-11-28T12:00:00Z".into(),
            engine: EngineSetup::Present,
            user: "dev".into(),
            machine: "laptop".into(),
            pid: 4242,
            ssh_sockets: Some(PathBuf::from("/home/dev/.ssh")),
            ssh_users: [("recordsponge".to_string(), "deploy".to_string())].into(),
            ssh_keys: [("recordsponge".to_string(), PathBuf::from("/home/dev/.ssh/id_ed25519.pub"))].into(),
            xtask: ["/srv/recordsponge/target/debug/xtask", "--config", "/srv/recordsponge/config/recordsponge.toml"]
                .map(String::from)
                .into(),
            ssh_machines: [("recordsponge".to_string(), "recordsponge.com:22".to_string())].into(),
            inputs: Inputs { backend: Some("0b0b0b0b0b0b0b0b".into()), frontend: Some("0f0f0f0f0f0f0f0f".into()) },
            managers: Default::default(),
        },
    }
}

fn words(argv: &str) -> Vec<String> {
    argv.split_whitespace().map(str::to_string).collect()
}

fn plan_of(project: &Project, argv: &[String]) -> Option<Plan> {
    let invocation = cli::parse(argv).unwrap_or_else(|e| panic!("`{}` does not parse: {e}", argv.join(" ")));
    xtask::plan(project, &invocation).unwrap_or_else(|e| panic!("`{}`: {e:#}", argv.join(" ")))
}

/// Variants of commands beyond the one line a command the table derives.
const VARIANTS: &[&str] = &[
    "new --backend-only",
    "up --backend-only",
    "lint --watch",
    "psql -- -f config/postgres/seed.sql",
    "psql -- -c select",
    "backend-test -- -k health",
    "backend-test --watch -- -k health",
    "frontend-test-no-watch -- --reporter dot",
    "backend-test --watch",
    "push staging",
    "deploy prod --tag prod-0123456789ab",
    "rollback prod prod-0123456789ab",
    "lock staging release",
    "compose ps --all",
    "logs prod --follow --since 10m --lines 50",
    "exec prod -- flask shell",
    "exec staging --release staging-0123456789ab -- python -V",
    "db backups prod",
    "db backup prod --download prod.dump",
    "db restore staging latest",
    "db restore staging prod-20261128T120000Z --from prod",
];

/// Every command line with a plan: one for each command of the table, and the variants.
fn every_plan() -> Vec<Vec<String>> {
    let p = project(Flavor::V2, false);
    let mut all: Vec<Vec<String>> = cli::every_invocation(&["staging"]);
    all.extend(VARIANTS.iter().map(|v| words(v)));
    all.into_iter().filter(|argv| plan_of(&p, argv).is_some()).collect()
}

/// The golden file's name: the command line's words joined by `-` (a path's `/` as `_`).
fn name(argv: &[String]) -> String {
    argv.iter().map(|w| w.trim_start_matches('-').replace('/', "_")).collect::<Vec<_>>().join("-")
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"))
}

fn golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing: every command needs a golden plan (UPDATE_GOLDEN=1 writes it)", path.display())
    });
    assert_eq!(actual, expected, "the plan differs from {}", path.display());
}

#[test]
fn every_command_has_a_plan_matching_its_golden_file() {
    let p = project(Flavor::V2, false);
    let all = every_plan();
    for argv in &all {
        golden(&name(argv), &plan_of(&p, argv).unwrap().render());
    }
    // Every command of the table is covered (the tools without a plan aside).
    for (_, names) in cli::grouped_names() {
        for command in names {
            let planned = all.iter().any(|argv| argv[0] == command);
            let tool = command == "doctor";
            assert!(planned != tool, "{command}: a command either has a golden plan or is a tool without one");
        }
    }
}

/// The compose v1 plan of every command is its v2 plan with `docker-compose` for `docker
/// compose` (and the v1 executable's check for the plugin's): nothing else differs.
#[test]
fn every_plan_with_compose_v1_differs_only_in_the_compose_invocation() {
    let p = project(Flavor::V1, false);
    for argv in every_plan() {
        let v1 = plan_of(&p, &argv).unwrap().render();
        let as_v2 = v1
            .replace(
                "`docker-compose` 1.29 or newer is on PATH",
                "the compose plugin answers (`docker compose version`)",
            )
            .replace("docker-compose ", "docker compose ");
        let expected = std::fs::read_to_string(golden_path(&name(&argv))).unwrap();
        assert_eq!(as_v2, expected, "`{}` with compose v1", argv.join(" "));
    }
}

/// A Swarm environment: its deploy, rollback and history.
#[test]
fn swarm_plans_match_their_golden_files() {
    let mut p = project(Flavor::V2, false);
    let mut cluster = p.config.environments["staging"].clone();
    cluster.engine = xtask::config::Engine::Swarm;
    cluster.host = "swarm-manager".into();
    cluster.ports = None;
    cluster.upstream_file = None;
    cluster.upstream_name = None;
    cluster.container = "recordsponge-cluster".into();
    cluster.check_url = "http://127.0.0.1/api/version".into();
    p.config.environments.insert("cluster".into(), cluster);
    p.facts.ssh_users.insert("swarm-manager".into(), "deploy".into());
    for argv in ["deploy cluster --tag cluster-0123456789ab", "rollback cluster", "releases cluster"] {
        let argv = words(argv);
        golden(&format!("swarm-{}", name(&argv)), &plan_of(&p, &argv).unwrap().render());
    }
}

#[test]
fn a_ca_bundle_is_handed_to_builds_and_containers() {
    let p = project(Flavor::V2, true);
    golden("backend-build-with-ca", &plan_of(&p, &words("backend-build")).unwrap().render());
    let up = plan_of(&p, &words("up")).unwrap();
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
        let (a, b) = (plan_of(&p, &words(old)).unwrap(), plan_of(&p, &words(new)).unwrap());
        assert_eq!(a.steps, b.steps, "{old} and {new} differ");
        assert_eq!(a.checks, b.checks, "{old} and {new} differ");
    }
}

#[test]
fn no_plan_names_a_container_or_runs_a_shell_on_the_host() {
    for flavor in [Flavor::V2, Flavor::V1] {
        let p = project(flavor, true);
        for argv in every_plan() {
            for step in plan_of(&p, &argv).unwrap().steps {
                let text = format!("{:?}", step.action);
                assert!(!text.contains("_1\"") && !text.contains("-1\""), "{argv:?}: a container name in {text}");
                for shell in ["\"sh\"", "\"bash\", \"-c\"", "\"cmd\"", "\"-c\""] {
                    assert!(!text.contains(&format!("program: {shell}")), "{argv:?}: a host shell in {text}");
                }
            }
        }
    }
}

#[test]
fn the_grouped_help_lists_every_command_exactly_once() {
    let declared: Vec<String> = cli::command().get_subcommands().map(|s| s.get_name().to_string()).collect();
    let grouped: Vec<String> = cli::grouped_names().into_iter().flat_map(|(_, names)| names).collect();
    let mut sorted = grouped.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), grouped.len(), "a command is in two groups");
    assert_eq!(sorted.len(), declared.len(), "a command is in no group, or a grouped name is not a command");
    let help = cli::command().render_help().to_string();
    for name in &declared {
        assert!(help.contains(&format!("  {name} ")), "the help does not list {name}:\n{help}");
    }
}

#[test]
fn environments_come_from_rs_env_and_tags_from_deploy_tag() {
    // Parsed as the old CI ran it: `RS_ENV=staging make ...`, `DEPLOY_TAG=... make ssh_deploy`.
    let invocation = cli::parse(&words("deploy staging --tag staging-abc")).unwrap();
    assert_eq!(
        invocation.command,
        Command::Deploy(Deploy::Deploy { env: "staging".into(), tag: Some("staging-abc".into()) })
    );
    let arg = cli::command()
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
    for (argv, expect) in [
        (&["image", "dev"][..], "`dev` is the local environment"),
        (&["image", "qa"][..], "the configured ones are prod, staging"),
        (&["deploy", "staging; rm -rf /"][..], "is not a valid environment name"),
        (&["deploy", "$(reboot)"][..], "is not a valid environment name"),
        (&["deploy", "staging", "--tag", "x;reboot"][..], "is not a valid image tag"),
        (&["deploy", "staging", "--tag=-rm"][..], "is not a valid image tag"),
        (&["push", "Staging"][..], "is not a valid environment name"),
    ] {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let err = xtask::plan(&p, &cli::parse(&argv).unwrap()).unwrap_err();
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
        golden(name, &plan_of(&p, &words("new")).unwrap().render());
    }
    // Where it cannot be installed from here, the docker checks say how.
    let mut p = project(Flavor::V2, false);
    p.facts.engine = EngineSetup::Missing;
    assert_eq!(plan_of(&p, &words("new")), plan_of(&project(Flavor::V2, false), &words("new")));
}
