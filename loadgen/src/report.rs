//! Run summaries: latency histograms, the JSON written by `--summary` and the human tables.
//!
//! The JSON of a write run carries its full [`Workload`] under `params` (the [`FleetSpec`] fields
//! and `"profile": {"name": ...}` with the profile's parameters), so `verify --from-summary`
//! regenerates exactly what was sent. Summaries written before profiles existed have no
//! `profile` and read as the `node` profile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::fleet::{FleetSpec, Workload};
use crate::usage::ServerUsage;

/// Highest latency the histograms track, in microseconds (one hour); larger values saturate.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// Records `latency` into `hist`.
pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencyUs {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// RFC 3339 rendering of a millisecond timestamp.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Human rendering of an interval in milliseconds.
pub fn interval_text(ms: i64) -> String {
    humantime::format_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).to_string()
}

/// What a write run was asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteParams {
    pub url: String,
    #[serde(flatten)]
    pub workload: Workload,
    /// `start_ms` as RFC 3339, for people.
    pub start: String,
    /// `interval_ms` as a humantime duration, for people.
    pub interval: String,
    pub concurrency: u32,
    pub batch: u32,
    /// Open-loop target in requests per second; `None` is closed loop.
    pub rate: Option<f64>,
    /// `None` when `--no-tenant`.
    pub tenant_header: Option<String>,
}

/// The outcome of a write run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteSummary {
    pub tool: String,
    pub params: WriteParams,
    /// Requests sent, failed ones included.
    pub requests: u64,
    pub requests_failed: u64,
    /// Distinct series written over the run (with `k8s` churn, more than the active series).
    pub series: u64,
    /// Series with a real sample in every round.
    pub active_series: u64,
    /// `active_series` of each tenant.
    pub active_series_by_tenant: BTreeMap<String, u64>,
    /// Stale markers among `samples` (`k8s --stale-markers`).
    pub stale_markers: u64,
    /// Samples sent, failed requests included.
    pub samples: u64,
    /// Samples in requests that got a 2xx.
    pub samples_ok: u64,
    /// Snappy-compressed body bytes sent.
    pub bytes: u64,
    /// Failed requests by HTTP status (or `transport` when no status came back).
    pub errors: BTreeMap<String, u64>,
    /// Status and body of the first failure.
    pub first_error: Option<String>,
    /// Whether every request was encoded before the clock started (else encoding overlapped).
    pub preencoded: bool,
    pub duration_s: f64,
    pub requests_per_s: f64,
    /// Accepted samples per second.
    pub samples_per_s: f64,
    /// From the intended send time under `--rate`, else from the actual send.
    pub latency_us: LatencyUs,
    /// The server's CPU and memory over the run (`--server-pid`).
    pub server: Option<ServerUsage>,
}

