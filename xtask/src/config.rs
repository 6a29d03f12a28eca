//! The project configuration (`config/recordsponge.toml`), read with serde and validated
//! before any plan is built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub backend: PathBuf,
    pub frontend_build: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub backend: String,
    pub frontend: String,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub backend: u16,
    pub frontend: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    pub init_script: String,
    pub drop_script: String,
    #[serde(default)]
    pub seed_logins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub python: String,
    pub node: String,
    pub postgres: String,
    pub debian: String,
    pub backend_dev: String,
    pub recipes: PathBuf,
    #[serde(default)]
    pub ca_bundle: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub timeout: u64,
    pub health_path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub repository: String,
    pub dockerfile: PathBuf,
    pub context_dir: PathBuf,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The ssh host (an alias from the user's ~/.ssh/config, or user@host).
    pub host: String,
    /// The port the environment's container publishes on the host (nginx proxies to it).
    pub port: u16,
    pub container: String,
    pub env_file: String,
    pub syslog_facility: String,
    pub health_path: String,
    pub health_timeout: u64,
    /// Deploys of this environment are allowed only from this branch.
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
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

    /// Parses configuration text; errors name the file, line and key.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|err| {
            let line =
                err.span().map(|span| format!(":{}", 1 + text[..span.start].matches('\n').count())).unwrap_or_default();
            anyhow::anyhow!("{}{}: invalid configuration: {}", path.display(), line, err.message())
        })?;
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
            let mut host = env.host.chars();
            if !(host.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && host.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')))
            {
                bail!("environments.{name}.host: `{}` is not an ssh host alias or user@host", env.host);
            }
            check_name(&format!("environments.{name}.container"), &env.container)?;
            if env.port == 0 {
                bail!("environments.{name}.port: 0 is not a port");
            }
            if !env.health_path.starts_with('/') {
                bail!("environments.{name}.health_path: must start with `/`");
            }
            if !matches!(
                env.syslog_facility.as_str(),
                "local0"
                    | "local1"
                    | "local2"
                    | "local3"
                    | "local4"
                    | "local5"
                    | "local6"
                    | "local7"
                    | "daemon"
                    | "user"
            ) {
                bail!(
                    "environments.{name}.syslog_facility: `{}` is not a syslog facility (local0..local7, daemon, user)",
                    env.syslog_facility
                );
            }
        }
        if self.environments.is_empty() {
            bail!("[environments]: at least one deploy environment is needed");
        }
        Ok(())
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
