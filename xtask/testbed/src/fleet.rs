//! A fleet of hosts as containers, for the deploy suites and `bench deploy`: each host is a
//! container running its own Docker engine, sshd and nginx (xtask/testbed/images/host), set up
//! by the same script an operator runs on a real host (config/nginx/setup-host.sh), reached
//! over ssh on a loopback port; beside them a registry with a login (xtask/testbed/images/
//! registry), on one network. Nothing on this machine changes but these containers, their
//! network and volumes, the image tags made for the registry, and a scratch directory: all
//! removed when the fleet is dropped.
//!
//! Images reach the hosts' engines through the registry under the same name this machine pushes
//! to (`127.0.0.1:PORT/...`): in each host, 127.0.0.1:PORT is forwarded to the registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use xtask::project::Project;

/// The deploy user of the fleet's hosts.
pub const USER: &str = "rsdeploy";

/// The domain of the fleet's hosts on its network: host `NAME` is also `NAME.DOMAIN` there (a
/// name an ACME server accepts).
pub const DOMAIN: &str = "example.com";

/// An ACME server on the fleet's network (xtask/testbed/images/pebble).
pub struct Pebble {
    /// Its directory, for `tls.directory`.
    pub directory: String,
    /// The CA of its own https, a file of this machine, for `tls.ca`.
    pub ca: PathBuf,
    /// The root the certificates it issues chain to (PEM).
    pub root: String,
}

pub struct Fleet {
    /// Names everything this fleet made: containers, network, volumes; a suite that builds with
    /// compose uses it as its compose project, removed with the fleet.
    pub prefix: String,
    /// Scratch: keys, the ssh config, the registry's password and login.
    pub dir: PathBuf,
    /// `127.0.0.1:PORT`, for this machine and, through a forward, for the hosts.
    pub registry: String,
    /// A Docker client configuration holding the registry's login (for pushes from here).
    pub docker_config: PathBuf,
    /// An ssh config with one `Host` block per host (its name).
    pub ssh_config: PathBuf,
    pub hosts: Vec<Host>,
    sh: Shell,
}

pub struct Host {
    /// The container's name, its hostname and its ssh alias.
    pub name: String,
    /// Ports published on 127.0.0.1: the host's port -> this machine's.
    pub ports: BTreeMap<u16, u16>,
}

/// A test image, tagged by the content of its directory so that a change rebuilds it.
fn ensure_image(sh: &Shell, root: &Path, name: &str) -> Result<String> {
    let dir = root.join("xtask/testbed/images").join(name);
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let hashes = cmd!(sh, "git hash-object {files...}").read()?;
    let hash = cmd!(sh, "git hash-object --stdin").stdin(hashes).read()?;
    let image = format!("rs-testbed-{name}:{}", &hash[..12]);
    if cmd!(sh, "docker image inspect {image}").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        eprintln!("fleet: building {image} (xtask/testbed/images/{name})");
        cmd!(sh, "docker build --quiet --force-rm --tag {image} --build-arg BASE_IMAGE=debian:bookworm-slim {dir}")
            .ignore_stdout()
            .run()?;
    }
    Ok(image)
}

/// A secret of 24 letters and digits, from the kernel's randomness.
fn secret() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 64];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Ok(bytes.iter().filter(|b| (**b as usize) < 248).take(24).map(|b| ALPHABET[*b as usize % 62] as char).collect())
}

