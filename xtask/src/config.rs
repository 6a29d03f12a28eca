//! The project configuration (`config/recordsponge.toml`), read with serde and validated
//! before any plan is built.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub compose: ComposeConfig,
    pub paths: Paths,
    pub services: Services,
    pub ports: Ports,
    pub database: Database,
    pub images: Images,
    pub readiness: Readiness,
    pub deploy: Deploy,
    pub environments: BTreeMap<String, Environment>,
    pub backups: Backups,
    #[serde(default)]
    pub tls: Tls,
    pub clean: Clean,
}

/// Where `setup` gets the sites' certificates: an ACME server, through certbot on the host.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The ACME server's directory [default: Let's Encrypt's].
    #[serde(default = "default_acme_directory")]
    pub directory: String,
    /// Where the ACME server sends expiry notices [default: none].
    #[serde(default)]
    pub email: String,
    /// A file of this machine: the CA of the ACME server's own https, when the host does not
    /// trust it (a test server's, like Pebble's) [default: none].
    #[serde(default)]
    pub ca: String,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls { directory: default_acme_directory(), email: String::new(), ca: String::new() }
    }
}

fn default_acme_directory() -> String {
    "https://acme-v02.api.letsencrypt.org/directory".into()
}

/// The environments' database backups, on their hosts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backups {
    /// On each host: the directory of the backups, one directory an environment inside.
    pub dir: String,
    /// How many backups of an environment to keep (the newest).
    pub keep: usize,
    /// The image `pg_dump` and `pg_restore` run in, on the host (PostgreSQL's client, of the
    /// server's major version).
    pub image: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeConfig {
    pub project: String,
    pub file: PathBuf,
    #[serde(default)]
    pub flavor: FlavorChoice,
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
}

/// Which compose implementation to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FlavorChoice {
    /// The `docker compose` plugin when it answers, else the standalone `docker-compose`.
    #[default]
    Auto,
    /// The `docker compose` plugin (Compose v2).
    V2,
    /// The standalone `docker-compose` (Compose v1).
    V1,
}

