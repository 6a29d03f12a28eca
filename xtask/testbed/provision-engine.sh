#!/usr/bin/env bash
# Provision a local Docker engine on a Debian machine, as root, without systemd.
#
# Installs (only what is missing): docker.io (engine), docker-compose (v1
# standalone), debootstrap (to make the local base image, see
# config/images/README.md). Then starts `dockerd` in the background if
# `docker info` does not answer, and waits until it does.
#
# Idempotent: on a machine where everything is installed and the engine
# answers, it only runs a few dpkg-query checks and `docker info` (~0.1 s).
#
# Environment:
#   DOCKERD_LOG            where dockerd logs (default /var/log/dockerd.log)
#   ENGINE_WAIT_SECONDS    how long to wait for the engine (default 60)
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
ENGINE_WAIT_SECONDS=${ENGINE_WAIT_SECONDS:-60}
APT_GET=(apt-get -o DPkg::Lock::Timeout=600)

log() { printf 'provision-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (it installs packages and starts dockerd)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    die "apt-get not found: this script supports Debian (bookworm) only"
fi

# --- packages -------------------------------------------------------------
# Checked with dpkg, not `command -v docker`: a docker CLI may be on PATH
# without any engine. Installed without Recommends (apparmor, needrestart,
# ...), so the few recommended ones we need are listed explicitly:
# debian-archive-keyring lets debootstrap verify the archive, ca-certificates
# and xz-utils are recommended by docker.io.
PACKAGES=(docker.io docker-compose debootstrap debian-archive-keyring ca-certificates xz-utils)
missing=()
dpkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg_installed "$pkg"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update only if needed: when the lists are absent, or the
    # install fails because they are stale.
    # `apt-get update` is not fatal by itself: an unreachable third-party
    # source in sources.list.d makes it exit non-zero although Debian's own
    # lists were fetched; the install below is what must succeed.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        log "apt lists are empty: apt-get update"
        "${APT_GET[@]}" update -q || log "apt-get update reported errors (continuing)"
    fi
    if ! "${APT_GET[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
        log "install failed; retrying after apt-get update"
        "${APT_GET[@]}" update -q || log "apt-get update reported errors (continuing)"
        "${APT_GET[@]}" install -y -q --no-install-recommends "${missing[@]}" \
            || die "could not install: ${missing[*]}"
    fi
fi

# docker.io puts dockerd in /usr/sbin; make sure it is found.
DOCKERD=$(command -v dockerd || true)
if [ -z "$DOCKERD" ] && [ -x /usr/sbin/dockerd ]; then DOCKERD=/usr/sbin/dockerd; fi
[ -n "$DOCKERD" ] || die "dockerd not found after installing docker.io"
command -v docker >/dev/null 2>&1 || die "docker CLI not found after installing docker.io"

# --- engine ---------------------------------------------------------------
engine_up() { docker info >/dev/null 2>&1; }

if engine_up; then
    log "engine already answers"
    exit 0
fi

# A dockerd may be starting already (another process launched it): only
# start one if none is running, else just wait for it.
dockerd_running() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
    command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd >/dev/null 2>&1
}
if dockerd_running; then
    log "dockerd is running but not answering yet; waiting"
else
    # A stale pid file from a dead dockerd makes a new one refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    log "starting $DOCKERD (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: detached from this shell's session, survives its end.
    setsid nohup "$DOCKERD" >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + ENGINE_WAIT_SECONDS))
until engine_up; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "last lines of $DOCKERD_LOG:"
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        die "the Docker engine did not answer 'docker info' within ${ENGINE_WAIT_SECONDS}s"
    fi
    sleep 0.5
done
log "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
