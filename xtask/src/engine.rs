//! A missing Docker engine: on Debian and Ubuntu, `new` offers to install it with apt-get
//! (docker.io and docker-compose, plus debootstrap for local base images) and start it.

use std::path::Path;
use std::time::Duration;

use crate::checks::Check;
use crate::cmd::Cmd;
use crate::plan::{Action, Expect, Plan};
use crate::project::Project;

/// Whether this machine has a Docker engine, and whether `new` can install one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSetup {
    /// An engine is installed here, or provided elsewhere (Docker Desktop, DOCKER_HOST).
    Present,
    /// Missing, on Debian or Ubuntu: apt-get installs it, as root or through sudo.
    Installable { sudo: bool, systemd: bool },
    /// Missing, and not installable from here: the docker checks say how.
    Missing,
}

impl EngineSetup {
    pub fn probe() -> EngineSetup {
        if !cfg!(target_os = "linux") || std::env::var_os("DOCKER_HOST").is_some() {
            return EngineSetup::Present;
        }
        let dockerd = which::which("dockerd").is_ok()
            || ["/usr/bin/dockerd", "/usr/sbin/dockerd"].iter().any(|p| Path::new(p).exists());
        if dockerd {
            return EngineSetup::Present;
        }
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let apt_family = os_release.lines().any(|l| {
            (l.starts_with("ID=") || l.starts_with("ID_LIKE=")) && (l.contains("debian") || l.contains("ubuntu"))
        });
        let root = is_root();
        if !apt_family || which::which("apt-get").is_err() || (!root && which::which("sudo").is_err()) {
            return EngineSetup::Missing;
        }
        EngineSetup::Installable { sudo: !root, systemd: Path::new("/run/systemd/system").exists() }
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// Adds the engine's installation to `plan` when it is missing and installable. Returns false
/// when nothing was added; true when the engine is installed by the plan; with sudo, the plan
/// then ends there (the docker group applies from the next login).
pub fn plan_install(p: &Project, plan: &mut Plan) -> bool {
    let EngineSetup::Installable { sudo, systemd } = p.facts.engine else { return false };
    let admin = |program: &str| if sudo { p.cmd("sudo").arg(program) } else { p.cmd(program) };
    let packages = ["docker.io", "docker-compose", "debootstrap"];
    plan.check(Check::Confirm {
        prompt: format!(
            "install the Docker engine with apt-get ({}){} and start it",
            packages.join(" "),
            if sudo { " through sudo" } else { "" }
        ),
    })
    .step("Update the package lists", Action::Run(admin("apt-get").arg("update").quiet()))
    .step(
        "Install the Docker engine and compose",
        Action::Run(admin("apt-get").args(&["install", "-y"]).args(&packages).quiet()),
    );
    let start = if systemd {
        Action::Run(admin("systemctl").args(&["start", "docker"]))
    } else {
        Action::Spawn { cmd: admin("dockerd"), log: p.path("target/dockerd.log") }
    };
    plan.step("Start the Docker daemon", start).step(
        "Wait for the Docker daemon",
        Action::WaitCmd {
            expect: Expect::Succeeds,
            probe: admin("docker").args(&["info", "--format", "{{.ServerVersion}}"]),
            timeout: Duration::from_secs(60),
            service: "the Docker daemon".into(),
            logs: Cmd::new("tail", &p.root).args(&["-n", "20", "target/dockerd.log"]),
        },
    );
    if sudo {
        let user = &p.facts.user;
        plan.step(
            &format!("Let {user} use Docker (the docker group)"),
            Action::Run(p.cmd("sudo").args(&["usermod", "--append", "--groups", "docker", user])),
        )
        .step(
            "Docker is installed",
            Action::Say(format!(
                "Docker is installed and running. {user} is now in the docker group, which applies from the next \
                     login: log out and in again (or run `newgrp docker`), then run `cargo xtask new` again."
            )),
        );
    }
    true
}