/// Where the application lives, relative to the repository root.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub backend: PathBuf,
    pub frontend: PathBuf,
    pub frontend_build: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub backend: String,
    pub frontend: String,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub backend: u16,
    pub frontend: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    pub init_script: String,
    pub drop_script: String,
    #[serde(default)]
    pub seed_logins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub python: String,
    pub node: String,
    pub postgres: String,
    pub debian: String,
    pub backend_dev: String,
    pub frontend_dev: String,
    /// What each dev image is built from (its Dockerfile and the files it copies), in
    /// paths.backend and paths.frontend: a release's base images are named by their content.
    pub backend_inputs: Vec<String>,
    pub frontend_inputs: Vec<String>,
    pub recipes: PathBuf,
    /// The CA bundle handed to image builds and package installs in containers: `system` (the
    /// host's own bundle, where it has one), `none`, or a file. RS_CA_BUNDLE overrides it.
    #[serde(default = "default_ca_bundle")]
    pub ca_bundle: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub timeout: u64,
    pub health_path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub repository: String,
    pub dockerfile: PathBuf,
    /// Where the release's build contexts (archives of the commit) are written.
    pub build_dir: PathBuf,
    /// The settings every env file must name.
    #[serde(default)]
    pub env_keys: Vec<String>,
    /// An ssh config file passed to every ssh (`ssh -F`); empty: the user's own ~/.ssh/config.
    #[serde(default)]
    pub ssh_config: String,
    /// On the host: the directory of each environment's lock (`ENV.lock`), its holder
    /// (`ENV.holder`) and release log (`ENV.releases.log`).
    pub state_dir: String,
    /// On the host: checks nginx's configuration, then reloads it gracefully. Through sudo,
    /// always `sudo -n` (a deploy has no terminal to type a password into).
    pub nginx_test: Vec<String>,
    pub nginx_reload: Vec<String>,
    /// Stopped containers of earlier releases kept on the host for rollback.
    pub keep_releases: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// How releases run: `host` (one Docker host behind its nginx, the default) or `swarm` (a
    /// Docker Swarm stack: the app and its proxy, rolled by Swarm itself).
    #[serde(default)]
    pub engine: Engine,
    /// The ssh host the deploy talks to (an alias from the user's ~/.ssh/config, or
    /// user@host): the Docker host, or a manager of the Swarm (`manager` says the same).
    #[serde(alias = "manager")]
    pub host: String,
    /// swarm: other managers of the Swarm, tried in turn when `host` does not answer (three
    /// managers keep the Swarm's control when one is lost).
    #[serde(default)]
    pub managers: Vec<String>,
    /// host: the first and last of the loopback ports releases are published on: each new
    /// release takes the lowest one no running container publishes (an old release may still be
    /// finishing its requests on its own), and nginx proxies to it.
    #[serde(default)]
    pub ports: Option<[u16; 2]>,
    /// host: release containers are named `CONTAINER-<time>-<pid of the deploy>`; swarm: the
    /// stack's name (its services are `CONTAINER_app` and `CONTAINER_proxy`).
    pub container: String,
    /// host: on the host, the nginx upstream file the deploy rewrites, and the upstream's name.
    #[serde(default)]
    pub upstream_file: Option<String>,
    #[serde(default)]
    pub upstream_name: Option<String>,
    /// swarm: how many tasks of the app run (2: one can be replaced while the other serves).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// swarm: the proxy's image (nginx) and the port it is published on, on every node.
    #[serde(default = "default_proxy_image")]
    pub proxy_image: String,
    #[serde(default = "default_proxy_port")]
    pub proxy_port: u16,
    /// The public URL of /api/version, fetched on the host (the manager) with curl: which
    /// release answers through the proxy.
    pub check_url: String,
    /// The env file on the host (the manager): the containers' settings, never read from here.
    pub env_file: String,
    pub syslog_facility: String,
    pub health_path: String,
    pub health_timeout: u64,
    /// Every deploy and rollback backs the database up first, and does not switch when the
    /// backup fails.
    #[serde(default)]
    pub backup_before_deploy: bool,
    /// Images of this environment (`image`, `staging`, `prod`) are built only from this branch;
    /// `deploy --tag` and `rollback` of an image already built are not restricted.
    #[serde(default)]
    pub branch: Option<String>,
    /// setup: the user `cargo xtask setup` logs in as to set the host (a Swarm's managers) up:
    /// root, or a user that may `sudo` without a password [default: root].
    #[serde(default)]
    pub admin: Option<String>,
    /// setup: the name the environment's nginx site answers (`_`: any) [default: the host of
    /// `check_url`], and the port of its plain-http site.
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// setup: where the database is: `host` (PostgreSQL on the host, made by `setup`, which
    /// writes its login into the env file) or `external` (named in the env file by hand).
    #[serde(default)]
    pub database: DatabaseAt,
}

/// Where an environment's database is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseAt {
    /// PostgreSQL on the environment's host, reached by its containers over the Docker bridge.
    #[default]
    Host,
    /// Elsewhere: the env file names it.
    External,
}

/// How an environment's releases run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// One Docker host behind its nginx.
    #[default]
    Host,
    /// A Docker Swarm cluster.
    Swarm,
}

fn default_ca_bundle() -> String {
    "system".into()
}

fn default_replicas() -> u32 {
    2
}

fn default_proxy_image() -> String {
    "nginx:1.27-bookworm".into()
}

fn default_proxy_port() -> u16 {
    80
}

fn default_http_port() -> u16 {
    80
}

impl Environment {
    /// The hosts `setup` sets up: `host`, and a Swarm's other managers.
    pub fn machines(&self) -> Vec<&String> {
        std::iter::once(&self.host).chain(&self.managers).collect()
    }

    /// The user `setup` logs in as: `admin`, else root.
    pub fn admin_user(&self) -> &str {
        self.admin.as_deref().unwrap_or("root")
    }

    /// The ssh destination `setup` logs in to `host` as: the admin at its machine.
    pub fn admin_at(&self, host: &str) -> String {
        let machine = host.rsplit('@').next().unwrap_or(host);
        format!("{}@{machine}", self.admin_user())
    }

    /// The name the nginx site answers: `domain`, else the host of `check_url`.
    pub fn domain(&self) -> String {
        let after_scheme = self.check_url.split("://").nth(1).unwrap_or(&self.check_url);
        let host = after_scheme.split(['/', ':']).next().unwrap_or_default();
        self.domain.clone().unwrap_or_else(|| host.to_string())
    }

