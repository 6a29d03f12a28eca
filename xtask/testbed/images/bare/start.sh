#!/bin/bash
# PID 1's child in the rsx bare-host image (under tini): sshd, the registry forward, and where
# a Docker engine installed later is to put its containers' cgroups; then /run/rsx-host.ready.
#
# Environment: RSX_REGISTRY_FORWARD (as in xtask/testbed/images/host/start.sh).
set -u
mkdir -p /var/log/rsx /run/sshd
ssh-keygen -A > /dev/null
/usr/sbin/sshd -D >> /var/log/rsx/sshd.log 2>&1 &
for fwd in ${RSX_REGISTRY_FORWARD:-}; do
  IFS=: read -r lport thost tport <<< "$fwd"
  socat "TCP-LISTEN:$lport,bind=127.0.0.1,fork,reuseaddr" "TCP:$thost:$tport" >> "/var/log/rsx/socat-$lport.log" 2>&1 &
done
# An engine installed here later puts its containers' cgroups below this container's own (cgroup
# v1 with the machine's /sys/fs/cgroup mounted): limits nest, and removing this container
# removes them with it.
parent=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
if [ -n "$parent" ] && [ "$parent" != / ]; then
  mkdir -p /etc/docker
  printf '{ "cgroup-parent": "%s/inner" }\n' "$parent" > /etc/docker/daemon.json
fi
touch /run/rsx-host.ready
sleep infinity &
wait $!
