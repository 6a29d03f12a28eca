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
    pub clean: Clean,
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
    /// swarm: the proxy's image (nginx) and the port it is published on, on each manager node.
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
    /// Images of this environment (`image`, `staging`, `prod`) are built only from this branch;
    /// `deploy --tag` and `rollback` of an image already built are not restricted.
    #[serde(default)]
    pub branch: Option<String>,
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

impl Environment {
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
        let config: Config = basic_toml::from_str(text)
            .map_err(|err| anyhow::anyhow!("{}: invalid configuration: {err}", path.display()))?;
        config.validate().with_context(|| format!("{}: invalid configuration", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        check_name("compose.project", &self.compose.project)?;
        for (key, service) in [
            ("services.backend", &self.services.backend),
            ("services.frontend", &self.services.frontend),
            ("services.database", &self.services.database),
        ] {
            check_name(key, service)?;
        }
        for (name, env) in &self.environments {
            check_env_name(name).with_context(|| format!("in [environments.{name}]"))?;
            self.validate_environment(name, env)?;
        }
        if self.environments.is_empty() {
            bail!("[environments]: at least one deploy environment is needed");
        }
        for (key, command) in
            [("deploy.nginx_test", &self.deploy.nginx_test), ("deploy.nginx_reload", &self.deploy.nginx_reload)]
        {
            if command.first().map(String::as_str) == Some("sudo") && !command.iter().any(|a| a == "-n") {
                bail!("{key}: sudo without -n would wait for a password that a deploy cannot type: start it with [\"sudo\", \"-n\", ...]");
            }
        }
        Ok(())
    }

    fn validate_environment(&self, name: &str, env: &Environment) -> Result<()> {
        let mut host = env.host.chars();
        if !(host.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && host.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')))
        {
            bail!("environments.{name}.host: `{}` is not an ssh host alias or user@host", env.host);
        }
        check_name(&format!("environments.{name}.container"), &env.container)?;
        match env.engine {
            Engine::Host => self.validate_host_engine(name, env)?,
            Engine::Swarm => {
                if env.replicas == 0 {
                    bail!("environments.{name}.replicas: at least 1 (2 keeps one serving while the other is replaced)");
                }
                check_image(&format!("environments.{name}.proxy_image"), &env.proxy_image)?;
            }
        }
        if !env.health_path.starts_with('/') {
            bail!("environments.{name}.health_path: must start with `/`");
        }
        const FACILITIES: [&str; 10] =
            ["local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "daemon", "user"];
        if !FACILITIES.contains(&env.syslog_facility.as_str()) {
            bail!(
                "environments.{name}.syslog_facility: `{}` is not a syslog facility (local0..local7, daemon, user)",
                env.syslog_facility
            );
        }
        Ok(())
    }

    /// An environment of the `host` engine: its ports, upstream file and name.
    fn validate_host_engine(&self, name: &str, env: &Environment) -> Result<()> {
        let (Some(ports), Some(_), Some(upstream_name)) = (env.ports, &env.upstream_file, &env.upstream_name) else {
            bail!("[environments.{name}]: engine \"host\" needs ports, upstream_file and upstream_name");
        };
        if ports[0] == 0 || ports[0] >= ports[1] {
            bail!("environments.{name}.ports: [FIRST, LAST], a range of at least two ports (the live release and the next)");
        }
        let others = self.environments.range::<str, _>((Excluded(name), Unbounded));
        for (other, o) in others.filter(|(_, o)| o.engine == Engine::Host && o.host == env.host) {
            if o.ports.is_some_and(|op| op[0] <= ports[1] && ports[0] <= op[1]) {
                bail!("environments.{name}.ports and environments.{other}.ports overlap on the host {}", env.host);
            }
        }
        check_name(&format!("environments.{name}.upstream_name"), upstream_name)
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

/// Docker's grammar for names (container, project, service): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_name(key: &str, value: &str) -> Result<()> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!("{key}: `{value}` is not a valid name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)");
    }
    Ok(())
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

/// An image reference that can go on a command line as one word: `[REGISTRY/]NAME[:TAG][@DIGEST]`
/// of letters, digits and `._-/:@`.
fn check_image(key: &str, value: &str) -> Result<()> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if !ok {
        bail!("{key}: `{value}` is not an image reference");
    }
    Ok(())
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
        assert!(err.contains("for key `environments.staging` at line "), "{err}");
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
        assert!(err.contains("environments.prod.ports and environments.staging.ports overlap"), "{err}");
        let err = error_of(&shipped_with("[\"sudo\", \"-n\", \"nginx\", \"-t\"]", "[\"sudo\", \"nginx\", \"-t\"]"));
        assert!(err.contains("deploy.nginx_test: sudo without -n"), "{err}");
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