    /// The host engine's settings (validated to be there for it).
    pub fn nginx(&self) -> ([u16; 2], &str, &str) {
        let missing = "validated for engine = \"host\"";
        (
            self.ports.expect(missing),
            self.upstream_file.as_deref().expect(missing),
            self.upstream_name.as_deref().expect(missing),
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clean {
    pub under: Vec<PathBuf>,
    pub names: Vec<String>,
    pub extensions: Vec<String>,
}

impl Config {
    /// Reads and validates the configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the configuration file {}: every command needs it.\n  \
                 fix: run from a RecordSponge checkout, or pass --config PATH (or set RS_CONFIG)",
                path.display()
            )
        })?;
        Config::parse(&text, path)
    }

    /// Writes the configuration as TOML to `path` (benchmarks and tests derive theirs from the
    /// shipped one this way).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = basic_toml::to_string(self).context("cannot write the configuration as TOML")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Parses configuration text; errors name the file, line and key.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = basic_toml::from_str(text).map_err(|err| {
            anyhow::anyhow!("{}: invalid configuration: {}", path.display(), at_the_key(text, &err.to_string()))
        })?;
        config.validate().map_err(|Invalid { key, why }| {
            let line = line_of(text, &key).map(|n| format!(":{n}")).unwrap_or_default();
            anyhow::anyhow!("{}{line}: invalid configuration: {key}: {why}", path.display())
        })?;
        Ok(config)
    }

    /// Every value that names something a command runs, reads or writes is checked before any
    /// plan is built: names, paths, URLs and image references by their grammar, so that none can
    /// become an option or more than one word on a command line.
    fn validate(&self) -> Valid {
        let (c, p, d) = (&self.compose, &self.paths, &self.deploy);
        name("compose.project", &c.project)?;
        local_path("compose.file", &c.file)?;
        c.env_files.iter().try_for_each(|f| local_path("compose.env_files", f))?;
        for (key, path) in [
            ("paths.backend", &p.backend),
            ("paths.frontend", &p.frontend),
            ("paths.frontend_build", &p.frontend_build),
        ] {
            relative(key, path)?;
        }
        for (key, service) in [
            ("services.backend", &self.services.backend),
            ("services.frontend", &self.services.frontend),
            ("services.database", &self.services.database),
        ] {
            name(key, service)?;
        }
        name("database.name", &self.database.name)?;
        absolute("database.init_script", &self.database.init_script)?;
        absolute("database.drop_script", &self.database.drop_script)?;
        self.validate_images()?;
        http_path("readiness.health_path", &self.readiness.health_path)?;
        repository("deploy.repository", &d.repository)?;
        relative("deploy.dockerfile", &d.dockerfile)?;
        local_path("deploy.build_dir", &d.build_dir)?;
        d.env_keys.iter().try_for_each(|k| env_name("deploy.env_keys", k))?;
        if !d.ssh_config.is_empty() {
            local_path("deploy.ssh_config", Path::new(&d.ssh_config))?;
        }
        absolute("deploy.state_dir", &d.state_dir)?;
        for (key, command) in [("deploy.nginx_test", &d.nginx_test), ("deploy.nginx_reload", &d.nginx_reload)] {
            program_words(key, command)?;
            if command.first().map(String::as_str) == Some("sudo") && !command.iter().any(|a| a == "-n") {
                return invalid(key, "sudo without -n would wait for a password that a deploy cannot type: start it with [\"sudo\", \"-n\", ...]");
            }
        }
        self.clean.under.iter().try_for_each(|dir| relative("clean.under", dir))?;
        absolute("backups.dir", &self.backups.dir)?;
        reference("backups.image", &self.backups.image)?;
        url("tls.directory", &self.tls.directory)?;
        if !self.tls.email.is_empty() {
            word("tls.email", &self.tls.email, "an email address")?;
        }
        if !self.tls.ca.is_empty() {
            local_path("tls.ca", Path::new(&self.tls.ca))?;
        }
        if self.backups.keep == 0 {
            return invalid("backups.keep", "at least 1: the newest backup is kept");
        }
        if self.environments.is_empty() {
            return invalid("environments", "at least one deploy environment is needed");
        }
        for (env_name, env) in &self.environments {
            let key = format!("environments.{env_name}");
            check_env_name(env_name).map_err(|e| Invalid { key: key.clone(), why: format!("{e:#}") })?;
            self.validate_environment(env_name, env)?;
        }
        Ok(())
    }

    fn validate_images(&self) -> Valid {
        let i = &self.images;
        for (key, image) in [
            ("images.python", &i.python),
            ("images.node", &i.node),
            ("images.postgres", &i.postgres),
            ("images.debian", &i.debian),
            ("images.backend_dev", &i.backend_dev),
            ("images.frontend_dev", &i.frontend_dev),
        ] {
            reference(key, image)?;
        }
        for (key, inputs) in
            [("images.backend_inputs", &i.backend_inputs), ("images.frontend_inputs", &i.frontend_inputs)]
        {
            inputs.iter().try_for_each(|f| relative(key, Path::new(f)))?;
        }
        local_path("images.recipes", &i.recipes)?;
        match i.ca_bundle.as_str() {
            "system" | "none" | "" => Ok(()),
            file => local_path("images.ca_bundle", Path::new(file)),
        }
    }

    fn validate_environment(&self, env_name: &str, env: &Environment) -> Valid {
        let key = |k: &str| format!("environments.{env_name}.{k}");
        ssh_host(&key("host"), &env.host)?;
        env.managers.iter().try_for_each(|m| ssh_host(&key("managers"), m))?;
        if let Some(admin) = &env.admin {
            name(&key("admin"), admin)?;
        }
        if env.engine == Engine::Host && !env.managers.is_empty() {
            return invalid(key("managers"), "only a Swarm has managers (engine = \"swarm\")");
        }
        name(&key("container"), &env.container)?;
        match env.engine {
            Engine::Host => self.validate_host_engine(env_name, env)?,
            Engine::Swarm => {
                if env.replicas == 0 {
                    return invalid(key("replicas"), "at least 1 (2 keeps one serving while the other is replaced)");
                }
                reference(&key("proxy_image"), &env.proxy_image)?;
            }
        }
        url(&key("check_url"), &env.check_url)?;
        let domain = env.domain();
        if domain != "_"
            && (domain.is_empty() || !domain.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)))
        {
            return invalid(key("domain"), format!("`{domain}` is not a domain name (or `_`, any name)"));
        }
        absolute(&key("env_file"), &env.env_file)?;
        http_path(&key("health_path"), &env.health_path)?;
        const FACILITIES: [&str; 10] =
            ["local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "daemon", "user"];
        if !FACILITIES.contains(&env.syslog_facility.as_str()) {
            return invalid(
                key("syslog_facility"),
                format!("`{}` is not a syslog facility (local0..local7, daemon, user)", env.syslog_facility),
            );
        }
        match &env.branch {
            Some(branch) if branch.contains("..") => invalid(key("branch"), format!("`{branch}` is not a git branch")),
            Some(branch) => word(&key("branch"), branch, "a git branch"),
            None => Ok(()),
        }
    }

    /// An environment of the `host` engine: its ports, upstream file and name.
    fn validate_host_engine(&self, env_name: &str, env: &Environment) -> Valid {
        let key = |k: &str| format!("environments.{env_name}.{k}");
        let (Some(ports), Some(upstream_file), Some(upstream_name)) =
            (env.ports, &env.upstream_file, &env.upstream_name)
        else {
            return invalid(
                format!("environments.{env_name}"),
                "engine \"host\" needs ports, upstream_file and upstream_name",
            );
        };
        if ports[0] == 0 || ports[0] >= ports[1] {
            return invalid(
                key("ports"),
                "[FIRST, LAST], a range of at least two ports (the live release and the next)",
            );
        }
        let others = self.environments.range::<str, _>((Excluded(env_name), Unbounded));
        for (other, o) in others.filter(|(_, o)| o.engine == Engine::Host && o.host == env.host) {
            if o.ports.is_some_and(|op| op[0] <= ports[1] && ports[0] <= op[1]) {
                return invalid(
                    key("ports"),
                    format!("it overlaps environments.{other}.ports on the host {}", env.host),
                );
            }
        }
        absolute(&key("upstream_file"), upstream_file)?;
        name(&key("upstream_name"), upstream_name)
    }

    /// The deploy environment called `name`, or an error listing the valid ones.
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        check_env_name(name)?;
        self.environments.get(name).with_context(|| {
            let valid: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            format!(
                "unknown environment `{name}`: the configured ones are {}.\n  \
                 fix: use one of them (the [environments.*] tables of the configuration)",
                valid.join(", ")
            )
        })
    }
}

