//! Releases (was src/ops/Makefile): the deployable image and its push; `staging` and `prod`
//! build, push and deploy it (the deploy itself is deploy/mod.rs).

use anyhow::Result;

use std::path::Path;

use crate::checks::{registry_of, Check, Judge};
use crate::cli::Release;
use crate::images::{self, DevImage};
use crate::plan::{Action, Fs, Plan};
use crate::project::Project;
use crate::remote::switch;
use crate::remote::target::{Target, BACKEND_LABEL, COMMIT_LABEL, ENV_LABEL, FRONTEND_LABEL};

pub fn plan(p: &Project, command: &Release) -> Result<Plan> {
    Ok(match command {
        Release::Image { env } => image(p, &Target::new(p, env)?),
        Release::Staging => release(p, &Target::new(p, "staging")?),
        Release::Prod => release(p, &Target::new(p, "prod")?),
    })
}

/// Builds the deployable image from the commit alone: its two base images (the backend's
/// Python and locked packages, the frontend's node_modules), each named by the content it is
/// built from; then the release, from an archive of the commit's files (`git archive`: no
/// untracked or ignored file, no file time of this checkout) and version.json, the frontend
/// built inside it on its base (src/ops/Dockerfile).
pub fn image(p: &Project, t: &Target) -> Plan {
    let c = &p.config;
    let mut plan = p.plan();
    plan.checks(p.docker_checks())
        .checks(commit_checks(p, t))
        .check(p.npm_script("build", "the release's frontend build"));
    plan.step("Make the directory of the build contexts", Action::Fs(Fs::MakeDir(p.path(&c.deploy.build_dir))));
    let bases = [DevImage::Backend, DevImage::Frontend];
    for which in bases {
        plan.step(
            &format!("Ensure the base image {}", images::release_base_tag(p, which)),
            images::ensure_release_base(p, which),
        );
    }
    let ids = ["backend_image", "frontend_image"];
    for (which, var) in bases.iter().zip(ids) {
        plan.step(
            &format!("Read the identity of {}", images::release_base_tag(p, *which)),
            Action::Capture {
                cmd: p.cmd("docker").args(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}}",
                    &images::release_base_tag(p, *which),
                ]),
                var: var.into(),
                optional: false,
            },
        );
    }
    let archive = c.deploy.build_dir.join("release.tar");
    let dirs =
        [&c.paths.backend, &c.paths.frontend, &c.deploy.dockerfile].map(|d| d.to_string_lossy().replace('\\', "/"));
    plan.step(
        "Archive the commit's files and version.json (the build context)",
        Action::Run(
            p.cmd("git")
                .args(&["archive", "--format=tar", &format!("--add-virtual-file=version.json:{}", version_json(p))])
                .args(&[format!("--output={}", archive.display()), "HEAD".into(), "--".into()])
                .args(&dirs)
                .quiet(),
        ),
    )
    .step(&format!("Build {} and {}", t.moving, t.release), Action::Run(release_build(p, t, &archive)));
    plan
}

/// The commit is what ships: the tree holds nothing uncommitted (it would not ship), prod's
/// branch is pushed, git can archive with version.json, and the release's Dockerfile is there.
fn commit_checks(p: &Project, t: &Target) -> Vec<Check> {
    let c = &p.config;
    let mut checks = vec![
        Check::Tool {
            program: "git".into(),
            version: p.cmd("git").arg("--version"),
            min: Some((2, 38)),
            fix: "install git 2.38 or newer (its `git archive --add-virtual-file` makes the build context)".into(),
        },
        Check::GitClean { root: p.root.clone() },
    ];
    if let Some(branch) = &t.env.branch {
        checks.push(Check::GitBranch { root: p.root.clone(), branch: branch.clone() });
        checks.push(Check::GitPushed { root: p.root.clone() });
    }
    checks.push(Check::File {
        path: p.path(&c.deploy.dockerfile),
        what: "the deployable image's Dockerfile".into(),
        fix: format!("restore it: `git checkout -- {}`", c.deploy.dockerfile.display()),
    });
    let dirs = release_dirs(p);
    let root = p.root.clone();
    checks.push(Check::Judged {
        what: format!("no tracked symlink of {} leads out of the repository", dirs.join(", ")),
        probes: vec![p.cmd("git").args(&["ls-files", "--stage", "--"]).args(&dirs)],
        judge: Judge::new("the targets of the tracked symlinks", move |out| {
            let leaving: Vec<String> = symlinks(&out[0])
                .filter_map(|path| {
                    let target = std::fs::read_link(root.join(path)).ok()?;
                    leaves_the_tree(Path::new(path), &target).then(|| format!("{path} -> {}", target.display()))
                })
                .collect();
            match leaving.is_empty() {
                true => Ok(()),
                false => Err(format!("{}: the release would hold a link to a file outside it", leaving.join(", "))),
            }
        }),
        fix: "make each a file in the repository, or a link within it, and commit that".into(),
    });
    checks
}

