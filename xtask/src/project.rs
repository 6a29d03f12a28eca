//! The project a plan is built for: the repository root, its configuration, the compose to
//! drive, and the facts read from the machine (git, docker, terminal) once at start-up. Plans
//! are pure functions of it, so tests build it with fixed facts. Its builders are the commands
//! and preconditions every command family shares: docker, compose, exec in a service.

use std::path::{Path, PathBuf};

use crate::checks::Check;
use crate::cmd::Cmd;
use crate::config::{Config, FlavorChoice};
use crate::plan::{Diagnosis, Plan, ServiceExec};

/// Which compose implementation runs the stack. Container names differ between them
/// (`project_service_1` and `project-service-1`), so plans never use container names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `docker compose` (the v2 plugin).
    V2,
    /// `docker-compose` (the standalone v1).
    V1,
}

/// What plans need to know about the machine; read once, before the plan is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `git rev-parse HEAD`, or "unknown" outside a git checkout.
    pub commit: String,
    /// The commit's committer time, UTC, RFC 3339 (written into version.json: a release says
    /// when its commit was made, never when or where it was built), or "unknown".
    pub commit_time: String,
    /// Standard input is a terminal (interactive commands get a TTY in containers).
    pub terminal: bool,
    /// The CA bundle handed to builds and package installs, when configured.
    pub ca_bundle: Option<PathBuf>,
    /// The time, UTC, RFC 3339 (the deploy lock, the release log, release and backup names).
    pub now: String,
    /// Whether the Docker engine is here, or can be installed by `new`.
    pub engine: EngineSetup,
    /// The user's login name, and the name of this machine (who deploys, from where).
    pub user: String,
    pub machine: String,
    /// This process's id (part of each release's name: two deploys never share one).
    pub pid: u32,
    /// Where ssh keeps the sockets of its shared connections (one per host): `$HOME/.ssh`,
    /// spelled out because ssh expands `~` from the password database, not from `$HOME`. None
    /// where ssh cannot share connections (not OpenSSH on Unix, no such directory, or a path
    /// with spaces, which an `-o` option cannot hold).
    pub ssh_sockets: Option<PathBuf>,
    /// The user each deploy host's ssh alias logs in as (`ssh -G`), read for the commands that
    /// reach a host: fixes name that user.
    pub ssh_users: std::collections::BTreeMap<String, String>,
    /// The public key of the first identity each deploy host's ssh alias uses that has one
    /// (`ssh -G`'s `identityfile`, with `.pub`): the key `setup` authorizes for the deploy user.
    pub ssh_keys: std::collections::BTreeMap<String, PathBuf>,
    /// How to run another command of this xtask as this one runs: this program and its
    /// configuration (`setup`'s first deploy). Set by `xtask::load`.
    pub xtask: Vec<String>,
    /// The machine each deploy host's ssh alias reaches (`hostname:port`, as `ssh -G` says): two
    /// aliases of one machine are one host.
    pub ssh_machines: std::collections::BTreeMap<String, String>,
    /// What a release's base images are built from, by content, at the commit: read for the
    /// commands that reach a host.
    pub inputs: Inputs,
    /// For a Swarm with several managers: the one that answers, by environment (`xtask::load`
    /// asks them in turn); the environment's `host` otherwise.
    pub managers: std::collections::BTreeMap<String, String>,
}

/// The content ids of the two base images of a release (the backend's Python and locked
/// packages, the frontend's node_modules): a hash of the commit's blobs of each one's inputs
/// (`images.backend_inputs`, `images.frontend_inputs`) and the name of the image it starts from.
/// None outside a git checkout, or when an input is not in the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub backend: Option<String>,
    pub frontend: Option<String>,
}

/// What a content id hashes: each input file and its blob at the commit, one a line, then the
/// image it starts from.
pub fn inputs_text(files: &[String], blobs: &[&str], base: &str) -> String {
    let mut text: String = files.iter().zip(blobs).map(|(file, blob)| format!("{file} {blob}\n")).collect();
    text.push_str(&format!("from {base}\n"));
    text
}

pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub flavor: Flavor,
    pub facts: Facts,
}