impl WriteSummary {
    /// The human table.
    pub fn table(&self) -> String {
        let p = &self.params;
        let fleet = &p.workload.fleet;
        let mut rows: Vec<(&str, String)> = vec![
            ("url", p.url.clone()),
            (
                "fleet",
                format!(
                    "{} hosts, {} tenants, {} rounds every {}, seed {}",
                    fleet.hosts, fleet.tenants, fleet.rounds, p.interval, fleet.seed
                ),
            ),
            ("profile", p.workload.describe()),
            ("start", format!("{} ({} ms)", p.start, fleet.start_ms)),
            (
                "load",
                format!(
                    "{} senders, {} series/request, {}",
                    p.concurrency,
                    p.batch,
                    p.rate.map_or("closed loop".to_owned(), |r| format!(
                        "open loop at {r} req/s"
                    ))
                ),
            ),
            (
                "requests",
                format!("{} ({} failed)", self.requests, self.requests_failed),
            ),
            (
                "series",
                if self.series == self.active_series {
                    self.series.to_string()
                } else {
                    format!("{} active, {} created", self.active_series, self.series)
                },
            ),
            (
                "samples",
                if self.stale_markers == 0 {
                    format!("{} ({} accepted)", self.samples, self.samples_ok)
                } else {
                    format!(
                        "{} ({} accepted, {} stale markers)",
                        self.samples, self.samples_ok, self.stale_markers
                    )
                },
            ),
            ("bytes sent", format!("{:.1} MiB snappy", mib(self.bytes))),
            ("duration", format!("{:.3} s", self.duration_s)),
            (
                "throughput",
                format!(
                    "{:.0} samples/s, {:.1} req/s",
                    self.samples_per_s, self.requests_per_s
                ),
            ),
        ];
        let l = &self.latency_us;
        rows.push((
            "latency (ms)",
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max)
            ),
        ));
        if let Some(s) = &self.server {
            rows.push((
                "server cpu",
                format!(
                    "{:.2} s ({:.3} s per million samples, pid {}, {:.1}s settle)",
                    s.cpu_seconds, s.cpu_seconds_per_million_samples, s.pid, s.settle_s
                ),
            ));
            rows.push((
                "server memory",
                format!(
                    "peak RSS {:.1} MiB ({:.0} bytes per series), RSS {:.1} -> {:.1} MiB",
                    mib(s.peak_rss_bytes),
                    s.peak_rss_per_series_bytes,
                    mib(s.rss_before_bytes),
                    mib(s.rss_after_bytes)
                ),
            ));
        }
        for (status, n) in &self.errors {
            rows.push(("errors", format!("{n} x {status}")));
        }
        if let Some(e) = &self.first_error {
            rows.push(("first error", e.clone()));
        }
        table(&rows)
    }
}

/// What a verify run checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyParams {
    pub read_url: String,
    #[serde(flatten)]
    pub workload: Workload,
    pub start: String,
    pub interval: String,
    pub tenant_header: Option<String>,
}

/// Counts of a verify run; `ok` when nothing is missing, extra or different.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VerifyCounts {
    pub queries: u64,
    pub queries_failed: u64,
    pub series_expected: u64,
    pub series_found: u64,
    pub series_missing: u64,
    pub series_extra: u64,
    pub samples_expected: u64,
    pub samples_found: u64,
    pub samples_matched: u64,
    pub samples_missing: u64,
    pub samples_extra: u64,
    /// Present at the right timestamp with other value bits.
    pub samples_different: u64,
}

impl VerifyCounts {
    pub fn add(&mut self, o: &Self) {
        self.queries += o.queries;
        self.queries_failed += o.queries_failed;
        self.series_expected += o.series_expected;
        self.series_found += o.series_found;
        self.series_missing += o.series_missing;
        self.series_extra += o.series_extra;
        self.samples_expected += o.samples_expected;
        self.samples_found += o.samples_found;
        self.samples_matched += o.samples_matched;
        self.samples_missing += o.samples_missing;
        self.samples_extra += o.samples_extra;
        self.samples_different += o.samples_different;
    }

    pub fn is_ok(&self) -> bool {
        self.queries_failed == 0
            && self.series_missing == 0
            && self.series_extra == 0
            && self.samples_missing == 0
            && self.samples_extra == 0
            && self.samples_different == 0
            && self.samples_matched == self.samples_expected
    }
}

/// The outcome of a verify run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifySummary {
    pub tool: String,
    pub params: VerifyParams,
    pub ok: bool,
    #[serde(flatten)]
    pub counts: VerifyCounts,
    /// The first differences found, in words.
    pub differences: Vec<String>,
    pub duration_s: f64,
    pub latency_us: LatencyUs,
}