/// A value of the configuration that is not valid: its key, and why.
#[derive(Debug)]
struct Invalid {
    key: String,
    why: String,
}

type Valid = std::result::Result<(), Invalid>;

fn invalid(key: impl Into<String>, why: impl Into<String>) -> Valid {
    Err(Invalid { key: key.into(), why: why.into() })
}

/// The line of `key` (`table.sub.key`, or a table) in the configuration's text: the key's line
/// within its table, else the table's header.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let parts: Vec<&str> = key.split('.').collect();
    let header = |table: &[&str]| format!("[{}]", table.join("."));
    for split in (1..=parts.len()).rev() {
        let (table, leaf) = (&parts[..split], parts.get(split));
        let Some(start) = lines.iter().position(|l| l.trim() == header(table)) else { continue };
        let Some(leaf) = leaf else { return Some(start + 1) };
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .map_or(lines.len(), |n| start + 1 + n);
        let found = (start + 1..end)
            .find(|&n| lines[n].trim_start().strip_prefix(leaf).is_some_and(|rest| rest.trim_start().starts_with('=')));
        return Some(found.unwrap_or(start) + 1);
    }
    None
}

/// A TOML reader's error placed at its key's own line: for an unknown field or an array of the
/// wrong length the reader names the line where it noticed, at the end of the table.
fn at_the_key(text: &str, err: &str) -> String {
    let Some((what, at)) = err.rsplit_once(" at line ") else { return err.to_string() };
    let quoted = |after: &str| what.split_once(after).and_then(|(_, rest)| rest.split_once('`')).map(|(q, _)| q);
    let key = match (quoted("for key `"), quoted("unknown field `")) {
        (Some(table), Some(field)) => format!("{table}.{field}"),
        (None, Some(field)) => field.to_string(),
        (Some(key), None) => key.to_string(),
        (None, None) => return err.to_string(),
    };
    match line_of(text, &key) {
        Some(line) if !at.starts_with(&format!("{line} ")) => format!("{what} at line {line}"),
        _ => err.to_string(),
    }
}

