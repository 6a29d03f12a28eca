#!/usr/bin/env bash
# A loopback "production host" for the deploy end-to-end tests, as root on Debian 12 without
# systemd. Run after provision-engine.sh and registry.sh (it uses the engine, docker0 and the
# registry login in $RS_TESTBED/docker-config).
#
# Provides, on this machine:
#   - the deploy user rsdeploy, set up as config/nginx/README.md tells a production host to have
#     one: unprivileged, in the docker group, a plain home (no shell start-up files), allowed
#     through /etc/sudoers.d/recordsponge-test to run exactly
#     `sudo nginx -c $HOST/nginx/nginx.conf -t` and `sudo nginx -c $HOST/nginx/nginx.conf -s reload`;
#     it owns the state directory $HOST/var, the upstream files and the env files, and can reach
#     them (missing o+x on the directories above $HOST is added);
#   - sshd on 127.0.0.1:2222 with its own config; `ssh -F $HOST/ssh_config rs-test-host CMD`
#     runs CMD as rsdeploy with DOCKER_CONFIG set to its copy of the registry login
#     ($HOST/docker-config; ~/.docker is not touched);
#   - rsyslog (the deploy's containers use `--log-driver syslog`, which needs /dev/log);
#   - nginx with its own main config, staging on 127.0.0.1:18080 and prod on 127.0.0.1:18081,
#     each proxying to the upstream in $HOST/nginx/<env>.upstream.conf (made once pointing at
#     ports 3032 / 3031; the deploy rewrites it, runs `sudo nginx -c CONF -t` and `-s reload`);
#   - PostgreSQL 15 (cluster 15/rs_e2e, data in /var/lib/postgresql like the engine's data in
#     /var/lib/docker) on port 5433 of 127.0.0.1 and the docker0 address, scram-sha-256 from
#     172.16.0.0/12, role and database recordsponge_e2e, config/postgres/schema.sql applied once;
#   - the env files of the production host ($HOST/etc/staging.env, prod.env: rsdeploy's, mode 600,
#     in a directory root:rsdeploy 750);
#   - $HOST/host.env: KEY=value lines for the tests (no secrets). RS_NGINX_CONF is the nginx main
#     config: the deploy's commands are `sudo nginx -c $RS_NGINX_CONF -t` and `... -s reload`,
#     exactly (sudo matches the arguments).
# where HOST is $RS_TESTBED/host. The database password is made once, kept in
# $HOST/secrets/pg-password (mode 600) and never printed.
# The user and the sudoers drop-in are machine-wide: the drop-in names the nginx config of the
# state directory host.sh last ran for (the same as the running sshd and nginx).
#
# Idempotent: installs only missing packages, starts only what is not running, rewrites a config
# only when its content changes (then reloads that service). When everything is up it takes a few
# hundred milliseconds.
#
# Environment:
#   RS_TESTBED              state directory (default target/testbed under the repository)
#   RS_SSH_PORT             sshd port on 127.0.0.1 (default 2222)
#   RS_NGINX_STAGING_PORT   nginx staging site on 127.0.0.1 (default 18080)
#   RS_NGINX_PROD_PORT      nginx prod site on 127.0.0.1 (default 18081)
#   RS_PG_PORT              PostgreSQL port (default 5433)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${RS_TESTBED:-$root/target/testbed}
host=$state/host
ssh_port=${RS_SSH_PORT:-2222}
staging_port=${RS_NGINX_STAGING_PORT:-18080}
prod_port=${RS_NGINX_PROD_PORT:-18081}
pg_port=${RS_PG_PORT:-5433}
pg_version=15
pg_cluster=rs_e2e
pg_bin=/usr/lib/postgresql/$pg_version/bin
db=recordsponge_e2e
ssh_alias=rs-test-host
deploy_user=rsdeploy
sudoers=/etc/sudoers.d/recordsponge-test
APT_GET=(apt-get -o DPkg::Lock::Timeout=600)
log() { printf 'host: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts sshd, nginx, rsyslog, PostgreSQL)"
[ -s "$state/docker-config/config.json" ] ||
  die "no registry login in $state/docker-config: run xtask/testbed/registry.sh first"

mkdir -p "$host"
# One run at a time per state directory.
exec 9> "$host/.lock"
flock 9

# --- packages ---------------------------------------------------------------------------------
# sudo: as on the production host, where the deploy user runs `sudo nginx -t` and `-s reload`.
PACKAGES=(openssh-server openssh-client nginx rsyslog "postgresql-$pg_version" iproute2 curl sudo)
# One dpkg-query for all (each call costs ~20 ms).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2> /dev/null | awk '/ install ok installed$/ { print $1 }' || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ $'\n'$installed$'\n' == *$'\n'$pkg$'\n'* ]] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' > /dev/null; then
    "${APT_GET[@]}" update -q || log "apt-get update reported errors (continuing)"
  fi
  if ! "${APT_GET[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
    "${APT_GET[@]}" update -q || log "apt-get update reported errors (continuing)"
    "${APT_GET[@]}" install -y -q --no-install-recommends "${missing[@]}" || die "could not install: ${missing[*]}"
  fi
fi

# --- helpers ----------------------------------------------------------------------------------
# write_file PATH MODE [OWNER] < content: replaces PATH only when the content differs
# (atomically, with MODE and OWNER (user:group; without it, root's) from the start); succeeds
# when it changed PATH. MODE and OWNER are applied either way (older runs made other ones).
write_file() {
  local path=$1 mode=$2 owner=${3:-} tmp
  tmp=$(mktemp "$path.XXXXXX")
  chmod "$mode" "$tmp"
  [ -z "$owner" ] || chown "$owner" "$tmp"
  cat > "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    chmod "$mode" "$path"
    [ -z "$owner" ] || chown "$owner" "$path"
    return 1
  fi
  mv -f "$tmp" "$path"
}
# running PIDFILE EXE: the process in PIDFILE is alive and runs EXE.
running() {
  local pid
  pid=$(head -n 1 "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$2" ]
}
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
port_free_or_die() {
  listening "$1" || return 0
  # The test bed of another checkout (its daemons run from its own target/testbed/host): replace it.
  local pid replaced=
  for pid in $(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q '/target/testbed/host/'; then
      log "stopping another checkout's test bed $2 on port $1 (pid $pid)"
      kill "$pid" 2>/dev/null && replaced=1
    fi
  done
  if [ -n "$replaced" ]; then
    for _ in $(seq 50); do listening "$1" || return 0; sleep 0.1; done
  fi
  ss -Hltnp "sport = :$1" >&2 || true
  die "port $1 is in use by another process (another state directory's $2?): stop it or set $3"
}
# detach LOG CMD...: starts a daemon in its own session, without this script's stdio (a caller
# reading our output would wait for the daemon's end) nor its lock (fd 9).
detach() {
  local logf=$1; shift
  setsid "$@" < /dev/null >> "$logf" 2>&1 9>&- || { tail -n 20 "$logf" >&2; die "failed: $*"; }
}
wait_for() {
  local what=$1; shift
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  die "$what did not come up"
}

bridge=$(ip -4 -o addr show docker0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
[ -n "$bridge" ] || die "docker0 has no IPv4 address: is the engine running (xtask/testbed/provision-engine.sh)?"

mkdir -p "$host/ssh" "$host/nginx/sites" "$host/nginx/tmp" "$host/etc" "$host/var" "$host/secrets"
chmod 700 "$host/secrets"

# --- the deploy user --------------------------------------------------------------------------
# As config/nginx/README.md sets one up: unprivileged, in the docker group, logging in by key. Its
# home holds nothing: no shell start-up files, so an ssh round trip runs just the command.
getent group docker > /dev/null ||
  die "no docker group: install the engine first (xtask/testbed/provision-engine.sh)"
[ "$(stat -c %G /var/run/docker.sock 2>/dev/null)" = docker ] ||
  die "/var/run/docker.sock is not in the docker group: restart dockerd now that the group exists"
user_changed=0
if ! getent passwd "$deploy_user" > /dev/null; then
  log "creating the deploy user $deploy_user (groups $deploy_user, docker)"
  # Password '*': no password login, yet not "locked" ('!'), which sshd without PAM refuses.
  useradd --user-group --groups docker --shell /bin/bash --home-dir "/home/$deploy_user" \
    --no-create-home --password '*' --comment 'RecordSponge deploys (xtask/testbed/host.sh)' "$deploy_user"
  user_changed=1
fi
IFS=: read -r _ _ deploy_uid _ _ deploy_home deploy_shell < <(getent passwd "$deploy_user")
[ "$deploy_uid" != 0 ] || die "$deploy_user has uid 0"
case $deploy_shell in /bin/bash | /bin/sh) ;; *)
  log "$deploy_user: login shell $deploy_shell -> /bin/bash"; usermod --shell /bin/bash "$deploy_user"; user_changed=1 ;;
esac
if ! id -nG "$deploy_user" | tr ' ' '\n' | grep -qx docker; then
  log "$deploy_user: adding to the docker group"; usermod -aG docker "$deploy_user"; user_changed=1
fi
if [ "$(getent shadow "$deploy_user" | cut -d: -f2)" != '*' ]; then
  usermod --password '*' "$deploy_user"; user_changed=1
fi
[ -d "$deploy_home" ] || { install -d -m 750 -o "$deploy_user" -g "$deploy_user" "$deploy_home"; user_changed=1; }

# It must reach the state: o+x (traverse, not list) where a directory above it lacks it, as a
# checkout under /root or a private /work would.
dir=$host
while :; do
  perms=$(stat -c %A "$dir")
  case ${perms:9:1} in x | t) ;; *) log "letting $deploy_user traverse $dir (o+x)"; chmod o+x "$dir" ;; esac
  [ "$dir" != / ] || break
  dir=$(dirname "$dir")
