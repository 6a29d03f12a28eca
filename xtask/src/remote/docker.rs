//! Docker on a host: the words of each docker command a deploy runs there, and what the code
//! reads from docker's JSON, as types (`docker ps` and `docker image inspect`), tested against
//! output captured from a real engine (testdata/).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use super::ssh::words;
use super::target::{BACKEND_LABEL, COMMIT_LABEL, FRONTEND_LABEL};

/// How long a release gets to finish its requests when it is stopped.
const STOP_SECONDS: &str = "30";

pub fn pull(image: &str) -> Vec<String> {
    words(&["docker", "pull", image])
}

/// `docker image inspect` of an image, as JSON (`Image`).
pub fn inspect_image(image: &str) -> Vec<String> {
    words(&["docker", "image", "inspect", "--format", "{{json .}}", image])
}

/// An image's labels, as JSON (`built_from`).
pub fn inspect_labels(image: &str) -> Vec<String> {
    words(&["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image])
}

/// What a release image says it was built from (its labels, `inspect_labels`): its commit and
/// its base images, by tag and image id.
pub fn built_from(labels: &str) -> Option<String> {
    let labels: BTreeMap<String, String> = serde_json::from_str(labels.trim()).ok()?;
    let commit = labels.get(COMMIT_LABEL)?;
    let mut text = format!("commit {commit}");
    for (label, what) in [(BACKEND_LABEL, "backend base"), (FRONTEND_LABEL, "frontend base")] {
        if let Some(base) = labels.get(label) {
            text.push_str(&format!(", {what} {base}"));
        }
    }
    Some(text)
}

/// Every container, one JSON object a line (`parse_containers`).
pub fn ps_all() -> Vec<String> {
    words(&["docker", "ps", "--all", "--no-trunc", "--format", "{{json .}}"])
}

/// Stops a container, letting it finish its requests first.
pub fn stop(name: &str) -> Vec<String> {
    words(&["docker", "stop", "--time", STOP_SECONDS, name])
}

pub fn remove(name: &str) -> Vec<String> {
    words(&["docker", "rm", name])
}

pub fn remove_force(name: &str) -> Vec<String> {
    words(&["docker", "rm", "--force", name])
}

/// The state of the container named `name` (running, restarting, exited, ...).
pub fn states(name: &str) -> Vec<String> {
    words(&["docker", "ps", "--all", "--filter", &format!("name=^{name}$"), "--format", "{{.State}}"])
}

/// The last lines of a container's logs.
pub fn logs_tail(name: &str) -> Vec<String> {
    words(&["docker", "logs", "--tail", "40", name])
}

/// Removes the images labelled with `label` that no container uses.
pub fn prune_images(label: &str) -> Vec<String> {
    words(&["docker", "image", "prune", "--all", "--force", "--filter", &format!("label={label}")])
}

/// The names of an env file's settings, as docker reads the file: each line with its value
/// replaced by nothing (`NAME=`), so that no value leaves the host; comments and lines without
/// `=` as they are.
pub fn env_file_names(file: &str) -> Vec<String> {
    words(&["sed", "-e", "s/=.*/=/", "--", file])
}

/// Whether docker would read an env file (`env_file_names`'s output), and whether it sets every
/// name in `required`: what is wrong, by line number and name only (never a value).
pub fn env_file_problems(names: &str, required: &[String]) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut set = std::collections::BTreeSet::new();
    for (number, line) in names.lines().enumerate().map(|(i, l)| (i + 1, l.trim_start())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, valued) = match line.split_once('=') {
            Some((name, _)) => (name.trim_start_matches([' ', '\t']), true),
            None => (line, false),
        };
        if name.is_empty() {
            problems.push(format!("line {number} has no name before its `=`"));
        } else if name.contains([' ', '\t']) {
            let first = name.split([' ', '\t']).next().unwrap_or_default();
            problems.push(format!(
                "line {number} starts `{first} …`: a name with a space in it, which docker refuses (no `export`, \
                 no spaces before `=`)"
            ));
        } else if valued {
            set.insert(name);
        }
    }
    let missing: Vec<&str> = required.iter().map(String::as_str).filter(|k| !set.contains(k)).collect();
    if !missing.is_empty() {
        problems.push(format!("it sets no {}", missing.join(", ")));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}

/// A release container: what `docker run` needs to start one.
pub struct Release<'a> {
    pub name: &'a str,
    pub labels: &'a [String],
    pub env: &'a [String],
    pub env_file: &'a str,
    /// `ADDRESS:PORT:CONTAINER_PORT`.
    pub publish: &'a str,
    pub syslog_facility: &'a str,
    pub syslog_tag: &'a str,
    pub image: &'a str,
}