/// A value that goes on a command line whole: letters, digits and `._/@+,:=~-` (and `\` of a
/// Windows path), never a leading `-` (it would be read as an option), nothing a shell reads as
/// syntax (spaces, `;`, `$`, quotes, a newline).
fn word(key: &str, value: &str, what: &str) -> Valid {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._/@+,:=~-\\".contains(c);
    if value.is_empty() || value.starts_with('-') || !value.chars().all(safe) {
        return invalid(
            key,
            format!(
                "`{}` is not {what}: letters, digits and `._/@+,:=~-` only, not starting with `-`",
                value.escape_debug()
            ),
        );
    }
    Ok(())
}

/// An ssh host alias or `user@host`.
fn ssh_host(key: &str, value: &str) -> Valid {
    let mut host = value.chars();
    if !(host.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && host.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')))
    {
        return invalid(key, format!("`{}` is not an ssh host alias or user@host", value.escape_debug()));
    }
    Ok(())
}

/// Docker's grammar for names (container, project, service): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn name(key: &str, value: &str) -> Valid {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return invalid(
            key,
            format!(
                "`{}` is not a valid name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)",
                value.escape_debug()
            ),
        );
    }
    Ok(())
}

/// An absolute path on a host (or in a container): `/...`, no `..`, one word.
fn absolute(key: &str, value: &str) -> Valid {
    word(key, value, "an absolute path")?;
    if !value.starts_with('/') || value.split('/').any(|part| part == "..") {
        return invalid(key, format!("`{value}` is not an absolute path (starting with `/`, without `..`)"));
    }
    Ok(())
}

/// A path in the repository, relative to its root (it names files of the commit): no `..`, no
/// leading `/` or `-`, one word.
fn relative(key: &str, value: &Path) -> Valid {
    let text = value.to_string_lossy();
    word(key, &text, "a path in the repository")?;
    if value.is_absolute() || value.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return invalid(key, format!("`{text}` is not a path in the repository (relative to it, without `..`)"));
    }
    Ok(())
}

/// A file of this machine, absolute or relative to the repository: one word, no leading `-`.
fn local_path(key: &str, value: &Path) -> Valid {
    word(key, &value.to_string_lossy(), "a path")
}

/// An `http://` or `https://` URL of letters, digits and `._~:/?#[]@&+,=%-`.
fn url(key: &str, value: &str) -> Valid {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    let safe = |c: char| c.is_ascii_alphanumeric() || "._~:/?#[]@&+,=%-".contains(c);
    if !rest.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')) || !value.chars().all(safe)
    {
        return invalid(key, format!("`{}` is not an http:// or https:// URL", value.escape_debug()));
    }
    Ok(())
}