done
# Its state directory, which it creates its lock and release log in (older runs made them root's).
chown -R "$deploy_user:$deploy_user" "$host/var"
chmod 750 "$host/var"
# The env files: its own, in a directory only it (and root) can enter.
chown "root:$deploy_user" "$host/etc"
chmod 750 "$host/etc"
# Its docker client's registry login: a copy of the test bed's (the original is root's, mode 600,
# and rewritten by every `docker login` of registry.sh).
install -d -m 700 -o "$deploy_user" -g "$deploy_user" "$host/docker-config"
write_file "$host/docker-config/config.json" 600 "$deploy_user:$deploy_user" \
  < "$state/docker-config/config.json" || true

# sudo: exactly the deploy's two nginx commands, on this test bed's nginx config. sudo matches
# the arguments literally; a path with characters special to sudoers is refused, not escaped.
[[ $host =~ ^[A-Za-z0-9/._+-]+$ ]] || die "$host: a path sudoers would need escaped; use a plainer RS_TESTBED"
grep -Eqs '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers ||
  die "/etc/sudoers does not include /etc/sudoers.d"
ngx_conf=$host/nginx/nginx.conf
sudo_rule="# Made by xtask/testbed/host.sh ($host): the test bed's deploy user may test and reload its nginx.
$deploy_user ALL=(root) NOPASSWD: /usr/sbin/nginx -c $ngx_conf -t, /usr/sbin/nginx -c $ngx_conf -s reload"
if [ "$(cat "$sudoers" 2> /dev/null)" != "$sudo_rule" ]; then
  tmp=$(mktemp /etc/sudoers.d/.recordsponge-test.XXXXXX) # a dot: sudo skips it meanwhile
  printf '%s\n' "$sudo_rule" > "$tmp"
  chmod 440 "$tmp"
  visudo -cqf "$tmp" || { rm -f "$tmp"; die "visudo rejects the sudoers drop-in"; }
  mv -f "$tmp" "$sudoers"
  log "sudoers: $deploy_user may run nginx -c $ngx_conf -t / -s reload ($sudoers)"
  user_changed=1