/// The repository's paths a release is built from: the backend, the frontend, the Dockerfile.
fn release_dirs(p: &Project) -> Vec<String> {
    let c = &p.config;
    [&c.paths.backend, &c.paths.frontend, &c.deploy.dockerfile].map(|d| d.to_string_lossy().replace('\\', "/")).to_vec()
}

/// The paths of the symlinks in `git ls-files --stage` (mode 120000).
fn symlinks(stage: &str) -> impl Iterator<Item = &str> {
    stage.lines().filter_map(|l| l.strip_prefix("120000 ")).filter_map(|l| l.split_once('\t')).map(|(_, path)| path)
}

/// Whether a symlink at `link` (relative to the repository's root) to `target` leads out of
/// the repository: an absolute target, or one whose `..` climbs above the root.
pub fn leaves_the_tree(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = link.components().count().saturating_sub(1) as i64;
    for part in target.components() {
        match part {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// `docker build` of the release from the archive on stdin, on the two base images, labelled
/// with what it was built from: its environment, commit, and each base image by name and id.
fn release_build(p: &Project, t: &Target, archive: &std::path::Path) -> crate::cmd::Cmd {
    let (backend, frontend) =
        (images::release_base_tag(p, DevImage::Backend), images::release_base_tag(p, DevImage::Frontend));
    let labels = [
        format!("{ENV_LABEL}={}", t.name),
        format!("{COMMIT_LABEL}={}", p.facts.commit),
        format!("{BACKEND_LABEL}={backend} %{{backend_image}}"),
        format!("{FRONTEND_LABEL}={frontend} %{{frontend_image}}"),
    ];
    let mut cmd =
        p.cmd("docker").args(&["build", "--force-rm", "--file", &p.config.deploy.dockerfile.to_string_lossy()]);
    for label in &labels {
        cmd = cmd.args(&["--label", label]);
    }
    cmd.args(&["--build-arg", &format!("BACKEND_BASE={backend}"), "--build-arg", &format!("FRONTEND_BASE={frontend}")])
        .args(&["--tag", &t.moving, "--tag", &t.release, "-"])
        .stdin_file(&p.path(archive))
        .quiet()
}

/// version.json (served at /api/version): the commit and its time, and nothing of the build
/// (its time, the checkout's branch), so that building a commit twice builds one release.
fn version_json(p: &Project) -> String {
    let f = &p.facts;
    serde_json::json!({"commit": f.commit, "commit_time": f.commit_time}).to_string()
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

/// Pushes the release's tags and its base images (so that every machine that builds the
/// commit finds them by their content).
fn push_steps(p: &Project, t: &Target, plan: &mut Plan) {
    plan.check(Check::RegistryLogin { registry: registry_of(&p.config.deploy.repository) });
    let bases = [DevImage::Backend, DevImage::Frontend].map(|which| images::release_base_tag(p, which));
    for tag in [&t.release, &t.moving].into_iter().chain(&bases) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_that_climbs_out_of_the_repository_or_is_absolute_leaves_it() {
        let link = Path::new("src/backend/key");
        assert!(leaves_the_tree(link, Path::new("/home/ana/.ssh/id_ed25519")));
        assert!(leaves_the_tree(link, Path::new("../../../secret")));
        assert!(!leaves_the_tree(link, Path::new("../../config/x")));
        assert!(!leaves_the_tree(link, Path::new("expungeservice/app.py")));
        assert!(leaves_the_tree(Path::new("top"), Path::new("a/../../b")));
        let stage = "100644 aa 0\tsrc/backend/app.py\n120000 bb 0\tsrc/backend/key\n";
        assert_eq!(symlinks(stage).collect::<Vec<_>>(), ["src/backend/key"]);
    }
}
