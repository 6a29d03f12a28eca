#!/usr/bin/env bash
# Deploy benchmark (not a timed test: run it by hand, on a quiet machine), against the loopback
# production host of xtask/testbed/host.sh and the registry of xtask/testbed/registry.sh.
# The same release is deployed twice under a request loop through nginx, on the same machine in
# the same run: once with the old sequence (one ssh command: docker pull; docker stop; docker rm;
# docker run, as src/ops/Makefile's ssh_deploy did) on the prod site, once with
# `cargo xtask deploy` on the staging site. Each gets an untimed first deploy, so the measured one
# replaces a running release. Prints failed requests of each (target: 0 for ours), the wall-time
# ratio (target: <= 1.30, build excluded), and the time to the first refused precondition of a
# deploy that cannot succeed (target: < 2 s), against the old sequence, which failed only after
# its build (the build time is printed beside it).
# Usage: bash xtask/bench/deploy.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash xtask/testbed/registry.sh > /dev/null
bash xtask/testbed/host.sh > /dev/null
set -a; . target/testbed/registry.env; . target/testbed/host/host.env; set +a
export DOCKER_CONFIG=$root/target/testbed/docker-config
work=$(mktemp -d)
repo="$RS_REGISTRY/recordsponge/bench-expungeservice"
old_name=rs-bench-old

# The shipped configuration pointed at the test host (as xtask/tests/deploy.rs does).
config="$work/bench.toml"
python3 - "$config" <<PY
import sys
s = open("config/recordsponge.toml").read()
# The host's sudoers allows exactly these two commands to its deploy user (xtask/testbed/host.sh).
nginx = lambda a: '["sudo", "nginx", "-c", "$RS_NGINX_CONF", %s]' % a
for a, b in [
    ('project = "recordsponge"', 'project = "rsbenchdeploy"'),
    ('repository = "recordsponge/expungeservice"', 'repository = "$repo"'),
    ('ssh_config = ""', 'ssh_config = "$RS_SSH_CONFIG"'),
    ('state_dir = "/var/lib/recordsponge"', 'state_dir = "$RS_HOST_STATE"'),
    ('nginx_test = ["sudo", "nginx", "-t"]', 'nginx_test = ' + nginx('"-t"')),
    ('nginx_reload = ["sudo", "nginx", "-s", "reload"]', 'nginx_reload = ' + nginx('"-s", "reload"')),
    ('host = "recordsponge"\nports = [3032', 'host = "$RS_SSH_HOST"\nports = [3032'),
    ('/etc/nginx/recordsponge/staging.upstream.conf', '$RS_UPSTREAM_STAGING'),
    ('https://staging.recordsponge.com/api/version', 'http://127.0.0.1:$RS_NGINX_STAGING_PORT/api/version'),
    ('/etc/recordsponge/staging.env', '$RS_ENV_FILE_STAGING'),
]:
    assert a in s, a
    s = s.replace(a, b)
open(sys.argv[1], "w").write(s)
PY
xtask() { cargo --quiet xtask --config "$config" "$@"; }
host() { ssh -F "$RS_SSH_CONFIG" "$RS_SSH_HOST" -- "$@"; }