fi

# --- rsyslog ----------------------------------------------------------------------------------
# System daemon with Debian's config: /dev/log, local0..7 go to /var/log/syslog.
if ! running /run/rsyslogd.pid /usr/sbin/rsyslogd || [ ! -S /dev/log ]; then
  log "starting rsyslogd"
  if running /run/rsyslogd.pid /usr/sbin/rsyslogd; then kill "$(head -n 1 /run/rsyslogd.pid)"; sleep 0.2; fi
  rm -f /run/rsyslogd.pid
  detach "$host/daemons.log" /usr/sbin/rsyslogd
  wait_for "rsyslogd (/dev/log)" test -S /dev/log
fi

# --- sshd -------------------------------------------------------------------------------------
[ -s "$host/ssh/ssh_host_ed25519_key" ] ||
  ssh-keygen -q -t ed25519 -N '' -C "$ssh_alias host key" -f "$host/ssh/ssh_host_ed25519_key"
[ -s "$host/ssh/id_ed25519" ] ||
  ssh-keygen -q -t ed25519 -N '' -C "rs-testbed client" -f "$host/ssh/id_ed25519"
# ssh_check: something about ssh or the deploy user changed, check the alias end to end at the end.
ssh_check=0 sshd_changed=0
# Read by sshd as the user logging in: rsdeploy's.
write_file "$host/ssh/authorized_keys" 600 "$deploy_user:$deploy_user" < "$host/ssh/id_ed25519.pub" && ssh_check=1
[ "$user_changed" = 0 ] || ssh_check=1
printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$(cut -d' ' -f1,2 "$host/ssh/ssh_host_ed25519_key.pub")" |
  write_file "$host/known_hosts" 644 && ssh_check=1