/// The path of a URL (`/api/health`): `/` then URL characters only.
fn http_path(key: &str, value: &str) -> Valid {
    let ok = value.starts_with('/') && value.chars().all(|c| c.is_ascii_alphanumeric() || "/._~-?=&%".contains(c));
    if !ok {
        return invalid(
            key,
            format!("`{}` is not a URL path (starting with `/`, URL characters only)", value.escape_debug()),
        );
    }
    Ok(())
}

/// An environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
fn env_name(key: &str, value: &str) -> Valid {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return invalid(key, format!("`{}` is not an environment variable's name", value.escape_debug()));
    }
    Ok(())
}

/// A command (a program and its arguments) run on a host: the program a word (`word`), each
/// argument of the same characters (an option may start with `-`).
fn program_words(key: &str, words: &[String]) -> Valid {
    let Some((program, args)) = words.split_first() else { return invalid(key, "an empty command") };
    word(key, program, "a program")?;
    let safe = |c: char| c.is_ascii_alphanumeric() || "._/@+,:=~-".contains(c);
    match args.iter().find(|a| a.is_empty() || !a.chars().all(safe)) {
        Some(arg) => {
            invalid(key, format!("`{}` is not an argument: letters, digits and `._/@+,:=~-` only", arg.escape_debug()))
        }
        None => Ok(()),
    }
}

/// An image reference by Docker's grammar: `[DOMAIN[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]`.
fn reference(key: &str, value: &str) -> Valid {
    if !is_reference(value, true) {
        return invalid(
            key,
            format!("`{}` is not an image reference ([REGISTRY/]NAME[:TAG][@DIGEST])", value.escape_debug()),
        );
    }
    Ok(())
}

/// A repository: an image reference without tag or digest.
fn repository(key: &str, value: &str) -> Valid {
    if !is_reference(value, false) {
        return invalid(
            key,
            format!("`{}` is not an image repository ([REGISTRY/]NAME, no tag)", value.escape_debug()),
        );
    }
    Ok(())
}

/// Whether `value` is an image reference (`with_tag`: a tag and digest allowed).
pub fn is_reference(value: &str, with_tag: bool) -> bool {
    let lower_alnum = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.split_once(':').is_some_and(|(alg, hex)| {
            alg.split(['+', '.', '_', '-']).all(lower_alnum)
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
    });
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let tag_ok = tag.is_none_or(|t| check_tag(t).is_ok());
    let mut parts: Vec<&str> = name.split('/').collect();
    let domain =
        (parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost")).then(|| parts.remove(0));
    let domain_ok = domain.is_none_or(|d| {
        let (host, port) = d.split_once(':').map_or((d, None), |(h, p)| (h, Some(p)));
        host.split('.').all(|c| {
            !c.is_empty()
                && !c.starts_with('-')
                && !c.ends_with('-')
                && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        }) && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    });
    let path_ok = !parts.is_empty() && parts.iter().all(|c| is_path_component(c));
    (with_tag || (tag.is_none() && digest.is_none())) && digest_ok && tag_ok && domain_ok && path_ok
}

/// An environment name is used in image tags and container names, so it must fit both:
/// lowercase letters, digits, `_`, `.`, `-`, starting with a letter or digit, at most 64 characters.
pub fn check_env_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!(
            "`{name}` is not a valid environment name: it goes into image tags and container names, \
             so it may hold only lowercase letters, digits, `_`, `.` and `-`, starting with a letter or digit"
        );
    }
    if name == "dev" {
        bail!("`dev` is the local environment: deploy commands need a deploy environment such as staging or prod");
    }
    Ok(())
}

/// A path component of an image name: lowercase letters and digits in runs separated by one
/// `.`, one `_`, `__`, or dashes.
fn is_path_component(component: &str) -> bool {
    let mut separators = String::new();
    let mut runs = 0;
    for c in component.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if runs == 0 && !separators.is_empty() {
                return false;
            }
            let allowed = separators.is_empty()
                || matches!(separators.as_str(), "." | "_" | "__")
                || separators.chars().all(|s| s == '-');
            if !allowed {
                return false;
            }
            separators.clear();
            runs += 1;
        } else if matches!(c, '.' | '_' | '-') && runs > 0 {
            separators.push(c);
        } else {
            return false;
        }
    }
    runs > 0 && separators.is_empty()
}

