//! Images the dev stack runs on. When one can neither be found locally nor pulled (no registry
//! reachable, rate limits, air-gapped), an equivalent with the same name and contract is built
//! from Debian packages (config/images), starting from a debootstrapped Debian base.

use std::path::{Path, PathBuf};

use crate::plan::{Action, Cmd, Plan};
use crate::project::Project;

impl Project {
    fn inspect(&self, image: &str) -> Cmd {
        self.cmd("docker").args(&["image", "inspect", "--format", "{{.Id}}", image])
    }

    /// Uses `image` if local, else pulls it, else does `fallback`.
    fn ensure(&self, image: &str, fallback: Vec<Action>) -> Action {
        Action::EnsureImage {
            image: image.to_string(),
            inspect: self.inspect(image),
            pull: self.cmd("docker").args(&["pull", image]),
            fallback,
        }
    }

    /// `action`, with the CA bundle (when configured) copied into `context/certs/extra-ca.crt`
    /// for the build's package installs, and removed afterwards.
    pub fn with_ca(&self, context: &Path, action: Action) -> Action {
        match &self.facts.ca_bundle {
            Some(ca) => Action::WithFile {
                from: ca.clone(),
                to: context.join("certs").join("extra-ca.crt"),
                action: Box::new(action),
            },
            None => action,
        }
    }

    /// The Debian base of the local equivalents: debootstrap, then `docker import`.
    fn ensure_debian(&self) -> Action {
        let image = &self.config.images.debian;
        let (rootfs, tarball) = ("target/debian-rootfs", "target/debian-rootfs.tar");
        self.ensure(
            image,
            vec![
                Action::RemoveDir(self.path(rootfs)),
                Action::Run(self.cmd("debootstrap").args(&["--variant=minbase", "bookworm", rootfs])),
                Action::Run(self.cmd("tar").args(&["-C", rootfs, "-cf", tarball, "."])),
                // The official image's default command, so `docker run IMAGE` works alike.
                Action::Run(self.cmd("docker").args(&["import", "--change", "CMD [\"bash\"]", tarball, image])),
                Action::RemoveDir(self.path(rootfs)),
                Action::RemoveFile(self.path(tarball)),
            ],
        )
    }

    /// A base image (python, node, postgres) from its recipe in config/images/NAME.
    pub fn ensure_base(&self, recipe: &str, image: &str) -> Action {
        let context = self.config.images.recipes.join(recipe);
        let build = Action::Run(self.cmd("docker").args(&[
            "build",
            "--force-rm",
            "--tag",
            image,
            "--build-arg",
            &format!("BASE_IMAGE={}", self.config.images.debian),
            &context.to_string_lossy(),
        ]));
        self.ensure(image, vec![self.ensure_debian(), self.with_ca(&self.path(&context), build)])
    }

    /// The backend's dev image (its dependencies, built from src/backend) and the frontend's
    /// (node_modules, from src/frontend): built by compose on their base images.
    fn dev_image(&self, which: DevImage) -> DevImageSpec<'_> {
        let (c, i) = (&self.config, &self.config.images);
        match which {
            DevImage::Backend => DevImageSpec {
                image: &i.backend_dev,
                recipe: "python",
                base: &i.python,
                service: &c.services.backend,
                context: self.path(&c.paths.backend),
            },
            DevImage::Frontend => DevImageSpec {
                image: &i.frontend_dev,
                recipe: "node",
                base: &i.node,
                service: &c.services.frontend,
                context: self.path(&c.paths.frontend),
            },
        }
    }

    /// A dev image: local, pulled, or built (after its base image).
    pub fn ensure_dev_image(&self, which: DevImage) -> Action {
        let d = self.dev_image(which);
        self.ensure(d.image, vec![self.ensure_base(d.recipe, d.base), self.dev_image_build(&d)])
    }

    /// `compose build` of a dev image, with the CA bundle in its context when configured.
    fn dev_image_build(&self, d: &DevImageSpec) -> Action {
        self.with_ca(&d.context, Action::Run(self.compose(&["build", d.service])))
    }

    /// `backend-build` / `frontend-image`: the base image, then the dev image, built.
    pub fn dev_image_plan(&self, command: &str, which: DevImage) -> Plan {
        let d = self.dev_image(which);
        let mut plan = self.plan(command);
        plan.checks(self.compose_checks())
            .step(&format!("Ensure the image {}", d.base), self.ensure_base(d.recipe, d.base))
            .step(&format!("Build the dev image {}", d.image), self.dev_image_build(&d));
        plan
    }
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
