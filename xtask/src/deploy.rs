//! Releases (was src/ops/Makefile): the deployable image and its push; `staging` and `prod`
//! add the deploy (remote.rs).

use anyhow::Result;

use crate::checks::{registry_of, Check};
use crate::config::{check_tag, Environment};
use crate::images::DevImage;
use crate::json;
use crate::plan::{Action, Plan};
use crate::project::Project;

/// A deploy environment, resolved and validated: its name, settings and image tags.
pub struct Target<'a> {
    pub name: String,
    pub env: &'a Environment,
    /// `REPOSITORY:ENV`, the moving tag (as the old Makefile tagged).
    pub moving: String,
    /// `REPOSITORY:ENV-<commit>`, this release's own tag.
    pub release: String,
    /// The release's containers on the host: `CONTAINER-<time>` (unique per deploy).
    pub container: String,
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
            container: format!("{}-{}", env.container, self.facts.now.replace([':', '-'], "").to_lowercase()),
        })
    }

    /// Builds the deployable image: frontend build, build context, version.json, docker build.
    pub fn image(&self, t: &Target) -> Plan {
        let c = &self.config;
        let context = self.path(&c.deploy.context_dir);
        let context_arg = c.deploy.context_dir.to_string_lossy();
        let mut plan = self.plan(&format!("image {}", t.name));
        plan.checks(self.compose_checks()).check(Check::GitClean { root: self.root.clone() });
        if let Some(branch) = &t.env.branch {
            plan.check(Check::GitBranch { root: self.root.clone(), branch: branch.clone() })
                .check(Check::GitPushed { root: self.root.clone() });
        }
        plan.check(Check::File {
            path: self.path(&c.deploy.dockerfile),
            what: "the deployable image's Dockerfile".into(),
            fix: format!("restore it: `git checkout -- {}`", c.deploy.dockerfile.display()),
        });
        let mut frontend = self.frontend_build();
        plan.checks(std::mem::take(&mut frontend.checks));
        plan.step(&format!("Ensure the image {}", c.images.backend_dev), self.ensure_dev_image(DevImage::Backend))
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
                Action::Run(self.cmd("docker").args(&[
                    "build",
                    "--force-rm",
                    "--label",
                    &format!("org.recordsponge.env={}", t.name),
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
            json::quote(&f.commit),
            json::quote(&f.branch),
            json::quote(&f.now)
        )
    }

    /// Pushes both tags of this commit's image.
    pub fn push_env(&self, t: &Target) -> Plan {
        let mut plan = self.plan(&format!("push {}", t.name));
        plan.checks(self.docker_checks()).check(Check::Probe {
            what: format!("the image {} was built", t.release),
            probe: self.cmd("docker").args(&["image", "inspect", "--format", "{{.Id}}", &t.release]),
            line: None,
            fix: format!("build it first: cargo xtask image {}", t.name),
        });
        self.push_steps(t, &mut plan);
        plan
    }

    fn push_steps(&self, t: &Target, plan: &mut Plan) {
        plan.check(Check::RegistryLogin { registry: registry_of(&self.config.deploy.repository) });
        for tag in [&t.release, &t.moving] {
            plan.step(&format!("Push {tag}"), Action::Run(self.cmd("docker").args(&["push", tag.as_str()])));
        }
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