impl VerifySummary {
    /// The human table.
    pub fn table(&self) -> String {
        let p = &self.params;
        let fleet = &p.workload.fleet;
        let c = &self.counts;
        let rows: Vec<(&str, String)> = vec![
            ("read url", p.read_url.clone()),
            (
                "fleet",
                format!(
                    "{} hosts, {} tenants, {} rounds every {}, seed {}",
                    fleet.hosts, fleet.tenants, fleet.rounds, p.interval, fleet.seed
                ),
            ),
            ("profile", p.workload.describe()),
            ("start", format!("{} ({} ms)", p.start, fleet.start_ms)),
            (
                "queries",
                format!("{} ({} failed)", c.queries, c.queries_failed),
            ),
            (
                "series",
                format!(
                    "{} expected, {} found, {} missing, {} extra",
                    c.series_expected, c.series_found, c.series_missing, c.series_extra
                ),
            ),
            (
                "samples",
                format!(
                    "{} expected, {} found, {} matched, {} missing, {} extra, {} different",
                    c.samples_expected,
                    c.samples_found,
                    c.samples_matched,
                    c.samples_missing,
                    c.samples_extra,
                    c.samples_different
                ),
            ),
            ("duration", format!("{:.3} s", self.duration_s)),
            (
                "query latency (ms)",
                format!(
                    "p50 {:.2}  p99 {:.2}  max {:.2}",
                    ms(self.latency_us.p50),
                    ms(self.latency_us.p99),
                    ms(self.latency_us.max)
                ),
            ),
            ("result", if self.ok { "OK" } else { "FAILED" }.to_owned()),
        ];
        table(&rows)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Two aligned columns.
fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    out
}

/// Writes `value` as pretty JSON to `path`.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, json).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

/// Reads the fleet parameters of a write run's `--summary` file.
pub fn load_fleet(path: &Path) -> Result<FleetSpec, Error> {
    Ok(load_workload(path)?.fleet)
}

/// Reads the workload (fleet and profile) of a write run's `--summary` file; one written before
/// profiles existed is the `node` profile.
pub fn load_workload(path: &Path) -> Result<Workload, Error> {
    #[derive(Deserialize)]
    struct Partial {
        params: Workload,
    }
    let text = std::fs::read(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })?;
    let partial: Partial = serde_json::from_slice(&text).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    Ok(partial.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_the_fleet() {
        let fleet = FleetSpec {
            hosts: 3,
            tenants: 2,
            rounds: 4,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 9,
        };
        let workload = Workload {
            fleet,
            profile: crate::fleet::Profile::K8s(crate::fleet::K8sSpec::DEFAULT),
        };
        let summary = WriteSummary {
            tool: "t".into(),
            params: WriteParams {
                url: "http://x".into(),
                workload,
                start: rfc3339_ms(fleet.start_ms),
                interval: interval_text(fleet.interval_ms),
                concurrency: 1,
                batch: 10,
                rate: None,
                tenant_header: None,
            },
            requests: 1,
            requests_failed: 0,
            series: 300,
            active_series: 300,
            active_series_by_tenant: BTreeMap::new(),
            stale_markers: 0,
            samples: 1200,
            samples_ok: 1200,
            bytes: 10,
            errors: BTreeMap::new(),
            first_error: None,
            preencoded: true,
            duration_s: 1.0,
            requests_per_s: 1.0,
            samples_per_s: 1200.0,
            latency_us: LatencyUs::default(),
            server: None,
        };
        let dir = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
        save_json(&dir, &summary).expect("save");
        let loaded = load_workload(&dir).expect("load");
        let fleet_only = load_fleet(&dir).expect("load");
        let _ = std::fs::remove_file(&dir);
        assert_eq!(loaded, workload);
        assert_eq!(fleet_only, fleet);
        assert!(summary.table().contains("1200 (1200 accepted)"));
        assert_eq!(summary.params.start, "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = latency_histogram();
        for i in 1..=1000 {
            record(&mut h, Duration::from_micros(i * 10));
        }
        record(&mut h, Duration::from_secs(100_000));
        let l = LatencyUs::from_histogram(&h);
        assert_eq!(l.count, 1001);
        assert!((4_990..=5_020).contains(&l.p50), "{}", l.p50);
        assert!(l.max >= MAX_LATENCY_US - MAX_LATENCY_US / 1000);
    }
}