impl Facts {
    /// Reads the facts from this machine; `remote`: also what ssh says of the deploy hosts.
    pub fn probe(root: &Path, config: &Config, remote: bool) -> Facts {
        use std::io::IsTerminal;
        let sh = xshell::Shell::new().ok();
        let read = |line: xshell::Cmd| line.quiet().ignore_stderr().read().ok();
        let git = |args: &[&str]| -> Option<String> {
            let sh = sh.as_ref()?;
            read(xshell::cmd!(sh, "git -C {root} {args...}"))
        };
        let ssh_config: &[&str] = &match config.deploy.ssh_config.as_str() {
            "" => vec![],
            file => vec!["-F", file],
        };
        let (mut ssh_users, mut ssh_machines) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
        let mut ssh_keys = std::collections::BTreeMap::new();
        let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from);
        let hosts = config.environments.values().flat_map(|e| std::iter::once(&e.host).chain(&e.managers));
        for host in hosts.filter(|_| remote) {
            let resolved = sh.as_ref().and_then(|sh| read(xshell::cmd!(sh, "ssh {ssh_config...} -G {host}")));
            let setting =
                |key: &str| resolved.as_deref()?.lines().find_map(|l| l.strip_prefix(key)).map(str::to_string);
            if let Some(user) = setting("user ") {
                ssh_users.insert(host.clone(), user);
            }
            if let Some(key) = resolved.as_deref().and_then(|r| public_key(r, home.as_deref())) {
                ssh_keys.insert(host.clone(), key);
            }
            if let (Some(name), Some(port)) = (setting("hostname "), setting("port ")) {
                ssh_machines.insert(host.clone(), format!("{name}:{port}"));
            }
        }
        // The blobs of each base image's inputs at HEAD, then git's own hash of their list.
        let inputs_id = |dir: &Path, files: &[String], base: &str| -> Option<String> {
            let sh = sh.as_ref().filter(|_| remote)?;
            let revs: Vec<String> =
                files.iter().map(|f| format!("HEAD:{}/{f}", dir.to_string_lossy().replace('\\', "/"))).collect();
            let blobs = read(xshell::cmd!(sh, "git -C {root} rev-parse {revs...}"))?;
            let blobs: Vec<&str> = blobs.lines().collect();
            let text = inputs_text(files, &blobs, base);
            let id = read(xshell::cmd!(sh, "git -C {root} hash-object --stdin").stdin(text))?;
            Some(id.chars().take(16).collect())
        };
        let (paths, images) = (&config.paths, &config.images);
        let inputs = Inputs {
            backend: inputs_id(&paths.backend, &images.backend_inputs, &images.python),
            frontend: inputs_id(&paths.frontend, &images.frontend_inputs, &images.node),
        };
        let ca = std::env::var("RS_CA_BUNDLE").unwrap_or_else(|_| config.images.ca_bundle.clone());
        let ca_bundle = ca_bundle(&ca, |path| path.is_file());
        Facts {
            commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
            commit_time: git(&["show", "--no-patch", "--no-show-signature", "--format=%ct", "HEAD"])
                .and_then(|secs| secs.parse().ok())
                .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .map(|time| humantime::format_rfc3339_seconds(time).to_string())
                .unwrap_or_else(|| "unknown".into()),
            terminal: std::io::stdin().is_terminal(),
            ca_bundle,
            now: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            engine: EngineSetup::probe(),
            user: ["USER", "LOGNAME", "USERNAME"]
                .iter()
                .find_map(|k| std::env::var(k).ok())
                .or_else(|| sh.as_ref().and_then(|sh| read(xshell::cmd!(sh, "id -un"))))
                .unwrap_or_else(|| "unknown".into()),
            machine: sh.as_ref().and_then(|sh| read(xshell::cmd!(sh, "hostname"))).unwrap_or_else(|| "unknown".into()),
            pid: std::process::id(),
            ssh_sockets: std::env::var_os("HOME")
                .map(|home| Path::new(&home).join(".ssh"))
                .filter(|dir| cfg!(unix) && dir.is_dir() && !dir.to_string_lossy().contains(char::is_whitespace)),
            ssh_users,
            ssh_keys,
            xtask: Vec::new(),
            ssh_machines,
            inputs,
            managers: Default::default(),
        }
    }
}

