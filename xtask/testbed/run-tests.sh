#!/usr/bin/env bash
# The project's test command (README.md; .ci/run calls it). On a Debian machine, as root, it
# provisions the one thing the tests need from the machine: a Docker engine with compose v1 and
# v2 (xtask/testbed/provision-engine.sh; only what is missing). Everything else the suites make
# as containers (a registry with a login, production hosts, a Swarm: xtask/testbed/src/fleet.rs) and
# remove at the end. It type-checks the xtask for Windows and macOS and runs clippy, then runs
# every test: the plan tests and the end-to-end suites against the real engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# What the suites need from the machine: an engine that answers, compose v2 and compose v1.
# Provisioned (as root, on Debian) only when one of them is missing.
if ! { docker info && docker compose version && docker-compose version; } >/dev/null 2>&1; then
  bash xtask/testbed/provision-engine.sh
fi

# The platforms the README promises stay compilable, and the code stays rustfmt-formatted and
# clippy-clean (this adds rustfmt, clippy and the two targets to the toolchain, once).
rustup component add rustfmt clippy
rustup target add x86_64-pc-windows-gnu aarch64-apple-darwin
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
for target in x86_64-pc-windows-gnu aarch64-apple-darwin; do
  cargo check --workspace --all-targets --locked --target "$target"
done

# Every test, the suites that need the engine too (plain `cargo test` lists them as ignored).
cargo test --workspace --locked --no-fail-fast -- --include-ignored
