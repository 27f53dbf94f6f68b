//! The query mode: range queries against a Prometheus-compatible query API, either checked for
//! equality against a reference server (`--reference-url`) or timed over repeated runs.
//!
//! Every query runs over each `--range` ending at `--end`, at `--step`, as a form-encoded POST
//! to `<url>/api/v1/query_range` (uncompressed: the client sends no `Accept-Encoding`).
//!
//! Checking compares the `matrix` results as sets of series keyed by their label sets: the same
//! label sets, the same timestamps, and values equal within `--tolerance` relative (NaN equals
//! NaN). Timing measures from sending the request to the last byte of the response, after
//! `--warmup` unmeasured runs; every measured answer must be HTTP 200 with `"status":"success"`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::http::Client;

/// `strata-loadgen query` flags.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Base URL of the server under test (`/api/v1/query_range` is appended)
    #[arg(long)]
    url: String,
    /// Check the answers against this server instead of timing
    #[arg(long)]
    reference_url: Option<String>,
    /// PromQL expression; repeat for several
    #[arg(long, required = true)]
    query: Vec<String>,
    /// Range ending at --end; repeat for several
    #[arg(long, value_parser = parse_range, default_values = ["1h", "6h", "24h"])]
    range: Vec<Range>,
    /// End of every range, milliseconds since the epoch
    #[arg(long)]
    end: i64,
    /// Resolution step
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// Unmeasured runs per query and range
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Measured runs per query and range
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Largest relative difference of two values still counted as equal
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    /// Differences to print per query and range
    #[arg(long, default_value_t = 5)]
    max_diffs: usize,
    /// Name of the system under test in the summary
    #[arg(long, default_value = "server")]
    system: String,
    /// Per-request timeout
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write the timings (or check outcome) as JSON to this file
    #[arg(long)]
    summary: Option<PathBuf>,
}

/// Latencies of one query over one range.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub query: String,
    pub range: String,
    pub range_s: u64,
    pub series: usize,
    pub points: usize,
    pub response_bytes: usize,
    pub runs: u32,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Outcome of one check.
#[derive(Debug, Serialize)]
pub struct Check {
    pub query: String,
    pub range: String,
    pub series: usize,
    pub reference_series: usize,
    pub points: usize,
    pub ok: bool,
    pub differences: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Summary<'a, T> {
    system: &'a str,
    url: &'a str,
    reference_url: Option<&'a str>,
    end_ms: i64,
    step_s: f64,
    warmup: u32,
    runs: u32,
    results: &'a [T],
}

/// A `--range`: its text as given (the name in reports) and its length.
#[derive(Clone, Debug)]
struct Range {
    text: String,
    length: Duration,
}

fn parse_range(s: &str) -> Result<Range, String> {
    let length = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    Ok(Range {
        text: s.to_owned(),
        length,
    })
}

/// One range query.
pub(crate) struct RangeQuery<'a> {
    pub(crate) expr: &'a str,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) step: Duration,
}

impl RangeQuery<'_> {
    /// The form body of `/api/v1/query_range`.
    pub(crate) fn form(&self) -> String {
        format!(
            "query={}&start={}&end={}&step={}",
            form_escape(self.expr),
            seconds(self.start_ms),
            seconds(self.end_ms),
            self.step.as_secs_f64()
        )
    }
}

/// Milliseconds as exact decimal seconds.
pub(crate) fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Percent-encodes `s` for a form body.
pub(crate) fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Why a query API call did not succeed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `transport`, the HTTP status, or `status` (a 2xx whose `status` is not `success`).
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// POSTs the form `form` to `url` (a full `/api/v1/...` URL) as `tenant` (sent only when the
/// client has a tenant header); the body of a successful answer, HTTP 2xx with
/// `"status":"success"`, or why it is not one.
pub(crate) fn post_form(
    client: &Client,
    url: &str,
    tenant: &str,
    form: &str,
) -> Result<Vec<u8>, Failure> {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = client
        .post(url, tenant, &headers, form.as_bytes())
        .map_err(|e| Failure {
            kind: "transport".into(),
            message: format!("{url}: {e}"),
        })?;
    if !reply.is_success() {
        return Err(Failure {
            kind: reply.status.to_string(),
            message: format!("{url}: HTTP {}: {}", reply.status, reply.body_text(500)),
        });
    }
    // The status is the first key in every server's answer; look for it without parsing.
    let head = &reply.body[..reply.body.len().min(64)];
    if !head.windows(9).any(|w| w == b"\"success\"") {
        return Err(Failure {
            kind: "status".into(),
            message: format!("{url}: not a success: {}", reply.body_text(500)),
        });
    }
    Ok(reply.body)
}

