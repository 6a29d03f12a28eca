//! `setup ENV`: the environment's host, from a bare Debian or Ubuntu to one that `deploy`
//! deploys to, as its admin over ssh (`admin`: root, or a user that may sudo). The host's setup
//! files are copied into the admin's home (config/nginx, config/postgres) and run: `setup-host.sh`
//! (packages, the deploy user and its keys, the env file, the state and backup directories,
//! nginx's site, logs, sshd), `setup-tls.sh` (the site's certificate from an ACME server, then
//! setup-host.sh again for the TLS site) and `setup-database.sh` (PostgreSQL on the host and the
//! environment's own role and database: its password is made on the host and written into the
//! env file there, never seen here); between them, the deploy user's registry login (yours,
//! passed on stdin). Each script changes only what is missing, says what it
//! changed, and says so when nothing was. Then, unless a deploy has already succeeded there,
//! the environment's first deploy (`deploy ENV`, run as its own command: its checks need the
//! host set up).

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::checks::{registry_of, Check, Judge};
use crate::cli::Setup;
use crate::cmd::{sh, Cmd};
use crate::config::{DatabaseAt, Engine};
use crate::plan::{Action, Decided, Decision, LoginFrom, Plan};
use crate::project::Project;
use crate::remote::log::parse_log;
use crate::remote::ssh::{scp, ssh, words};
use crate::remote::target::{ssh_tool, Target};
use crate::remote::{db, docker};

/// Where the setup files go on the host: a directory of the admin's (its home's), which only
/// the admin may read.
const DIR: &str = "recordsponge-setup";

/// A host `setup` sets up (`host`, or another manager of a Swarm): how it is reached as the
/// admin and as the deploy user, and the keys to authorize for that user.
struct Machine {
    /// The deploy's ssh host (alias).
    host: String,
    /// `ADMIN@MACHINE`.
    admin: String,
    /// ADMIN: root, or a user that may sudo.
    admin_user: String,
    /// The user the deploy's alias logs in as.
    user: String,
    keys: PathBuf,
}

impl Machine {
    /// `remote`, run as root on the machine (through `sudo -n` for an admin who is not root).
    fn as_root(&self, p: &Project, remote: &[String]) -> Cmd {
        let sudo = if self.admin_user == "root" { vec![] } else { words(&["sudo", "-n"]) };
        ssh(p, &self.admin, &[sudo, remote.to_vec()].concat())
    }
}

pub fn plan(p: &Project, command: &Setup) -> Result<Plan> {
    let Setup::Setup { env, keys, http_only, no_deploy, registry_user } = command;
    let t = Target::new(p, env)?;
    if t.env.engine == Engine::Swarm && t.env.database == DatabaseAt::Host {
        bail!(
            "{env} runs on a Swarm, whose tasks run on every node: a database on one node's host is not theirs.\n  \
             fix: set `database = \"external\"` in [environments.{env}] of the configuration, and name the database \
             in its env file (config/nginx/README.md)"
        );
    }
    let mut plan = p.plan();
    plan.checks(local_checks(p, env, registry_user.as_deref()));
    let mut machines = Vec::new();
    for host in t.env.machines() {
        let m = Machine {
            host: host.clone(),
            admin: t.env.admin_at(host),
            admin_user: t.env.admin_user().to_string(),
            user: p.facts.ssh_users.get(host).cloned().unwrap_or_else(|| "DEPLOY_USER".into()),
            keys: keys.clone().or_else(|| p.facts.ssh_keys.get(host).cloned()).unwrap_or_else(|| "KEYS.pub".into()),
        };
        if m.user == "root" || m.user == m.admin_user {
            bail!(
                "{env}'s host `{host}` logs in as {}, the admin: deploys need a user of their own (in the `docker` \
                 group, with sudo for nginx alone).\n  fix: name the deploy user in the configuration, `deploy@{}` \
                 in [environments.{env}], or a `User deploy` line in the `Host {host}` block of your ssh config",
                m.user,
                host.rsplit('@').next().unwrap_or(host),
            );
        }
        plan.checks(checks(p, &t, &m, *http_only));
        if t.env.database == DatabaseAt::Host && machines.is_empty() {
            plan.check(database_check(p, &t, &m));
        }
        set_up(p, &t, &m, *http_only, registry_user.as_deref(), &mut plan);
        machines.push(m);
    }
    if t.env.database == DatabaseAt::Host {
        let database = words(&[
            "bash",
            &format!("{DIR}/nginx/setup-database.sh"),
            "--env",
            env,
            "--file",
            &t.env.env_file,
            "--schema",
            &format!("{DIR}/postgres/schema.sql"),
        ]);
        plan.step(
            &format!("Set {env}'s database up on {} (config/nginx/setup-database.sh)", machines[0].host),
            Action::Run(machines[0].as_root(p, &database)),
        );
    }
    if !no_deploy {
        first_deploy(p, &t, &mut plan);
    }
    Ok(plan)
}

