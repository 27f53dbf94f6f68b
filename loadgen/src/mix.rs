//! The query-mix mode: a weighted mix of instant and range PromQL queries sent to any Prometheus
//! query API at a fixed rate, open loop, with latency percentiles overall and per mix entry.
//!
//! # Mix entries
//!
//! One entry per `--mix` flag or per line of `--mix-file` (blank lines and lines starting with
//! `#` are skipped): comma-separated `key=value` pairs, `query=` last; it takes the rest of the
//! entry, commas included.
//!
//! - `weight=N` (default 1): the entry's share of the queries is `N / sum of weights`.
//! - `type=instant|range` (default `instant`). Instant queries are evaluated at `--end`
//!   (`POST <url>/api/v1/query`, form `query`, `time`); range queries over
//!   `[end - range, end]` (`POST <url>/api/v1/query_range`, form `query`, `start`, `end`, `step`).
//! - `range=DURATION` (range only, required), `step=DURATION` (range only; default `range / 250`,
//!   at least 1s), in humantime (`90s`, `6h`, `7d`).
//! - `name=TEXT` (default `type range query`): the entry's name in reports.
//! - `query=PROMQL` (required).
//!
//! # Schedule and measurement
//!
//! `warmup + measured` queries are sent; `measured` is `--count`, or `ceil(duration * rate)` for
//! `--duration`, the smaller of both when both are given (`--duration 60s` when neither is).
//! Query `j` (from 0, warmup included) is due at `t0 + j / rate`; a free worker (of
//! `--concurrency`) takes the next query, waits for its due time and sends it. Its latency counts
//! from the due time to the last byte of the answer, so a slow server shows up as latency
//! instead of as a lower rate (no coordinated omission); `service_us` counts from the actual
//! send. Query `j`'s entry is a weighted draw from `--seed` and `j` alone, so the same flags
//! always send the same sequence. The first `warmup` queries are not measured.
//!
//! A query fails when the transport fails, the HTTP status is not 2xx, or the answer's `status`
//! is not `success`. Failures are counted (overall, per entry and by kind) and kept out of the
//! latency histograms; any failure of a measured query makes the exit status 1.
//!
//! # JSON (`--json-out`)
//!
//! ```text
//! {
//!   "tool": "strata-loadgen/0.1.0",
//!   "url": "http://127.0.0.1:9009/prometheus", "tenant": "tenant-1" | null,
//!   "rate": 50.0, "concurrency": 4, "warmup": 10, "queries": 1000,
//!   "end_ms": 1700000000000, "seed": 1,
//!   "duration_s": 20.01,          // from the first measured due time to the last answer
//!   "achieved_rate": 49.97,       // measured queries / duration_s
//!   "errors": 0,                  // failed measured queries
//!   "warmup_errors": 0,
//!   "errors_by_kind": {"503": 2, "status": 1, "transport": 0},
//!   "first_errors": ["..."],      // the first few messages
//!   "latency_us": {"count", "mean", "p50", "p90", "p99", "p999", "max"},   // successes
//!   "service_us": {...},          // the same, from the actual send
//!   "entries": [{"name", "type": "instant" | "range", "query", "weight",
//!                "range_s": null | 86400.0, "step_s": null | 60.0,
//!                "queries", "errors", "latency_us": {...}}]
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::Error;
use crate::fleet::mix;
use crate::http::Client;
use crate::query::{Failure, RangeQuery, form_escape, post_form, seconds};
use crate::report::{self, LatencyUs};

/// Header carrying `--tenant`.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Error messages kept for the report.
const FIRST_ERRORS: usize = 5;

/// Default `--duration` when neither it nor `--count` is given.
const DEFAULT_DURATION: Duration = Duration::from_mins(1);

