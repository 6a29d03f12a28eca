//! Images the dev stack runs on. When one can neither be found locally nor pulled (no registry
//! reachable, rate limits, air-gapped), an equivalent with the same name and contract is built
//! from Debian packages (config/images), starting from a debootstrapped Debian base.

use std::path::{Path, PathBuf};

use crate::plan::{Action, Alternative, Fs, Plan};
use crate::project::Project;

/// Uses `image` if local, else pulls it, else does `fallback` (builds an equivalent).
fn ensure(p: &Project, image: &str, fallback: Vec<Action>) -> Action {
    Action::FirstOf(vec![
        Alternative {
            what: format!("use the local image {image}"),
            action: Action::Probe(p.cmd("docker").args(&["image", "inspect", "--format", "{{.Id}}", image])),
        },
        Alternative {
            what: format!("pull {image}"),
            action: Action::Run(p.cmd("docker").args(&["pull", image]).quiet()),
        },
        Alternative { what: format!("build a local {image}"), action: Action::Seq(fallback) },
    ])
}

/// `action`, with the CA bundle (when configured) copied into `context/certs/extra-ca.crt`
/// for the build's package installs, and removed afterwards.
pub fn with_ca(p: &Project, context: &Path, action: Action) -> Action {
    match &p.facts.ca_bundle {
        Some(ca) => Action::WithFile {
            from: ca.clone(),
            to: context.join("certs").join("extra-ca.crt"),
            action: Box::new(action),
        },
        None => action,
    }
}

/// The Debian base of the local equivalents: debootstrap, then `docker import`.
pub fn ensure_debian(p: &Project) -> Action {
    let image = &p.config.images.debian;
    let (rootfs, tarball) = ("target/debian-rootfs", "target/debian-rootfs.tar");
    ensure(
        p,
        image,
        vec![
            Action::Fs(Fs::RemoveDir(p.path(rootfs))),
            Action::Run(p.cmd("debootstrap").args(&["--variant=minbase", "bookworm", rootfs]).quiet()),
            Action::Run(p.cmd("tar").args(&["-C", rootfs, "-cf", tarball, "."]).quiet()),
            // The official image's default command, so `docker run IMAGE` works alike.
            Action::Run(p.cmd("docker").args(&["import", "--change", "CMD [\"bash\"]", tarball, image]).quiet()),
            Action::Fs(Fs::RemoveDir(p.path(rootfs))),
            Action::Fs(Fs::RemoveFile(p.path(tarball))),
        ],
    )
}

/// A base image (python, node, postgres) from its recipe in config/images/NAME.
pub fn ensure_base(p: &Project, recipe: &str, image: &str) -> Action {
    let context = p.config.images.recipes.join(recipe);
    let build = Action::Run(
        p.cmd("docker")
            .args(&[
                "build",
                "--force-rm",
                "--tag",
                image,
                "--build-arg",
                &format!("BASE_IMAGE={}", p.config.images.debian),
                &context.to_string_lossy(),
            ])
            .quiet(),
    );
    ensure(p, image, vec![ensure_debian(p), with_ca(p, &p.path(&context), build)])
}

/// The backend's dev image (its dependencies, built from src/backend) and the frontend's
/// (node_modules, from src/frontend): built by compose on their base images.
fn dev_image(p: &Project, which: DevImage) -> DevImageSpec<'_> {
    let (c, i) = (&p.config, &p.config.images);
    match which {
        DevImage::Backend => DevImageSpec {
            image: &i.backend_dev,
            recipe: "python",
            base: &i.python,
            service: &c.services.backend,
            context: p.path(&c.paths.backend),
        },
        DevImage::Frontend => DevImageSpec {
            image: &i.frontend_dev,
            recipe: "node",
            base: &i.node,
            service: &c.services.frontend,
            context: p.path(&c.paths.frontend),
        },
    }
}

/// A dev image: local, pulled, or built (after its base image).
pub fn ensure_dev(p: &Project, which: DevImage) -> Action {
    let d = dev_image(p, which);
    ensure(p, d.image, vec![ensure_base(p, d.recipe, d.base), dev_image_build(p, &d)])
}

/// `compose build` of a dev image, with the CA bundle in its context when configured.
fn dev_image_build(p: &Project, d: &DevImageSpec) -> Action {
    with_ca(p, &d.context, Action::Run(p.compose(&["build", d.service]).quiet()))
}

/// `backend-build` / `frontend-image`: the base image, then the dev image, built.
pub fn dev_image_plan(p: &Project, which: DevImage) -> Plan {
    let d = dev_image(p, which);
    let mut plan = p.plan();
    plan.checks(p.compose_checks())
        .step(&format!("Ensure the image {}", d.base), ensure_base(p, d.recipe, d.base))
        .step(&format!("Build the dev image {}", d.image), dev_image_build(p, &d));
    plan
}

struct DevImageSpec<'a> {
    image: &'a str,
    /// The base image's recipe in config/images, and its name.
    recipe: &'a str,
    base: &'a str,
    /// The compose service that builds it, from `context`.
    service: &'a str,
    context: PathBuf,
}

/// The two dev images: dependencies only, the source is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevImage {
    Backend,
    Frontend,
}
