#!/usr/bin/env bash
# Sets up a Debian 12 or Ubuntu host for `cargo xtask deploy` (config/nginx/README.md), as
# root, from a copy of this directory on the host. Safe to run again at any time: it installs
# only what is missing, never empties or overwrites a file that holds settings (env files, an
# upstream the deploy rewrote), and starts only what does not run.
#
#   bash setup-host.sh [--user deploy] [--keys FILE] [--http-only] [--no-install] [--no-nginx]
#                      --env staging [--env prod=recordsponge.com] ...
#
# --env NAME[=DOMAIN][@HTTP_PORT]  an environment to serve: its nginx site (server_name DOMAIN,
#        default: recordsponge.com for prod, NAME.recordsponge.com otherwise; `_` answers any
#        name), listening on HTTP_PORT (default 80) and 443. Give only `--env staging` to bring
#        up staging alone.
# --http-only  plain http sites even where certificates exist (before certbot, or behind
#        another TLS proxy). Without it, an environment whose certificate exists in
#        /etc/letsencrypt/live/DOMAIN/ gets the TLS site, and the http one until then.
# --user NAME  the deploy user, which `ssh` logs in as (default: deploy).
# --keys FILE  public keys to authorize for it (appended, once each).
# --no-install  do not install packages (they are there already).
# --no-nginx  a manager of a Docker Swarm (config/swarm): no nginx, no sites, no sudo rule (the
#        stack's own proxy serves); the user, env files, state directory and sshd as for a host.
set -euo pipefail
# The last command of a pipeline runs in this shell (`sed ... | write_ours ...`): what it
# records (`did`: a change, so nginx is reloaded) is not lost in a subshell.
shopt -s lastpipe
here=$(cd "$(dirname "$0")" && pwd)
user=deploy keys= http_only= install=1 nginx=1 envs=()
while [ $# -gt 0 ]; do
  case $1 in
    --user) user=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --http-only) http_only=1; shift ;;
    --no-install) install=; shift ;;
    --no-nginx) nginx=; shift ;;
    *) echo "setup-host.sh: unknown argument $1 (see the top of this file)" >&2; exit 2 ;;
  esac