mkdir -p /run/sshd
# The deploying user's ~/.ssh, as a real one has: ssh keeps its shared connections there.
install -d -m 700 "$HOME/.ssh"
write_file "$host/ssh/sshd_config" 644 <<CONF && sshd_changed=1
# The test bed's deploy host (made by xtask/testbed/host.sh): $deploy_user by key only, on loopback.
Port $ssh_port
ListenAddress 127.0.0.1
HostKey "$host/ssh/ssh_host_ed25519_key"
PidFile "$host/ssh/sshd.pid"
AuthorizedKeysFile "$host/ssh/authorized_keys"
AllowUsers $deploy_user
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
# docker on this "host" uses the registry login of the test bed (rsdeploy's copy).
SetEnv "DOCKER_CONFIG=$host/docker-config"
Subsystem sftp internal-sftp
CONF
if write_file "$host/ssh_config" 644 <<CONF
# ssh -F $host/ssh_config $ssh_alias CMD
Host $ssh_alias
  HostName 127.0.0.1
  Port $ssh_port
  User $deploy_user
  IdentityFile "$host/ssh/id_ed25519"
  IdentitiesOnly yes
  UserKnownHostsFile "$host/known_hosts"
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
CONF
then ssh_check=1; fi
if running "$host/ssh/sshd.pid" /usr/sbin/sshd; then
  if [ "$sshd_changed" = 1 ]; then
    /usr/sbin/sshd -t -f "$host/ssh/sshd_config" || die "invalid $host/ssh/sshd_config"
    log "sshd config changed: reloading"
    kill -HUP "$(head -n 1 "$host/ssh/sshd.pid")"
    sleep 0.3
    ssh_check=1
  fi
else
  port_free_or_die "$ssh_port" sshd RS_SSH_PORT
  /usr/sbin/sshd -t -f "$host/ssh/sshd_config" || die "invalid $host/ssh/sshd_config"
  log "starting sshd on 127.0.0.1:$ssh_port"
  detach "$host/daemons.log" /usr/sbin/sshd -f "$host/ssh/sshd_config" -E "$host/ssh/sshd.log"
  wait_for "sshd on 127.0.0.1:$ssh_port" listening "$ssh_port"
  ssh_check=1
fi

# --- nginx ------------------------------------------------------------------------------------
ngx=$host/nginx
nginx_changed=0
write_file "$ngx/nginx.conf" 644 <<CONF && nginx_changed=1
# The test bed's nginx (made by xtask/testbed/host.sh): its own main config, pid, logs and temp
# paths in the state directory. Start: nginx -c $ngx/nginx.conf
user root;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log notice;