/// The public key (`.pub` beside it) of the first identity file in `ssh -G`'s output that has
/// one (`~/` is ssh's home: `home`).
fn public_key(resolved: &str, home: Option<&Path>) -> Option<PathBuf> {
    let identities = resolved.lines().filter_map(|l| l.strip_prefix("identityfile "));
    identities
        .map(|file| match (file.strip_prefix("~/"), home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(file),
        })
        .map(|file| PathBuf::from(format!("{}.pub", file.display())))
        .find(|file| file.is_file())
}

/// Whether this machine has a Docker engine, and whether `new` can install one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSetup {
    /// An engine is installed here, or provided elsewhere (Docker Desktop, DOCKER_HOST).
    Present,
    /// Missing, on Debian or Ubuntu: apt-get installs it, as root or through sudo.
    Installable { sudo: bool, systemd: bool },
    /// Missing, and not installable from here: the docker checks say how.
    Missing,
}

impl EngineSetup {
    pub fn probe() -> EngineSetup {
        if !cfg!(target_os = "linux") || std::env::var_os("DOCKER_HOST").is_some() {
            return EngineSetup::Present;
        }
        let dockerd = which::which("dockerd").is_ok()
            || ["/usr/bin/dockerd", "/usr/sbin/dockerd"].iter().any(|p| Path::new(p).exists());
        if dockerd {
            return EngineSetup::Present;
        }
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let apt_family = os_release.lines().any(|l| {
            (l.starts_with("ID=") || l.starts_with("ID_LIKE=")) && (l.contains("debian") || l.contains("ubuntu"))
        });
        let root = is_root();
        if !apt_family || which::which("apt-get").is_err() || (!root && which::which("sudo").is_err()) {
            return EngineSetup::Missing;
        }
        EngineSetup::Installable { sudo: !root, systemd: Path::new("/run/systemd/system").exists() }
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// Where systems keep their CA bundle: Debian, Ubuntu and Arch; Fedora and RHEL; macOS, Alpine
/// and the BSDs; openSUSE.
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The CA bundle builds and containers get: by default (`system`) the host's own, so that they
/// trust what the host trusts (a TLS-intercepting proxy's CA among it); `none` (or an empty
/// setting) for none; anything else is a file.
pub fn ca_bundle(setting: &str, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    match setting {
        "system" => SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|p| exists(p)).map(Path::to_path_buf),
        "none" | "" => None,
        file => Some(PathBuf::from(file)),
    }
}

/// Resolves `auto` by asking the machine: the v2 plugin when `docker compose version` answers,
/// else the standalone `docker-compose` when it is on PATH or about to be installed by `new`,
/// else v2 (whose check then says how to install it).
pub fn detect_flavor(choice: FlavorChoice, engine: EngineSetup) -> Flavor {
    match choice {
        FlavorChoice::V2 => Flavor::V2,
        FlavorChoice::V1 => Flavor::V1,
        FlavorChoice::Auto if matches!(engine, EngineSetup::Installable { .. }) => Flavor::V1,
        FlavorChoice::Auto => {
            let plugin = xshell::Shell::new().is_ok_and(|sh| {
                xshell::cmd!(sh, "docker compose version").quiet().ignore_stdout().ignore_stderr().run().is_ok()
            });
            if !plugin && which::which("docker-compose").is_ok() {
                Flavor::V1
            } else {
                Flavor::V2
            }
        }
    }
}

impl Project {
    /// A new plan, titled by the command line that asks for it (`xtask::plan` sets it); a
    /// failed image build or package install in it that could not verify a certificate is
    /// explained.
    pub fn plan(&self) -> Plan {
        let mut plan = Plan::new("", &self.root);
        plan.diagnose(tls_failure());
        plan
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A program run from the repository root.
    pub fn cmd(&self, program: &str) -> Cmd {
        Cmd::new(program, &self.root)
    }

    /// `docker compose -p PROJECT -f FILE ARGS...` (or `docker-compose ...`) with the values
    /// the compose file interpolates.
    pub fn compose<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        let c = &self.config;
        let base = match self.flavor {
            Flavor::V2 => self.cmd("docker").arg("compose"),
            Flavor::V1 => self.cmd("docker-compose"),
        };
        let mut cmd = base
            .args(&["-p", &c.compose.project, "-f", &c.compose.file.to_string_lossy()])
            .args(args)
            .env("PYTHON_IMAGE", &c.images.python)
            .env("NODE_IMAGE", &c.images.node)
            .env("POSTGRES_IMAGE", &c.images.postgres)
            .env("BACKEND_IMAGE", &c.images.backend_dev)
            .env("FRONTEND_IMAGE", &c.images.frontend_dev)
            .env("RS_BACKEND_PORT", c.ports.backend.to_string())
            .env("RS_FRONTEND_PORT", c.ports.frontend.to_string());
        if let Some(ca) = &self.facts.ca_bundle {
            cmd = cmd.env("RS_CA_BUNDLE", ca.to_string_lossy());
        }
        cmd
    }

