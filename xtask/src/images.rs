//! Images the dev stack runs on. When one can neither be found locally nor pulled (no registry
//! reachable, rate limits, air-gapped), an equivalent with the same name and contract is built
//! from Debian packages (config/images), starting from a debootstrapped Debian base.

use std::path::Path;

use crate::plan::{Action, Cmd};
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

    /// The backend's dev image: local, pulled, or built by compose from src/backend.
    pub fn ensure_backend_image(&self) -> Action {
        let images = &self.config.images;
        self.ensure(&images.backend_dev, vec![self.ensure_base("python", &images.python), self.backend_build()])
    }

    /// `compose build` of the backend, with the CA bundle in its context when configured.
    pub fn backend_build(&self) -> Action {
        let build = Action::Run(self.compose(&["build", self.config.services.backend.as_str()]));
        self.with_ca(&self.path(&self.config.paths.backend), build)
    }

    /// The frontend's dev image (node_modules from package-lock.json): local, pulled, or built
    /// by compose from src/frontend.
    pub fn ensure_frontend_image(&self) -> Action {
        let images = &self.config.images;
        self.ensure(&images.frontend_dev, vec![self.ensure_base("node", &images.node), self.frontend_image_build()])
    }

    /// `compose build` of the frontend's dev image, with the CA bundle in its context when configured.
    pub fn frontend_image_build(&self) -> Action {
        let build = Action::Run(self.compose(&["build", self.config.services.frontend.as_str()]));
        self.with_ca(&self.path(&self.config.paths.frontend), build)
    }
}
