#!/usr/bin/env bash
# Provision a local Docker engine on a Debian machine, as root, without systemd.
#
# Installs (only what is missing): docker.io (engine), docker-compose (v1
# standalone), debootstrap (to make the local base image, see
# config/images/README.md), and the Compose v2 plugin (`docker compose`) when
# the docker CLI finds none: Debian trixie's docker-compose 2.26.1 (a static Go
# binary needing only libc6 >= 2.34), fetched with apt pointed at a private
# trixie source list in a temporary directory (trixie never enters the
# machine's apt sources), its plugin binary extracted with `dpkg-deb -x` into
# /usr/local/lib/docker/cli-plugins, a directory the docker CLI searches for
# every user whatever DOCKER_CONFIG says (the tests use a private one, where
# ~/.docker/cli-plugins would not be found). Then starts `dockerd` in the
# background if `docker info` does not answer, and waits until it does.
#
# Idempotent: on a machine where everything is installed and the engine
# answers, it only runs a few dpkg-query checks, `docker compose version` and
# `docker info` (~0.2 s).
#
# Environment:
#   DOCKERD_LOG            where dockerd logs (default /var/log/dockerd.log)
#   ENGINE_WAIT_SECONDS    how long to wait for the engine (default 60)
#   COMPOSE_V2             0: do not install the Compose v2 plugin (default 1)
#   COMPOSE_V2_MIRROR      the Debian mirror it comes from (default
#                          http://deb.debian.org/debian)
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
ENGINE_WAIT_SECONDS=${ENGINE_WAIT_SECONDS:-60}
COMPOSE_V2=${COMPOSE_V2:-1}
COMPOSE_V2_MIRROR=${COMPOSE_V2_MIRROR:-http://deb.debian.org/debian}
COMPOSE_V2_SUITE=trixie
COMPOSE_V2_UPSTREAM=2.26.1
COMPOSE_PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
APT_GET=(apt-get -o DPkg::Lock::Timeout=600)

log() { printf 'provision-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    die "the tests need a running Docker engine with compose v2 (docker compose) and v1 (docker-compose), and one is missing; run this as root on Debian to install and start what is missing, or install it yourself"
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

# --- compose v2 plugin ----------------------------------------------------
# Asked with an empty DOCKER_CONFIG, so that only the system plugin dirs count
# (a plugin in ~/.docker/cli-plugins is not seen by the tests' DOCKER_CONFIG).
compose_v2_answers() {
    local config rc
    config=$(mktemp -d)
    DOCKER_CONFIG=$config docker compose version >/dev/null 2>&1 && rc=0 || rc=$?
    rmdir "$config"
    return "$rc"
}

# install_compose_v2 WORK: fetches and unpacks in the directory WORK.
install_compose_v2() {
    local work=$1 apt_private version deb plugin
    mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
    # apt downloads as the unprivileged _apt user where it can.
    chmod 0755 "$work"
    if id _apt >/dev/null 2>&1; then chown _apt "$work/lists/partial" "$work/deb"; fi
    # Only the Packages index (no translations, no DEP-11), checked with the
    # trixie keys that bookworm's debian-archive-keyring carries.
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] %s %s main\n' \
        "$COMPOSE_V2_MIRROR" "$COMPOSE_V2_SUITE" >"$work/sources/$COMPOSE_V2_SUITE.list"
    apt_private=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$work/sources"
        -o "Dir::State::lists=$work/lists" -o "Dir::Cache=$work/cache")

    log "installing the Compose v2 plugin: docker-compose $COMPOSE_V2_UPSTREAM from Debian $COMPOSE_V2_SUITE (private apt lists in $work)"
    apt-get -q "${apt_private[@]}" update >&2 \
        || die "apt-get update of the private $COMPOSE_V2_SUITE list failed (mirror $COMPOSE_V2_MIRROR)"
    # The newest Debian revision of that upstream version (e.g. 2.26.1-4).
    version=$(apt-cache "${apt_private[@]}" madison docker-compose \
        | awk -v up="$COMPOSE_V2_UPSTREAM" '$3 ~ "^" up "-" { print $3; exit }')
    [ -n "$version" ] || die "Debian $COMPOSE_V2_SUITE has no docker-compose $COMPOSE_V2_UPSTREAM (mirror $COMPOSE_V2_MIRROR)"
    (cd "$work/deb" && apt-get -q "${apt_private[@]}" download "docker-compose=$version" >&2) \
        || die "could not download docker-compose=$version from Debian $COMPOSE_V2_SUITE"
    deb=$(find "$work/deb" -name 'docker-compose_*.deb' -print -quit)
    dpkg-deb -x "$deb" "$work/root"
    plugin="$work/root/usr/libexec/docker/cli-plugins/docker-compose"
    [ -x "$plugin" ] || die "$deb holds no usr/libexec/docker/cli-plugins/docker-compose"
    # Under a temporary name, then renamed: a concurrent `docker compose` never
    # sees half a binary.
    install -d -m 0755 "$COMPOSE_PLUGIN_DIR"
    install -m 0755 "$plugin" "$COMPOSE_PLUGIN_DIR/.docker-compose.new"
    mv -f "$COMPOSE_PLUGIN_DIR/.docker-compose.new" "$COMPOSE_PLUGIN_DIR/docker-compose"
}

if [ "$COMPOSE_V2" != 0 ] && ! compose_v2_answers; then
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found (needed to unpack docker-compose)"
    compose_work=$(mktemp -d /tmp/provision-compose.XXXXXX)
    trap 'rm -rf "$compose_work"' EXIT
    install_compose_v2 "$compose_work"
    rm -rf "$compose_work"
    trap - EXIT
    compose_v2_answers || die "installed $COMPOSE_PLUGIN_DIR/docker-compose, but \`docker compose version\` does not answer"
    log "compose v2 plugin: $(docker compose version 2>&1)"
fi

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