    /// `compose exec [-T] FLAGS SERVICE ARGV...`: a TTY only when asked for and we have one.
    pub fn exec(&self, flags: &[&str], service: &str, terminal: bool, argv: &[&str]) -> Cmd {
        let tty = terminal && self.facts.terminal;
        let mut words = vec!["exec"];
        if !tty {
            words.push("-T");
        }
        words.extend(flags);
        words.push(service);
        words.extend(argv);
        self.compose(&words).terminal(terminal)
    }

    /// A watcher in `service` (it reruns a check on every change until stopped). On a terminal,
    /// `compose exec` with a TTY: Ctrl-C and a closed terminal reach it there. Elsewhere docker
    /// would leave it running in the container when this command ends, so it runs beside a
    /// guard that ends it when its stdin, a pipe this process holds, closes.
    pub fn watch(&self, service: &str, argv: &[&str]) -> Cmd {
        if self.facts.terminal {
            return self.exec(&[], service, true, argv);
        }
        // (A shell gives a job it starts in the background /dev/null as stdin: `cat` reads a copy.)
        let guard =
            "exec 3<&0; \"$@\" </dev/null 3<&- & watcher=$!; (cat <&3 >/dev/null; kill $watcher 2>/dev/null) & \
                     exec 3<&-; wait $watcher";
        let wrapped: Vec<&str> = ["sh", "-c", guard, "sh"].into_iter().chain(argv.iter().copied()).collect();
        self.exec(&[], service, true, &wrapped).stdin_held()
    }

    /// The states of the stack's containers of `service` (running, exited, ...), one a line.
    pub fn service_states(&self, service: &str) -> Cmd {
        self.cmd("docker").args(&["ps", "--all"]).args(&self.service_filters(service)).args(&["--format", "{{.State}}"])
    }

    /// `docker ps` filters of the stack's (not one-off) containers of `service`, by the labels
    /// compose puts on them.
    fn service_filters(&self, service: &str) -> Vec<String> {
        let label = |key: &str, value: &str| format!("label=com.docker.compose.{key}={value}");
        vec![
            "--filter".into(),
            label("project", &compose_project_label(&self.config.compose.project)),
            "--filter".into(),
            label("service", service),
            "--filter".into(),
            label("oneoff", "False"),
        ]
    }

