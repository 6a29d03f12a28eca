#!/usr/bin/env bash
# End-to-end check of the loopback production host made by host.sh, without the deploy tool:
#   1. the ssh alias runs docker on the host;
#   2. docker pull over ssh uses the test bed's registry login (and fails without it);
#   3. a container started over ssh as the deploy starts them (--env-file, --publish
#      127.0.0.1:3032:5000, --log-driver syslog) answers through nginx on the staging port, and
#      its log lines reach the syslog file;
#   4. switching the staging upstream to a second container (rewrite, sudo nginx -t, sudo nginx -s
#      reload, then stopping the first) under a bounded request loop loses no request;
#   5. a container reaches the host's PostgreSQL through the bridge address with the password;
#   and the password appears in none of the output.
# Uses python:3.11-slim-bookworm (python3 -m http.server) and postgres:15-bookworm (psql), local
# images the end-to-end suite builds. Cleans up its containers and image tag, restores the upstream
# file, also on failure. Loopback traffic only; the request loop is bounded (REQUESTS, default 300).
#   RS_TESTBED   state directory (default target/testbed under the repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${RS_TESTBED:-$root/target/testbed}
requests=${REQUESTS:-300}
[ "$requests" -le 1000 ] || { echo "REQUESTS is capped at 1000" >&2; exit 1; }
# shellcheck disable=SC1091
. "$state/host/host.env"
# shellcheck disable=SC1091
. "$state/registry.env"
py_image=python:3.11-slim-bookworm
pg_image=postgres:15-bookworm
tag=rs-hostcheck-$$
work=$(mktemp -d)
out=$work/output.log
# on_host ARG...: each argument quoted for the remote shell; on_host_sh 'SHELL CODE': as it is.
on_host() { ssh -F "$RS_SSH_CONFIG" "$RS_SSH_HOST" "$(printf '%q ' "$@")"; }
on_host_sh() { ssh -F "$RS_SSH_CONFIG" "$RS_SSH_HOST" "$1"; }
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*"; exit 1; }

upstream_saved=$work/staging.upstream.conf
cp "$RS_UPSTREAM_STAGING" "$upstream_saved"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  set +e
  docker rm -f "$tag-a" "$tag-b" > /dev/null 2>&1
  docker rmi "$RS_REGISTRY/$tag/probe:1" > /dev/null 2>&1
  if ! cmp -s "$upstream_saved" "$RS_UPSTREAM_STAGING"; then
    cp "$upstream_saved" "$RS_UPSTREAM_STAGING" && nginx -c "$RS_NGINX_CONF" -s reload
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for image in "$py_image" "$pg_image"; do
  docker image inspect "$image" > /dev/null 2>&1 || fail "image $image is missing (the end-to-end suite builds it)"
done