done
say() { printf 'setup-host: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# did WHAT: says a change this run made (a run that makes none says so at the end).
changed=
did() { say "$*"; changed=1; }
[ "$(id -u)" = 0 ] || die "run it as root: sudo bash $0 $*"
[ "${#envs[@]}" -gt 0 ] || die "name at least one environment: --env staging"
[[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user $user is not a valid user name"

# write_new PATH MODE OWNER < content: creates PATH only when it does not exist (then says so).
write_new() {
  [ -e "$1" ] && { cat > /dev/null; return 1; }
  install -m "$2" -o "${3%%:*}" -g "${3##*:}" /dev/null "$1"
  cat > "$1"
  did "created $1"
}
# write_ours PATH MODE < content: a file this script owns, replaced when its content differs.
write_ours() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat > "$tmp"
  chmod "$2" "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$1"
  did "wrote $1"
}

# 1. Packages, each installed when its program is missing (so another package of it counts:
# docker-ce for docker.io, nginx-light for nginx). util-linux has flock (the deploy lock); sudo
# runs the two nginx commands; iproute2 has ip and ss (setup-database.sh, `cargo xtask setup`).
if [ -n "$install" ]; then
  packages=(docker.io:dockerd rsyslog:rsyslogd logrotate:logrotate curl:curl sudo:sudo util-linux:flock
    procps:pgrep iproute2:ip openssh-server:sshd ${nginx:+nginx:nginx})
  missing=()
  for p in "${packages[@]}"; do
    command -v "${p#*:}" > /dev/null || [ -x "/usr/sbin/${p#*:}" ] || missing+=("${p%%:*}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    did "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || say "apt-get update reported errors (continuing)"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi
if [ -n "$nginx" ]; then nginx_bin=$(command -v nginx) || die "nginx is not installed (run without --no-install)"; fi

# 2. The deploy user. Its password is `*` (no password login) rather than locked (`!`, what
# `adduser --disabled-password` sets): an sshd without PAM refuses keys for locked accounts.
if ! id "$user" > /dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --password '*' --comment 'RecordSponge deploys' "$user"
  did "created the user $user"
fi
case $(getent shadow "$user" | cut -d: -f2) in
  '!'*) usermod --password '*' "$user"; did "$user: unlocked for key logins (password login stays off)" ;;
esac
# docker: its engine; recordsponge: the deploy users of this host (their shared state directory).
for group in docker recordsponge; do
  getent group "$group" > /dev/null || groupadd --system "$group"
  id -nG "$user" | tr ' ' '\n' | grep -qx "$group" || { usermod -aG "$group" "$user"; did "$user: added to the $group group"; }
done
home=$(getent passwd "$user" | cut -d: -f6)
# The deploy user owns its home: a link it made there would have root hand the link's target over.
for path in "$home/.ssh" "$home/.ssh/authorized_keys"; do
  [ ! -L "$path" ] || die "$path is a symbolic link: as root this script would hand its target to $user; remove it, then run this again"
done
install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
[ -e "$home/.ssh/authorized_keys" ] || install -m 600 -o "$user" -g "$user" /dev/null "$home/.ssh/authorized_keys"
if [ -n "$keys" ]; then
  while IFS= read -r key; do
    [ -z "$key" ] || grep -qxF "$key" "$home/.ssh/authorized_keys" || { printf '%s\n' "$key" >> "$home/.ssh/authorized_keys"; did "authorized a key for $user"; }
  done < "$keys"
fi

# 3. The environments' env files (KEY=value lines the containers get; the database password
# among them): each readable by its deploy user only (a host may have one deploy user per
# environment: config/nginx/README.md). Existing ones keep what they hold.
install -d -m 711 -o root -g root /etc/recordsponge
for spec in "${envs[@]}"; do
  env=${spec%%[=@]*}
  file=/etc/recordsponge/$env.env
  if [ "$env" = prod ]; then tier=production; else tier=$env; fi
  write_new "$file" 600 "$user:$user" << ENV || true
# RecordSponge $env: the containers' settings (docker run --env-file). Fill in and keep secret.
PGHOST=
PGPORT=5432
PGDATABASE=recordsponge
PGUSER=recordsponge
PGPASSWORD=
TIER=$tier
ENV
  chown "$user:$user" "$file"
  chmod 600 "$file"
done

# 4b. The environments' database backups (cargo xtask db backup ENV): a directory each, its deploy
# user's; root reads them too.
install -d -m 755 -o root -g root /var/backups/recordsponge
for spec in "${envs[@]}"; do
  install -d -m 750 -o "$user" -g "$user" "/var/backups/recordsponge/${spec%%[=@]*}"
done

# 4. The deploy's state: each environment's lock and release log, made by its deploy user; the
# deploy users of the host share the directory (group recordsponge), none may remove another's
# files (sticky).
install -d -m 1770 -o root -g recordsponge /var/lib/recordsponge

# 5. nginx: one site per environment, proxying to the upstream file the deploy rewrites.
if [ -n "$nginx" ]; then
  install -d -m 755 /etc/nginx/recordsponge /var/www/letsencrypt
  write_ours /etc/nginx/recordsponge/proxy.conf 644 < "$here/proxy.conf" || true
  for spec in "${envs[@]}"; do
    env=${spec%%[=@]*}
    domain=${spec#"$env"}; domain=${domain#=}; domain=${domain%@*}
    [ -n "$domain" ] || if [ "$env" = prod ]; then domain=recordsponge.com; else domain=$env.recordsponge.com; fi
    http_port=80
    case $spec in *@*) http_port=${spec##*@} ;; esac
    [[ $env =~ ^[a-z0-9][a-z0-9_.-]*$ && $http_port =~ ^[0-9]+$ && $domain =~ ^[A-Za-z0-9_.-]+$ ]] || die "--env $spec: NAME[=DOMAIN][@HTTP_PORT]"
    # Until the first deploy, no release runs: nginx answers 502.
    echo "upstream recordsponge_$env { server 127.0.0.1:9 down; }" |
      write_new "/etc/nginx/recordsponge/$env.upstream.conf" 644 "$user:$user" || true
    if [ -z "$http_only" ] && [ -s "/etc/letsencrypt/live/$domain/fullchain.pem" ]; then template=site.conf.in; else template=site-http.conf.in; fi
    sed -e "s/@ENV@/$env/g" -e "s/@DOMAIN@/$domain/g" -e "s/@HTTP_PORT@/$http_port/g" "$here/$template" |
      write_ours "/etc/nginx/sites-available/recordsponge-$env.conf" 644 || true
    ln -sfn "../sites-available/recordsponge-$env.conf" "/etc/nginx/sites-enabled/recordsponge-$env.conf"
  done
  [ ! -e /etc/nginx/sites-enabled/default ] || { rm -f /etc/nginx/sites-enabled/default; did "disabled nginx's default site"; }
  # The deploy user may test and reload nginx, nothing else, without a password (`sudo -n`).
  sudoers=/etc/sudoers.d/recordsponge-$user
  rule="$user ALL=(root) NOPASSWD: $nginx_bin -t, $nginx_bin -s reload"
  if [ "$(cat "$sudoers" 2> /dev/null)" != "$rule" ]; then
    tmp=$(mktemp "/etc/sudoers.d/.recordsponge-$user.XXXXXX")
    printf '%s\n' "$rule" > "$tmp"
    chmod 440 "$tmp"
    visudo -cqf "$tmp" || { rm -f "$tmp"; die "visudo rejects: $rule"; }
    mv -f "$tmp" "$sudoers"
    did "sudo: $user may run \`nginx -t\` and \`nginx -s reload\` ($sudoers)"
  fi
fi

# 6. Logs: the containers log to syslog (facility local1 for staging, local0 for prod), kept
# apart and rotated.
install -d -m 755 /var/log/recordsponge /etc/rsyslog.d
write_ours /etc/rsyslog.d/30-recordsponge.conf 644 << 'CONF' && restart_rsyslog=1 || restart_rsyslog=
# RecordSponge's containers (config/recordsponge.toml: syslog_facility).
local1.*  /var/log/recordsponge/staging.log
local0.*  /var/log/recordsponge/prod.log
CONF
install -d -m 755 /etc/logrotate.d
write_ours /etc/logrotate.d/recordsponge 644 << 'CONF' || true
/var/log/recordsponge/*.log {
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
    sharedscripts
    postrotate
        /usr/lib/rsyslog/rsyslog-rotate
    endscript
}
CONF

# 7. sshd notices a vanished client (a laptop gone to sleep, a dropped network) within about half
# a minute (measured: five to six intervals), so that a deploy whose connection died lets go of
# the deploy lock by itself. A deploy that ends or is killed lets go at once.
install -d -m 755 /etc/ssh/sshd_config.d
write_ours /etc/ssh/sshd_config.d/recordsponge.conf 644 << 'CONF' && reload_sshd=1 || reload_sshd=
ClientAliveInterval 5
ClientAliveCountMax 3
CONF
grep -Eqs '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config || say "note: /etc/ssh/sshd_config does not include sshd_config.d; add ClientAliveInterval 5 there"

# 8. The daemons: through systemd where it runs, else started here when they do not run.
[ -z "$nginx" ] || "$nginx_bin" -t -q || die "nginx's configuration is invalid (nginx -t says why)"
running() { pgrep -x "$1" > /dev/null; }
if [ -d /run/systemd/system ]; then
  for unit in docker rsyslog ${nginx:+nginx}; do
    systemctl is-enabled --quiet "$unit" && systemctl is-active --quiet "$unit" && continue
    systemctl enable --now --quiet "$unit"
    did "enabled and started $unit"
  done
  [ -z "$restart_rsyslog" ] || systemctl restart rsyslog
  [ -z "$nginx" ] || [ -z "$changed" ] || systemctl reload nginx
  [ -z "$reload_sshd" ] || systemctl reload ssh || systemctl reload sshd || true
else
  running dockerd || { setsid dockerd > /var/log/dockerd.log 2>&1 < /dev/null & did "started dockerd"; }
  if ! running rsyslogd; then rsyslogd; did "started rsyslogd"; elif [ -n "$restart_rsyslog" ]; then pkill -HUP -x rsyslogd; fi
  if [ -z "$nginx" ]; then :; elif ! running nginx; then "$nginx_bin"; did "started nginx"; elif [ -n "$changed" ]; then "$nginx_bin" -s reload; fi
  if [ -x /usr/sbin/sshd ]; then
    mkdir -p /run/sshd
    # The listener alone, by its pid file: every session (this one, a deploy's lock) is an sshd
    # too, and a signal to them all would cut them.
    listener=$(cat /run/sshd.pid 2> /dev/null || true)
    if [ -n "$listener" ] && [ "$(ps -o comm= -p "$listener" 2> /dev/null)" = sshd ]; then
      [ -z "$reload_sshd" ] || { kill -HUP "$listener"; did "reloaded sshd (its listener, pid $listener)"; }
    elif ! running sshd; then
      /usr/sbin/sshd; did "started sshd"
    elif [ -n "$reload_sshd" ]; then
      say "note: sshd runs without /run/sshd.pid: reload its listener yourself to apply /etc/ssh/sshd_config.d/recordsponge.conf"
    fi
  fi
fi
for _ in $(seq 100); do docker info > /dev/null 2>&1 && break; sleep 0.2; done
docker info > /dev/null 2>&1 || die "the Docker engine does not answer (see /var/log/dockerd.log or journalctl -u docker)"

[ -n "$changed" ] || say "nothing to change (this host was set up already)"
say "ready."