/// `strata-loadgen query-mix` flags.
#[derive(Args, Debug)]
pub struct MixArgs {
    /// Base URL of the Prometheus API (`/api/v1/query` or `/api/v1/query_range` is appended)
    #[arg(long)]
    url: String,
    /// Tenant id, sent as X-Scope-OrgID
    #[arg(long)]
    tenant: Option<String>,
    /// A mix entry: `weight=3,type=range,range=24h,step=60s,query=PROMQL` (query last); repeat
    #[arg(long = "mix", value_parser = parse_entry)]
    mix: Vec<Entry>,
    /// File of mix entries, one per line (`#` comments)
    #[arg(long)]
    mix_file: Option<PathBuf>,
    /// Target queries per second (open loop)
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Parallel workers (connections)
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Measure the queries due in this long [default: 60s unless --count]
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Measure this many queries
    #[arg(long)]
    count: Option<u64>,
    /// Unmeasured queries first, on the same schedule
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// End of every range and time of every instant query, ms since the epoch [default: now]
    #[arg(long)]
    end: Option<i64>,
    /// Seed of the weighted choice of each query's entry
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per-request timeout
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write the report as JSON to this file
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// Instant or range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Instant,
    Range { range: Duration, step: Duration },
}

/// One entry of the mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub weight: u32,
    pub kind: Kind,
    pub query: String,
}

/// Parses one mix entry (see the module docs).
pub fn parse_entry(text: &str) -> Result<Entry, String> {
    let mut rest = text.trim_start();
    let (mut weight, mut kind, mut range, mut step, mut name) = (1, None, None, None, None);
    let query = loop {
        if let Some(q) = rest.strip_prefix("query=") {
            break q.trim().to_owned();
        }
        let (pair, tail) = rest.split_once(',').unwrap_or((rest, ""));
        rest = tail.trim_start();
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value (and query= must come last)"))?;
        let value = value.trim();
        let duration =
            |v: &str| humantime::parse_duration(v).map_err(|e| format!("{key}={v}: {e}"));
        match key.trim() {
            "weight" => {
                weight = value
                    .parse()
                    .ok()
                    .filter(|&w| w > 0)
                    .ok_or_else(|| format!("weight={value}: not a whole number above 0"))?;
            }
            "type" => {
                kind = Some(match value {
                    "instant" => false,
                    "range" => true,
                    _ => return Err(format!("type={value}: neither instant nor range")),
                });
            }
            "range" => range = Some(duration(value)?),
            "step" => step = Some(duration(value)?),
            "name" => name = Some(value.to_owned()),
            other => {
                return Err(format!(
                    "unknown key {other:?} (weight, type, range, step, name, query)"
                ));
            }
        }
        if rest.is_empty() {
            return Err(format!("{text:?}: no query= (it must come last)"));
        }
    };
    if query.is_empty() {
        return Err(format!("{text:?}: empty query"));
    }
    let kind = if kind.unwrap_or(false) {
        let range = range
            .filter(|r| !r.is_zero())
            .ok_or("type=range needs range= above 0")?;
        let step = step.unwrap_or_else(|| (range / 250).max(Duration::from_secs(1)));
        if step.is_zero() {
            return Err("step= must be above 0".into());
        }
        Kind::Range { range, step }
    } else {
        if range.is_some() || step.is_some() {
            return Err(format!("{text:?}: range= and step= need type=range"));
        }
        Kind::Instant
    };
    let name = name.unwrap_or_else(|| match kind {
        Kind::Instant => format!("instant {query}"),
        Kind::Range { range, step } => format!(
            "range {}/{} {query}",
            humantime::format_duration(range),
            humantime::format_duration(step)
        ),
    });
    Ok(Entry {
        name,
        weight,
        kind,
        query,
    })
}