/// `docker run` of a release: detached, its settings from the env file, published on loopback,
/// restarted unless stopped, logging to syslog.
pub fn run_release(r: &Release) -> Vec<String> {
    let mut argv = words(&["docker", "run", "--detach", "--name", r.name]);
    for label in r.labels {
        argv.extend(["--label".to_string(), label.clone()]);
    }
    for var in r.env {
        argv.extend(["--env".to_string(), var.clone()]);
    }
    argv.extend(words(&[
        "--env-file",
        r.env_file,
        "--publish",
        r.publish,
        "--restart",
        "unless-stopped",
        "--log-driver",
        "syslog",
        "--log-opt",
        &format!("syslog-facility={}", r.syslog_facility),
        "--log-opt",
        &format!("tag={}", r.syslog_tag),
        r.image,
    ]));
    argv
}

/// A line of `docker ps --format '{{json .}}'`: the fields the deploy reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PsLine {
    names: String,
    state: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    ports: String,
    created_at: String,
    /// `Up 5 minutes (healthy)`, `Exited (137) 2 seconds ago`.
    #[serde(default)]
    status: String,
}

/// A container on the host, from `docker ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// running, exited, created, restarting, paused, dead.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    /// The host ports it publishes.
    pub ports: Vec<u16>,
    pub created: String,
    /// What docker says of it: how long it has run, its health check's verdict.
    pub status: String,
}

/// Every container of `ps_all` (one JSON object a line).
pub fn parse_containers(text: &str) -> Result<Vec<Container>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let ps: PsLine =
                serde_json::from_str(line).map_err(|e| anyhow!("cannot read `docker ps` ({e}): {line}"))?;
            Ok(Container {
                labels: labels(&ps.labels),
                ports: published_ports(&ps.ports),
                name: ps.names,
                state: ps.state,
                created: ps.created_at,
                status: ps.status,
            })
        })
        .collect()
}

/// `k=v,k=v` as docker ps prints labels; a value holding a comma continues the previous label.
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut last: Option<String> = None;
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match (part.split_once('='), &last) {
            (Some((k, v)), _) => {
                labels.insert(k.to_string(), v.to_string());
                last = Some(k.to_string());
            }
            (None, Some(k)) => {
                labels.entry(k.clone()).and_modify(|v: &mut String| v.push_str(&format!(",{part}")));
            }
            (None, None) => {}
        }
    }
    labels
}

/// The host ports of `127.0.0.1:3032->5000/tcp, :::80->80/tcp, 5000/tcp`.
fn published_ports(text: &str) -> Vec<u16> {
    text.split(", ")
        .filter_map(|p| p.split_once("->"))
        .filter_map(|(host, _)| host.rsplit(':').next()?.parse().ok())
        .collect()
}

/// What `docker image inspect --format '{{json .}}'` says that the deploy reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    #[serde(default)]
    pub repo_digests: Vec<String>,
    #[serde(default)]
    pub config: ImageConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The image's digest in `repository` and the commit it was built from (its label).
