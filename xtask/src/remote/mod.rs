//! An environment on its hosts, over OpenSSH (your own ssh and ~/.ssh/config; every ssh of a
//! command shares one connection): what the release and deploy families share. How releases
//! run is the environment's engine, one a file behind the same three steps (checks, read what
//! runs, switch): `host` (one Docker host behind nginx) and `swarm` (a Docker Swarm stack,
//! rolled by Swarm itself); `switch` composes them into a deploy.
//!
//! The host's truth decides, never a deploy's memory: each command starts by reading what
//! runs (which release nginx routes to, which release containers exist and on which ports).
//! On the host, in `state_dir`, each environment has:
//! - `ENV.lock`: the deploy lock, an flock held by a keeper process (`flock ... tee ENV.holder`)
//!   for as long as the deploying command's ssh connection lives: a deploy whose process or
//!   connection is gone holds nothing, so a lock is never stale (`lock`);
//! - `ENV.holder`: who holds (or last held) the lock: who, from where, what, since when;
//! - `ENV.releases.log`: every attempt, one tab-separated line when it starts and one when it
//!   ends (`log`).
//!
//! The words run on a host are built per concern, each builder small and tested on its own:
//! `ssh` (the connection, files on the host), `docker` (docker on the host, and its JSON),
//! `nginx`, and the Swarm's in `swarm`; the planners compose them.

pub mod db;
pub mod docker;
pub mod host;
pub mod lock;
pub mod log;
pub mod nginx;
pub mod ssh;
pub mod swarm;
pub mod switch;
pub mod target;
