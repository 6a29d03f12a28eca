//! A deploy environment resolved from the configuration: its name, settings, image tags and
//! the name of the release a deploy would start; its state files on the host; the checks that
//! its host answers; and which release answers through its proxy.

use std::collections::BTreeMap;

use anyhow::Result;

use super::ssh::ssh;
use crate::checks::Check;
use crate::cmd::Cmd;
use crate::config::{check_tag, Environment};
use crate::plan::Action;
use crate::project::Project;

/// The label that marks a release image and container with its environment.
pub const ENV_LABEL: &str = "org.recordsponge.env";
/// The label a release container carries its image digest in.
pub const DIGEST_LABEL: &str = "org.recordsponge.digest";
/// The label the deployable image carries its commit in (`cargo xtask image` sets it).
pub const COMMIT_LABEL: &str = "org.recordsponge.commit";
/// The labels the deployable image names its base images in: `TAG IMAGE_ID` each.
pub const BACKEND_LABEL: &str = "org.recordsponge.backend-base";
pub const FRONTEND_LABEL: &str = "org.recordsponge.frontend-base";
/// The header every response of a release names it in (`RS_RELEASE`).
pub const RELEASE_HEADER: &str = "x-recordsponge-release";

/// A deploy environment, resolved and validated.
pub struct Target<'a> {
    pub name: String,
    pub env: &'a Environment,
    /// `REPOSITORY:ENV`, the moving tag (as the old Makefile tagged).
    pub moving: String,
    /// `REPOSITORY:ENV-<commit>`, this commit's own tag.
    pub release: String,
    /// The name of a new release: `CONTAINER-<time>-<pid>`, unique to each deploy. It names its
    /// container, and the release says it in every response (RS_RELEASE).
    pub container: String,
    /// The host the commands reach: the environment's `host`, or, for a Swarm with several
    /// managers, the first of them that answers.
    pub host: String,
    /// The user the host's ssh alias logs in as (the deploy user), as `ssh -G` says.
    pub user: String,
}

impl Target<'_> {
    /// Resolves an environment name (argument, else RS_ENV) against the configuration.
    pub fn new<'a>(p: &'a Project, name: &str) -> Result<Target<'a>> {
        let env = p.config.environment(name)?;
        let repo = &p.config.deploy.repository;
        let release = format!("{name}-{}", short(&p.facts.commit));
        check_tag(&release)?;
        let time: String = p.facts.now.chars().filter(char::is_ascii_alphanumeric).collect();
        let host = p.facts.managers.get(name).unwrap_or(&env.host).clone();
        Ok(Target {
            name: name.to_string(),
            env,
            host: host.clone(),
            moving: format!("{repo}:{name}"),
            release: format!("{repo}:{release}"),
            container: format!("{}-{}-{}", env.container, time.to_lowercase(), p.facts.pid),
            user: p.facts.ssh_users.get(&host).cloned().unwrap_or_else(|| "DEPLOY_USER".into()),
        })
    }

    /// The environment's state file `ENV.WHAT` on its host.
    pub fn state(&self, p: &Project, what: &str) -> String {
        format!("{}/{}.{what}", p.config.deploy.state_dir, self.name)
    }

    /// Prints a state file of the environment when it exists, and nothing otherwise.
    pub fn cat_state(&self, p: &Project, what: &str) -> Cmd {
        let name = format!("{}.{what}", self.name);
        let dir = &p.config.deploy.state_dir;
        ssh(p, &self.host, &["find", dir, "-maxdepth", "1", "-name", &name, "-exec", "cat", "{}", "+"])
    }

    /// `ssh` to the environment's host (the manager of a Swarm).
    pub fn ssh<S: AsRef<str>>(&self, p: &Project, remote: &[S]) -> Cmd {
        ssh(p, &self.host, remote)
    }
}

/// The first 12 characters of a commit.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// OpenSSH's client is on PATH.
pub fn ssh_tool(p: &Project) -> Check {
    Check::Tool {
        program: "ssh".into(),
        version: p.cmd("ssh").arg("-V"),
        min: None,
        fix: "install OpenSSH (Debian/Ubuntu: `sudo apt-get install openssh-client`; Windows: the OpenSSH client feature)".into(),
    }
}

/// The host answers over ssh without prompts and runs docker.
pub fn reach_checks(p: &Project, t: &Target) -> Vec<Check> {
    let host = &t.host;
    vec![
        ssh_tool(p),
        Check::Reach {
            host: host.clone(),
            probe: t.ssh(p, &["true"]),
            fix: format!(
                "make `ssh {host} true` work without a prompt: a `Host {host}` block in ~/.ssh/config, \
                 your key loaded (`ssh-add`) and authorized on the host, its host key known (connect once with `ssh {host}`)"
            ),
        },
        Check::Probe {
            what: format!("docker answers on {host} for {}", t.user),
            probe: t.ssh(p, &["docker", "version", "--format", "{{.Server.Version}}"]),
            line: None,
            fix: format!("on {host}, as root: install Docker and let {} use it: `usermod -aG docker {}` (config/nginx/README.md)", t.user, t.user),
        },
    ]
}