/// POSTs `q` to `base`; the body of a successful answer, or why it is not one.
fn run(client: &Client, base: &str, q: &RangeQuery<'_>) -> Result<Vec<u8>, String> {
    let url = format!("{}/api/v1/query_range", base.trim_end_matches('/'));
    post_form(client, &url, "", &q.form()).map_err(|f| f.message)
}

/// Series of a `matrix` answer: label set (sorted) to `(timestamp ms, value)` points.
type Matrix = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

fn parse_matrix(body: &[u8]) -> Result<Matrix, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    let data = &v["data"];
    if data["resultType"] != "matrix" {
        return Err(format!("resultType {} is not matrix", data["resultType"]));
    }
    let mut out = Matrix::new();
    for s in data["result"].as_array().ok_or("no result array")? {
        let mut labels: Vec<(String, String)> = s["metric"]
            .as_object()
            .ok_or("no metric")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        labels.sort();
        let mut points = Vec::new();
        for p in s["values"].as_array().ok_or("no values")? {
            let t = p[0].as_f64().ok_or("bad timestamp")?;
            let value = p[1].as_str().ok_or("value not a string")?;
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                _ => value.parse().map_err(|_| format!("bad value {value:?}"))?,
            };
            points.push(((t * 1000.0).round() as i64, value));
        }
        if out.insert(labels.clone(), points).is_some() {
            return Err(format!("series {} twice", labels_text(&labels)));
        }
    }
    Ok(out)
}