pub fn identity(inspect: &str, repository: &str) -> Result<(String, String)> {
    let image: Image = serde_json::from_str(inspect).map_err(|e| anyhow!("cannot read `docker image inspect`: {e}"))?;
    let Some(digest) = image.repo_digests.iter().find(|d| d.split('@').next() == Some(repository)) else {
        bail!(
            "the image has no digest in {repository} ({}): it was not pulled from that repository",
            if image.repo_digests.is_empty() { "none at all".to_string() } else { image.repo_digests.join(", ") }
        );
    };
    let commit = image.config.labels.as_ref().and_then(|l| l.get(COMMIT_LABEL)).cloned();
    Ok((digest.clone(), commit.unwrap_or_else(|| "unknown".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_lines_are_read_with_labels_and_published_ports() {
        let line = r#"{"Names":"a","State":"running","Labels":"x=1,desc=a,b,y=2","Ports":"127.0.0.1:3032->5000/tcp, :::80->80/tcp, 9/udp","CreatedAt":"t"}"#;
        let c = &parse_containers(line).unwrap()[0];
        assert_eq!(c.ports, [3032, 80]);
        assert_eq!(c.labels["desc"], "a,b");
        assert_eq!(c.labels["y"], "2");
        assert!(parse_containers("not json").unwrap_err().to_string().starts_with("cannot read `docker ps`"));
    }

    #[test]
    fn real_docker_ps_output_is_read() {
        let containers = parse_containers(include_str!("testdata/docker-ps.jsonl")).unwrap();
        let release = containers.iter().find(|c| c.name == "recordsponge-staging-20261204t120000z-7").unwrap();
        assert_eq!(release.state, "running");
        assert_eq!(release.ports, [3032]);
        assert_eq!(release.labels[super::super::target::ENV_LABEL], "staging");
        assert!(release.labels[super::super::target::DIGEST_LABEL].starts_with("127.0.0.1:5099/rs@sha256:"));
        let stopped = containers.iter().find(|c| c.name == "recordsponge-staging-old").unwrap();
        assert_eq!((stopped.state.as_str(), stopped.ports.len()), ("exited", 0));
        assert!(stopped.created.starts_with("20"), "{}", stopped.created);
    }

    #[test]
    fn an_image_is_identified_by_its_digest_in_the_repository_and_its_commit_label() {
        let inspect = r#"{"Id":"sha256:1","RepoDigests":["other/x@sha256:9","rs/app@sha256:abc"],"Config":{"Labels":{"org.recordsponge.commit":"0123abcd"}}}"#;
        assert_eq!(identity(inspect, "rs/app").unwrap(), ("rs/app@sha256:abc".into(), "0123abcd".into()));
        let unlabelled = r#"{"RepoDigests":["rs/app@sha256:abc"],"Config":{"Labels":null}}"#;
        assert_eq!(identity(unlabelled, "rs/app").unwrap().1, "unknown");
        let local = r#"{"RepoDigests":[],"Config":{}}"#;
        assert!(identity(local, "rs/app").unwrap_err().to_string().contains("no digest in rs/app (none at all)"));
        let real = include_str!("testdata/image-inspect.json");
        let (digest, commit) = identity(real, "127.0.0.1:5099/rs").unwrap();
        assert!(digest.starts_with("127.0.0.1:5099/rs@sha256:") && commit == "c0ffee", "{digest} {commit}");
    }

    #[test]
    fn an_env_file_is_judged_by_its_names_as_docker_reads_it() {
        let required = ["PGHOST".to_string(), "PGPASSWORD".to_string()];
        let good = "# the app's settings\n\nPGHOST=\n  PGPASSWORD=\nPASSED_THROUGH\n";
        assert_eq!(env_file_problems(good, &required), Ok(()));
        let bad = "PGHOST=\nexport RS_TRIAL_BAD=\n=\n";
        assert_eq!(
            env_file_problems(bad, &required).unwrap_err(),
            "line 2 starts `export …`: a name with a space in it, which docker refuses (no `export`, no spaces \
             before `=`); line 3 has no name before its `=`; it sets no PGPASSWORD"
        );
        // A name without `=` takes its value from the environment of docker's client: not set here.
        assert!(env_file_problems("PGHOST=\nPGPASSWORD\n", &required).unwrap_err().contains("sets no PGPASSWORD"));
        assert_eq!(env_file_names("/etc/e.env"), ["sed", "-e", "s/=.*/=/", "--", "/etc/e.env"]);
    }

    #[test]
    fn a_release_says_what_it_was_built_from() {
        let labels = r#"{"org.recordsponge.commit":"c0ffee","org.recordsponge.backend-base":"rs:backend-1 sha256:b","org.recordsponge.frontend-base":"rs:frontend-2 sha256:f","other":"x"}"#;
        assert_eq!(
            built_from(labels).unwrap(),
            "commit c0ffee, backend base rs:backend-1 sha256:b, frontend base rs:frontend-2 sha256:f"
        );
        assert_eq!(built_from("null"), None, "an image without labels");
        assert_eq!(built_from(""), None, "nothing read");
        assert_eq!(inspect_labels("i").join(" "), "docker image inspect --format {{json .Config.Labels}} i");
    }

    #[test]
    fn a_release_runs_detached_with_its_labels_env_file_loopback_port_and_syslog() {
        let labels = ["org.recordsponge.env=staging".to_string()];
        let env = ["RS_RELEASE=r1".to_string()];
        let argv = run_release(&Release {
            name: "r1",
            labels: &labels,
            env: &env,
            env_file: "/etc/recordsponge/staging.env",
            publish: "127.0.0.1:3032:5000",
            syslog_facility: "local1",
            syslog_tag: "recordsponge-staging",
            image: "rs@sha256:abc",
        });
        assert_eq!(
            argv.join(" "),
            "docker run --detach --name r1 --label org.recordsponge.env=staging --env RS_RELEASE=r1 \
             --env-file /etc/recordsponge/staging.env --publish 127.0.0.1:3032:5000 --restart unless-stopped \
             --log-driver syslog --log-opt syslog-facility=local1 --log-opt tag=recordsponge-staging rs@sha256:abc"
        );
        assert_eq!(stop("r1"), ["docker", "stop", "--time", "30", "r1"]);
        assert_eq!(remove("r1"), ["docker", "rm", "r1"]);
        assert_eq!(remove_force("r1"), ["docker", "rm", "--force", "r1"]);
        assert_eq!(logs_tail("r1"), ["docker", "logs", "--tail", "40", "r1"]);
        assert_eq!(states("r1"), ["docker", "ps", "--all", "--filter", "name=^r1$", "--format", "{{.State}}"]);
        assert_eq!(pull("i:t"), ["docker", "pull", "i:t"]);
        assert_eq!(inspect_image("i:t"), ["docker", "image", "inspect", "--format", "{{json .}}", "i:t"]);
        assert_eq!(ps_all(), ["docker", "ps", "--all", "--no-trunc", "--format", "{{json .}}"]);
        assert_eq!(
            prune_images("org.recordsponge.env=staging"),
            ["docker", "image", "prune", "--all", "--force", "--filter", "label=org.recordsponge.env=staging"]
        );
    }
}
