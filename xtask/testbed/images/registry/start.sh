#!/bin/sh
# Starts docker-registry on 0.0.0.0:5000 with an htpasswd login. The login, first found wins:
#   /run/secrets/registry-htpasswd  a ready htpasswd file (htpasswd -Bn USER), mounted read-only;
#   RSX_REGISTRY_USER + RSX_REGISTRY_PASSWORD_FILE (default /run/secrets/registry-password): the
#                                   password file is mounted read-only, its first line is used;
#   RSX_REGISTRY_USER + RSX_REGISTRY_PASSWORD: convenient, but the value shows in docker inspect.
# The password goes to htpasswd on stdin (-i), never on a command line, and is never printed.
# RSX_REGISTRY_LOG_LEVEL: error, warn, info (default), debug.
set -eu
conf=/run/rsx-registry
mkdir -p "$conf"
htpasswd_file=/run/secrets/registry-htpasswd
pw_file=${RSX_REGISTRY_PASSWORD_FILE:-/run/secrets/registry-password}
if [ ! -s "$htpasswd_file" ]; then
  user=${RSX_REGISTRY_USER:?set RSX_REGISTRY_USER (with a password file or RSX_REGISTRY_PASSWORD), or mount /run/secrets/registry-htpasswd}
  htpasswd_file=$conf/htpasswd
  if [ -s "$pw_file" ]; then
    head -n 1 "$pw_file" | tr -d '\r\n' | htpasswd -iBn "$user" > "$htpasswd_file"
  elif [ -n "${RSX_REGISTRY_PASSWORD:-}" ]; then
    printf '%s' "$RSX_REGISTRY_PASSWORD" | htpasswd -iBn "$user" > "$htpasswd_file"
  else
    echo "rsx-registry: no password: mount $pw_file or set RSX_REGISTRY_PASSWORD" >&2
    exit 1
  fi
  unset RSX_REGISTRY_PASSWORD
  chown docker-registry "$htpasswd_file"
  chmod 400 "$htpasswd_file"
fi
cat > "$conf/config.yml" <<YML
version: 0.1
log:
  level: ${RSX_REGISTRY_LOG_LEVEL:-info}
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
auth:
  htpasswd:
    realm: rsx-registry
    path: $htpasswd_file
YML
exec runuser -u docker-registry -- /usr/bin/docker-registry serve "$conf/config.yml"