/// Parses a mix file: one entry per line, blank lines and `#` comments skipped.
pub fn parse_mix_file(text: &str) -> Result<Vec<Entry>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| parse_entry(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// A query-mix run.
#[derive(Clone, Debug)]
pub struct MixOptions {
    /// Base URL of the Prometheus API.
    pub url: String,
    /// Sent as `X-Scope-OrgID` when given.
    pub tenant: Option<String>,
    pub entries: Vec<Entry>,
    /// Queries per second.
    pub rate: f64,
    pub concurrency: u32,
    /// Measured queries.
    pub count: u64,
    /// Unmeasured queries before them.
    pub warmup: u64,
    /// End of ranges and time of instant queries, ms since the epoch.
    pub end_ms: i64,
    pub seed: u64,
    pub timeout: Duration,
}

impl MixOptions {
    /// Checks what `run` relies on: entries, a positive rate, workers and queries.
    pub fn validate(&self) -> Result<(), Error> {
        if self.entries.is_empty() {
            return Err(Error::Invalid(
                "give at least one --mix or a --mix-file".into(),
            ));
        }
        if !(self.rate.is_finite() && self.rate >= 0.001) {
            return Err(Error::Invalid(format!(
                "--rate must be at least 0.001 queries/s, got {}",
                self.rate
            )));
        }
        if self.concurrency == 0 {
            return Err(Error::Invalid("--concurrency must be at least 1".into()));
        }
        if self.count == 0 {
            return Err(Error::Invalid(
                "nothing to measure: --count or --duration is 0".into(),
            ));
        }
        Ok(())
    }

    /// Index of the entry of query `j`: a weighted draw from the seed and `j`.
    pub fn entry_of(&self, j: u64) -> usize {
        let total: u64 = self.entries.iter().map(|e| u64::from(e.weight)).sum();
        let mut x = mix(self.seed, j) % total.max(1);
        for (i, e) in self.entries.iter().enumerate() {
            if x < u64::from(e.weight) {
                return i;
            }
            x -= u64::from(e.weight);
        }
        self.entries.len() - 1
    }
}

/// Results of one mix entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryReport {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub query: String,
    pub weight: u32,
    pub range_s: Option<f64>,
    pub step_s: Option<f64>,
    /// Measured queries sent.
    pub queries: u64,
    pub errors: u64,
    pub latency_us: LatencyUs,
}

/// The outcome of a run; the `--json-out` schema is in the module docs.
#[derive(Clone, Debug, Serialize)]
pub struct MixReport {
    pub tool: String,
    pub url: String,
    pub tenant: Option<String>,
    pub rate: f64,
    pub concurrency: u32,
    pub warmup: u64,
    /// Measured queries sent.
    pub queries: u64,
    pub end_ms: i64,
    pub seed: u64,
    pub duration_s: f64,
    pub achieved_rate: f64,
    /// Failed measured queries.
    pub errors: u64,
    pub warmup_errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub first_errors: Vec<String>,
    /// Successful measured queries, from their due time.
    pub latency_us: LatencyUs,
    /// Successful measured queries, from their actual send.
    pub service_us: LatencyUs,
    pub entries: Vec<EntryReport>,
}

impl MixReport {
    /// The human report.
    pub fn text(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let pct = |l: &LatencyUs| {
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max)
            )
        };
        let mut out = String::new();
        let tenant = self.tenant.as_deref().unwrap_or("none");
        let _ = writeln!(out, "  url           {} (tenant {tenant})", self.url);
        let _ = writeln!(
            out,
            "  queries       {} measured after {} warmup, {} errors ({} in warmup)",
            self.queries, self.warmup, self.errors, self.warmup_errors
        );
        let _ = writeln!(
            out,
            "  rate          target {} /s, achieved {:.2} /s over {:.3} s, {} workers",
            self.rate, self.achieved_rate, self.duration_s, self.concurrency
        );
        let _ = writeln!(out, "  latency (ms)  {}", pct(&self.latency_us));
        let _ = writeln!(out, "  service (ms)  {}", pct(&self.service_us));
        for (kind, n) in &self.errors_by_kind {
            let _ = writeln!(out, "  errors        {n} x {kind}");
        }
        for e in &self.first_errors {
            let _ = writeln!(out, "  error         {e}");
        }
        for e in &self.entries {
            let _ = writeln!(
                out,
                "  [w{}] {}: {} queries, {} errors, {}",
                e.weight,
                e.name,
                e.queries,
                e.errors,
                pct(&e.latency_us)
            );
        }
        out
    }
}