/// Docker's grammar for image tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let ok = tag.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!(
            "`{tag}` is not a valid image tag: Docker tags hold only letters, digits, `_`, `.` and `-` \
             (at most 128, not starting with `.` or `-`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(crate::root().unwrap().join(crate::CONFIG)).unwrap()
    }

    /// The shipped configuration with `from` (which must be in it) replaced by `to`.
    fn shipped_with(from: &str, to: &str) -> String {
        let text = shipped();
        assert!(text.contains(from), "`{from}` is not in the shipped configuration");
        text.replace(from, to)
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", Config::parse(text, Path::new("config/recordsponge.toml")).unwrap_err())
    }

    #[test]
    fn the_shipped_configuration_is_valid() {
        let config = Config::parse(&shipped(), Path::new("x")).unwrap();
        assert_eq!(config.environments["staging"].ports, Some([3032, 3039]));
        assert_eq!(config.environments["prod"].ports, Some([3040, 3047]));
        assert_eq!(config.environments["prod"].syslog_facility, "local0");
    }

    #[test]
    fn a_wrong_type_names_file_line_and_key() {
        let text = shipped_with("health_timeout = 30\nbranch", "health_timeout = \"30\"\nbranch");
        let line = 1 + text.lines().position(|l| l == "health_timeout = \"30\"").unwrap();
        assert_eq!(
            error_of(&text),
            format!(
                "config/recordsponge.toml: invalid configuration: invalid type: string \"30\", expected u64 \
                 for key `environments.prod.health_timeout` at line {line} column 18"
            )
        );
    }

    #[test]
    fn an_unknown_key_names_file_line_and_the_valid_keys() {
        let text = shipped_with("syslog_facility = \"local1\"", "syslog_facilty = \"local1\"");
        let err = error_of(&text);
        assert!(err.contains("unknown field `syslog_facilty`, expected one of"), "{err}");
        let line = 1 + text.lines().position(|l| l == "syslog_facilty = \"local1\"").unwrap();
        assert!(err.ends_with(&format!("for key `environments.staging` at line {line}")), "{err}");
    }

    #[test]
    fn an_array_of_the_wrong_length_names_its_line() {
        let text = shipped_with("ports = [3040, 3047]", "ports = [3040, 3047, 3050]");
        let line = 1 + text.lines().position(|l| l == "ports = [3040, 3047, 3050]").unwrap();
        assert_eq!(
            error_of(&text),
            format!(
                "config/recordsponge.toml: invalid configuration: invalid length 3, expected 2 elements in \
                 sequence for key `environments.prod.ports` at line {line}"
            )
        );
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let err = error_of("[compose\nproject = 1\n");
        assert_eq!(
            err,
            "config/recordsponge.toml: invalid configuration: expected a right bracket, found a newline at line 1 column 9"
        );
    }

    #[test]
    fn values_that_reach_docker_or_a_shell_are_validated() {
        let err = error_of(&shipped_with("container = \"recordsponge-staging\"", "container = \"staging; reboot\""));
        assert!(err.contains("environments.staging.container: `staging; reboot` is not a valid name"), "{err}");
        let err = error_of(&shipped_with("[environments.staging]", "[environments.\"st aging\"]"));
        assert!(err.contains("`st aging` is not a valid environment name"), "{err}");
        let err = error_of(&shipped_with(
            "host = \"recordsponge\"\n# Releases are published",
            "host = \"-oProxyCommand=x\"\n# Releases are published",
        ));
        assert!(err.contains("environments.staging.host: `-oProxyCommand=x` is not an ssh host alias"), "{err}");
        let err = error_of(&shipped_with("syslog_facility = \"local1\"", "syslog_facility = \"kern\""));
        assert!(err.contains("`kern` is not a syslog facility"), "{err}");
        let err = error_of(&shipped_with("ports = [3040, 3047]", "ports = [3039, 3047]"));
        assert!(err.contains("environments.prod.ports: it overlaps environments.staging.ports"), "{err}");
        let err = error_of(&shipped_with("[\"sudo\", \"-n\", \"nginx\", \"-t\"]", "[\"sudo\", \"nginx\", \"-t\"]"));
        assert!(err.contains("deploy.nginx_test: sudo without -n"), "{err}");
    }

    /// The shipped configuration with `key` of `[table]` set to `value` (TOML).
    fn with_value(table: &str, key: &str, value: &str) -> (String, usize) {
        let mut lines: Vec<String> = shipped().lines().map(str::to_string).collect();
        let start =
            lines.iter().position(|l| l.trim() == format!("[{table}]")).unwrap_or_else(|| panic!("no [{table}]"));
        let at = (start + 1..lines.len())
            .take_while(|&n| !lines[n].starts_with('['))
            .find(|&n| lines[n].split('=').next().unwrap().trim() == key)
            .unwrap_or_else(|| panic!("no {key} in [{table}]"));
        lines[at] = format!("{key} = {value}");
        (lines.join("\n") + "\n", at + 1)
    }

    #[test]
    fn hostile_values_are_refused_naming_the_file_line_and_key() {
        let keys = [
            ("compose", "project"),
            ("compose", "file"),
            ("paths", "backend"),
            ("paths", "frontend_build"),
            ("services", "database"),
            ("database", "name"),
            ("database", "init_script"),
            ("images", "python"),
            ("images", "backend_dev"),
            ("images", "recipes"),
            ("images", "ca_bundle"),
            ("readiness", "health_path"),
            ("deploy", "repository"),
            ("deploy", "dockerfile"),
            ("deploy", "build_dir"),
            ("deploy", "ssh_config"),
            ("deploy", "state_dir"),
            ("environments.staging", "host"),
            ("environments.staging", "container"),
            ("environments.staging", "upstream_file"),
            ("environments.staging", "upstream_name"),
            ("environments.staging", "check_url"),
            ("environments.staging", "env_file"),
            ("environments.staging", "health_path"),
            ("environments.prod", "branch"),
        ];
        let hostile =
            ["-delete", "-K/etc/recordsponge/prod.env", "a b", "a;reboot", "$(reboot)", "`id`", "a\nb", "../../etc"];
        for (table, key) in keys {
            // A file of this machine may be anywhere: `..` is no harm in these.
            let local = ["ssh_config", "ca_bundle", "file", "recipes", "build_dir"].contains(&key);
            for value in hostile.iter().filter(|v| !(local && v.starts_with(".."))) {
                let (text, line) = with_value(table, key, &serde_json::to_string(value).unwrap());
                let err = format!("{:#}", Config::parse(&text, Path::new("config/recordsponge.toml")).unwrap_err());
                let at = format!("config/recordsponge.toml:{line}: invalid configuration: {table}.{key}: ");
                assert!(err.starts_with(&at), "{table}.{key} = {value:?}: {err}");
            }
        }
        for (table, key) in
            [("deploy", "nginx_test"), ("deploy", "env_keys"), ("clean", "under"), ("images", "backend_inputs")]
        {
            for value in [r#"["-x"]"#, r#"["a\nb"]"#, r#"["a b", "$(reboot)"]"#] {
                let (text, line) = with_value(table, key, value);
                let err = format!("{:#}", Config::parse(&text, Path::new("c.toml")).unwrap_err());
                assert!(
                    err.starts_with(&format!("c.toml:{line}: invalid configuration: {table}.{key}: ")),
                    "{key} = {value}: {err}"
                );
            }
        }
    }

    #[test]
    fn image_references_follow_dockers_grammar() {
        for good in [
            "python:3.11-slim-bookworm",
            "recordsponge/expungeservice",
            "127.0.0.1:5000/a/b:t",
            "localhost/x",
            "reg.example.com/a__b/c-d--e.f:tag_1",
            "rs@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_reference(good, true), "{good}");
        }
        for bad in ["", "-x", "Upper/case", "a b", "a;b", "a//b", "a:", "a@sha256:xyz", "a/_b", "a..b", "$(x)", "a:b:c"]
        {
            assert!(!is_reference(bad, true), "{bad}");
        }
        assert!(is_reference("recordsponge/expungeservice", false));
        assert!(!is_reference("recordsponge/expungeservice:tag", false));
    }

    #[test]
    fn an_unknown_environment_lists_the_valid_ones() {
        let config = Config::parse(&shipped(), Path::new("x")).unwrap();
        let err = format!("{:#}", config.environment("qa").unwrap_err());
        assert!(err.starts_with("unknown environment `qa`: the configured ones are prod, staging."), "{err}");
    }

    #[test]
    fn tags_follow_dockers_grammar() {
        for good in ["staging", "staging-0123456789ab", "v1.2_3", "_x"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a b", "a;b", "$(x)", "a:b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
