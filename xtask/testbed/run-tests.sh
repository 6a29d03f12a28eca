#!/usr/bin/env bash
# The project's test command (README.md; .ci/run calls it): provisions what the tests need on a
# Debian machine (Docker engine and compose, a registry with a login, a deploy host over ssh;
# images built on demand by the suite), then runs every test: the plan tests and the end-to-end
# suite against the real engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

bash xtask/testbed/provision-engine.sh
bash xtask/testbed/registry.sh
# The deploy host on loopback: sshd, nginx, rsyslog, PostgreSQL, env files ($RS_TESTBED/host/host.env).
bash xtask/testbed/host.sh

# The end-to-end suite must run here: a missing engine fails it instead of skipping it.
export RS_E2E=required
# Package installs in image builds and containers trust the host's CA bundle (TLS-intercepting proxies).
if [ -z "${RS_CA_BUNDLE:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export RS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
cargo test --workspace --locked --no-fail-fast