/// A prepared request of one entry.
struct Prepared {
    url: String,
    form: String,
}

fn prepare(opts: &MixOptions) -> Vec<Prepared> {
    let base = opts.url.trim_end_matches('/');
    opts.entries
        .iter()
        .map(|e| match e.kind {
            Kind::Instant => Prepared {
                url: format!("{base}/api/v1/query"),
                form: format!(
                    "query={}&time={}",
                    form_escape(&e.query),
                    seconds(opts.end_ms)
                ),
            },
            Kind::Range { range, step } => {
                let ms = i64::try_from(range.as_millis()).unwrap_or(i64::MAX);
                let q = RangeQuery {
                    expr: &e.query,
                    start_ms: opts.end_ms.saturating_sub(ms),
                    end_ms: opts.end_ms,
                    step,
                };
                Prepared {
                    url: format!("{base}/api/v1/query_range"),
                    form: q.form(),
                }
            }
        })
        .collect()
}

/// What one worker measured.
struct WorkerStats {
    latency: Vec<Histogram<u64>>,
    service: Histogram<u64>,
    queries: Vec<u64>,
    errors: Vec<u64>,
    warmup_errors: u64,
    by_kind: BTreeMap<String, u64>,
    first_errors: Vec<String>,
    last_done: Option<Instant>,
}

fn worker(
    opts: &MixOptions,
    prepared: &[Prepared],
    client: &Client,
    next: &AtomicU64,
    t0: Instant,
) -> WorkerStats {
    let n = prepared.len();
    let mut st = WorkerStats {
        latency: (0..n).map(|_| report::latency_histogram()).collect(),
        service: report::latency_histogram(),
        queries: vec![0; n],
        errors: vec![0; n],
        warmup_errors: 0,
        by_kind: BTreeMap::new(),
        first_errors: Vec::new(),
        last_done: None,
    };
    let total = opts.warmup + opts.count;
    let tenant = opts.tenant.as_deref().unwrap_or("");
    loop {
        let j = next.fetch_add(1, Ordering::Relaxed);
        if j >= total {
            return st;
        }
        let due = t0 + Duration::from_secs_f64(j as f64 / opts.rate);
        let now = Instant::now();
        if due > now {
            // Not a shard thread: an open-loop worker waits for its query's due time.
            #[allow(clippy::disallowed_methods)]
            thread::sleep(due - now);
        }
        let i = opts.entry_of(j);
        let sent = Instant::now();
        let outcome = post_form(client, &prepared[i].url, tenant, &prepared[i].form);
        let done = Instant::now();
        let measured = j >= opts.warmup;
        match outcome {
            Ok(_) if measured => {
                report::record(&mut st.latency[i], done - due);
                report::record(&mut st.service, done - sent);
            }
            Ok(_) => {}
            Err(Failure { kind, message }) => {
                if measured {
                    st.errors[i] += 1;
                    *st.by_kind.entry(kind).or_default() += 1;
                } else {
                    st.warmup_errors += 1;
                }
                if st.first_errors.len() < FIRST_ERRORS {
                    st.first_errors.push(message);
                }
            }
        }
        if measured {
            st.queries[i] += 1;
            st.last_done = Some(done);
        }
    }
}

