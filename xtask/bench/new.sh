#!/usr/bin/env bash
# Wall-clock benchmark of `cargo xtask new` (not a timed test: run it by hand, on a quiet machine).
#   ours: `cargo xtask new --yes` from a fresh volume set, images present, timed until it returns
#         (it returns only once postgres accepts TCP connections, the database is initialized,
#         the backend's health check answers 200 and the dev server answers).
#   old:  the sequence it replaced, with the same compose file, project and variables, from a
#         fresh volume set too: `compose up -d`, a fixed `sleep 10`, then the init script.
# Both on this machine in this run, interleaved; the medians are compared. Target: <= 0.60x.
# It uses its own compose project and ports, and its own tags for the app's dev images (removed
# at the end); base images (python, node, postgres, debian) are used, or built once, as `new` does.
# Behind a TLS-intercepting proxy, export RS_CA_BUNDLE first (the untimed set-up installs packages).
# Usage: bash xtask/bench/new.sh [RUNS (default 3)]
set -euo pipefail
runs=${1:-3}
project=rsbench
backend_port=${RS_BENCH_BACKEND_PORT:-25080}
frontend_port=${RS_BENCH_FRONTEND_PORT:-23080}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
cd "$root"

# The compose the xtask would pick (`auto`), passed to it explicitly so both sides use the same.
if docker compose version > /dev/null 2>&1; then flavor=v2; else flavor=v1; fi

# The shipped configuration with this benchmark's project, ports and dev image tags.
config="$work/bench.toml"
sed -e "s/^project = \"recordsponge\"$/project = \"$project\"/" \
    -e "s/^backend = 5000$/backend = $backend_port/" \
    -e "s/^frontend = 3000$/frontend = $frontend_port/" \
    -e "s#^\(backend_dev\|frontend_dev\) = \"recordsponge/#\1 = \"$project/#" \
    config/recordsponge.toml > "$config"
for want in "project = \"$project\"" "backend = $backend_port" "frontend = $frontend_port" "backend_dev = \"$project/"; do
  grep -q "^$want" "$config" || { echo "cannot set \`$want\` in the copied configuration" >&2; exit 1; }
done
xtask() { cargo --quiet xtask --config "$config" --compose "$flavor" "$@"; }
images=$(sed -n "s#^\(backend_dev\|frontend_dev\) = \"\($project/[^\"]*\)\"#\2#p" "$config")

cleanup() {
  set +e
  [ -n "${compose_line:-}" ] && compose down --volumes --remove-orphans > /dev/null 2>&1
  for image in $images; do docker image rm --force "$image" > /dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT

# The exact compose command and variables the xtask runs, taken from its plan (`--dry-run`), so
# that the old sequence uses the same file, project and environment.
cargo build --quiet -p xtask --bin xtask
plan=$(xtask --dry-run compose version)
env_line=$(sed -n 's/^ *env: //p' <<< "$plan" | head -n 1)
compose_line=$(sed -n 's/^ *\$ //p' <<< "$plan" | head -n 1)
compose_line=${compose_line% version}
[ -n "$env_line" ] && [ -n "$compose_line" ] || { echo "cannot read the compose command from the plan:" >&2; echo "$plan" >&2; exit 1; }
compose() { (eval "export $env_line" && eval "$compose_line \"\$@\""); }
init_script=$(sed -n 's/^init_script = "\(.*\)"$/\1/p' "$config")

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# Untimed: images present (built once if missing), then a fresh volume set.
echo "set-up (untimed): images, one \`new\`, then clobber"
xtask new --yes > "$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
xtask clobber --yes > /dev/null 2>&1

# A fresh volume set, and the disk's write-back of the previous run done, so that no run pays
# for the one before it.
fresh() {
  compose down --volumes --remove-orphans > /dev/null 2>&1
  sync
}

run_ours() {
  fresh
  local t0 t1
  t0=$(now)
  xtask new --yes > "$work/ours.log" 2>&1 || { cat "$work/ours.log" >&2; echo "cargo xtask new failed" >&2; exit 1; }
  t1=$(now)
  ms "$t0" "$t1" >> "$work/ours"
  echo "  ours: $(ms "$t0" "$t1") ms"
}

run_old() {
  fresh
  local t0 t1
  t0=$(now)
  {
    compose up -d &&
    sleep 10 &&
    compose exec -T -u postgres postgres bash "$init_script"
  } > "$work/old.log" 2>&1 || { cat "$work/old.log" >&2; echo "the old sequence failed" >&2; exit 1; }
  t1=$(now)
  ms "$t0" "$t1" >> "$work/old"
  echo "  old:  $(ms "$t0" "$t1") ms"
}

: > "$work/ours"; : > "$work/old"
for i in $(seq "$runs"); do
  echo "run $i of $runs"
  # Interleaved, alternating which goes first.
  if [ $((i % 2)) = 1 ]; then run_ours; run_old; else run_old; run_ours; fi
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
python3 - "$(median < "$work/old")" "$(median < "$work/ours")" "$runs" "$flavor" <<'PY'
import sys
old, ours, runs, flavor = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ratio = ours / old
print(f"{'':34}{'old':>10}{'new':>10}{'ratio':>8}{'target':>8}")
print(f"{f'median of {runs} runs, ms (compose {flavor})':34}{old:>10}{ours:>10}{ratio:>8.2f}{'0.60':>8}  {'ok' if ratio <= 0.60 else 'MISSED'}")
PY