/// A machine's part: the setup files copied into the admin's home, setup-host.sh run there, and
/// the deploy user's registry login.
fn set_up(p: &Project, t: &Target, m: &Machine, http_only: bool, registry_user: Option<&str>, plan: &mut Plan) {
    let keys_copy = format!("{DIR}/deploy-keys.pub");
    let mut copies = vec![
        Action::Run(ssh(p, &m.admin, &["install", "-d", "-m", "700", DIR]).quiet()),
        Action::Run(scp(p, &["config/nginx", "config/postgres"], &m.admin, &format!("{DIR}/")).quiet()),
        Action::Run(scp(p, &[m.keys.display().to_string()], &m.admin, &keys_copy).quiet()),
    ];
    let tls = wants_tls(t, http_only);
    if tls && !p.config.tls.ca.is_empty() {
        copies.push(Action::Run(scp(p, &[p.config.tls.ca.as_str()], &m.admin, &format!("{DIR}/{ACME_CA}")).quiet()));
    }
    plan.step(
        &format!("Copy the setup files (config/nginx, config/postgres) to {}:{DIR}", m.admin),
        Action::Seq(copies),
    );
    let mut host = words(&["bash", &format!("{DIR}/nginx/setup-host.sh"), "--user", &m.user]);
    host.extend(words(&["--keys", &keys_copy, "--env", &site(t)]));
    if http_only {
        host.push("--http-only".into());
    }
    if t.env.engine == Engine::Swarm {
        host.push("--no-nginx".into());
    }
    plan.step(
        &format!("Set {} up for {} (config/nginx/setup-host.sh)", m.host, t.name),
        Action::Run(m.as_root(p, &host)),
    );
    if tls {
        certificate(p, t, m, plan);
        plan.step(
            &format!("Install the TLS site of {} (config/nginx/setup-host.sh)", t.env.domain()),
            Action::Run(m.as_root(p, &host)),
        );
    }
    registry_login(p, t, m, registry_user, plan);
    if t.env.database == DatabaseAt::External {
        plan.step(
            &format!("Check that the database {} names on {} logs in (from a container there)", t.env.env_file, m.host),
            Action::Run(db::login(p, t, &m.host).quiet()),
        )
        .hint(&format!(
            "an external database is named by hand: on {}, as root, `sudoedit {}` (PGHOST, PGPORT, PGDATABASE, \
             PGUSER, PGPASSWORD), then run `cargo xtask setup {}` again",
            m.host, t.env.env_file, t.name
        ));
    }
}

/// Where the ACME server's CA (`tls.ca`) goes, under `DIR`.
const ACME_CA: &str = "acme-ca.pem";

/// Whether the environment's site gets a certificate: one host behind its nginx, a domain
/// (not `_`, any name), and not `--http-only`.
fn wants_tls(t: &Target, http_only: bool) -> bool {
    t.env.engine == Engine::Host && !http_only && t.env.domain() != "_"
}

/// The site's certificate from the ACME server (`tls`), through certbot's webroot on the host.
fn certificate(p: &Project, t: &Target, m: &Machine, plan: &mut Plan) {
    let tls = &p.config.tls;
    let domain = t.env.domain();
    let mut argv = words(&["bash", &format!("{DIR}/nginx/setup-tls.sh"), "--domain", &domain]);
    argv.extend(words(&["--directory", &tls.directory]));
    if !tls.email.is_empty() {
        argv.extend(words(&["--email", &tls.email]));
    }
    if !tls.ca.is_empty() {
        argv.extend(words(&["--ca", &format!("{DIR}/{ACME_CA}")]));
    }
    plan.step(
        &format!("Obtain a certificate for {domain} from {} (config/nginx/setup-tls.sh)", tls.directory),
        Action::Run(m.as_root(p, &argv)),
    );
}