main() {
  step "1. ssh alias: docker ps on the host"
  on_host docker ps --format '{{.Names}} {{.Image}}'
  # shellcheck disable=SC2016  # expanded on the host
  on_host_sh 'echo "DOCKER_CONFIG=$DOCKER_CONFIG"'

  step "2. docker pull over ssh with the registry login"
  probe=$RS_REGISTRY/$tag/probe:1
  docker tag debian:bookworm-slim "$probe"
  DOCKER_CONFIG=$state/docker-config docker push -q "$probe"
  docker rmi "$probe" > /dev/null
  on_host docker pull -q "$probe"
  if on_host env DOCKER_CONFIG=/nonexistent docker pull -q "$probe" 2>&1; then
    fail "pull without the login succeeded: the check proves nothing"
  fi
  echo "(the same pull without the login fails, as expected)"

  step "3. a container started over ssh as the deploy does, answering through nginx :$RS_NGINX_STAGING_PORT"
  cat "$RS_UPSTREAM_STAGING"
  start_app() { # NAME PORT
    on_host docker run -d --name "$1" --env-file "$RS_ENV_FILE_STAGING" --publish "127.0.0.1:$2:5000" \
      --log-driver syslog --log-opt syslog-facility=local1 --log-opt "tag=$1" --stop-signal INT \
      "$py_image" sh -c "mkdir -p /srv && echo $1 > /srv/id && cd /srv && exec python3 -u -m http.server 5000"
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$2/id" && return 0; sleep 0.1; done
    fail "$1 did not answer on 127.0.0.1:$2"
  }
  start_app "$tag-a" 3032
  echo "through nginx: $(curl -sS --max-time 5 "http://127.0.0.1:$RS_NGINX_STAGING_PORT/id")"
  # shellcheck disable=SC2016  # expanded in the container
  on_host docker exec "$tag-a" sh -c 'echo "TIER=$TIER PGHOST=$PGHOST PGUSER=$PGUSER"'
  sleep 0.5
  echo "syslog lines of $tag-a in $RS_SYSLOG_FILE:"
  grep -F "$tag-a" "$RS_SYSLOG_FILE" | tail -n 3 || fail "no line of $tag-a in $RS_SYSLOG_FILE"

  step "4. switch staging to a second container under a loop of $requests requests"
  start_app "$tag-b" 3033
  codes=$work/codes
  : > "$codes"
  (
    for i in $(seq "$requests"); do
      printf '%s %s\n' "$i" "$(curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$RS_NGINX_STAGING_PORT/id" | tr -d '\n')"
    done > "$codes"
  ) &
  loop=$! loop_t0=$EPOCHREALTIME
  until [ "$(wc -l < "$codes")" -ge $((requests / 3)) ]; do sleep 0.05; done
  echo "at request $(wc -l < "$codes"): rewrite the upstream, sudo nginx -t, sudo nginx -s reload (over ssh)"
  t0=$EPOCHREALTIME
  # As the deploy does it: the deploy user rewrites its upstream file in place (the directory is
  # root's) and runs exactly the two nginx commands its sudoers entry allows.
  on_host_sh "printf 'upstream recordsponge_staging { server 127.0.0.1:3033; }\n' > '$RS_UPSTREAM_STAGING' &&
    sudo -n nginx -c '$RS_NGINX_CONF' -t && sudo -n nginx -c '$RS_NGINX_CONF' -s reload"
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "switch took %.2f s\n", b - a }'
  # `nginx -s reload` only signals the master, and the old worker may still accept for a moment:
  # wait until the last 5 answers all come from the new container before stopping the old one.
  until [ "$(tail -n 5 "$codes" | grep -c " $tag-b ")" -eq 5 ]; do
    kill -0 "$loop" 2> /dev/null || fail "nginx did not switch to $tag-b"
    sleep 0.02
  done
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "only the new container answers %.2f s after the switch began\n", b - a }'
  until [ "$(wc -l < "$codes")" -ge $((2 * requests / 3)) ]; do sleep 0.05; done
  echo "at request $(wc -l < "$codes"): docker stop the old container"
  on_host docker stop -t 10 "$tag-a" > /dev/null
  wait "$loop"
  awk -v a="$loop_t0" -v b="$EPOCHREALTIME" -v n="$requests" 'BEGIN { printf "%d requests in %.1f s\n", n, b - a }'
  echo "responses (body, status): $(awk '{ print $2, $3 }' "$codes" | sort | uniq -c | tr '\n' ';')"
  first_b=$(awk -v b="$tag-b" '$2 == b { print $1; exit }' "$codes")
  last_a=$(awk -v a="$tag-a" '$2 == a { n = $1 } END { print n }' "$codes")
  echo "last answer from $tag-a: request $last_a; first from $tag-b: request $first_b"
  bad=$(awk '$3 != 200' "$codes" | wc -l)
  [ "$bad" -eq 0 ] || { awk '$3 != 200' "$codes" | head; fail "$bad of $requests requests failed"; }
  echo "0 of $requests requests failed"

  step "5. PostgreSQL on the host from a container, through the bridge address"
  on_host docker run --rm --name "$tag-psql" --env-file "$RS_ENV_FILE_STAGING" --entrypoint psql "$pg_image" \
    -X -A -t -c "SELECT current_user || '@' || inet_server_addr() || ':' || inet_server_port() || ' ' || current_database() || ', tables: ' || string_agg(tablename, ',') FROM pg_tables WHERE tableowner = current_user"
}

main 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
step "password in the output?"
if grep -qF "$(cat "$RS_SECRET_FILE")" "$out"; then
  echo "FAILED: the password appears in the output"; exit 1
fi
echo "no"
exit "$status"
