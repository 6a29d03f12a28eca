#!/usr/bin/env bash
# Compile-time benchmark of the xtask (every fresh clone compiles it before its first command).
#   cold: `cargo build` of the xtask from an empty target dir, against a scratch crate holding only
#         xshell, clap (derive) and serde (derive), built on this machine in this run. Target: <= 1.30x.
#   warm: `cargo xtask --help` against `cargo run` of an empty binary in the same workspace. Target: <= 1.15x.
# Usage: bash xtask/bench/compile.sh [COLD_RUNS (default 2)] [WARM_RUNS (default 20)]
set -euo pipefail
cold_runs=${1:-2}
warm_runs=${2:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# The scratch crate, with the versions this workspace locks, fetched before anything is timed.
mkdir -p "$work/scratch/src"
ver() { cargo metadata --format-version 1 --manifest-path "$root/Cargo.toml" |
  python3 -c "import json,sys; print(next(p['version'] for p in json.load(sys.stdin)['packages'] if p['name']=='$1'))"; }
cat > "$work/scratch/Cargo.toml" <<TOML
[package]
name = "scratch"
version = "0.1.0"
edition = "2021"
[dependencies]
xshell = "=$(ver xshell)"
clap = { version = "=$(ver clap)", features = ["derive"] }
serde = { version = "=$(ver serde)", features = ["derive"] }
[workspace]
TOML
cat > "$work/scratch/src/main.rs" <<'RS'
use clap::Parser;
#[derive(Parser, serde::Deserialize)]
struct Cli { name: Option<String> }
fn main() { let cli = Cli::parse(); let sh = xshell::Shell::new().unwrap(); let _ = (cli.name, sh); }
RS
cargo fetch --quiet --manifest-path "$work/scratch/Cargo.toml"
cargo fetch --quiet --manifest-path "$root/Cargo.toml"

best_scratch=0; best_xtask=0
for i in $(seq "$cold_runs"); do
  rm -rf "$work/t-scratch" "$work/t-xtask"
  t0=$(now); CARGO_TARGET_DIR="$work/t-scratch" cargo build --quiet --offline --manifest-path "$work/scratch/Cargo.toml"; t1=$(now)
  t2=$(now); (cd "$root" && CARGO_TARGET_DIR="$work/t-xtask" cargo build --quiet --offline -p xtask --bin xtask); t3=$(now)
  s=$(ms "$t0" "$t1"); x=$(ms "$t2" "$t3")
  echo "cold run $i: scratch ${s} ms, xtask ${x} ms"
  if [ "$best_scratch" = 0 ] || [ "$s" -lt "$best_scratch" ]; then best_scratch=$s; fi
  if [ "$best_xtask" = 0 ] || [ "$x" -lt "$best_xtask" ]; then best_xtask=$x; fi
done

# Warm: both already built; interleaved runs, median of each.
cd "$root"
cargo build --quiet -p xtask --bin xtask --example empty
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$work/warm-x"; : > "$work/warm-e"
for i in $(seq "$warm_runs"); do
  t0=$(now); cargo xtask --help > /dev/null 2>&1; t1=$(now)
  t2=$(now); cargo run --quiet -p xtask --example empty > /dev/null 2>&1; t3=$(now)
  echo $(( (t1 - t0) / 100000 )) >> "$work/warm-x"; echo $(( (t3 - t2) / 100000 )) >> "$work/warm-e"
done
wx=$(median < "$work/warm-x"); we=$(median < "$work/warm-e")

python3 - "$best_scratch" "$best_xtask" "$we" "$wx" <<'PY'
import sys
s, x, we, wx = (int(a) for a in sys.argv[1:])
cold, warm = x / s, wx / we
print(f"{'':28}{'baseline':>12}{'xtask':>12}{'ratio':>8}{'target':>8}")
print(f"{'cold build (best, ms)':28}{s:>12}{x:>12}{cold:>8.2f}{'1.30':>8}  {'ok' if cold <= 1.30 else 'MISSED'}")
print(f"{'warm --help (median, ms)':28}{we/10:>12.1f}{wx/10:>12.1f}{warm:>8.2f}{'1.15':>8}  {'ok' if warm <= 1.15 else 'MISSED'}")
PY