fn labels_text(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn same(a: f64, b: f64, tolerance: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

/// Differences of `got` from `want`, at most `max` described (the count is exact).
fn compare(got: &Matrix, want: &Matrix, tolerance: f64, max: usize) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut out = Vec::new();
    let mut note = |s: String| {
        count += 1;
        if out.len() < max {
            out.push(s);
        }
    };
    for (labels, want_points) in want {
        let Some(got_points) = got.get(labels) else {
            note(format!("missing series {}", labels_text(labels)));
            continue;
        };
        let mut g = got_points.iter().peekable();
        for &(t, w) in want_points {
            while let Some(&&(gt, gv)) = g.peek()
                && gt < t
            {
                note(format!("{} extra point at {gt}: {gv}", labels_text(labels)));
                g.next();
            }
            match g.peek() {
                Some(&&(gt, gv)) if gt == t => {
                    if !same(gv, w, tolerance) {
                        note(format!(
                            "{} at {t}: got {gv}, want {w}",
                            labels_text(labels)
                        ));
                    }
                    g.next();
                }
                _ => note(format!(
                    "{} missing point at {t}: want {w}",
                    labels_text(labels)
                )),
            }
        }
        for &(gt, gv) in g {
            note(format!("{} extra point at {gt}: {gv}", labels_text(labels)));
        }
    }
    for labels in got.keys().filter(|l| !want.contains_key(*l)) {
        note(format!("extra series {}", labels_text(labels)));
    }
    (count, out)
}

/// Runs `strata-loadgen query`; `Ok(false)` when a query failed or answers differ.
pub fn main(args: &QueryArgs) -> Result<bool, Error> {
    if args.runs == 0 || args.step.is_zero() {
        return Err(Error::Invalid("--runs and --step must be positive".into()));
    }
    let client = Client::new(args.timeout, None)?;
    let queries: Vec<(&str, &Range, RangeQuery<'_>)> = args
        .query
        .iter()
        .flat_map(|expr| {
            args.range.iter().map(move |range| {
                let ms = i64::try_from(range.length.as_millis()).unwrap_or(i64::MAX);
                let q = RangeQuery {
                    expr,
                    start_ms: args.end.saturating_sub(ms),
                    end_ms: args.end,
                    step: args.step,
                };
                (expr.as_str(), range, q)
            })
        })
        .collect();
    match &args.reference_url {
        Some(reference) => check(args, &client, reference, &queries),
        None => time(args, &client, &queries),
    }
}

fn check(
    args: &QueryArgs,
    client: &Client,
    reference: &str,
    queries: &[(&str, &Range, RangeQuery<'_>)],
) -> Result<bool, Error> {
    let mut results = Vec::new();
    let mut all_ok = true;
    for (expr, range, q) in queries {
        let answers = run(client, &args.url, q)
            .and_then(|b| parse_matrix(&b))
            .and_then(|got| Ok((got, parse_matrix(&run(client, reference, q)?)?)));
        let check = match answers {
            Ok((got, want)) => {
                let (count, differences) = compare(&got, &want, args.tolerance, args.max_diffs);
                Check {
                    query: (*expr).to_owned(),
                    range: range.text.clone(),
                    series: got.len(),
                    reference_series: want.len(),
                    points: got.values().map(Vec::len).sum(),
                    ok: count == 0 && !want.is_empty(),
                    differences: if want.is_empty() {
                        vec!["the reference answered no series".into()]
                    } else if count > args.max_diffs {
                        let mut d = differences;
                        d.push(format!("... {count} differences in all"));
                        d
                    } else {
                        differences
                    },
                }
            }
            Err(e) => Check {
                query: (*expr).to_owned(),
                range: range.text.clone(),
                series: 0,
                reference_series: 0,
                points: 0,
                ok: false,
                differences: vec![e],
            },
        };
        eprintln!(
            "strata-loadgen: check {} over {}: {} ({} series, {} points; reference {} series)",
            check.query,
            check.range,
            if check.ok { "same" } else { "DIFFERENT" },
            check.series,
            check.points,
            check.reference_series
        );
        for d in &check.differences {
            eprintln!("    {d}");
        }
        all_ok &= check.ok;
        results.push(check);
    }
    save(args, &results)?;
    Ok(all_ok)
}

fn time(
    args: &QueryArgs,
    client: &Client,
    queries: &[(&str, &Range, RangeQuery<'_>)],
) -> Result<bool, Error> {
    let mut results = Vec::new();
    for (expr, range, q) in queries {
        let mut hist = Histogram::<u64>::new(3).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut last = Vec::new();
        let mut total = Duration::ZERO;
        for i in 0..args.warmup + args.runs {
            let started = Instant::now();
            let body = match run(client, &args.url, q) {
                Ok(body) => body,
                Err(e) => {
                    eprintln!(
                        "strata-loadgen: {} {expr} over {}: {e}",
                        args.system, range.text
                    );
                    save(args, &results)?;
                    return Ok(false);
                }
            };
            let took = started.elapsed();
            if i >= args.warmup {
                total += took;
                let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                hist.record(us).map_err(|e| Error::Invalid(e.to_string()))?;
            }
            last = body;
        }
        let (series, points) = parse_matrix(&last)
            .map(|m| (m.len(), m.values().map(Vec::len).sum()))
            .unwrap_or_default();
        let ms = |us: u64| us as f64 / 1000.0;
        let timing = Timing {
            query: (*expr).to_owned(),
            range: range.text.clone(),
            range_s: range.length.as_secs(),
            series,
            points,
            response_bytes: last.len(),
            runs: args.runs,
            p50_ms: ms(hist.value_at_quantile(0.5)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            min_ms: ms(hist.min()),
            max_ms: ms(hist.max()),
            mean_ms: total.as_secs_f64() * 1000.0 / f64::from(args.runs),
        };
        eprintln!(
            "strata-loadgen: {} {} over {}: p50 {:.1} ms, p99 {:.1} ms ({} series, {} points)",
            args.system, timing.query, timing.range, timing.p50_ms, timing.p99_ms, series, points
        );
        // One line per result on stdout for scripts: query, range, p50 ms, p99 ms.
        println!(
            "{}\t{}\t{:.3}\t{:.3}",
            timing.query, timing.range, timing.p50_ms, timing.p99_ms
        );
        results.push(timing);
    }
    save(args, &results)?;
    Ok(true)
}

fn save<T: Serialize>(args: &QueryArgs, results: &[T]) -> Result<(), Error> {
    let Some(path) = &args.summary else {
        return Ok(());
    };
    let summary = Summary {
        system: &args.system,
        url: &args.url,
        reference_url: args.reference_url.as_deref(),
        end_ms: args.end,
        step_s: args.step.as_secs_f64(),
        warmup: args.warmup,
        runs: args.runs,
        results,
    };
    crate::report::save_json(path, &summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(json: &str) -> Matrix {
        parse_matrix(json.as_bytes()).expect("valid matrix")
    }

    const WANT: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"instance":"a","job":"node"},"values":[[1.5,"1"],[16.5,"NaN"]]},
        {"metric":{"instance":"b"},"values":[[1.5,"+Inf"]]}]}}"#;

    #[test]
    fn equal_answers_match_in_any_series_order() {
        let got = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"b"},"values":[[1.5,"+Inf"]]},
            {"metric":{"job":"node","instance":"a"},"values":[[1.5,"1.0000000001"],[16.5,"NaN"]]}]}}"#;
        assert_eq!(compare(&matrix(got), &matrix(WANT), 1e-6, 10).0, 0);
    }

    #[test]
    fn differences_are_counted() {
        let got = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"a","job":"node"},"values":[[1.5,"1.1"],[31.5,"2"]]},
            {"metric":{"instance":"c"},"values":[[1.5,"1"]]}]}}"#;
        // value, missing point, extra point, missing series b, extra series c
        let (count, text) = compare(&matrix(got), &matrix(WANT), 1e-6, 2);
        assert_eq!(count, 5);
        assert_eq!(text.len(), 2);
    }

    #[test]
    fn forms_escape_promql() {
        assert_eq!(
            form_escape("sum by (le)(x[5m])"),
            "sum%20by%20%28le%29%28x%5B5m%5D%29"
        );
        assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(seconds(-1), "-0.001");
    }
}