/// Runs the mix and measures it.
pub fn run(opts: &MixOptions) -> Result<MixReport, Error> {
    opts.validate()?;
    let prepared = prepare(opts);
    let header = opts.tenant.as_ref().map(|_| TENANT_HEADER);
    let workers = opts
        .concurrency
        .min(u32::try_from(opts.warmup + opts.count).unwrap_or(u32::MAX));
    let clients = (0..workers)
        .map(|_| Client::new(opts.timeout, header))
        .collect::<Result<Vec<_>, _>>()?;
    let next = AtomicU64::new(0);
    let t0 = Instant::now();
    let stats: Vec<WorkerStats> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|client| {
                let (prepared, next) = (&prepared, &next);
                scope.spawn(move || worker(opts, prepared, client, next, t0))
            })
            .collect();
        handles
            .into_iter()
            .map(thread::ScopedJoinHandle::join)
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|_| Error::Panicked("query worker"))?;
    Ok(summarize(opts, t0, stats))
}

fn summarize(opts: &MixOptions, t0: Instant, stats: Vec<WorkerStats>) -> MixReport {
    let n = opts.entries.len();
    let mut latency: Vec<Histogram<u64>> = (0..n).map(|_| report::latency_histogram()).collect();
    let mut overall = report::latency_histogram();
    let mut service = report::latency_histogram();
    let (mut queries, mut errors) = (vec![0; n], vec![0; n]);
    let mut warmup_errors = 0;
    let mut errors_by_kind = BTreeMap::new();
    let mut first_errors = Vec::new();
    let mut last_done = None;
    for st in stats {
        // Same bounds everywhere: adding cannot fail.
        for (i, h) in st.latency.iter().enumerate() {
            let _ = latency[i].add(h);
            let _ = overall.add(h);
            queries[i] += st.queries[i];
            errors[i] += st.errors[i];
        }
        let _ = service.add(&st.service);
        warmup_errors += st.warmup_errors;
        for (kind, c) in st.by_kind {
            *errors_by_kind.entry(kind).or_default() += c;
        }
        first_errors.extend(st.first_errors);
        last_done = last_done.max(st.last_done);
    }
    first_errors.truncate(FIRST_ERRORS);
    let measured_from = t0 + Duration::from_secs_f64(opts.warmup as f64 / opts.rate);
    let duration_s = last_done.map_or(0.0, |d: Instant| {
        d.saturating_duration_since(measured_from).as_secs_f64()
    });
    let total: u64 = queries.iter().sum();
    MixReport {
        tool: crate::http::USER_AGENT.to_owned(),
        url: opts.url.clone(),
        tenant: opts.tenant.clone(),
        rate: opts.rate,
        concurrency: opts.concurrency,
        warmup: opts.warmup,
        queries: total,
        end_ms: opts.end_ms,
        seed: opts.seed,
        duration_s,
        achieved_rate: total as f64 / duration_s.max(1e-9),
        errors: errors.iter().sum(),
        warmup_errors,
        errors_by_kind,
        first_errors,
        latency_us: LatencyUs::from_histogram(&overall),
        service_us: LatencyUs::from_histogram(&service),
        entries: opts
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (kind, range_s, step_s) = match e.kind {
                    Kind::Instant => ("instant", None, None),
                    Kind::Range { range, step } => {
                        ("range", Some(range.as_secs_f64()), Some(step.as_secs_f64()))
                    }
                };
                EntryReport {
                    name: e.name.clone(),
                    kind,
                    query: e.query.clone(),
                    weight: e.weight,
                    range_s,
                    step_s,
                    queries: queries[i],
                    errors: errors[i],
                    latency_us: LatencyUs::from_histogram(&latency[i]),
                }
            })
            .collect(),
    }
}

/// Measured queries for `--count` and `--duration` at `rate`.
fn measured(count: Option<u64>, duration: Option<Duration>, rate: f64) -> u64 {
    let by_duration = |d: Duration| (d.as_secs_f64() * rate).ceil() as u64;
    match (count, duration) {
        (Some(c), Some(d)) => c.min(by_duration(d)),
        (Some(c), None) => c,
        (None, d) => by_duration(d.unwrap_or(DEFAULT_DURATION)),
    }
}