events {
    worker_connections 512;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $ngx/access.log;
    client_body_temp_path $ngx/tmp/client_body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    server_tokens off;
    # Short client keep-alive: on reload the old workers close idle connections and exit soon.
    keepalive_timeout 5s;

    include $ngx/sites/*.conf;
}
CONF
for env in staging prod; do
  if [ "$env" = staging ]; then listen=$staging_port app_port=3032; else listen=$prod_port app_port=3031; fi
  # The deploy owns the upstream file once it exists (and rewrites it in place: the directory
  # stays root's).
  if [ ! -f "$ngx/$env.upstream.conf" ]; then
    printf 'upstream recordsponge_%s { server 127.0.0.1:%s; }\n' "$env" "$app_port" |
      write_file "$ngx/$env.upstream.conf" 644 "$deploy_user:$deploy_user" || true
    nginx_changed=1
  fi
  chown "$deploy_user:$deploy_user" "$ngx/$env.upstream.conf"
  write_file "$ngx/sites/$env.conf" 644 <<CONF && nginx_changed=1
# RecordSponge $env on the test bed (made by xtask/testbed/host.sh). The upstream file is
# rewritten by the deploy, followed by \`sudo nginx -c $ngx/nginx.conf -t\` and \`-s reload\`.
include $ngx/$env.upstream.conf;

server {
    listen 127.0.0.1:$listen;
    server_name _;
    client_max_body_size 20m;

    location / {
        proxy_pass http://recordsponge_$env;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_connect_timeout 5s;
        proxy_read_timeout 90s;
        proxy_next_upstream error timeout http_502;
        proxy_next_upstream_tries 2;
        proxy_next_upstream_timeout 10s;
    }
}
CONF
done
if running "$ngx/nginx.pid" /usr/sbin/nginx; then
  if [ "$nginx_changed" = 1 ]; then
    log "nginx config changed: reloading"
    nginx -e "$ngx/error.log" -c "$ngx/nginx.conf" -t -q || die "invalid nginx config ($ngx/nginx.conf)"
    detach "$host/daemons.log" nginx -e "$ngx/error.log" -c "$ngx/nginx.conf" -s reload
  fi
else
  port_free_or_die "$staging_port" nginx RS_NGINX_STAGING_PORT
  port_free_or_die "$prod_port" nginx RS_NGINX_PROD_PORT
  nginx -e "$ngx/error.log" -c "$ngx/nginx.conf" -t -q || die "invalid nginx config ($ngx/nginx.conf)"
  log "starting nginx (staging 127.0.0.1:$staging_port, prod 127.0.0.1:$prod_port)"
  detach "$host/daemons.log" nginx -e "$ngx/error.log" -c "$ngx/nginx.conf"
  wait_for "nginx" listening "$prod_port"
fi

# --- PostgreSQL -------------------------------------------------------------------------------
pg_conf=/etc/postgresql/$pg_version/$pg_cluster
pg_data=/var/lib/postgresql/$pg_version/$pg_cluster
if [ -f "$pg_conf/postgresql.conf" ] && [ ! -f "$pg_data/PG_VERSION" ]; then
  log "cluster $pg_version/$pg_cluster has lost its data directory: recreating it"
  pg_dropcluster "$pg_version" "$pg_cluster" || true
fi
if [ ! -f "$pg_conf/postgresql.conf" ]; then
  log "creating PostgreSQL cluster $pg_version/$pg_cluster"
  pg_createcluster "$pg_version" "$pg_cluster" --port "$pg_port" --start-conf manual \
    -- --auth-local peer --auth-host scram-sha-256 > /dev/null
fi
pg_restart=0 pg_reload=0
write_file "$pg_conf/conf.d/recordsponge-e2e.conf" 644 <<CONF && pg_restart=1
# Made by xtask/testbed/host.sh: reachable from containers through the docker0 address.
listen_addresses = '127.0.0.1,$bridge'
port = $pg_port
password_encryption = scram-sha-256
CONF
write_file "$pg_conf/pg_hba.conf" 640 <<CONF && pg_reload=1
# Made by xtask/testbed/host.sh. TYPE DATABASE USER ADDRESS METHOD
local   all   all                  peer
host    all   all   127.0.0.1/32   scram-sha-256
# Containers on the Docker bridge networks.
host    all   all   172.16.0.0/12  scram-sha-256
CONF
chown postgres:postgres "$pg_conf/pg_hba.conf"
pg_up() { "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; }
if running "$pg_data/postmaster.pid" "$pg_bin/postgres"; then
  if [ "$pg_restart" = 1 ]; then
    log "PostgreSQL settings changed: restarting $pg_version/$pg_cluster"
    detach "$host/daemons.log" pg_ctlcluster "$pg_version" "$pg_cluster" restart
  elif [ "$pg_reload" = 1 ]; then
    detach "$host/daemons.log" pg_ctlcluster "$pg_version" "$pg_cluster" reload
  fi
else
  port_free_or_die "$pg_port" PostgreSQL RS_PG_PORT
  log "starting PostgreSQL $pg_version/$pg_cluster on 127.0.0.1 and $bridge port $pg_port"
  detach "$host/daemons.log" pg_ctlcluster "$pg_version" "$pg_cluster" start
fi
wait_for "PostgreSQL on 127.0.0.1:$pg_port" pg_up

# The password: made once, alphanumeric (safe in SQL quotes and env files), never printed.
secret=$host/secrets/pg-password
[ -s "$secret" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$secret")
chmod 600 "$secret"
as_app() { # psql as the app role over TCP with the password
  PGPASSWORD=$(cat "$secret") "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" \
    -U "$db" -d "$db" "$@"
}
has_schema=$(as_app -tA -c "SELECT to_regclass('public.users') IS NOT NULL" 2> /dev/null || true)
if [ "$has_schema" != t ]; then
  if [ -z "$has_schema" ]; then
    log "setting up role and database $db"
    # Through stdin, so the password is on no command line.
    (cd / && runuser -u postgres -- "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres) <<SQL > /dev/null
SELECT 'CREATE ROLE $db LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$db')\gexec
ALTER ROLE $db LOGIN PASSWORD '$(cat "$secret")';
SELECT 'CREATE DATABASE $db OWNER $db' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
SQL
  fi
  if [ "$(as_app -tA -c "SELECT to_regclass('public.users') IS NOT NULL")" != t ]; then
    log "applying config/postgres/schema.sql as $db"
    as_app -1 -f "$root/config/postgres/schema.sql" > /dev/null
  fi
fi

# --- env files of the production host ---------------------------------------------------------
for env in staging prod; do
  if [ "$env" = prod ]; then tier=production; else tier=staging; fi
  write_file "$host/etc/$env.env" 600 "$deploy_user:$deploy_user" <<ENV || true
PGHOST=$bridge
PGPORT=$pg_port
PGDATABASE=$db
PGUSER=$db
PGPASSWORD=$(cat "$secret")
TIER=$tier
ENV
done

# --- what the tests read ----------------------------------------------------------------------
write_file "$host/host.env" 644 <<ENV || true
RS_SSH_CONFIG=$host/ssh_config
RS_SSH_HOST=$ssh_alias
RS_SSH_USER=$deploy_user
# The deploy user may run exactly: sudo nginx -c \$RS_NGINX_CONF -t, sudo nginx -c \$RS_NGINX_CONF -s reload
RS_NGINX_CONF=$ngx/nginx.conf
RS_NGINX_STAGING_PORT=$staging_port
RS_NGINX_PROD_PORT=$prod_port
RS_UPSTREAM_STAGING=$ngx/staging.upstream.conf
RS_UPSTREAM_PROD=$ngx/prod.upstream.conf
RS_ENV_FILE_STAGING=$host/etc/staging.env
RS_ENV_FILE_PROD=$host/etc/prod.env
RS_HOST_STATE=$host/var
RS_SECRET_FILE=$secret
RS_SYSLOG_FILE=/var/log/syslog
RS_PG_HOST=$bridge
RS_PG_PORT=$pg_port
RS_PG_DATABASE=$db
ENV

# What the deploy needs of its user, checked as that user (a few ms; ownerships may have been
# changed behind our back, or a directory above the state closed).
# shellcheck disable=SC2016  # expanded by that shell
denied=$(runuser -u "$deploy_user" -- sh -c '
  for p in "$@"; do
    case $p in w:*) test -w "${p#w:}" ;; *) test -r "${p#r:}" ;; esac || printf " %s" "${p#?:}"
  done' sh "w:$host/var" "w:$ngx/staging.upstream.conf" "w:$ngx/prod.upstream.conf" \
  "r:$host/etc/staging.env" "r:$host/etc/prod.env" "r:$host/docker-config/config.json" \
  "r:$host/ssh/authorized_keys") || die "runuser -u $deploy_user failed"
[ -z "$denied" ] || die "$deploy_user cannot use:$denied"

# End to end, when something about ssh or the user changed: the alias logs in as the deploy user,
# which is in the docker group and may test the nginx config through sudo (an ssh round trip
# costs ~0.1 s).
if [ "$ssh_check" = 1 ]; then
  ssh -F "$host/ssh_config" "$ssh_alias" \
    "id -nG | tr ' ' '\n' | grep -qx docker && sudo -n nginx -c $ngx/nginx.conf -t 2> /dev/null" ||
    die "ssh -F $host/ssh_config $ssh_alias does not run as $deploy_user, in the docker group, allowed \`sudo nginx -c $ngx/nginx.conf -t\` (log: $host/ssh/sshd.log)"
fi
log "ready: ssh $ssh_alias, nginx 127.0.0.1:$staging_port/$prod_port, PostgreSQL $bridge:$pg_port ($host/host.env)"
