//! Interoperability with Prometheus's own tools (Prometheus 2.42's `promtool`, found through
//! `STRATA_PROMTOOL` or on `PATH`; without it the tests print a notice and pass, except under
//! `CI=true`, where they fail):
//! - a block written by `BlockWriter` passes `promtool tsdb analyze`, `promtool tsdb list` shows
//!   its ULID and counts, and `promtool tsdb dump` prints exactly the samples written;
//! - blocks made by `promtool tsdb create-blocks-from openmetrics` read back, through `Block`,
//!   as exactly the series and samples of the `OpenMetrics` input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_storage::block::{Block, BlockWriter, BlockWriterOptions, ThanosMeta, Ulid};
use strata_storage::chunkenc::xor::{XorEncoder, decode_all};
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strata-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The promtool binary, or `None` (after a notice) when it is missing outside CI.
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
        let msg = "promtool not found: set STRATA_PROMTOOL or put Prometheus 2.42's promtool \
                   (Debian package `prometheus`) on PATH";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("notice: {msg}; skipping this test");
    }
    found
}

fn run(promtool: &Path, args: &[&str]) -> Output {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Go's `%g` for a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): the shortest digits that
/// round-trip, in exponent form (`1.5e+06`, `1e-05`) when the decimal exponent is below -4 or at
/// least 6, plain decimal otherwise.
fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if v != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Prometheus's notation of a label set in `promtool tsdb dump`: `{a="1", b="2"}`.
fn prom_labels(l: &Labels) -> String {
    let pairs: Vec<String> = l
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

#[test]
fn go_g_formats_as_go_does() {
    for (v, want) in [
        (1.0, "1"),
        (21.5, "21.5"),
        (-0.0, "-0"),
        (123_456.0, "123456"),
        (1_000_000.0, "1e+06"),
        (1_234_567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.000_012_5, "1.25e-05"),
        (1e100, "1e+100"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(go_g(v), want);
    }
}

/// Samples of one test series: a few hundred at a 15 s interval, with varied values.
fn samples(series: usize, n: usize) -> Vec<(i64, f64)> {
    let start = 1_700_000_000_000i64;
    (0..n)
        .map(|i| {
            let t = start + i as i64 * 15_000 + (i as i64 % 3) * 7;
            let v = match series % 4 {
                0 => (i * 3) as f64,                                   // counter
                1 => ((i as f64) * 0.37).sin() * 100.0,                // gauge
                2 => [1.5e-7, 2.0e9, -4.25, 1e21][i % 4] * (i as f64), // wide exponents
                _ if i == 17 => f64::NAN,
                _ => 42.0,
            };
            (t, v)
        })
        .collect()
}

#[test]
fn promtool_reads_our_block() {
    let Some(promtool) = promtool() else { return };
    let db = TempDir::new("block-promtool-ours");
    let ulid = Ulid::generate();
    let opts = BlockWriterOptions {
        thanos: Some(ThanosMeta::for_tenant("tenant-1", "ingester")),
        ..BlockWriterOptions::default()
    };
    let mut w = BlockWriter::new(db.path(), ulid, opts).expect("writer");

    let mut expected: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let (mut num_samples, mut num_chunks) = (0, 0);
    // Added in reverse label order, so the writer must reorder the chunks.
    for i in (0..24).rev() {
        let name = ["http_requests_total", "temperature_celsius", "wide", "flat"][i % 4];
        let labels = Labels::from_pairs([
            ("__name__", name.to_owned()),
            ("instance", format!("host-{:02}", i / 4)),
            ("job", "node".to_owned()),
        ]);
        let s = samples(i, 300 + i * 10);
        let encoded: Vec<(i64, i64, Vec<u8>)> = s
            .chunks(120)
            .map(|c| {
                let mut e = XorEncoder::new();
                for &(t, v) in c {
                    e.append(t, v);
                }
                (c[0].0, c[c.len() - 1].0, e.into_bytes())
            })
            .collect();
        w.add_series(
            &labels,
            encoded.iter().map(|(min_t, max_t, data)| ChunkMeta {
                min_t: *min_t,
                max_t: *max_t,
                data,
            }),
        )
        .expect("add series");
        num_samples += s.len();
        num_chunks += encoded.len();
        expected.insert(labels, s);
    }
    let meta = w.finish().expect("finish");
    let id = ulid.to_string();

    let out = run(&promtool, &["tsdb", "analyze", path_str(db.path()), &id]);
    let analyze = String::from_utf8_lossy(&out.stdout);
    assert!(analyze.contains(&format!("Block ID: {id}")), "{analyze}");
    assert!(analyze.contains("Series: 24"), "{analyze}");
    assert!(analyze.contains("Label names: 3"), "{analyze}");

    let out = run(&promtool, &["tsdb", "list", path_str(db.path())]);
    let list = String::from_utf8_lossy(&out.stdout);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{list}"))
        .split_whitespace()
        .collect();
    // ULID, min time, max time, duration, samples, chunks, series, size.
    assert_eq!(row[1], meta.min_time.to_string(), "{list}");
    assert_eq!(row[2], meta.max_time.to_string(), "{list}");
    assert_eq!(row[4], num_samples.to_string(), "{list}");
    assert_eq!(row[5], num_chunks.to_string(), "{list}");
    assert_eq!(row[6], "24", "{list}");

    // `dump` opens the directory as a read-only database, which needs a WAL directory.
    std::fs::create_dir(db.path().join("wal")).expect("wal dir");
    let out = run(&promtool, &["tsdb", "dump", path_str(db.path())]);
    let dump = String::from_utf8(out.stdout).expect("utf-8 dump");
    let mut want = String::new();
    for (labels, s) in &expected {
        let l = prom_labels(labels);
        for &(t, v) in s {
            writeln!(want, "{l} {} {t}", go_g(v)).expect("write");
        }
    }
    assert_eq!(dump.lines().count(), num_samples);
    for (i, (got, want)) in dump.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "dump line {i}");
    }
}

/// Parses an `OpenMetrics` timestamp in seconds (up to millisecond precision) exactly.
fn millis(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: i64 = format!("{frac:0<3}").parse().expect("fraction");
    secs.parse::<i64>().expect("seconds") * 1000 + frac
}

#[test]
fn we_read_promtool_blocks() {
    let Some(promtool) = promtool() else { return };
    let tmp = TempDir::new("block-promtool-theirs");

    // Two counters and two gauges, 400 samples each at 15 s, crossing a 2 h block boundary.
    let mut om = String::new();
    let mut expected: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let families = [
        ("http_requests", "counter", "http_requests_total", "code"),
        (
            "temperature_celsius",
            "gauge",
            "temperature_celsius",
            "room",
        ),
    ];
    let start = 1_699_998_000i64;
    for (f, (family, kind, sample, label)) in families.iter().enumerate() {
        writeln!(om, "# HELP {family} A test {kind}.").expect("write");
        writeln!(om, "# TYPE {family} {kind}").expect("write");
        for (k, value) in ["a", "b"].iter().enumerate() {
            let labels =
                Labels::from_pairs([("__name__", *sample), (*label, *value), ("job", "backfill")]);
            let series = expected.entry(labels).or_default();
            let mut counter = 0.0;
            for i in 0..400i64 {
                // Some series carry sub-second timestamps.
                let ts = if k == 1 {
                    format!("{}.{:03}", start + i * 15, (i * 37) % 1000)
                } else {
                    (start + i * 15).to_string()
                };
                let v = if *kind == "counter" {
                    counter += (i % 7) as f64 + 0.5 * f as f64;
                    counter
                } else {
                    ((i as f64) * 0.21 + k as f64).cos() * 30.0 - 5.0
                };
                writeln!(
                    om,
                    "{sample}{{{label}=\"{value}\",job=\"backfill\"}} {v} {ts}"
                )
                .expect("write");
                series.push((millis(&ts), v));
            }
        }
    }
    om.push_str("# EOF\n");
    let input = tmp.path().join("input.om");
    std::fs::write(&input, &om).expect("write input");
    let out_dir = tmp.path().join("blocks");
    run(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            path_str(&input),
            path_str(&out_dir),
        ],
    );

    let mut got: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut blocks = 0;
    for entry in std::fs::read_dir(&out_dir).expect("read out dir") {
        let dir = entry.expect("entry").path();
        if !dir.join("meta.json").is_file() {
            continue;
        }
        blocks += 1;
        let block = Block::open(&dir).expect("open promtool block");
        let ix = block.index();
        let all = ix.all_postings().expect("all postings");
        assert_eq!(all.len() as u64, block.meta().stats.num_series);
        assert_eq!(ix.label_names(), vec!["__name__", "code", "job", "room"]);
        let counters =
            Matcher::new(MatchType::Equal, "__name__", "http_requests_total").expect("matcher");
        let no_room = Matcher::new(MatchType::Equal, "room", "").expect("matcher");
        assert_eq!(
            ix.select(&[counters]).expect("select"),
            ix.select(&[no_room]).expect("select")
        );
        let mut num_samples = 0u64;
        for r in all {
            let (labels, chunks) = ix.series(r).expect("series");
            let series = got.entry(labels).or_default();
            for c in chunks {
                let data = block.chunks().chunk(c.chunk_ref).expect("chunk");
                let samples = decode_all(data).expect("decode");
                assert_eq!(samples.first().map(|s| s.0), Some(c.min_t));
                assert_eq!(samples.last().map(|s| s.0), Some(c.max_t));
                num_samples += samples.len() as u64;
                series.extend(samples);
            }
        }
        assert_eq!(num_samples, block.meta().stats.num_samples);
    }
    assert!(
        blocks >= 2,
        "expected the input to span two blocks, got {blocks}"
    );
    for s in got.values_mut() {
        s.sort_by_key(|&(t, _)| t);
    }
    assert_eq!(got.len(), expected.len());
    for ((gl, gs), (el, es)) in got.iter().zip(&expected) {
        assert_eq!(gl, el);
        assert_eq!(gs.len(), es.len(), "{gl}");
        for (g, e) in gs.iter().zip(es) {
            assert_eq!((g.0, g.1.to_bits()), (e.0, e.1.to_bits()), "{gl}");
        }
    }
}