/// What this machine must have: ssh, and a registry login to pass on (yours, or for
/// `--registry-user USER` the password on stdin).
fn local_checks(p: &Project, env: &str, registry_user: Option<&str>) -> Vec<Check> {
    let registry = registry_of(&p.config.deploy.repository);
    let login = match registry_user {
        None => Check::RegistryLogin { registry },
        Some(user) => Check::Stdin {
            what: format!("the password of {user} at {registry} (--registry-user)"),
            fix: format!(
                "pipe it in, from where you keep it: `printf '%s' \"$TOKEN\" | cargo xtask setup {env} --registry-user {user}`"
            ),
        },
    };
    vec![ssh_tool(p), login]
}

/// What must hold of a machine before anything changes: the admin's login (and sudo), the
/// distribution, the site's port, its domain (for TLS), and the keys to authorize.
fn checks(p: &Project, t: &Target, m: &Machine, http_only: bool) -> Vec<Check> {
    let (env, host, admin) = (&t.name, &m.host, &m.admin);
    let mut checks = vec![Check::Reach {
        host: admin.to_string(),
        probe: ssh(p, admin, &["true"]),
        fix: format!(
            "make `ssh {admin} true` work without a prompt: the host's admin (root, or a user that may sudo), \
             your key authorized for it, its host key known (connect once with `ssh {admin}`); or name another \
             admin user as `admin` in [environments.{env}] of the configuration"
        ),
    }];
    if m.admin_user != "root" {
        checks.push(Check::Probe {
            what: format!("{admin} may sudo without a password"),
            probe: ssh(p, admin, &["sudo", "-n", "true"]),
            line: None,
            fix: format!(
                "on {host}, as root: `echo '{} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/admin` (or `admin = \"root\"` in [environments.{env}])",
                m.admin_user
            ),
        });
    }
    checks.push(Check::Probe {
        what: format!("{host} runs Debian or Ubuntu"),
        probe: ssh(p, admin, &["grep", "-Eq", "^(ID|ID_LIKE)=\"?(debian|ubuntu)", "/etc/os-release"]),
        line: None,
        fix: format!(
            "setup knows Debian 12 and Ubuntu; on another system, set {host} up by hand (config/nginx/README.md)"
        ),
    });
    if t.env.engine == Engine::Host {
        let ports: Vec<u16> = std::iter::once(t.env.http_port).chain(wants_tls(t, http_only).then_some(443)).collect();
        let names: Vec<String> = ports.iter().map(u16::to_string).collect();
        checks.push(Check::Judged {
            what: format!("port {} on {host} is free or nginx's", names.join(" and ")),
            probes: vec![m.as_root(p, &words(&["ss", "-Hltnp"]))],
            judge: Judge::new("what listens on the site's ports, from `ss -ltnp`", move |out| {
                ports.iter().try_for_each(|port| port_free(&out[0], *port))
            }),
            fix: format!(
                "on {host}, stop what listens there (`ss -ltnp` names it), or set another `http_port` in \
                 [environments.{env}]; without `ss`: `apt-get install iproute2`"
            ),
        });
    }
    if wants_tls(t, http_only) {
        checks.push(dns_check(p, t, m));
    }
    if !p.config.tls.ca.is_empty() && wants_tls(t, http_only) {
        checks.push(Check::File {
            path: p.path(&p.config.tls.ca),
            what: "the ACME server's CA (tls.ca)".into(),
            fix: "correct tls.ca in the configuration (a test ACME server's CA; empty for Let's Encrypt)".into(),
        });
    }
    checks.push(Check::File {
        path: m.keys.clone(),
        what: format!("the file of public keys to authorize for {} on {host}", m.user),
        fix: format!("give `--keys FILE` (public keys, one a line), or an `IdentityFile` with its `.pub` beside it in the `Host {host}` block of your ssh config"),
    });
    checks
}