cleanup() {
  set +e
  [ -n "${loop_pid:-}" ] && kill "$loop_pid" 2> /dev/null
  host docker rm --force "$old_name" > /dev/null 2>&1
  for id in $(docker ps --all --quiet --filter label=org.recordsponge.env=staging); do docker rm --force "$id" > /dev/null; done
  rm -rf "$RS_HOST_STATE"/staging.*
  # By tag, not id: a tag may share its image with others.
  for tag in $(docker images --format '{{.Repository}}:{{.Tag}}' "$repo"); do docker rmi "$tag" > /dev/null 2>&1; done
  printf 'upstream recordsponge_prod { server 127.0.0.1:3031; }\n' > "$RS_UPSTREAM_PROD"
  nginx -c "$RS_NGINX_CONF" -s reload
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# A request loop through nginx on PORT until $work/stop-PORT exists (bounded: 20 000 requests).
loop() {
  local port=$1 failed=0 total=0
  while [ ! -e "$work/stop-$port" ] && [ "$total" -lt 20000 ]; do
    code=$(curl --silent --output /dev/null --max-time 5 --write-out '%{http_code}' "http://127.0.0.1:$port/api/health" || true)
    [ "$code" = 200 ] || failed=$((failed + 1))
    total=$((total + 1))
    sleep 0.005
  done
  echo "$failed $total" > "$work/loop-$port"
}
start_loop() { rm -f "$work/stop-$1" "$work/loop-$1"; loop "$1" & loop_pid=$!; sleep 0.5; }
stop_loop() { touch "$work/stop-$1"; wait "$loop_pid"; loop_pid=; }

echo "set-up (untimed): the release image, pushed; a first deploy of each kind"
t0=$(now)
xtask image staging > "$work/image.log" 2>&1 || { cat "$work/image.log" >&2; exit 1; }
t1=$(now)
build_ms=$(ms "$t0" "$t1")
commit=$(git rev-parse HEAD)
tag="staging-${commit:0:12}"
xtask push staging > /dev/null 2>&1
image="$repo:$tag"
old_deploy() {
  host "docker pull $image > /dev/null && (docker stop $old_name; docker rm --force $old_name) > /dev/null 2>&1; \
    docker run --detach --name $old_name --env-file $RS_ENV_FILE_PROD --publish 127.0.0.1:3031:5000 \
    --log-driver syslog --log-opt syslog-facility=local0 --log-opt tag=$old_name $image > /dev/null"
}
printf 'upstream recordsponge_prod { server 127.0.0.1:3031; }\n' > "$RS_UPSTREAM_PROD"
nginx -c "$RS_NGINX_CONF" -s reload
old_deploy
xtask deploy staging --tag "$tag" > "$work/first.log" 2>&1 || { cat "$work/first.log" >&2; exit 1; }
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$RS_NGINX_PROD_PORT/api/health" && break; sleep 0.1; done

echo "old sequence (pull; stop; rm; run) under a request loop through nginx"
start_loop "$RS_NGINX_PROD_PORT"
t0=$(now); old_deploy; t1=$(now)
# The old sequence returns before the app answers: the outage lasts until it does.
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$RS_NGINX_PROD_PORT/api/health" && break; sleep 0.05; done
sleep 1
stop_loop "$RS_NGINX_PROD_PORT"
read -r old_failed old_total < "$work/loop-$RS_NGINX_PROD_PORT"
old_ms=$(ms "$t0" "$t1")

echo "cargo xtask deploy under a request loop through nginx"
start_loop "$RS_NGINX_STAGING_PORT"
t0=$(now); xtask deploy staging --tag "$tag" > "$work/ours.log" 2>&1 || { cat "$work/ours.log" >&2; exit 1; }; t1=$(now)
sleep 1
stop_loop "$RS_NGINX_STAGING_PORT"
read -r our_failed our_total < "$work/loop-$RS_NGINX_STAGING_PORT"
our_ms=$(ms "$t0" "$t1")

echo "a deploy that cannot succeed (no registry login): time to the refusal"
mkdir -p "$work/no-login"
t0=$(now)
if DOCKER_CONFIG="$work/no-login" xtask staging > "$work/refused.log" 2>&1; then echo "it did not refuse" >&2; exit 1; fi
t1=$(now)
refuse_ms=$(ms "$t0" "$t1")

python3 - "$old_failed" "$old_total" "$our_failed" "$our_total" "$old_ms" "$our_ms" "$refuse_ms" "$build_ms" <<'PY'
import sys
of, ot, uf, ut, om, um, rm, bm = (int(a) for a in sys.argv[1:])
print(f"{'':36}{'old':>10}{'xtask':>10}  target")
print(f"{'failed requests (of the loop)':36}{f'{of}/{ot}':>10}{f'{uf}/{ut}':>10}  0 for xtask  {'ok' if uf == 0 else 'MISSED'}")
print(f"{'deploy wall time (ms, build excluded)':36}{om:>10}{um:>10}  ratio {um/om:.2f} <= 1.30  {'ok' if um/om <= 1.30 else 'MISSED'}")
print(f"{'refusal of a doomed deploy (ms)':36}{'>' + str(bm):>10}{rm:>10}  < 2000  {'ok' if rm < 2000 else 'MISSED'}")
print("(the old sequence had no checks: it failed only after its build, which took the time shown)")
PY
