//! Runs Prometheus's `PromQL` test scripts (`tests/data/promqltest`) through strata's engine and
//! storage, as `strata-promqltest` does, and checks the skip file.

use std::path::{Path, PathBuf};

use strata_promqltest::runner::{self, EXPERIMENTAL, HISTOGRAM_REASON, Outcome};
use strata_promqltest::script::{Command, parse_script};
use strata_promqltest::skips::Skips;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/promqltest")
}

fn scripts() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("test data directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    files
}

fn skips() -> Skips {
    let text = std::fs::read_to_string(data_dir().join("SKIPS")).expect("SKIPS file");
    Skips::parse(&text).expect("valid SKIPS file")
}

fn is_experimental(file: &str) -> bool {
    EXPERIMENTAL.contains(&file.strip_suffix(".test").unwrap_or(file))
}

/// Every skip names an eval command; in the stable files the only reason is native histograms.
#[test]
fn skips_name_evals_and_only_histograms_in_stable_files() {
    let skips = skips();
    assert!(!skips.is_empty());
    for (file, line, reason) in skips.iter() {
        let text = std::fs::read_to_string(data_dir().join(file))
            .unwrap_or_else(|e| panic!("SKIPS names {file}: {e}"));
        let cmds = parse_script(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            cmds.iter()
                .any(|c| matches!(c, Command::Eval(e) if e.line == line)),
            "SKIPS: {file}:{line} is not an eval"
        );
        if !is_experimental(file) {
            assert_eq!(reason, HISTOGRAM_REASON, "SKIPS: {file}:{line}");
        }
    }
}

/// Every eval of the stable files passes, apart from the listed skips.
#[test]
fn stable_scripts_pass() {
    let skips = skips();
    let engine = runner::engine();
    let mut failures = Vec::new();
    let (mut passed, mut skipped) = (0, 0);
    for path in scripts() {
        let report = runner::run_file(&path, &skips, &engine);
        if report.experimental {
            continue;
        }
        for e in &report.errors {
            failures.push(format!("{}: {e}", report.name));
        }
        for e in &report.evals {
            match &e.outcome {
                Outcome::Passed => passed += 1,
                Outcome::Skipped(_) => skipped += 1,
                Outcome::Failed(why) => {
                    failures.push(format!("{}:{}: {} : {why}", report.name, e.line, e.text));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed, {} failed, {skipped} skipped:\n{}",
        passed,
        failures.len(),
        failures.join("\n")
    );
    assert!(passed > 700, "only {passed} evals ran");
}
