//! A missing Docker engine: on Debian and Ubuntu, `new` offers to install it with apt-get
//! (docker.io and docker-compose, plus debootstrap for local base images) and start it.

use std::time::Duration;

use crate::checks::Check;
use crate::cmd::Cmd;
use crate::plan::{Action, Expect, Plan, Probe, Wait};
use crate::project::{EngineSetup, Project};

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
        Action::wait(Wait {
            probe: Probe::Cmd {
                cmd: admin("docker").args(&["info", "--format", "{{.ServerVersion}}"]),
                expect: Expect::Succeeds,
            },
            timeout: Duration::from_secs(60),
            service: "the Docker daemon".into(),
            logs: Cmd::new("tail", &p.root).args(&["-n", "20", "target/dockerd.log"]),
            states: None,
        }),
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
