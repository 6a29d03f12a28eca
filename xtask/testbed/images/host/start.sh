#!/bin/bash
# PID 1's child in the rsx test-host image (under docker-init): starts the daemons of a deploy
# host without systemd, then waits. Logs of the daemons: /var/log/rsx/*.log (sshd: auth.log).
# When everything is up it creates /run/rsx-host.ready (poll: docker exec H test -e /run/rsx-host.ready).
#
# Environment:
#   RSX_REGISTRY_FORWARD  space-separated LISTEN_PORT:TARGET_HOST:TARGET_PORT; for each, socat
#                         listens on 127.0.0.1:LISTEN_PORT and forwards to TARGET_HOST:TARGET_PORT
#                         (the registry container on a shared network). The inner engine then
#                         pulls 127.0.0.1:LISTEN_PORT/REPO:TAG over plain HTTP (loopback needs no
#                         insecure-registries), the same name the machine pushes to.
#   RSX_POSTGRES=1        also start PostgreSQL 15 (every cluster pg_lsclusters lists; the
#                         package made 15/main on port 5432 at build time).
#   RSX_DOCKERD_ARGS      extra dockerd arguments (e.g. "--storage-driver vfs").
#   RSX_DOCKERD=0         do not start the inner engine.
# docker stop (SIGTERM) stops nginx, the inner engine (its containers), PostgreSQL, then exits.
set -u
# /run is a tmpfs (the fleet mounts one, as a real host has): empty at every start, even after a
# crash. What the daemons expect there is made here.
mkdir -p /var/log/rsx /run/sshd
install -d -o postgres -g postgres -m 2775 /run/postgresql
rm -f /run/rsx-host.ready /var/run/docker.pid /run/nginx.pid /run/sshd.pid /run/rsyslogd.pid
log() { printf '%s rsx-host: %s\n' "$(date +%T.%3N)" "$*"; }
pids=()

# rsyslog first: /dev/log for `--log-driver syslog` and the daemons.
/usr/sbin/rsyslogd -n >> /var/log/rsx/rsyslogd.log 2>&1 &
pids+=($!)

# Per-container ssh host keys (the image has none). sshd logs through syslog (/var/log/auth.log,
# with timestamps), with Debian's /etc/ssh/sshd_config (UsePAM yes works here).
ssh-keygen -A > /dev/null
/usr/sbin/sshd -D >> /var/log/rsx/sshd.log 2>&1 &
pids+=($!)

/usr/sbin/nginx -g 'daemon off;' >> /var/log/rsx/nginx.log 2>&1 &
nginx_pid=$!
pids+=($nginx_pid)

for fwd in ${RSX_REGISTRY_FORWARD:-}; do
  IFS=: read -r lport thost tport <<< "$fwd"
  socat "TCP-LISTEN:$lport,bind=127.0.0.1,fork,reuseaddr" "TCP:$thost:$tport" \
    >> /var/log/rsx/socat-$lport.log 2>&1 &
  pids+=($!)
  log "forwarding 127.0.0.1:$lport to $thost:$tport"
done

dockerd_pid=
if [ "${RSX_DOCKERD:-1}" != 0 ]; then
  # The inner engine's containers go into cgroups below this container's own (cgroup v1 with the
  # host's /sys/fs/cgroup mounted): limits nest, and the outer engine removes them with it.
  parent=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
  cg_args=()
  [ -n "$parent" ] && [ "$parent" != / ] && cg_args=(--cgroup-parent "$parent/inner")
  # shellcheck disable=SC2086  # word splitting of the extra arguments is wanted
  /usr/sbin/dockerd "${cg_args[@]}" --shutdown-timeout 5 ${RSX_DOCKERD_ARGS:-} \
    >> /var/log/rsx/dockerd.log 2>&1 &
  dockerd_pid=$!
  pids+=($dockerd_pid)
fi

pg=0
if [ "${RSX_POSTGRES:-0}" = 1 ]; then
  pg=1
  pg_lsclusters -h | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" start >> /var/log/rsx/postgresql.log 2>&1 || log "PostgreSQL $ver/$name did not start"
  done
fi

stop() {
  log "stopping"
  [ -e /run/nginx.pid ] && kill -QUIT "$(cat /run/nginx.pid)" 2> /dev/null
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2> /dev/null
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2> /dev/null || break; sleep 0.1; done
  fi
  [ "$pg" = 1 ] && pg_lsclusters -h | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" stop -m fast > /dev/null 2>&1
  done
  kill -TERM "${pids[@]}" 2> /dev/null
  exit 0
}
trap stop TERM INT

if [ -n "$dockerd_pid" ]; then
  for _ in $(seq 600); do
    docker info > /dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2> /dev/null || { log "dockerd exited:"; tail -n 20 /var/log/rsx/dockerd.log; break; }
    sleep 0.1
  done
fi
touch /run/rsx-host.ready
log "ready"
# Wait (interruptibly, for the trap) forever; the daemons are restarted by hand if needed.
sleep infinity &
wait $!
