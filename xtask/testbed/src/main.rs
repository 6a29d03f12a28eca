//! `testbed bench WHAT`: what `cargo xtask bench WHAT` runs (see `xtask_testbed::bench`).

use std::process::ExitCode;

use clap::Parser;

/// The xtask's test rig.
#[derive(Parser)]
#[command(name = "testbed")]
enum Testbed {
    /// Measure a speed target against its baseline, side by side in one run
    Bench {
        #[arg(value_enum)]
        what: xtask::cli::Bench,
    },
}

fn main() -> ExitCode {
    let Testbed::Bench { what } = Testbed::parse();
    let result = xtask::load(None, None, false).and_then(|p| xtask_testbed::bench::run(&p, what));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
