//! Turns the raw figures of the peer benchmark (`bench/peers/run.sh`) into `report.md` and PNG
//! charts beside it.
//!
//! strata is the reference: every ratio compares a peer (Prometheus, VictoriaMetrics) with strata
//! and is oriented so that > 1 means strata is better. Losses are shown as plainly as wins: each
//! is in bold in its table and listed again under "Where strata loses" with the note the harness
//! gave for it, or "no note given".
//!
//! # Input
//!
//! One JSON object. Every field below is required unless marked optional; fields not listed are
//! ignored. Measured figures must be numbers > 0; counts must be whole numbers > 0.
//!
//! ```json
//! {
//!   "started": "2026-11-22T10:00:00Z",       // shown as given
//!   "command": "bench/peers/run.sh --quick",
//!   "quick": true,                           // quick or full run
//!   "machine": {"cpus": 2, "cpu_model": "…", "mem_gib": 24, "kernel": "…"},
//!   "versions": {"strata": "git sha", "prometheus": "2.42.0", "victoria-metrics": "v1.x"},
//!   "ingest": [{"profile": "node", "system": "strata", "active_series": 10000,
//!               "runs": [{"samples_per_s": 1.9e6, "cpu_s_per_1m_samples": 0.61,
//!                         "peak_rss_bytes": 123456789}]}],
//!   "storage": [{"system": "strata", "samples": 4800000, "bytes": 18432000}],
//!   "queries": [{"name": "sum_rate", "query": "sum(rate(node_cpu_seconds_total[5m]))",
//!                "range": "24h", "step": "60s", "system": "strata", "checked": true,
//!                "runs": [{"p50_ms": 12.3, "p99_ms": 20.1}]}],
//!   "mix": [{"range": "24h", "step": "120s", "rate_qps": 4.2, "duration_s": 40,  // optional
//!            "system": "strata", "queries": 168, "errors": 0,
//!            "p50_ms": 48.1, "p90_ms": 61.0, "p99_ms": 80.2, "max_ms": 95.3}],
//!   "notes": [{"section": "queries", "key": "sum_rate 24h", "text": "why strata loses here"}]
//! }
//! ```
//!
//! - A system is `strata`, `prometheus` or `victoria-metrics`; any subset may be present, and
//!   each one present needs an entry in `versions`. Other entries there (the load generator, say)
//!   are shown in the header too.
//! - `ingest`, `storage` and `queries` may be empty arrays; `mix` and `notes` are optional
//!   (files written before the harness ran the query mix have no `mix`).
//! - `runs` are repetitions (at least one): the report shows their median and min–max spread.
//! - Rows are unique per `(profile, system)`, per `system` in storage and per
//!   `(name, range, system)` in queries; rows of one `(name, range)` share `query` and `step`;
//!   in a run, `p99_ms >= p50_ms`.
//! - `checked`: the system's answer was compared with Prometheus's and found equal.
//! - `mix`: one row per `(range, system)`, each system serving the benchmark's queries as range
//!   queries in equal shares, open loop at `rate_qps`; rows of one range share `step`,
//!   `rate_qps` and `duration_s` (optional: how long queries were sent, warm-up excluded).
//!   `queries` counts the measured queries sent, `errors` those that failed (a whole number >= 0,
//!   below `queries`); the latencies are those of the rest, from each query's scheduled send
//!   time, with `p50_ms <= p90_ms <= p99_ms <= max_ms`. Only p50 and p99 are compared.
//! - A note's `section` is `ingest`, `storage`, `queries` or `mix`; its `key` names what it
//!   explains, from general to specific (see [`compare`] for the exact keys):
//!   `"<profile>"`, `"<profile> <metric>"`, `"bytes_per_sample"`, `"<name> <range>"`,
//!   `"<name> <range> p99"`, and in `mix` `"<range>"`, `"<range> p99"`; optionally followed by
//!   the peer, e.g. `"node cpu_s_per_1m_samples prometheus"`, `"30d p50 victoria-metrics"`.
//!
//! Invalid input fails with the path of the field at fault, e.g.
//! `ingest[0].runs[1].samples_per_s: missing`.
//!
//! # Output
//!
//! [`run`] writes `report.md` and the charts listed in [`charts`] into the output directory,
//! and nothing else. [`render`] does the same work in memory.

pub mod bars;
pub mod charts;
pub mod compare;
pub mod format;
pub mod markdown;
pub mod schema;
pub mod stats;

use std::fs;
use std::path::{Path, PathBuf};

pub use schema::SchemaError;

use crate::compare::Comparison;
use crate::schema::Raw;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} is not JSON: {source}")]
    Json {
        name: String,
        source: serde_json::Error,
    },
    #[error("{name} does not follow the schema: {source}")]
    Schema { name: String, source: SchemaError },
    #[error("cannot draw {file}: {message}")]
    Chart { file: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A rendered report: `report.md` and the PNG files it links.
#[derive(Debug, Clone)]
pub struct Report {
    pub markdown: String,
    /// `(file name, PNG bytes)`.
    pub charts: Vec<(String, Vec<u8>)>,
}

/// Renders the report for the raw figures in `json`; `name` is how the report refers to them.
pub fn render(json: &str, name: &str) -> Result<Report, Error> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|source| Error::Json {
        name: name.to_owned(),
        source,
    })?;
    let raw = Raw::parse(&doc).map_err(|source| Error::Schema {
        name: name.to_owned(),
        source,
    })?;
    let cmp = Comparison::build(&raw);
    let plan = charts::plan(&cmp);
    let markdown = markdown::render(&raw, name, &cmp, &plan);
    let charts = plan
        .into_iter()
        .map(|c| match bars::draw_png(&c.spec) {
            Ok(png) => Ok((c.file, png)),
            Err(message) => Err(Error::Chart {
                file: c.file,
                message,
            }),
        })
        .collect::<Result<_, _>>()?;
    Ok(Report { markdown, charts })
}

/// Reads `raw`, renders it and writes `report.md` and the charts into `out_dir` (created if
/// missing). Returns the paths written.
pub fn run(raw: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let json = fs::read_to_string(raw).map_err(|source| Error::Read {
        path: raw.to_owned(),
        source,
    })?;
    let name = raw.file_name().map_or_else(
        || raw.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let report = render(&json, &name)?;
    fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    let files = std::iter::once(("report.md".to_owned(), report.markdown.into_bytes()))
        .chain(report.charts);
    for (file, bytes) in files {
        let path = out_dir.join(file);
        fs::write(&path, bytes).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