/// The domain (of a site that gets a certificate) points at the machine: the ACME server checks
/// that the site serves there.
fn dns_check(p: &Project, t: &Target, m: &Machine) -> Check {
    let (env, host, admin) = (&t.name, &m.host, &m.admin);
    let domain = t.env.domain();
    // The name ssh reaches the machine by (`ssh -G`'s hostname): an address, or a name
    // that, when it is the domain, reaches the host the domain names.
    let reached = p.facts.ssh_machines.get(host).and_then(|m| m.rsplit_once(':')).map(|(name, _)| name.to_string());
    let reached = reached.unwrap_or_else(|| host.rsplit('@').next().unwrap_or(host).to_string());
    let judged = (domain.clone(), host.clone(), reached);
    Check::Judged {
        what: format!("{domain} points at {host} (the ACME server checks that it serves there)"),
        probes: vec![
            ssh(p, admin, &["sh", "-c", "getent ahosts \"$0\" || true", &domain]),
            ssh(p, admin, &["hostname", "-I"]),
        ],
        judge: Judge::new("the domain's addresses, from the host, against the host's own", move |out| {
            let (domain, host, reached) = &judged;
            points_at(domain, &out[0], &out[1], host, reached)
        }),
        fix: format!(
            "point {domain}'s DNS (A and AAAA records) at {host}, or set `domain` in [environments.{env}]; a host \
             behind NAT: reach it by that name (`HostName {domain}` in the `Host {host}` block of your ssh config); \
             behind another TLS proxy: `--http-only`"
        ),
    }
}

/// What the database step would refuse, refused before anything changes: `setup-database.sh
/// --check` (sent on stdin: the setup files are not on the host yet) fails, saying why and what to
/// do, on an env file that names a database without its password or one that does not log in, and
/// on a role or database of the environment's that exists without the env file's password.
fn database_check(p: &Project, t: &Target, m: &Machine) -> Check {
    let (env, file) = (&t.name, &t.env.env_file);
    let check = words(&["bash", "-s", "--", "--check", "--env", env, "--file", file]);
    Check::Probe {
        what: format!(
            "{file} on {} is new, or names a database that logs in; no role of {env}'s is without it",
            m.host
        ),
        probe: m.as_root(p, &check).stdin_file(&p.path("config/nginx/setup-database.sh")),
        line: None,
        fix: format!("do what setup-database says above, then run `cargo xtask setup {env}` again"),
    }
}

/// Whether the domain's addresses (`getent ahosts`, as the host resolves it) name the host: one
/// of its own addresses (`hostname -I`, loopback aside), or the address ssh reaches it at (not
/// a loopback one), or the domain is the name ssh reaches it by (`reached`: behind NAT, its own
/// addresses are private ones).
fn points_at(domain: &str, resolved: &str, own: &str, host: &str, reached: &str) -> Result<(), String> {
    let mut addresses: Vec<&str> = resolved.lines().filter_map(|l| l.split_whitespace().next()).collect();
    addresses.dedup();
    if addresses.is_empty() {
        return Err(format!("{domain} does not resolve on {host}"));
    }
    let ip = |a: &str| a.parse::<std::net::IpAddr>().ok();
    let mut mine: Vec<std::net::IpAddr> = own.split_whitespace().filter_map(ip).collect();
    // (A loopback address ssh reaches is a tunnel's end: it says nothing of where the host is.)
    mine.extend(ip(reached.trim_start_matches('[').trim_end_matches(']')).filter(|a| !a.is_loopback()));
    if reached.eq_ignore_ascii_case(domain) || addresses.iter().filter_map(|a| ip(a)).any(|a| mine.contains(&a)) {
        return Ok(());
    }
    let mine: Vec<String> = mine.iter().map(ToString::to_string).collect();
    Err(format!(
        "{domain} resolves to {}, none of them {host}'s ({}; ssh reaches it as {reached})",
        addresses.join(", "),
        if mine.is_empty() { "no address".to_string() } else { mine.join(", ") }
    ))
}

