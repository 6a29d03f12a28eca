//! The xtask's test rig: a fleet of hosts as containers (`fleet`), for the deploy suites and
//! the benchmarks, and the benchmarks themselves (`bench`, run by `cargo xtask bench`). It is a
//! workspace member of its own, used by the suites as a dev-dependency, so that the commands of
//! a fresh clone never compile it. It starts programs through xshell, or through the xtask's
//! own process layer.

pub mod bench;
pub mod fleet;
