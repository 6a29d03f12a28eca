//! Releases (was src/ops/Makefile): the deployable image and its push; `staging` and `prod`
//! build, push and deploy it (the deploy itself is deploy/mod.rs).

use anyhow::Result;

use crate::checks::{registry_of, Check};
use crate::cli::Release;
use crate::images::{self, DevImage};
use crate::plan::{Action, Fs, Plan};
use crate::project::Project;
use crate::remote::switch;
use crate::remote::target::{Target, COMMIT_LABEL, ENV_LABEL};
use crate::stack;

pub fn plan(p: &Project, command: &Release) -> Result<Plan> {
    Ok(match command {
        Release::Image { env } => image(p, &Target::new(p, env)?),
        Release::Staging => release(p, &Target::new(p, "staging")?),
        Release::Prod => release(p, &Target::new(p, "prod")?),
    })
}

/// Builds the deployable image: frontend build, build context, version.json, docker build.
pub fn image(p: &Project, t: &Target) -> Plan {
    let c = &p.config;
    let context = p.path(&c.deploy.context_dir);
    let context_arg = c.deploy.context_dir.to_string_lossy();
    let mut plan = p.plan();
    plan.checks(p.compose_checks()).check(Check::GitClean { root: p.root.clone() });
    if let Some(branch) = &t.env.branch {
        plan.check(Check::GitBranch { root: p.root.clone(), branch: branch.clone() })
            .check(Check::GitPushed { root: p.root.clone() });
    }
    plan.check(Check::File {
        path: p.path(&c.deploy.dockerfile),
        what: "the deployable image's Dockerfile".into(),
        fix: format!("restore it: `git checkout -- {}`", c.deploy.dockerfile.display()),
    });
    let mut frontend = stack::frontend_build(p);
    plan.checks(std::mem::take(&mut frontend.checks));
    plan.step(&format!("Ensure the image {}", c.images.backend_dev), images::ensure_dev(p, DevImage::Backend))
        .extend(frontend)
        .step(
            "Assemble the build context",
            Action::Fs(Fs::AssembleDir {
                dest: context.clone(),
                sources: vec![
                    (p.path(&c.deploy.dockerfile), "Dockerfile".into()),
                    (p.path(&c.paths.backend), "backend".into()),
                    (p.path(&c.paths.frontend_build), "frontend/build".into()),
                ],
                exclude: c.deploy.exclude.clone(),
            }),
        )
        .step(
            "Write version.json",
            Action::Fs(Fs::WriteFile { path: context.join("version.json"), contents: version_json(p) }),
        )
        .step(
            &format!("Build {} and {}", t.moving, t.release),
            Action::Run(
                p.cmd("docker")
                    .args(&[
                        "build",
                        "--force-rm",
                        "--label",
                        &format!("{ENV_LABEL}={}", t.name),
                        "--label",
                        &format!("{COMMIT_LABEL}={}", p.facts.commit),
                        "--tag",
                        &t.moving,
                        "--tag",
                        &t.release,
                        "--build-arg",
                        &format!("BASE_IMAGE={}", c.images.backend_dev),
                        &context_arg,
                    ])
                    .quiet(),
            ),
        );
    plan
}

/// version.json: the build's commit, branch and time (served at /api/version).
fn version_json(p: &Project) -> String {
    let f = &p.facts;
    format!("{}\n", serde_json::json!({"commit": f.commit, "branch": f.branch, "build_time": f.now}))
}

/// `push ENV`: pushes both tags of this commit's image.
pub fn push(p: &Project, env: &str) -> Result<Plan> {
    let t = &Target::new(p, env)?;
    let mut plan = p.plan();
    plan.checks(p.docker_checks()).check(Check::Probe {
        what: format!("the image {} was built", t.release),
        probe: p.cmd("docker").args(&["image", "inspect", "--format", "{{.Id}}", &t.release]),
        line: None,
        fix: format!("build it first: cargo xtask image {}", t.name),
    });
    push_steps(p, t, &mut plan);
    Ok(plan)
}

fn push_steps(p: &Project, t: &Target, plan: &mut Plan) {
    plan.check(Check::RegistryLogin { registry: registry_of(&p.config.deploy.repository) });
    for tag in [&t.release, &t.moving] {
        plan.step(&format!("Push {tag}"), Action::Run(p.cmd("docker").args(&["push", tag.as_str()]).quiet()));
    }
}

/// `staging` / `prod`: image, push and deploy of this commit, every precondition checked
/// first; the build and push run under the environment's deploy lock.
fn release(p: &Project, t: &Target) -> Plan {
    let mut build = image(p, t);
    push_steps(p, t, &mut build);
    switch::deploy(p, t, &t.release, Some(build))
}