/// setup-host.sh's `--env NAME=DOMAIN@HTTP_PORT`.
fn site(t: &Target) -> String {
    format!("{}={}@{}", t.name, t.env.domain(), t.env.http_port)
}

/// Whether the site's port is free, or held by nginx (which setup-host.sh configures), from
/// `ss -Hltnp`'s listening sockets.
fn port_free(listening: &str, port: u16) -> Result<(), String> {
    let suffix = format!(":{port}");
    for line in listening.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(local) = fields.get(3) else { continue };
        if local.ends_with(&suffix) && !line.contains("((\"nginx\"") {
            let process = line.split("((\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("a process");
            return Err(format!("{process} listens on {local}, not nginx"));
        }
    }
    Ok(())
}

/// The deploy user's login to the registry: with `--registry-user`, that user's password
/// from stdin; else yours, unless it has a login that works. Handed to its `docker login` on
/// stdin (checked there by the registry), never an argument. Then checked by pulling the
/// environment's moving tag as that user.
fn registry_login(p: &Project, t: &Target, m: &Machine, given: Option<&str>, plan: &mut Plan) {
    let registry = registry_of(&p.config.deploy.repository);
    let server: &[&str] = if registry == "docker.io" { &[] } else { &[registry.as_str()] };
    let (user, host) = (m.user.clone(), m.host.clone());
    let login =
        |name: &str| ssh(p, &m.host, &[&["docker", "login", "--username", name, "--password-stdin"], server].concat());
    if let Some(name) = given {
        plan.step(
            &format!("Log {user} on {host} in to {registry} as {name}, with the password on stdin"),
            Action::PassLogin { registry: registry.clone(), from: LoginFrom::Stdin, cmd: login(name).quiet() },
        )
        .hint(&format!("the registry refused {name}'s password (or token) on stdin: check it, and that it may pull"));
    } else {
        plan.step(
            &format!("Ask whether {user} on {host} is logged in to {registry}"),
            Action::Capture {
                cmd: ssh(p, &m.host, &[&["docker", "login"], server].concat()),
                var: "logged_in".into(),
                optional: true,
            },
        )
        .step(
            "Decide whether to pass your login on",
            Action::Decide(Decision::new(
                "%{pass_login} = yes when %{logged_in} is empty (no login works there)",
                move |vars| {
                    Ok(if vars.get("logged_in").is_empty() {
                        Decided::default().set("pass_login", "yes")
                    } else {
                        // (Set, empty: a machine before this one may have set it.)
                        Decided::default()
                            .set("pass_login", "")
                            .note(format!("{user} on {host} is logged in to the registry already"))
                    })
                },
            )),
        );
        plan.step(
            &format!("Log {} on {} in to {registry} with your login", m.user, m.host),
            Action::PassLogin {
                registry: registry.clone(),
                from: LoginFrom::Yours,
                cmd: login("%{registry_user}").quiet(),
            },
        )
        .when("pass_login");
    }
    let (image, user, host) = (t.moving.clone(), m.user.clone(), m.host.clone());
    let pull = [words(&["sh", "-c", "\"$@\" 2>&1; echo \"exit $?\"", "sh"]), docker::pull(&image)].concat();
    plan.step(
        &format!("Pull {image} as {user} on {host} (its registry login)"),
        Action::Capture { cmd: ssh(p, &m.host, &pull), var: "pulled".into(), optional: false },
    )
    .step(
        "Judge the pull",
        Action::Decide(Decision::new(
            "the login works when %{pulled} pulled, or found nothing pushed yet",
            move |vars| {
                pull_judged(vars.get("pulled"), &image, &format!("{user} on {host}"))
                    .map(|note| Decided::default().note(note))
            },
        )),
    )
    .hint(&format!(
        "log it in with a login that may pull {}: `printf '%s' \"$TOKEN\" | cargo xtask setup {} --registry-user USER`",
        p.config.deploy.repository, t.name
    ));
}

