//! An empty program in the xtask package: the baseline `xtask/bench/compile.sh` compares
//! a warm `cargo xtask --help` with (`cargo run --example empty`).
fn main() {}