/// For each Swarm environment with several managers, the first of `host` and `managers` that
/// answers over ssh (the connection it opens is shared by the command's next ones).
pub fn answering_managers(p: &Project) -> BTreeMap<String, String> {
    let mut answering = BTreeMap::new();
    for (name, env) in p.config.environments.iter().filter(|(_, e)| !e.managers.is_empty()) {
        let candidates = std::iter::once(&env.host).chain(&env.managers);
        if let Some(host) = candidates.into_iter().find(|host| crate::process::output(&ssh(p, host, &["true"])).is_ok())
        {
            answering.insert(name.clone(), host.clone());
        }
    }
    answering
}

/// A warning for each machine where two environments deploy as one user: a key (a CI job's)
/// that deploys one of them can replace the other (README.md, Security).
pub fn shared_deploy_users(p: &Project) -> Vec<String> {
    let f = &p.facts;
    let mut by_login: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (name, env) in &p.config.environments {
        let (Some(machine), Some(user)) = (f.ssh_machines.get(&env.host), f.ssh_users.get(&env.host)) else { continue };
        by_login.entry((machine, user)).or_default().push(name);
    }
    by_login
        .into_iter()
        .filter(|(_, envs)| envs.len() > 1)
        .map(|((machine, user), envs)| {
            format!(
                "{} deploy as one user, {user}, on {machine}: a key that deploys one can replace the others; give each \
                 its own deploy user (config/nginx/README.md, \"One host, several environments\"), or its own host",
                envs.join(" and ")
            )
        })
        .collect()
}

/// Asks the environment's public URL, from its host, which release answers: the response's
/// headers, into `%{serving}` (`serving_release` reads them; empty when nothing answers).
pub fn ask_serving(p: &Project, t: &Target) -> Action {
    Action::Capture { cmd: ask_serving_cmd(p, t), var: "serving".into(), optional: true }
}

/// `curl` of the environment's public URL, on its host: the response's headers.
pub fn ask_serving_cmd(p: &Project, t: &Target) -> Cmd {
    let url = &t.env.check_url;
    t.ssh(p, &["curl", "--silent", "--max-time", "5", "--dump-header", "-", "--output", "/dev/null", url])
}

/// The release named by a response's headers (`curl --dump-header -`).
pub fn serving_release(headers: &str) -> Option<&str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim().eq_ignore_ascii_case(RELEASE_HEADER)).then(|| v.trim())
    })
}

/// `curl` of a URL on the host that fails on an HTTP error, within `seconds`.
pub fn curl(url: &str, seconds: u32) -> Vec<String> {
    let seconds = seconds.to_string();
    super::ssh::words(&["curl", "--silent", "--show-error", "--fail", "--max-time", &seconds, url])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_names_its_tags_its_new_release_and_its_state_files() {
        let p = crate::project::fixture();
        let t = Target::new(&p, "staging").unwrap();
        assert_eq!(t.moving, "recordsponge/expungeservice:staging");
        assert_eq!(t.release, "recordsponge/expungeservice:staging-0123456789ab");
        assert_eq!(t.container, "recordsponge-staging-20261128t120000z-4242");
        assert_eq!(t.user, "deploy");
        assert_eq!(t.state(&p, "lock"), "/var/lib/recordsponge/staging.lock");
        assert_eq!(
            t.cat_state(&p, "holder").remote,
            ["find", "/var/lib/recordsponge", "-maxdepth", "1", "-name", "staging.holder", "-exec", "cat", "{}", "+"]
        );
    }

    #[test]
    fn environments_that_deploy_as_one_user_on_one_machine_are_warned_of() {
        let mut p = crate::project::fixture();
        let warnings = shared_deploy_users(&p);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("prod and staging deploy as one user, deploy, on recordsponge.com:22"),
            "{warnings:?}"
        );
        // A user per environment (`user@alias`), on the same machine: no warning.
        p.config.environments.get_mut("staging").unwrap().host = "deploy-staging@recordsponge".into();
        p.facts.ssh_users.insert("deploy-staging@recordsponge".into(), "deploy-staging".into());
        p.facts.ssh_machines.insert("deploy-staging@recordsponge".into(), "recordsponge.com:22".into());
        assert!(shared_deploy_users(&p).is_empty());
    }

    #[test]
    fn the_release_that_serves_is_read_from_the_response_headers() {
        assert_eq!(serving_release("HTTP/1.1 200 OK\r\nX-RecordSponge-Release: rs-2\r\n\r\n"), Some("rs-2"));
        assert_eq!(serving_release("HTTP/1.1 502 Bad Gateway\r\n"), None);
        assert_eq!(
            curl("http://127.0.0.1:3032/api/health", 2),
            ["curl", "--silent", "--show-error", "--fail", "--max-time", "2", "http://127.0.0.1:3032/api/health"]
        );
    }
}