/// Runs `strata-loadgen query-mix`; `Ok(false)` when a measured query failed.
pub fn main(args: &MixArgs) -> Result<bool, Error> {
    let mut entries = args.mix.clone();
    if let Some(path) = &args.mix_file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        let file = parse_mix_file(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        entries.extend(file);
    }
    let end_ms = args.end.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    let opts = MixOptions {
        url: args.url.clone(),
        tenant: args.tenant.clone(),
        entries,
        rate: args.rate,
        concurrency: args.concurrency,
        count: measured(args.count, args.duration, args.rate),
        warmup: args.warmup,
        end_ms,
        seed: args.seed,
        timeout: args.timeout,
    };
    eprintln!(
        "strata-loadgen: query-mix of {} entries, {} queries (+{} warmup) at {}/s, end {} ms",
        opts.entries.len(),
        opts.count,
        opts.warmup,
        opts.rate,
        opts.end_ms
    );
    let report = run(&opts)?;
    print!("{}", report.text());
    if let Some(path) = &args.json_out {
        report::save_json(path, &report)?;
    }
    Ok(report.errors == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_commas_in_the_query() {
        let e =
            parse_entry("weight=3,type=instant,query=sum by (a, b)(rate(x[5m]))").expect("parse");
        assert_eq!(e.weight, 3);
        assert_eq!(e.kind, Kind::Instant);
        assert_eq!(e.query, "sum by (a, b)(rate(x[5m]))");
        let r = parse_entry("type=range, range=24h, step=60s, name=day, query=up").expect("parse");
        assert_eq!(
            r.kind,
            Kind::Range {
                range: Duration::from_hours(24),
                step: Duration::from_mins(1)
            }
        );
        assert_eq!((r.name.as_str(), r.weight), ("day", 1));
        let d = parse_entry("type=range,range=1h,query=up").expect("parse");
        assert_eq!(
            d.kind,
            Kind::Range {
                range: Duration::from_hours(1),
                step: Duration::from_millis(14_400)
            }
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "query=",
            "weight=0,query=up",
            "weight=x,query=up",
            "type=range,query=up",
            "range=1h,query=up",
            "type=sideways,query=up",
            "colour=red,query=up",
            "weight=2",
            "up",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn mix_files_skip_comments() {
        let text = "# a mix\n\nweight=2,query=up\n  # indented comment\nquery=x\n";
        let entries = parse_mix_file(text).expect("parse");
        assert_eq!(entries.len(), 2);
        assert!(
            parse_mix_file("query=up\nbogus\n")
                .expect_err("bad line")
                .starts_with("line 2:")
        );
    }

    #[test]
    fn count_and_duration_pick_the_smaller() {
        assert_eq!(measured(Some(10), None, 5.0), 10);
        assert_eq!(measured(None, Some(Duration::from_secs(3)), 5.0), 15);
        assert_eq!(measured(Some(10), Some(Duration::from_secs(1)), 5.0), 5);
        assert_eq!(measured(None, None, 2.0), 120);
        assert_eq!(measured(None, Some(Duration::from_millis(100)), 15.0), 2);
    }

    #[test]
    fn forms_carry_the_schedule() {
        let opts = MixOptions {
            url: "http://x/prom/".into(),
            tenant: None,
            entries: vec![
                parse_entry("query=up").expect("parse"),
                parse_entry("type=range,range=1h,step=30s,query=up").expect("parse"),
            ],
            rate: 1.0,
            concurrency: 1,
            count: 1,
            warmup: 0,
            end_ms: 1_700_000_000_000,
            seed: 1,
            timeout: Duration::from_secs(1),
        };
        let p = prepare(&opts);
        assert_eq!(p[0].url, "http://x/prom/api/v1/query");
        assert_eq!(p[0].form, "query=up&time=1700000000.000");
        assert_eq!(p[1].url, "http://x/prom/api/v1/query_range");
        assert_eq!(
            p[1].form,
            "query=up&start=1699996400.000&end=1700000000.000&step=30"
        );
    }
}
