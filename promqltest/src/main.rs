//! `strata-promqltest`: runs Prometheus's `PromQL` test scripts against strata.
//!
//! Prints one line per failing eval (`file:line: <eval> : <reason>`), one summary line per file,
//! the totals of the experimental files, and last the line `N passed, M failed[, K skipped]` over
//! all other (stable) files. Exits with 1 when any stable eval failed (or, when only
//! experimental files were given, any eval failed), 2 on usage errors.
//!
//! Files named in [`runner::EXPERIMENTAL`] are reported in a section of their own, after the
//! stable files, closed by the line `experimental: N passed, M failed[, K skipped]`; their evals
//! are not counted in the final line. Every other file, `native_histograms.test` included, is
//! stable. The skip file defaults to `SKIPS` beside the first path given (in it, for a
//! directory).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use strata_promqltest::runner::{
    self, FileReport, HISTOGRAM_REASON, Outcome, START_TIMESTAMP_REASON,
};
use strata_promqltest::skips::Skips;

/// Runs `PromQL` test scripts (`.test` files, or directories of them).
#[derive(Parser, Debug)]
#[command(name = "strata-promqltest", version)]
struct Args {
    /// Script files or directories (every `*.test` inside, sorted by name).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The skip file; defaults to `SKIPS` beside the first path given (in it, for a directory),
    /// when it exists.
    #[arg(long)]
    skips: Option<PathBuf>,
    /// Instead of a report, print skip-file lines for the evals that need native histograms
    /// (and, in experimental files, fail where promql-parser rejects the expression). Ignores
    /// the skip file.
    #[arg(long)]
    list_histogram_evals: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata-promqltest: {e}");
            ExitCode::from(2)
        }
    }
}

fn scripts(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "test"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn load_skips(args: &Args) -> Result<Skips, String> {
    if args.list_histogram_evals {
        return Ok(Skips::default());
    }
    let path = match &args.skips {
        Some(p) => Some(p.clone()),
        None => args
            .paths
            .first()
            .and_then(|p| {
                if p.is_dir() {
                    Some(p.clone())
                } else {
                    p.parent().map(Path::to_path_buf)
                }
            })
            .map(|d| d.join("SKIPS"))
            .filter(|p| p.exists()),
    };
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Skips::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
        }
        None => Ok(Skips::default()),
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let skips = load_skips(args)?;
    let engine = runner::engine();
    let files = scripts(&args.paths)?;
    let reports: Vec<FileReport> = files
        .iter()
        .map(|f| runner::run_file(Path::new(f), &skips, &engine))
        .collect();
    if args.list_histogram_evals {
        print_skip_candidates(&reports);
        return Ok(ExitCode::SUCCESS);
    }
    let mut stable = (0, 0, 0);
    let mut experimental = (0, 0, 0);
    for section in [false, true] {
        if section && reports.iter().any(|r| r.experimental) {
            println!("--- experimental files (not counted in the final line) ---");
        }
        for r in reports.iter().filter(|r| r.experimental == section) {
            for e in &r.errors {
                println!("{}: {e}", r.name);
            }
            for e in &r.evals {
                if let Outcome::Failed(why) = &e.outcome {
                    println!("{}:{}: {} : {why}", r.name, e.line, e.text);
                }
            }
            let (p, f, s) = r.counts();
            println!("{}: {p} passed, {f} failed, {s} skipped", r.name);
            let total = if section {
                &mut experimental
            } else {
                &mut stable
            };
            total.0 += p;
            total.1 += f;
            total.2 += s;
        }
    }
    if reports.iter().any(|r| r.experimental) {
        println!("experimental: {}", totals(experimental));
    }
    println!("{}", totals(stable));
    // Experimental failures decide the exit code only when no stable file was run.
    let only_experimental = reports.iter().all(|r| r.experimental);
    let failed = stable.1 > 0 || (only_experimental && experimental.1 > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn totals((p, f, s): (usize, usize, usize)) -> String {
    if s > 0 {
        format!("{p} passed, {f} failed, {s} skipped")
    } else {
        format!("{p} passed, {f} failed")
    }
}

fn print_skip_candidates(reports: &[FileReport]) {
    for r in reports {
        // An eval that passes without native histograms does not need them, even when it touches
        // a histogram series (for example one expecting an empty result): it is not listed.
        for e in r
            .evals
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Failed(_)))
        {
            if e.needs_histograms {
                println!("{}:{} {HISTOGRAM_REASON}", r.name, e.line);
            } else if e.needs_start_timestamps {
                println!("{}:{} {START_TIMESTAMP_REASON}", r.name, e.line);
            } else if r.experimental
                && let Some(pe) = &e.parse_error
            {
                let pe = pe.replace('\n', " ");
                println!(
                    "{}:{} promql-parser lacks this syntax: {pe}",
                    r.name, e.line
                );
            }
        }
    }
}
