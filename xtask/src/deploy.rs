//! Deploys (was src/ops/Makefile): the deployable image, its push, and the deploy over ssh to
//! the environment's Docker host.

use anyhow::Result;

use crate::checks::{registry_of, Check};
use crate::config::{check_tag, Environment};
use crate::plan::{Action, Cmd, Plan};
use crate::project::Project;
use crate::quote;

/// A deploy environment, resolved and validated: its name, settings and image tags.
pub struct Target<'a> {
    pub name: String,
    pub env: &'a Environment,
    /// `REPOSITORY:ENV`, the moving tag (as the old Makefile tagged).
    pub moving: String,
    /// `REPOSITORY:ENV-<commit>`, this release's own tag.
    pub release: String,
}

impl Project {
    /// Resolves an environment name (argument, else RS_ENV) against the configuration.
    pub fn target(&self, name: &str) -> Result<Target<'_>> {
        let env = self.config.environment(name)?;
        let repo = &self.config.deploy.repository;
        let short: String = self.facts.commit.chars().take(12).collect();
        let release = format!("{name}-{short}");
        check_tag(&release)?;
        Ok(Target {
            name: name.to_string(),
            env,
            moving: format!("{repo}:{name}"),
            release: format!("{repo}:{release}"),
        })
    }

    /// `ssh HOST -- 'ARG' 'ARG'...`: OpenSSH (so the user's ~/.ssh/config applies), never
    /// prompting, and every remote argument quoted one by one for the remote shell.
    pub fn ssh(&self, host: &str, remote: &[&str]) -> Cmd {
        self.cmd("ssh").args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, "--"]).arg(quote::sh_join(remote))
    }

    /// The deploy host answers over ssh, runs docker, and can read the environment's env file.
    fn remote_checks(&self, t: &Target) -> Vec<Check> {
        let host = &t.env.host;
        vec![
            Check::Tool {
                program: "ssh".into(),
                version: self.cmd("ssh").arg("-V"),
                min: None,
                fix: "install OpenSSH (Debian/Ubuntu: `sudo apt-get install openssh-client`; Windows: the OpenSSH client feature)".into(),
            },
            Check::Probe {
                what: format!("ssh to {host} works without prompts"),
                probe: self.ssh(host, &["true"]),
                line: None,
                fix: format!(
                    "make `ssh {host} true` work without a prompt: a `Host {host}` block in ~/.ssh/config, \
                     your key loaded (`ssh-add`) and authorized on the host, its host key known (connect once with `ssh {host}`)"
                ),
            },
            Check::Probe {
                what: format!("docker answers on {host}"),
                probe: self.ssh(host, &["docker", "version", "--format", "{{.Server.Version}}"]),
                line: None,
                fix: format!("on {host}: install Docker and let the ssh user use it (`sudo usermod -aG docker USER`)"),
            },
            Check::Probe {
                what: format!("{} is readable on {host}", t.env.env_file),
                probe: self.ssh(host, &["test", "-r", &t.env.env_file]),
                line: None,
                fix: format!(
                    "create it on {host} with the environment's settings (see config/env/README.md), readable by the ssh user: \
                     ssh {host} sudo install -m 600 /dev/null {}",
                    quote::sh(&t.env.env_file)
                ),
            },
        ]
    }

    /// Builds the deployable image: frontend build, build context, version.json, docker build.
    pub fn image(&self, t: &Target) -> Plan {
        let c = &self.config;
        let context = self.path(&c.deploy.context_dir);
        let context_arg = c.deploy.context_dir.to_string_lossy();
        let mut plan = self.plan(&format!("image {}", t.name));
        plan.checks(self.compose_checks()).check(Check::GitClean { root: self.root.clone() });
        if let Some(branch) = &t.env.branch {
            plan.check(Check::GitBranch { root: self.root.clone(), branch: branch.clone() });
        }
        plan.check(Check::File {
            path: self.path(&c.deploy.dockerfile),
            what: "the deployable image's Dockerfile".into(),
            fix: format!("restore it: `git checkout -- {}`", c.deploy.dockerfile.display()),
        });
        let mut frontend = self.frontend_build();
        plan.checks(std::mem::take(&mut frontend.checks));
        plan.step(&format!("Ensure the image {}", c.images.backend_dev), self.ensure_backend_image())
            .extend(frontend)
            .step(
                "Assemble the build context",
                Action::AssembleDir {
                    dest: context.clone(),
                    sources: vec![
                        (self.path(&c.deploy.dockerfile), "Dockerfile".into()),
                        (self.path(&c.paths.backend), "backend".into()),
                        (self.path(&c.paths.frontend_build), "frontend/build".into()),
                    ],
                    exclude: c.deploy.exclude.clone(),
                },
            )
            .step(
                "Write version.json",
                Action::WriteFile { path: context.join("version.json"), contents: self.version_json() },
            )
            .step(
                &format!("Build {} and {}", t.moving, t.release),
                Action::Run(self.cmd("docker").args([
                    "build",
                    "--tag",
                    &t.moving,
                    "--tag",
                    &t.release,
                    "--build-arg",
                    &format!("BASE_IMAGE={}", c.images.backend_dev),
                    &context_arg,
                ])),
            );
        plan
    }

    fn version_json(&self) -> String {
        let f = &self.facts;
        format!(
            "{{\"commit\": {}, \"branch\": {}, \"build_time\": {}}}\n",
            serde_json::Value::from(f.commit.as_str()),
            serde_json::Value::from(f.branch.as_str()),
            serde_json::Value::from(f.now.as_str())
        )
    }

    /// Pushes both tags of this commit's image.
    pub fn push_env(&self, t: &Target) -> Plan {
        let mut plan = self.plan(&format!("push {}", t.name));
        plan.checks(self.docker_checks()).check(Check::Probe {
            what: format!("the image {} was built", t.release),
            probe: self.cmd("docker").args(["image", "inspect", "--format", "{{.Id}}", &t.release]),
            line: None,
            fix: format!("build it first: cargo xtask image {}", t.name),
        });
        self.push_steps(t, &mut plan);
        plan
    }

    fn push_steps(&self, t: &Target, plan: &mut Plan) {
        plan.check(Check::RegistryLogin { registry: registry_of(&self.config.deploy.repository) });
        for tag in [&t.release, &t.moving] {
            plan.step(&format!("Push {tag}"), Action::Run(self.cmd("docker").args(["push", tag.as_str()])));
        }
    }

    /// Replaces the environment's container on its host with `image` (was ssh_deploy).
    pub fn deploy(&self, t: &Target, image: &str) -> Plan {
        let e = t.env;
        let host = &e.host;
        let port = format!("{}:5000", e.port);
        let facility = format!("syslog-facility={}", e.syslog_facility);
        let tag = format!("tag={}", e.container);
        let mut plan = self.plan(&format!("deploy {}", t.name));
        plan.checks(self.remote_checks(t))
            .step(&format!("Pull {image} on {host}"), Action::Run(self.ssh(host, &["docker", "pull", image])))
            .step(
                &format!("Remove the old {} container on {host}", e.container),
                Action::Run(self.ssh(host, &["docker", "rm", "--force", &e.container])),
            )
            .step(
                &format!("Start {image} as {} on {host}", e.container),
                Action::Run(self.ssh(
                    host,
                    &[
                        "docker",
                        "run",
                        "--detach",
                        "--name",
                        &e.container,
                        "--restart",
                        "unless-stopped",
                        "--env-file",
                        &e.env_file,
                        "--publish",
                        &port,
                        "--log-driver",
                        "syslog",
                        "--log-opt",
                        &facility,
                        "--log-opt",
                        &tag,
                        image,
                    ],
                )),
            );
        plan
    }

    /// `staging` / `prod`: image, push and deploy of this commit, every precondition checked first.
    pub fn release(&self, t: &Target) -> Plan {
        let mut plan = self.plan(&t.name);
        plan.extend(self.image(t));
        self.push_steps(t, &mut plan);
        plan.extend(self.deploy(t, &t.release));
        plan
    }

    /// The image tag `deploy` runs: --tag / DEPLOY_TAG, else the environment's moving tag.
    pub fn deploy_image(&self, t: &Target, tag: Option<&str>) -> Result<String> {
        match tag {
            Some(tag) => {
                check_tag(tag)?;
                Ok(format!("{}:{tag}", self.config.deploy.repository))
            }
            None => Ok(t.moving.clone()),
        }
    }
}
