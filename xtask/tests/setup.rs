//! The setup suite: `cargo xtask setup` takes a host container as a provider hands one over
//! (xtask/testbed/images/bare: Debian with sshd, root's ssh key authorized; no Docker engine,
//! nginx, PostgreSQL, sudo or rsyslog), installing what it needs through the machine's package
//! mirror, to one that serves its first deploy through nginx over https (a certificate from
//! Pebble, Let's Encrypt's test ACME server), with its database made safe by construction; run
//! again, it changes nothing and says so.

mod common;

use common::{get, refused, Xtask};
use xtask::config::Config;
use xtask_testbed::fleet::{Fleet, DOMAIN, USER};

#[test]
#[ignore = "needs a Docker engine; bash xtask/testbed/run-tests.sh runs it (cargo test -- --include-ignored)"]
fn setup_takes_a_bare_host_to_its_first_deploy_and_then_changes_nothing() {
    common::engine("setup suite");
    let p = xtask::load(None, None, false).unwrap();
    let fleet = Fleet::start(&p, &format!("rssetup{}", std::process::id()), "bare", 1, None, &[80, 443]).unwrap();
    let host = fleet.hosts[0].name.clone();
    fleet.authorize_root(&host).unwrap();
    let on_host = |argv: &[&str]| fleet.exec(&host, None, argv, None).unwrap();
    // Let's Encrypt's test server beside it; the host's name on the fleet's network is its domain.
    let pebble = fleet.pebble(&p).unwrap();
    let domain = format!("{host}.{DOMAIN}");
    // What the site answers over https, verified against the root Pebble's certificates chain to.
    let https = |path: &str| {
        fleet.exec(&host, None, &["dd", "of=/tmp/acme-root.pem", "status=none"], Some(&pebble.root)).unwrap();
        let url = format!("https://{domain}{path}");
        let answered = fleet.exec(
            &host,
            None,
            &[
                "curl",
                "--silent",
                "--show-error",
                "--cacert",
                "/tmp/acme-root.pem",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_code}",
                &url,
            ],
            None,
        );
        answered.unwrap_or_else(|e| {
            let nginx = ["sh", "-c", "ss -ltnp; tail -n 20 /var/log/nginx/error.log; ls -l /etc/nginx/sites-enabled"];
            panic!("{e:#}\nnginx on the host:\n{}", fleet.exec(&host, None, &nginx, None).unwrap_or_default())
        })
    };

    let mut config: Config = p.config.clone();
    config.compose.project = fleet.prefix.clone();
    config.deploy.repository = format!("{}/recordsponge/setup-expungeservice", fleet.registry);
    config.deploy.ssh_config = fleet.ssh_config.display().to_string();
    config.environments.retain(|name, _| name == "staging");
    let staging = config.environments.get_mut("staging").unwrap();
    staging.host = host.clone();
    staging.domain = Some(domain.clone());
    staging.check_url = format!("https://{domain}/api/version");
    staging.health_timeout = 20;
    config.tls.directory = pebble.directory.clone();
    config.tls.ca = pebble.ca.display().to_string();
    config.backups.image = fleet.push_test_image(&p, "pgclient").unwrap();
    let path = fleet.dir.join("setup.toml");
    config.write(&path).unwrap();
    let home = fleet.dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let x = Xtask::new(&path, &[("DOCKER_CONFIG", &fleet.docker_config), ("HOME", &home)]);

    // The plan, printed, changes nothing; the admin's login is checked before anything runs.
    let dry = x.ok(&["setup", "staging", "--dry-run"]);
    assert!(dry.out.contains(&format!("ssh to root@{host} works without prompts")), "{}", dry.out);
    assert!(fleet.exec(&host, None, &["id", USER], None).is_err(), "a dry run made the deploy user");
    let without_keys = x.run(&["setup", "staging", "--no-deploy", "--keys", "/nonexistent.pub"]);
    refused(&without_keys, "setup without its keys file", "is missing: /nonexistent.pub");
    // An env file there already that names a database but not its password: refused, nothing
    // changed (no package, no user).
    on_host(&["install", "-d", "/etc/recordsponge"]);
    fleet
        .exec(&host, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some("PGHOST=db.example.org\n"))
        .unwrap();
    let half_filled = x.run(&["setup", "staging", "--no-deploy"]);
    refused(&half_filled, "setup over an env file without PGPASSWORD", "staging.env sets PGHOST but no PGPASSWORD");
    assert!(fleet.exec(&host, None, &["id", USER], None).is_err(), "a refused setup made the deploy user");
    assert_eq!(on_host(&["cat", "/etc/recordsponge/staging.env"]), "PGHOST=db.example.org\n");
    on_host(&["rm", "-r", "/etc/recordsponge"]);
    // A domain whose DNS names another machine (Pebble's), and a host that does not answer:
    // refused, nothing changed.
    let mut elsewhere = config.clone();
    elsewhere.environments.get_mut("staging").unwrap().domain = Some("pebble".into());
    elsewhere.write(&fleet.dir.join("elsewhere.toml")).unwrap();
    let misdirected = x.run_with(x.command_with(&fleet.dir.join("elsewhere.toml"), &["setup", "staging"]), "elsewhere");
    refused(&misdirected, "setup for a domain that points elsewhere", &format!("none of them {host}'s"));
    let mut nowhere = config.clone();
    nowhere.environments.get_mut("staging").unwrap().host = format!("{USER}@nowhere.invalid");
    nowhere.write(&fleet.dir.join("nowhere.toml")).unwrap();
    let unreachable = x.run_with(x.command_with(&fleet.dir.join("nowhere.toml"), &["setup", "staging"]), "nowhere");
    refused(
        &unreachable,
        "setup of a host that does not answer",
        "ssh to root@nowhere.invalid works without prompts: no",
    );
    // Another distribution: refused.
    let os_release = on_host(&["cat", "/etc/os-release"]);
    let write_os_release = |text: &str| {
        fleet.exec(&host, None, &["dd", "of=/etc/os-release", "status=none"], Some(text)).unwrap();
    };
    write_os_release("ID=fedora\nVERSION_ID=41\n");
    let fedora = x.run(&["setup", "staging"]);
    refused(&fedora, "setup of a Fedora host", &format!("{host} runs Debian or Ubuntu: no"));
    write_os_release(&os_release);
    assert!(fleet.exec(&host, None, &["id", USER], None).is_err(), "a refused setup made the deploy user");

    // The host, set up: the deploy user logs in with the key ssh uses for the host.
    let first = x.ok(&["setup", "staging", "--no-deploy"]);
    for said in [
        "setup-host: installing docker.io",
        "setup-database: installing postgresql",
        &format!("setup-tls: obtained a certificate for {domain} from https://pebble:14000/dir"),
        &format!("setup-host: created the user {USER}"),
        "setup-host: created /etc/recordsponge/staging.env",
        "setup-database: created the role and database recordsponge_staging",
    ] {
        assert!(first.out.contains(said), "setup should say `{said}`:\n{}", first.out);
    }
    assert_eq!(fleet.exec(&host, Some(USER), &["id", "-un"], None).unwrap().trim(), USER);
    // Its registry login is yours, passed on, and checked by a pull (nothing pushed yet).
    let login = ["docker", "login", fleet.registry.as_str()];
    assert!(fleet.exec(&host, Some(USER), &login, None).is_ok(), "the deploy user has no registry login");
    let repository = &config.deploy.repository;
    let nothing_yet =
        format!("nothing is pushed as {repository}:staging yet, and the registry let {USER} on {host} ask");
    assert!(first.out.contains(&nothing_yet), "{}", first.out);

    // The database: listening on localhost and the bridge only, password logins from the bridge's
    // network only, its login in the env file (the deploy user's, mode 600) and nowhere else.
    let subnet = on_host(&["docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Subnet}}"]);
    let subnet = subnet.trim().to_string();
    let docker0 = on_host(&["ip", "-4", "-o", "addr", "show", "docker0"]);
    let gateway = docker0.split_whitespace().nth(3).and_then(|a| a.split('/').next()).unwrap().to_string();
    let listen = on_host(&["pg_conftool", "-s", "15", "main", "show", "listen_addresses"]);
    assert_eq!(listen.trim(), format!("localhost,{gateway}"));
    let sockets = on_host(&["ss", "-Hltn", "sport = :5432"]);
    for line in sockets.lines() {
        let local = line.split_whitespace().nth(3).unwrap();
        assert!(
            ["127.0.0.1:5432".to_string(), "[::1]:5432".into(), format!("{gateway}:5432")].contains(&local.to_string()),
            "PostgreSQL listens on {local}:\n{sockets}"
        );
    }
    let hba = on_host(&["cat", "/etc/postgresql/15/main/pg_hba.conf"]);
    let rules: Vec<&str> = hba.lines().filter(|l| l.starts_with("host")).collect();
    assert!(
        rules.contains(&format!("host recordsponge_staging recordsponge_staging {subnet} scram-sha-256").as_str()),
        "{hba}"
    );
    for rule in &rules {
        let source = rule.split_whitespace().nth(3).unwrap();
        assert!(["127.0.0.1/32", "::1/128", subnet.as_str()].contains(&source), "pg_hba.conf lets {source} in: {rule}");
    }
    assert_eq!(on_host(&["stat", "-c", "%U %a", "/etc/recordsponge/staging.env"]).trim(), format!("{USER} 600"));
    let env_file = on_host(&["cat", "/etc/recordsponge/staging.env"]);
    let value =
        |key: &str| env_file.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string();
    let password = value("PGPASSWORD");
    assert_eq!(password.len(), 24, "{env_file}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!((value("PGHOST"), value("PGUSER")), (gateway.clone(), "recordsponge_staging".to_string()));
    let tables = on_host(&[
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-tA",
        "-d",
        "recordsponge_staging",
        "-c",
        "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'",
    ]);
    assert!(!tables.trim().is_empty(), "the schema was not applied");
    assert!(tables.lines().all(|owner| owner == "recordsponge_staging"), "{tables}");

    // The site, over https with the certificate from the ACME server (nginx answers 502: nothing
    // deployed yet); plain http redirects there.
    assert_eq!(https("/api/health"), "502");
    let (status, _) = get(fleet.hosts[0].ports[&80], "/api/health");
    assert_eq!(status, 301, "plain http does not redirect to https");
    // The host trusts Pebble's root as a real host trusts Let's Encrypt's (the deploy checks its
    // release answers at check_url, over https, from the host).
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    on_host(&["install", "-d", "/etc/ssl/certs"]);
    fleet
        .exec(
            &host,
            None,
            &["dd", &format!("of={bundle}"), "oflag=append", "conv=notrunc", "status=none"],
            Some(&pebble.root),
        )
        .unwrap();

    // The first deploy: the image of the environment, pushed; setup deploys it (nothing else
    // changes), and nginx serves it, healthy: the release logs in to the database setup made.
    x.ok(&["image", "staging"]);
    x.ok(&["push", "staging"]);
    let second = x.ok(&["setup", "staging"]);
    for said in [
        "setup-host: nothing to change",
        "setup-database: staging: nothing to change",
        "logged in to the registry already",
        &format!("setup-tls: {domain}: its certificate is valid for 30 days more (kept)"),
        &format!("setup-tls: {domain}: nothing to change"),
        &format!("{USER} on {host} pulled {repository}:staging: its registry login works"),
    ] {
        assert!(second.out.contains(said), "setup should say `{said}`:\n{}", second.out);
    }
    assert_eq!(https("/api/health"), "200", "the first deploy does not serve, healthy, over https");

    // doctor checks what setup made: the database logs in, the certificate has days left.
    let doctor = x.ok(&["doctor", "staging"]);
    for ok in [
        format!("ok      the certificate nginx serves on {host} for {domain} has 14 days left or more ("),
        format!("ok      the database /etc/recordsponge/staging.env names logs in, from a container on {host}"),
        format!("ok      staging serves through nginx (https://{domain}/api/version)"),
    ] {
        assert!(doctor.stdout.contains(&ok), "doctor should say `{ok}`:\n{}", doctor.stdout);
    }
    let days = doctor.stdout.split(" has 14 days left or more (").nth(1).and_then(|rest| rest.split(' ').next());
    let days: i64 = days.and_then(|d| d.parse().ok()).unwrap_or_else(|| panic!("no days left:\n{}", doctor.stdout));
    assert!(days >= 14, "{days} days left");

    // Again: nothing changes, not even a deploy.
    let third = x.ok(&["setup", "staging"]);
    assert!(third.out.contains("staging has been deployed already: no deploy"), "{}", third.out);
    assert_eq!(on_host(&["cat", "/etc/recordsponge/staging.env"]), env_file, "a second setup rewrote the env file");
    let log = on_host(&["cat", "/var/lib/recordsponge/staging.releases.log"]);
    assert_eq!(log.lines().filter(|l| l.ends_with("\tok")).count(), 1, "{log}");

    // A login given on stdin (a token that may only pull, say) replaces the one there: a wrong
    // one is refused by the registry and the one there kept; none is refused before anything.
    let registry_password = std::fs::read_to_string(fleet.dir.join("registry-password")).unwrap();
    let given = ["setup", "staging", "--registry-user", "rstest"];
    let none = x.run(&given);
    refused(&none, "--registry-user without a password", "the password of rstest at");
    assert!(none.out.contains("is not on stdin: stdin is empty"), "{}", none.out);
    assert!(none.out.contains("| cargo xtask setup staging --registry-user rstest`"), "{}", none.out);
    let wrong_login = x.run_fed(x.command(&given), "wrong login", Some("not-the-registry-password\n"));
    assert!(
        !wrong_login.ok && wrong_login.out.contains("the registry refused rstest's password"),
        "{}",
        wrong_login.out
    );
    assert!(fleet.exec(&host, Some(USER), &login, None).is_ok(), "a refused login replaced the one that worked");
    let rotated = x.run_fed(x.command(&given), "given login", Some(&registry_password));
    assert!(rotated.ok, "{}", rotated.out);
    assert!(rotated.out.contains(&format!("{USER} on {host} pulled {repository}:staging")), "{}", rotated.out);

    // A filled-in env file is checked, never rewritten: a wrong password is named, and kept.
    let wrong = env_file.replace(&password, "not-the-password");
    fleet.exec(&host, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some(&wrong)).unwrap();
    let refused_run = x.run(&["setup", "staging"]);
    refused(&refused_run, "setup over an env file that does not log in", "names a database that does not log in");
    assert_eq!(on_host(&["cat", "/etc/recordsponge/staging.env"]), wrong);
    // An env file without the login of the environment's role, which exists: refused.
    let emptied: String = env_file
        .lines()
        .map(|l| {
            if l.starts_with("PGHOST=") || l.starts_with("PGPASSWORD=") {
                format!("{}=\n", &l[..l.find('=').unwrap()])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fleet.exec(&host, None, &["dd", "of=/etc/recordsponge/staging.env", "status=none"], Some(&emptied)).unwrap();
    let role_there = x.run(&["setup", "staging"]);
    refused(&role_there, "setup over a role with no password in the env file", "the role recordsponge_staging exists");
    assert!(!role_there.out.contains("could not change directory"), "{}", role_there.out);
    assert_eq!(on_host(&["cat", "/etc/recordsponge/staging.env"]), emptied);

    // Neither the database's password nor the registry's (nor a wrong one) reached this
    // machine's output.
    for out in x.outputs.borrow().iter() {
        assert!(!out.contains("not-the-registry-password"), "the given password was printed:\n{out}");
        assert!(!out.contains(&password), "the database password was printed:\n{out}");
        assert!(!out.contains(registry_password.trim()), "the registry password was printed:\n{out}");
    }
}
