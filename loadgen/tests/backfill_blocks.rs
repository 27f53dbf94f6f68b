//! `strata-loadgen backfill --blocks-dir` writes blocks that Prometheus's own tools accept and
//! that hold exactly what `backfill` pushes over remote write for the same flags: `promtool tsdb
//! list` lists every block, `promtool tsdb analyze` reads one, and `promtool tsdb dump` prints
//! every sample, which is compared bit for bit with the pushed history.
//!
//! Needs Prometheus's `promtool` (`STRATA_PROMTOOL`, else on `PATH`); skipped without it, unless
//! `CI=true`, where a missing promtool fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_loadgen::backfill::pushed_history;
use strata_loadgen::fleet::FleetSpec;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "strata-backfill-blocks-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn promtool() -> Option<PathBuf> {
    let found = match std::env::var_os("STRATA_PROMTOOL") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("promtool"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        let msg = "promtool not found: set STRATA_PROMTOOL or put Prometheus's promtool on PATH";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("notice: {msg}; skipping this test");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Samples by series, the series as Prometheus prints a label set.
type Dump = BTreeMap<String, Vec<(i64, u64)>>;

/// Parses `promtool tsdb dump` lines: `{a="b", c="d"} <value> <timestamp>`.
fn parse_dump(text: &str) -> Dump {
    let mut out = Dump::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let close = line
            .rfind("} ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let series = &line[..=close];
        let mut rest = line[close + 2..].split(' ');
        let value: f64 = rest.next().and_then(|v| v.parse().ok()).expect("value");
        let ts: i64 = rest.next().and_then(|t| t.parse().ok()).expect("timestamp");
        out.entry(series.to_owned())
            .or_default()
            .push((ts, value.to_bits()));
    }
    out
}

#[test]
fn promtool_reads_exactly_the_pushed_history() {
    let Some(promtool) = promtool() else { return };
    let tmp = TempDir::new();
    let blocks = tmp.0.join("blocks");
    // 300 rounds of 15s from a 2h boundary: 75 minutes, two 1h blocks.
    let spec = FleetSpec {
        hosts: 2,
        tenants: 1,
        rounds: 300,
        interval_ms: 15_000,
        start_ms: 1_700_006_400_000,
        seed: 3,
    };
    let out = Command::new(env!("CARGO_BIN_EXE_strata-loadgen"))
        .args(["backfill", "--blocks-dir"])
        .arg(&blocks)
        .args(["--hosts", "2", "--rounds", "300", "--interval", "15s"])
        .args([
            "--start",
            "1700006400000",
            "--seed",
            "3",
            "--block-range",
            "1h",
        ])
        .args(["--with-histogram", "--tenant", "team-a"])
        .output()
        .expect("run strata-loadgen");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backfill failed: {log}");
    assert!(log.contains("samples/s"), "{log}");

    let ulids = block_dirs(&blocks);
    assert_eq!(ulids.len(), 2, "{log}");
    let list = run(Command::new(&promtool).args(["tsdb", "list"]).arg(&blocks));
    for ulid in &ulids {
        assert!(list.contains(ulid.as_str()), "{ulid} not listed:\n{list}");
    }
    run(Command::new(&promtool)
        .args(["tsdb", "analyze", "--extended"])
        .arg(&blocks)
        .arg(&ulids[0]));

    // promtool 2.42 opens the directory as a database, which needs a WAL directory.
    std::fs::create_dir_all(blocks.join("wal")).expect("wal dir");
    let dumped = parse_dump(&run(Command::new(&promtool)
        .args(["tsdb", "dump"])
        .arg(&blocks)));

    let mut expected = Dump::new();
    for s in pushed_history(&spec, true) {
        let pairs: Vec<String> = s
            .labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        let samples = s
            .samples
            .iter()
            .map(|x| (x.timestamp, x.value.to_bits()))
            .collect();
        expected.insert(format!("{{{}}}", pairs.join(", ")), samples);
    }
    assert_eq!(dumped.len(), expected.len(), "series count");
    for (series, want) in &expected {
        let got = dumped
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing"));
        assert_eq!(got.len(), want.len(), "{series}: sample count");
        assert!(got == want, "{series}: samples differ");
    }
}

/// The ULID-named block directories in `dir`, sorted.
fn block_dirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read blocks dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("meta.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}