impl Fleet {
    /// Starts a registry and `count` hosts of the test image `image` (xtask/testbed/images:
    /// `host`, packages installed; `bare`, sshd alone) (`postgres`: the one of that index with a
    /// PostgreSQL server for the app), each publishing `publish` (and 22) on loopback. The images
    /// are built first when missing (from the local Debian base, which is made the way `new`
    /// makes it).
    pub fn start(
        p: &Project,
        prefix: &str,
        image: &str,
        count: usize,
        postgres: Option<usize>,
        publish: &[u16],
    ) -> Result<Fleet> {
        let started = Instant::now();
        let sh = Shell::new()?;
        let mut base = p.plan();
        base.command = "fleet: the Debian base image".into();
        base.step("Ensure the Debian base image", xtask::images::ensure_debian(p));
        xtask::run::execute(&base, &xtask::run::Options { yes: true, verbose: false })?;
        let (host_image, registry_image) =
            (ensure_image(&sh, &p.root, image)?, ensure_image(&sh, &p.root, "registry")?);

        let dir = std::env::temp_dir().join(prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("docker-config"))?;
        let mut fleet = Fleet {
            prefix: prefix.to_string(),
            registry: String::new(),
            docker_config: dir.join("docker-config"),
            ssh_config: dir.join("ssh_config"),
            dir,
            hosts: Vec::new(),
            sh,
        };
        // From here on, whatever fails, dropping the fleet removes what it made.
        let sh = &fleet.sh;
        let net = format!("{prefix}-net");
        let subnet = network(sh, &net)?;

        let password = secret()?;
        let password_file = fleet.dir.join("registry-password");
        std::fs::write(&password_file, &password)?;
        let registry_name = format!("{prefix}-registry");
        let mount = format!("{}:/run/secrets/registry-password:ro", password_file.display());
        cmd!(sh, "docker run --detach --name {registry_name} --network {net} --publish 127.0.0.1::5000 --env RSX_REGISTRY_USER=rstest --volume {mount} {registry_image}")
            .quiet()
            .ignore_stdout()
            .run()?;
        let port = published(sh, &registry_name, 5000)?;
        fleet.registry = format!("127.0.0.1:{port}");
        let registry = fleet.registry.clone();
        let login = |sh: &Shell| {
            cmd!(sh, "docker login --username rstest --password-stdin {registry}")
                .env("DOCKER_CONFIG", &fleet.docker_config)
                .stdin(&password)
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
        };
        wait(|| login(sh).is_ok(), "the registry to take its login")?;

        let key = fleet.dir.join("id_ed25519");
        cmd!(sh, "ssh-keygen -q -t ed25519 -N '' -C rs-fleet -f {key}").run()?;
        let mut ssh_config = String::new();
        let mut known_hosts = String::new();
        for i in 0..count {
            let name = format!("{prefix}-{}", i + 1);
            let volume = format!("{name}-docker:/var/lib/docker");
            let forward = format!("RSX_REGISTRY_FORWARD={port}:{registry_name}:5000");
            let pg = format!("RSX_POSTGRES={}", u8::from(postgres == Some(i)));
            // Its address and ports fixed, as a real host's: a host that crashes and comes back keeps
            // them (the Swarm's addresses, the ssh config). /run is a tmpfs, as on a real host: a
            // crash leaves no stale pid file for the next start.
            let ip = format!("{subnet}.{}", 10 + i);
            let mut ports = BTreeMap::new();
            for p in std::iter::once(22).chain(publish.iter().copied()) {
                ports.insert(p, free_port()?);
            }
            let publish_args: Vec<String> =
                ports.iter().map(|(inside, outside)| format!("--publish=127.0.0.1:{outside}:{inside}")).collect();
            let alias = format!("{name}.{DOMAIN}");
            cmd!(
                sh,
                "docker run --detach --name {name} --hostname {name} --network {net} --ip {ip} --network-alias {alias}
                    --cap-add SYS_ADMIN --cap-add NET_ADMIN
                    --security-opt seccomp=unconfined --security-opt apparmor=unconfined
                    --volume /sys/fs/cgroup:/sys/fs/cgroup:rw --volume {volume} --tmpfs /run:exec
                    --env {forward} --env {pg} {publish_args...} {host_image}"
            )
            .quiet()
            .ignore_stdout()
            .run()?;
            fleet.hosts.push(Host { name: name.clone(), ports });
        }
        for host in &fleet.hosts {
            let name = &host.name;
            wait(
                || cmd!(sh, "docker exec {name} test -e /run/rsx-host.ready").quiet().run().is_ok(),
                "the hosts to start",
            )?;
            let key = cmd!(sh, "docker exec {name} cat /etc/ssh/ssh_host_ed25519_key.pub").read()?;
            let key: Vec<&str> = key.split_whitespace().take(2).collect();
            known_hosts.push_str(&format!("[127.0.0.1]:{} {}\n", host.ports[&22], key.join(" ")));
            ssh_config.push_str(&format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {}\n  User {USER}\n  IdentityFile {dir}/id_ed25519\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                host.ports[&22],
                dir = fleet.dir.display()
            ));
        }
        std::fs::write(fleet.dir.join("known_hosts"), known_hosts)?;
        std::fs::write(&fleet.ssh_config, ssh_config)?;
        eprintln!("fleet: a registry and {count} host(s) up in {:.1}s", started.elapsed().as_secs_f64());
        Ok(fleet)
    }

    /// Runs a command in a host as root (or `user`), `stdin` written to it; its stdout.
    pub fn exec(&self, host: &str, user: Option<&str>, argv: &[&str], stdin: Option<&str>) -> Result<String> {
        let sh = &self.sh;
        // docker exec keeps root's HOME for another user: the deploy user's docker would not
        // find its registry login.
        let home = format!("HOME=/home/{USER}");
        let user = match user {
            Some(USER) => vec!["--user", USER, "--env", &home],
            Some(u) => vec!["--user", u],
            None => vec![],
        };
        let out = cmd!(sh, "docker exec --interactive {user...} {host} {argv...}")
            .stdin(stdin.unwrap_or(""))
            .quiet()
            .ignore_status()
            .output()?;
        if !out.status.success() {
            bail!("`docker exec {host} {}` failed: {}", argv.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets a host up as an operator would (config/nginx/README.md): setup-host.sh with the
    /// fleet's key for the deploy user, the environments `envs` (`NAME=DOMAIN@PORT` each; no
    /// nginx sites for a Swarm node, `nginx` false), then the deploy user's registry login.
    pub fn set_up(&self, p: &Project, host: &str, envs: &[String], nginx: bool) -> Result<()> {
        let started = Instant::now();
        let sh = &self.sh;
        for dir in ["nginx", "swarm"] {
            let files = p.root.join("config").join(dir);
            cmd!(sh, "docker cp {files} {host}:/root/{dir}").quiet().run()?;
        }
        let key = std::fs::read_to_string(self.dir.join("id_ed25519.pub"))?;
        self.exec(host, None, &["dd", "of=/root/deploy-keys.pub", "status=none"], Some(&key))?;
        let mut argv = vec![
            "bash",
            "/root/nginx/setup-host.sh",
            "--no-install",
            "--http-only",
            "--user",
            USER,
            "--keys",
            "/root/deploy-keys.pub",
        ];
        if !nginx {
            argv.push("--no-nginx");
        }
        for env in envs {
            argv.extend(["--env", env.as_str()]);
        }
        self.exec(host, None, &argv, None).context("config/nginx/setup-host.sh on a fleet host")?;
        self.registry_login(host)?;
        eprintln!("fleet: {host} set up in {:.1}s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The deploy user's login to the fleet's registry, on a host set up already.
    pub fn registry_login(&self, host: &str) -> Result<()> {
        let password = std::fs::read_to_string(self.dir.join("registry-password"))?;
        self.exec(
            host,
            Some(USER),
            &["docker", "login", "--username", "rstest", "--password-stdin", &self.registry],
            Some(&password),
        )
        .context("the deploy user's registry login")?;
        Ok(())
    }

    /// Starts Pebble, Let's Encrypt's test ACME server, on the fleet's network as `pebble`.
    pub fn pebble(&self, p: &Project) -> Result<Pebble> {
        let sh = &self.sh;
        let image = ensure_image(sh, &p.root, "pebble")?;
        let (name, net) = (format!("{}-pebble", self.prefix), format!("{}-net", self.prefix));
        cmd!(sh, "docker run --detach --name {name} --network {net} --network-alias pebble {image}")
            .quiet()
            .ignore_stdout()
            .run()?;
        let root = || {
            cmd!(sh, "docker exec {name} curl --silent --fail --cacert /pebble/ca.pem https://localhost:15000/roots/0")
                .quiet()
                .read()
        };
        wait(|| root().is_ok(), "Pebble to answer")?;
        let ca = self.dir.join("acme-ca.pem");
        let from = format!("{name}:/pebble/ca.pem");
        cmd!(sh, "docker cp {from} {ca}").quiet().run()?;
        Ok(Pebble { directory: "https://pebble:14000/dir".into(), ca, root: root()? })
    }

    /// Authorizes the fleet's key for root on a host, as a provider does for a new machine:
    /// `ssh root@HOST` then works (what `cargo xtask setup` logs in as).
    pub fn authorize_root(&self, host: &str) -> Result<()> {
        let key = std::fs::read_to_string(self.dir.join("id_ed25519.pub"))?;
        self.exec(host, None, &["install", "-d", "-m", "700", "/root/.ssh"], None)?;
        self.exec(host, None, &["dd", "of=/root/.ssh/authorized_keys", "status=none"], Some(&key))?;
        Ok(())
    }

    /// A database of the app's outside `cargo xtask setup` (what an environment with
    /// `database = "external"` names: a Swarm's, or the benchmark's): a host's PostgreSQL,
    /// reached from the host's containers at its engine's bridge address, or from other hosts'
    /// at its address on the fleet's network when `shared`, with config/postgres/schema.sql
    /// applied; returns the env file of an environment using it. The password is made here and
    /// goes through stdin only.
    pub fn app_database(&self, p: &Project, host: &str, tier: &str, shared: bool) -> Result<String> {
        let password = secret()?;
        self.exec(host, None, &["pg_conftool", "15", "main", "set", "listen_addresses", "*"], None)?;
        // Password logins from the networks the host is on (the fleet's, its engine's bridges) only.
        let hba = "host all all samenet scram-sha-256\n";
        self.exec(
            host,
            None,
            &["dd", "of=/etc/postgresql/15/main/pg_hba.conf", "oflag=append", "conv=notrunc", "status=none"],
            Some(hba),
        )?;
        self.exec(host, None, &["pg_ctlcluster", "15", "main", "restart"], None)?;
        let psql = |db: &str, sql: &str| {
            self.exec(host, Some("postgres"), &["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db], Some(sql))
        };
        psql("postgres", &format!("CREATE ROLE recordsponge LOGIN PASSWORD '{password}';\nCREATE DATABASE recordsponge OWNER recordsponge;\n"))?;
        let schema = std::fs::read_to_string(p.root.join("config/postgres/schema.sql"))?;
        psql("recordsponge", &format!("SET ROLE recordsponge;\n{schema}"))?;
        let device = if shared { "eth0" } else { "docker0" };
        let addr = self.exec(host, None, &["ip", "-4", "-o", "addr", "show", device], None)?;
        let bridge = addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next());
        let bridge = bridge.with_context(|| format!("{host} has no {device} address: {addr}"))?;
        Ok(format!(
            "PGHOST={bridge}\nPGPORT=5432\nPGDATABASE=recordsponge\nPGUSER=recordsponge\nPGPASSWORD={password}\nTIER={tier}\n"
        ))
    }

    /// Forms a Docker Swarm of the first `nodes` hosts: the first `managers` of them managers,
    /// the others workers.
    pub fn swarm(&self, nodes: usize, managers: usize) -> Result<()> {
        let started = Instant::now();
        let manager = &self.hosts[0].name;
        let addr = self.exec(manager, None, &["ip", "-4", "-o", "addr", "show", "eth0"], None)?;
        let ip = addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next());
        let ip = ip.with_context(|| format!("{manager} has no eth0 address: {addr}"))?;
        self.exec(manager, None, &["docker", "swarm", "init", "--advertise-addr", ip], None)?;
        for (i, node) in self.hosts.iter().enumerate().take(nodes).skip(1) {
            let role = if i < managers { "manager" } else { "worker" };
            let token = self.exec(manager, None, &["docker", "swarm", "join-token", "--quiet", role], None)?;
            self.exec(
                &node.name,
                None,
                &["docker", "swarm", "join", "--token", token.trim(), &format!("{ip}:2377")],
                None,
            )?;
        }
        eprintln!(
            "fleet: a Swarm of {nodes} nodes ({managers} managers) formed in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Kills a host as a power cut does (`docker kill`: no daemon stops), or brings it back
    /// (`docker start`) and waits until its daemons run again.
    pub fn power(&self, host: &str, on: bool) -> Result<()> {
        let sh = &self.sh;
        if !on {
            cmd!(sh, "docker kill {host}").quiet().ignore_stdout().run()?;
            return Ok(());
        }
        cmd!(sh, "docker start {host}").quiet().ignore_stdout().run()?;
        wait(
            || cmd!(sh, "docker exec {host} test -e /run/rsx-host.ready").quiet().run().is_ok(),
            "the host to come back",
        )
    }

    /// Builds a test image (xtask/testbed/images/NAME) and pushes it to the registry.
    pub fn push_test_image(&self, p: &Project, name: &str) -> Result<String> {
        let image = ensure_image(&self.sh, &p.root, name)?;
        let target = format!("{}/rs-testbed/{name}:1", self.registry);
        self.push(&image, &target)?;
        Ok(target)
    }

    /// Pushes an image of this machine's engine to the registry as `REPOSITORY:TAG`.
    pub fn push(&self, image: &str, target: &str) -> Result<()> {
        let sh = &self.sh;
        cmd!(sh, "docker tag {image} {target}").run()?;
        cmd!(sh, "docker push {target}").env("DOCKER_CONFIG", &self.docker_config).quiet().ignore_stdout().run()?;
        Ok(())
    }

    /// A build of its own (its own digest) of `image` with `more` Dockerfile lines, pushed as
    /// `target` (`REPOSITORY:TAG` in the registry).
    pub fn push_build(&self, image: &str, target: &str, more: &str) -> Result<()> {
        let sh = &self.sh;
        let dockerfile = format!("FROM {image}\nLABEL org.recordsponge.e2e-build={target}\n{more}");
        cmd!(sh, "docker build --quiet --tag {target} -").stdin(dockerfile).quiet().ignore_stdout().run()?;
        cmd!(sh, "docker push {target}").env("DOCKER_CONFIG", &self.docker_config).quiet().ignore_stdout().run()?;
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let started = Instant::now();
        let sh = &self.sh;
        let prefix = &self.prefix;
        let (named, project) = (format!("name=^{prefix}-"), format!("label=com.docker.compose.project={prefix}"));
        let (registry, format) = (format!("reference={}/*/*", self.registry), "{{.Repository}}:{{.Tag}}");
        let volumes: Vec<String> = self.hosts.iter().map(|h| format!("{}-docker", h.name)).collect();
        let net = format!("{prefix}-net");
        // What lists the fleet's things, and what removes them: its containers and the compose
        // project of its name (a suite's deploys build there), their volumes and networks, and
        // the tags this machine made for the registry (the tests' builds, the deploys' pushes).
        let removals = [
            (cmd!(sh, "docker ps --all --quiet --filter {named}"), cmd!(sh, "docker rm --force --volumes")),
            (cmd!(sh, "docker ps --all --quiet --filter {project}"), cmd!(sh, "docker rm --force --volumes")),
            (
                cmd!(sh, "docker volume ls --quiet --filter {project}"),
                cmd!(sh, "docker volume rm --force {volumes...}"),
            ),
            (cmd!(sh, "docker network ls --quiet --filter {project}"), cmd!(sh, "docker network rm {net}")),
            (cmd!(sh, "docker images --filter {registry} --format {format}"), cmd!(sh, "docker rmi")),
        ];
        for (list, remove) in removals {
            let found = list.quiet().read().unwrap_or_default();
            let _ = remove.args(found.lines()).quiet().ignore_stdout().ignore_stderr().run();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        eprintln!("fleet: removed in {:.1}s", started.elapsed().as_secs_f64());
    }
}

/// Creates the fleet's network on a /24 of its own (`172.30.N.0/24`, the first N no other network
/// overlaps), so that hosts keep fixed addresses; returns `172.30.N`.
fn network(sh: &Shell, net: &str) -> Result<String> {
    let start = std::process::id() % 200;
    for n in (0..200).map(|k| (start + k) % 200 + 20) {
        let subnet = format!("172.30.{n}.0/24");
        if cmd!(sh, "docker network create --subnet {subnet} {net}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            return Ok(format!("172.30.{n}"));
        }
    }
    bail!("no /24 of 172.30.0.0/16 is free for the fleet's network")
}

/// A loopback port no program listens on now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The loopback port this machine reaches a container's `port` on.
fn published(sh: &Shell, container: &str, port: u16) -> Result<u16> {
    let port = port.to_string();
    let out = cmd!(sh, "docker port {container} {port}").read()?;
    out.lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:").and_then(|p| p.trim().parse().ok()))
        .with_context(|| format!("{container} publishes no loopback port for {port}: {out}"))
}

/// Polls `ready` for up to two minutes.
fn wait(mut ready: impl FnMut() -> bool, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("waited two minutes for {what}")
}

/// Status and body of `GET http://127.0.0.1:PORT/PATH` (status 0: no answer).
pub fn get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Requests through a proxy, one after another, until stopped: how many failed, and the
/// slowest answer.
pub struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<(Vec<String>, Duration)>>,
}

/// What a request loop saw.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub failed: usize,
    pub total: usize,
    /// The longest a request took, answered or not.
    pub worst: Duration,
}

impl Load {
    pub fn start(port: u16, path: &'static str) -> Load {
        let (stop, failed, total) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f, t) = (stop.clone(), failed.clone(), total.clone());
        let thread = std::thread::spawn(move || {
            let (mut failures, mut worst, began) = (Vec::new(), Duration::ZERO, Instant::now());
            // Bounded: at most 200 000 requests, whatever happens.
            while !s.load(Ordering::SeqCst) && t.load(Ordering::SeqCst) < 200_000 {
                let started = Instant::now();
                let (status, body) = get(port, path);
                worst = worst.max(started.elapsed());
                if status != 200 {
                    f.fetch_add(1, Ordering::SeqCst);
                    let at = began.elapsed().as_secs_f64();
                    failures.push(format!("{status} at {at:.1}s {}", body.chars().take(120).collect::<String>()));
                }
                t.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            (failures, worst)
        });
        std::thread::sleep(Duration::from_millis(300));
        Load { stop, failed, total, thread: Some(thread) }
    }

    /// Stops the loop: (failed, total), after printing the first failures.
    pub fn stop(self, during: &str) -> (usize, usize) {
        let seen = self.stop_seen(during);
        (seen.failed, seen.total)
    }

    /// Stops the loop and says what it saw, after printing the first and the last failures (each
    /// with its time since the loop began).
    pub fn stop_seen(mut self, during: &str) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        let (failures, worst) = self.thread.take().unwrap().join().unwrap();
        let (failed, total) = (self.failed.load(Ordering::SeqCst), self.total.load(Ordering::SeqCst));
        eprintln!(
            "    request loop during {during}: {failed} failed of {total}, the slowest {:.2}s",
            worst.as_secs_f64()
        );
        let shown = failures.iter().take(5).chain(failures.iter().skip(5.max(failures.len().saturating_sub(3))));
        for f in shown {
            eprintln!("      failed: {f}");
        }
        Seen { failed, total, worst }
    }
}
