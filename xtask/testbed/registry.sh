#!/usr/bin/env bash
# A Docker registry with a login on loopback, for the end-to-end tests (push must need the login).
# Idempotent: installs what is missing, starts the registry unless it answers, logs in.
#   RS_TESTBED     state directory (default target/testbed under the repository)
#   RS_REGISTRY_PORT  port on 127.0.0.1 (default 5999)
# Writes $RS_TESTBED/registry.env (RS_REGISTRY, RS_REGISTRY_USER) and a Docker client config
# holding the login in $RS_TESTBED/docker-config (the user's ~/.docker is not touched).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${RS_TESTBED:-$root/target/testbed}
port=${RS_REGISTRY_PORT:-5999}
user=rstest
log() { printf 'registry: %s\n' "$*" >&2; }

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" ||
    { apt-get -o DPkg::Lock::Timeout=600 update -q || true
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}"; }
fi

mkdir -p "$state/registry/data" "$state/docker-config"
# The password is made once per state directory and never printed.
[ -s "$state/registry/password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$state/registry/password")
htpasswd -Bbn "$user" "$(cat "$state/registry/password")" > "$state/registry/htpasswd"
cat > "$state/registry/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: rs-testbed
    path: $state/registry/htpasswd
YML

answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" = 401 ]; }
login() {
  DOCKER_CONFIG="$state/docker-config" docker login --username "$user" --password-stdin "127.0.0.1:$port" \
    < "$state/registry/password" > /dev/null 2>&1
}
start() {
  log "starting on 127.0.0.1:$port"
  setsid nohup docker-registry serve "$state/registry/config.yml" >> "$state/registry/log" 2>&1 < /dev/null &
  echo $! > "$state/registry/pid"
  for _ in $(seq 50); do answers && break; sleep 0.2; done
  answers || { tail -n 20 "$state/registry/log" >&2; log "ERROR: the registry did not answer"; exit 1; }
}
if ! answers; then
  start
fi
if ! login; then
  # A registry of another checkout (another state directory and password) holds the port: replace it.
  log "the registry on 127.0.0.1:$port does not take this test bed's login: restarting it with ours"
  pkill -f "docker-registry serve .*/registry/config.yml" || true
  for _ in $(seq 50); do answers || break; sleep 0.1; done
  start
  login || { log "ERROR: docker login to 127.0.0.1:$port failed"; exit 1; }
fi
printf 'RS_REGISTRY=127.0.0.1:%s\nRS_REGISTRY_USER=%s\n' "$port" "$user" > "$state/registry.env"
log "ready: 127.0.0.1:$port (login in $state/docker-config)"
