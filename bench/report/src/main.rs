//! `strata-bench-report RAW.json OUT_DIR`: writes `OUT_DIR/report.md` and its PNG charts from
//! the raw figures of the peer benchmark. The input schema is in the library's docs and in
//! `bench/report/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Turns the peer benchmark's raw figures into report.md and PNG charts.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The JSON file written by bench/peers/run.sh.
    raw: PathBuf,
    /// Where to write report.md and the charts; created if missing.
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match strata_bench_report::run(&args.raw, &args.out_dir) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