/// What a pull of `image` (its output, then `exit STATUS`) says of the login that made it:
/// pulled, or the registry let it ask and has nothing under that tag yet (a first setup before
/// the first push); anything else is the registry's refusal, quoted.
fn pull_judged(output: &str, image: &str, who: &str) -> Result<String> {
    let (text, status) = output.trim_end().rsplit_once("exit ").unwrap_or(("", output));
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output");
    if status.trim() == "0" {
        Ok(format!("{who} pulled {image}: its registry login works"))
    } else if last.contains("manifest unknown") || (last.contains("manifest for") && last.contains("not found")) {
        Ok(format!(
            "nothing is pushed as {image} yet, and the registry let {who} ask: the login works (the first deploy's \
             pull uses it)"
        ))
    } else {
        bail!("{who} cannot pull {image}: {last}")
    }
}

/// The environment's first deploy, as its own command (`deploy ENV`: its checks need the host
/// set up), unless its release log records a deploy that succeeded (then `setup` deploys
/// nothing: running it again changes nothing).
fn first_deploy(p: &Project, t: &Target, plan: &mut Plan) {
    let env = t.name.clone();
    plan.step(
        &format!("Read the release log of {env}"),
        Action::Capture { cmd: t.cat_state(p, "releases.log"), var: "log".into(), optional: true },
    )
    .step(
        "Decide whether this is the first deploy",
        Action::Decide(Decision::new("%{first} = yes unless %{log} records a deploy that succeeded", move |vars| {
            Ok(if parse_log(vars.get("log")).iter().any(|a| a.result == "ok") {
                // (`staging` and `prod` are commands of their own: build, push and deploy.)
                let own = match env.as_str() {
                    "staging" => ", `cargo xtask staging`",
                    "prod" => ", `cargo xtask prod`",
                    _ => "",
                };
                Decided::default().note(format!(
                    "{env} has been deployed already: no deploy (`cargo xtask deploy {env}`{own} deploys)"
                ))
            } else {
                Decided::default().set("first", "yes")
            })
        })),
    );
    let (program, args) = p.facts.xtask.split_first().map(|(p, a)| (p.as_str(), a)).unwrap_or(("xtask", &[]));
    plan.step(
        &format!("Deploy {} to {} (`cargo xtask deploy {}`)", t.moving, t.host, sh(&t.name)),
        Action::Run(p.cmd(program).args(args).args(&["deploy", &t.name])),
    )
    .when("first");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_s_port_may_be_nginx_s_or_nobody_s() {
        let ss = "LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=7,fd=6),(\"nginx\",pid=6,fd=6))\n\
                  LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=5,fd=3))\n\
                  LISTEN 0 4096 127.0.0.1:8080 0.0.0.0:* users:((\"apache2\",pid=9,fd=4))\n\
                  LISTEN 0 511 [::]:443 [::]:* users:((\"caddy\",pid=3,fd=8))\n";
        assert_eq!(port_free(ss, 80), Ok(()));
        assert_eq!(port_free(ss, 81), Ok(()));
        assert_eq!(port_free(ss, 8080), Err("apache2 listens on 127.0.0.1:8080, not nginx".into()));
        assert_eq!(port_free(ss, 443), Err("caddy listens on [::]:443, not nginx".into()));
        // A longer port that ends the same is another port.
        assert_eq!(port_free("LISTEN 0 5 0.0.0.0:1080 0.0.0.0:* users:((\"squid\",pid=1,fd=1))", 80), Ok(()));
    }

    #[test]
    fn the_domain_must_name_the_host_it_is_set_up_on() {
        let getent = "203.0.113.7     STREAM example.org\n203.0.113.7     DGRAM  \n2001:db8::7 STREAM \n";
        // One of the host's own addresses.
        assert_eq!(points_at("example.org", getent, "10.0.0.5 203.0.113.7 ", "web", "web.lan"), Ok(()));
        assert_eq!(points_at("example.org", getent, "10.0.0.5 2001:db8::7", "web", "web.lan"), Ok(()));
        // Behind NAT: ssh reaches it at the public address, or by the domain itself.
        assert_eq!(points_at("example.org", getent, "10.0.0.5", "web", "203.0.113.7"), Ok(()));
        assert_eq!(points_at("example.org", getent, "10.0.0.5", "web", "Example.org"), Ok(()));
        assert_eq!(
            points_at("example.org", getent, "10.0.0.5 fd00::5", "web", "web.lan"),
            Err("example.org resolves to 203.0.113.7, 2001:db8::7, none of them web's (10.0.0.5, fd00::5; ssh \
                 reaches it as web.lan)"
                .into())
        );
        // Through a tunnel (ssh to a local port): the domain naming this end is not the host.
        assert_eq!(
            points_at("example.org", "127.0.0.1 STREAM example.org\n", "10.0.0.5", "web", "127.0.0.1"),
            Err("example.org resolves to 127.0.0.1, none of them web's (10.0.0.5; ssh reaches it as 127.0.0.1)".into())
        );
        assert_eq!(
            points_at("example.org", "", "10.0.0.5", "web", "10.0.0.5"),
            Err("example.org does not resolve on web".into())
        );
    }

    #[test]
    fn a_pull_tells_whether_the_registry_login_works() {
        let who = "deploy on web";
        let pulled =
            pull_judged("staging: Pulling from r/app\nDigest: sha256:1\nexit 0\n", "r/app:staging", who).unwrap();
        assert_eq!(pulled, "deploy on web pulled r/app:staging: its registry login works");
        let unknown = "Error response from daemon: manifest for reg:5000/r/app:staging not found: manifest unknown: \
                       manifest unknown\nexit 1";
        assert!(pull_judged(unknown, "r/app:staging", who).unwrap().starts_with("nothing is pushed as r/app:staging"));
        for refused in [
            "Error response from daemon: Head \"https://reg:5000/v2/r/app/manifests/staging\": no basic auth credentials",
            "Error response from daemon: pull access denied for r/app, repository does not exist or may require \
             'docker login': denied: requested access to the resource is denied",
            "Error response from daemon: Get \"https://reg:5000/v2/\": dial tcp: lookup reg: no such host",
        ] {
            let why = pull_judged(&format!("{refused}\nexit 1\n"), "r/app:staging", who).unwrap_err().to_string();
            assert_eq!(why, format!("deploy on web cannot pull r/app:staging: {refused}"));
        }
    }

    #[test]
    fn the_admin_is_root_at_each_machine_unless_named() {
        let mut p = crate::project::fixture();
        let staging = p.config.environments.get_mut("staging").unwrap();
        staging.host = "deploy@recordsponge".into();
        staging.managers = vec!["manager-2".into()];
        let admins: Vec<String> = staging.machines().into_iter().map(|m| staging.admin_at(m)).collect();
        assert_eq!(admins, ["root@recordsponge", "root@manager-2"]);
        staging.admin = Some("ops".into());
        assert_eq!(staging.admin_at("manager-2"), "ops@manager-2");
        assert_eq!(staging.admin_user(), "ops");
    }

    #[test]
    fn a_swarm_s_managers_are_each_set_up_and_its_database_is_external() {
        let mut p = crate::project::fixture();
        let staging = p.config.environments.get_mut("staging").unwrap();
        staging.engine = Engine::Swarm;
        staging.managers = vec!["manager-2".into()];
        let command =
            Setup::Setup { env: "staging".into(), keys: None, http_only: false, no_deploy: true, registry_user: None };
        let Err(refused) = plan(&p, &command) else { panic!("a Swarm with a database on its host was planned") };
        let refused = refused.to_string();
        assert!(refused.contains("database = \"external\""), "{refused}");
        p.config.environments.get_mut("staging").unwrap().database = DatabaseAt::External;
        p.facts.ssh_users.insert("manager-2".into(), "deploy".into());
        let steps: Vec<String> = plan(&p, &command).unwrap().steps.into_iter().map(|s| s.title).collect();
        let set_up: Vec<&String> = steps.iter().filter(|s| s.contains("config/nginx/setup-host.sh")).collect();
        assert_eq!(
            set_up,
            [
                "Set recordsponge up for staging (config/nginx/setup-host.sh)",
                "Set manager-2 up for staging (config/nginx/setup-host.sh)"
            ]
        );
        assert!(!steps.iter().any(|s| s.contains("setup-database.sh")), "{steps:?}");
        assert_eq!(steps.iter().filter(|s| s.starts_with("Check that the database")).count(), 2, "{steps:?}");
        assert_eq!(steps.iter().filter(|s| s.starts_with("Log deploy on")).count(), 2, "{steps:?}");
    }
}
