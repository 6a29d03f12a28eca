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
            what: format!("the local image {image}"),
            failed: None,
            action: Action::Probe(p.cmd("docker").args(&["image", "inspect", "--format", "{{.Id}}", image])),
        },
        Alternative {
            what: format!("{image} from its registry"),
            failed: Some(format!("{image} cannot be pulled")),
            action: Action::Run(p.cmd("docker").args(&["pull", image]).quiet()),
        },
        Alternative { what: format!("a local build of {image}"), failed: None, action: Action::Seq(fallback) },
    ])
}

/// `action`, with the CA bundle (when configured) copied into `context/certs/extra-ca.crt`
/// for the build's package installs, and removed afterwards.
pub fn with_ca(p: &Project, context: &Path, action: Action) -> Action {
    with_ca_at(p, context.join("certs").join("extra-ca.crt"), action)
}

/// `action`, with the CA bundle (when configured) copied to `to`, and removed afterwards.
fn with_ca_at(p: &Project, to: PathBuf, action: Action) -> Action {
    match &p.facts.ca_bundle {
        Some(ca) => Action::WithFile { from: ca.clone(), to, action: Box::new(action) },
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
    let (c, i, inputs) = (&p.config, &p.config.images, &p.facts.inputs);
    match which {
        DevImage::Backend => DevImageSpec {
            kind: "backend",
            image: &i.backend_dev,
            recipe: "python",
            base: &i.python,
            base_arg: "PYTHON_IMAGE",
            service: &c.services.backend,
            dir: &c.paths.backend,
            context: p.path(&c.paths.backend),
            id: inputs.backend.as_deref(),
        },
        DevImage::Frontend => DevImageSpec {
            kind: "frontend",
            image: &i.frontend_dev,
            recipe: "node",
            base: &i.node,
            base_arg: "NODE_IMAGE",
            service: &c.services.frontend,
            dir: &c.paths.frontend,
            context: p.path(&c.paths.frontend),
            id: inputs.frontend.as_deref(),
        },
    }
}

/// The tag of a release's base image: the deploy repository, the kind and its content id
/// (`recordsponge/expungeservice:backend-0123456789abcdef`).
pub fn release_base_tag(p: &Project, which: DevImage) -> String {
    let d = dev_image(p, which);
    format!("{}:{}-{}", p.config.deploy.repository, d.kind, d.id.unwrap_or("unknown"))
}

/// A release's base image (`release_base_tag`): the dev image's Dockerfile built from the
/// commit's files (its inputs, `git archive`, never this checkout's working tree), used when
/// it is here, else pulled from the deploy repository, else built.
pub fn ensure_release_base(p: &Project, which: DevImage) -> Action {
    let d = dev_image(p, which);
    let tag = release_base_tag(p, which);
    let build_dir = &p.config.deploy.build_dir;
    let archive = build_dir.join(format!("{}.tar", d.kind));
    let ca = build_dir.join("ca").join("extra-ca.crt");
    let mut git = p.cmd("git").args(&["archive", "--format=tar"]).quiet();
    if p.facts.ca_bundle.is_some() {
        // certs/extra-ca.crt in the archive (see src/backend/certs/README.md), the tree's own files at its root.
        git = git.args(&["--prefix=certs/", &format!("--add-file={}", ca.display()), "--prefix="]);
    }
    let dir = d.dir.to_string_lossy().replace('\\', "/");
    let git = git.args(&[format!("--output={}", archive.display()), format!("HEAD:{dir}")]);
    let label = format!("org.recordsponge.inputs={}-{}", d.kind, d.id.unwrap_or("unknown"));
    let build = p
        .cmd("docker")
        .args(&["build", "--force-rm", "--build-arg", &format!("{}={}", d.base_arg, d.base)])
        .args(&["--label", &label, "--tag", &tag, "-"])
        .stdin_file(&p.path(&archive))
        .quiet();
    let archive_step = with_ca_at(p, p.path(&ca), Action::Run(git));
    ensure(p, &tag, vec![ensure_base(p, d.recipe, d.base), archive_step, Action::Run(build)])
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
    /// `backend` or `frontend`: names its release base image.
    kind: &'a str,
    image: &'a str,
    /// The base image's recipe in config/images, its name, and the Dockerfile's argument for it.
    recipe: &'a str,
    base: &'a str,
    base_arg: &'a str,
    /// The compose service that builds it, from `context` (`dir` in the repository).
    service: &'a str,
    dir: &'a Path,
    context: PathBuf,
    /// The content id of its inputs at the commit.
    id: Option<&'a str>,
}

/// The two dev images: dependencies only, the source is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevImage {
    Backend,
    Frontend,
}