    /// `argv` in the running container of `service` with `docker exec FLAGS`, the container found
    /// by the labels compose puts on it (see `ServiceExec`): for what runs often or on the
    /// critical path, where `compose exec` would cost its start-up every time.
    pub fn service_exec(&self, flags: &[&str], service: &str, argv: &[&str]) -> ServiceExec {
        ServiceExec {
            service: service.to_string(),
            find: self.cmd("docker").args(&["ps", "--quiet"]).args(&self.service_filters(service)),
            exec: self.cmd("docker").arg("exec").args(flags),
            argv: argv.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// docker on PATH (20.10 or newer) and its daemon answering.
    pub fn docker_checks(&self) -> Vec<Check> {
        vec![
            Check::Tool {
                program: "docker".into(),
                version: self.cmd("docker").arg("--version"),
                min: Some((20, 10)),
                fix: install_docker_fix(),
            },
            Check::Probe {
                what: "the Docker daemon answers".into(),
                probe: self.cmd("docker").args(&["info", "--format", "{{.ServerVersion}}"]),
                line: None,
                fix: start_docker_fix(),
            },
        ]
    }

    /// docker, its daemon, the chosen compose and the compose file.
    pub fn compose_checks(&self) -> Vec<Check> {
        let mut checks = self.docker_checks();
        checks.push(match self.flavor {
            Flavor::V2 => Check::Probe {
                what: "the compose plugin answers (`docker compose version`)".into(),
                probe: self.cmd("docker").args(&["compose", "version"]),
                line: None,
                fix: "install the compose plugin (from Docker's apt repository: `sudo apt-get install \
                      docker-compose-plugin`; Debian 13: `sudo apt-get install docker-compose`; Ubuntu: \
                      `sudo apt-get install docker-compose-v2`; Docker Desktop has it), or use the \
                      standalone one: --compose v1"
                    .into(),
            },
            Flavor::V1 => Check::Tool {
                program: "docker-compose".into(),
                version: self.cmd("docker-compose").arg("--version"),
                min: Some((1, 29)),
                fix:
                    "install it (Debian/Ubuntu: `sudo apt-get install docker-compose`), or use the plugin: --compose v2"
                        .into(),
            },
        });
        checks.push(Check::File {
            path: self.path(&self.config.compose.file),
            what: "the compose file".into(),
            fix: "restore it: `git checkout -- config/compose.yml`, or set [compose] file in the configuration".into(),
        });
        checks.push(Check::Probe {
            what: "the compose file is valid".into(),
            probe: self.compose(&["config", "--quiet"]),
            line: None,
            fix: format!(
                "correct {} (the error above says where), or restore it: `git checkout -- {0}`",
                self.config.compose.file.display()
            ),
        });
        // Mounted into containers and copied into build contexts: a missing file would be
        // mounted as an empty directory by Docker.
        if let Some(ca) = &self.facts.ca_bundle {
            checks.push(Check::File {
                path: ca.clone(),
                what: "the CA bundle for builds and containers (RS_CA_BUNDLE or images.ca_bundle)".into(),
                fix: "name a file that exists, or `export RS_CA_BUNDLE=system` (this machine's own bundle)".into(),
            });
        }
        checks
    }

    /// The stack's service `service` is running (for commands that exec into it).
    pub fn running_check(&self, service: &str) -> Check {
        Check::Running {
            service: service.to_string(),
            probe: self.compose(&["ps", "--services", "--filter", "status=running"]),
        }
    }

    /// The frontend's package.json has the npm script `script`, which `who` runs.
    pub fn npm_script(&self, script: &str, who: &str) -> Check {
        Check::NpmScript {
            package: self.path(&self.config.paths.frontend).join("package.json"),
            script: script.into(),
            command: who.into(),
        }
    }
}

/// The project name as compose v1 and v2 label containers with it: lowercased, with only
/// letters, digits, `-` and `_` kept.
pub fn compose_project_label(project: &str) -> String {
    project.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect()
}

/// A build or package install that could not verify a registry's certificate: a proxy that
/// intercepts TLS, whose CA the builds were not given.
pub fn tls_failure() -> Diagnosis {
    Diagnosis {
        signs: [
            "CERTIFICATE_VERIFY_FAILED",
            "SELF_SIGNED_CERT_IN_CHAIN",
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            "self-signed certificate in certificate chain",
            "unable to get local issuer certificate",
            "certificate verify failed",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        means: "a TLS certificate could not be verified (a proxy that intercepts TLS?): give the builds the CA \
                bundle that this machine trusts, `export RS_CA_BUNDLE=/path/to/ca-bundle.pem` (or images.ca_bundle \
                in config/recordsponge.toml), and run the command again"
            .into(),
    }
}

fn install_docker_fix() -> String {
    if cfg!(target_os = "linux") {
        "install Docker: on Debian/Ubuntu `sudo apt-get install docker.io docker-compose`; elsewhere see https://docs.docker.com/engine/install/".into()
    } else {
        "install Docker Desktop: https://docs.docker.com/desktop/".into()
    }
}

fn start_docker_fix() -> String {
    if cfg!(target_os = "linux") {
        "start the daemon: `sudo systemctl start docker` (without systemd: `sudo dockerd &`), \
         and make sure your user may use it (`sudo usermod -aG docker $USER`, then log in again)"
            .into()
    } else {
        "start Docker Desktop and wait until it says it is running".into()
    }
}

/// A project with fixed facts, as the plan tests see it: the shipped configuration, a root of
/// `/srv/recordsponge`, the deploy user `deploy` on the host `recordsponge`.
#[cfg(test)]
pub fn fixture() -> Project {
    Project {
        root: PathBuf::from("/srv/recordsponge"),
        config: Config::load(&crate::root().unwrap().join(crate::CONFIG)).unwrap(),
        flavor: Flavor::V2,
        facts: Facts {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            commit_time: "2026-11-27T09:30:00Z".into(),
            terminal: false,
            ca_bundle: None,
            now: "2026-11-28T12:00:00Z".into(),
            engine: EngineSetup::Present,
            user: "dev".into(),
            machine: "laptop".into(),
            pid: 4242,
            ssh_sockets: Some(PathBuf::from("/home/dev/.ssh")),
            ssh_users: [("recordsponge".to_string(), "deploy".to_string())].into(),
            ssh_keys: [("recordsponge".to_string(), PathBuf::from("/home/dev/.ssh/id_ed25519.pub"))].into(),
            xtask: vec![
                "/src/recordsponge/target/debug/xtask".into(),
                "--config".into(),
                "/src/recordsponge/config/recordsponge.toml".into(),
            ],
            ssh_machines: [("recordsponge".to_string(), "recordsponge.com:22".to_string())].into(),
            inputs: Inputs { backend: Some("0b0b0b0b0b0b0b0b".into()), frontend: Some("0f0f0f0f0f0f0f0f".into()) },
            managers: Default::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watcher_without_a_terminal_ends_when_its_held_stdin_closes() {
        let mut p = fixture();
        let argv = ["watchfiles", "ruff check .", "."];
        let watch = p.watch("expungeservice", &argv);
        assert!(watch.stdin_held && watch.terminal);
        let tail: Vec<&str> = watch.args.iter().map(String::as_str).skip_while(|a| *a != "-T").collect();
        assert_eq!(tail[..5], ["-T", "expungeservice", "sh", "-c", tail[4]]);
        assert!(tail[4].contains("(cat <&3 >/dev/null; kill $watcher"), "{}", tail[4]);
        assert_eq!(tail[5..], ["sh", "watchfiles", "ruff check .", "."]);
        p.facts.terminal = true;
        let watch = p.watch("expungeservice", &argv);
        assert!(!watch.stdin_held && !watch.args.contains(&"-T".to_string()));
        assert!(watch.args.ends_with(&argv.map(String::from)), "{:?}", watch.args);
    }

    #[test]
    fn a_base_image_is_named_by_its_inputs_blobs_and_the_image_it_starts_from() {
        let files = ["Dockerfile".to_string(), "Pipfile.lock".to_string()];
        assert_eq!(
            inputs_text(&files, &["a1", "b2"], "python:3.11"),
            "Dockerfile a1\nPipfile.lock b2\nfrom python:3.11\n"
        );
        assert_ne!(
            inputs_text(&files, &["a1", "b3"], "python:3.11"),
            inputs_text(&files, &["a1", "b2"], "python:3.11")
        );
    }

    #[test]
    fn builds_trust_the_hosts_own_ca_bundle_unless_told_otherwise() {
        let fedora = |p: &Path| p == Path::new("/etc/pki/tls/certs/ca-bundle.crt");
        assert_eq!(ca_bundle("system", fedora), Some(PathBuf::from("/etc/pki/tls/certs/ca-bundle.crt")));
        assert_eq!(ca_bundle("system", |_| false), None, "a host without a bundle file (Windows)");
        assert_eq!(ca_bundle("none", |_| true), None);
        assert_eq!(ca_bundle("", |_| true), None);
        assert_eq!(ca_bundle("/corp/ca.pem", |_| false), Some(PathBuf::from("/corp/ca.pem")));
    }
}
