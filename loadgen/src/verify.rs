//! The verify mode: read a workload back over Prometheus remote read and compare with what the
//! generator says was written: every series present, every sample at the same timestamp with
//! the same value bits (stale markers included), nothing extra.
//!
//! One query per host (`{__name__=~".+", instance="host-N:9100"}`) for the `node` and `tenants`
//! profiles; for `k8s`, one query per pod ever created (`{__name__=~".+", namespace="...",
//! pod="..."}`), so every series of every pod, replaced ones included, is checked in full. Each
//! query is sent as the tenant of its host or pod slot, over `[start, start + rounds *
//! interval]`.
//!
//! Labels of returned series are compared as sets (sorted by name first), so a server that
//! returns them in another order still passes; a series returned twice counts as extra.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use strata_net::remote_write::proto::{Label, ReadResponse, Sample};

use crate::Error;
use crate::fleet::k8s::{self, Pod, PodLife};
use crate::fleet::{Host, K8sSpec, Profile, Workload, instance, tenant_id};
use crate::http::Client;
use crate::report::{self, LatencyUs, VerifyCounts, VerifyParams, VerifySummary};
use crate::wire;

/// Headers of every remote-read request (besides the tenant).
const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Read-Version", "0.1.0"),
];

/// How to read the fleet back.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub read_url: String,
    /// Parallel readers.
    pub concurrency: u32,
    /// Header carrying the tenant id; `None` sends none.
    pub tenant_header: Option<String>,
    pub timeout: Duration,
    /// Differences kept and printed.
    pub max_diffs: usize,
    pub progress: bool,
}

/// The first differences found, up to a limit.
struct Diffs {
    list: Vec<String>,
    max: usize,
}

impl Diffs {
    fn push(&mut self, f: impl FnOnce() -> String) {
        if self.list.len() < self.max {
            self.list.push(f());
        }
    }
}

/// `name{a="b", ...}`
pub fn series_text(labels: &[Label]) -> String {
    let mut name = "";
    let mut rest = String::new();
    for l in labels {
        if l.name == "__name__" {
            name = &l.value;
        } else {
            let sep = if rest.is_empty() { "" } else { ", " };
            let _ = write!(rest, "{sep}{}={:?}", l.name, l.value);
        }
    }
    format!("{name}{{{rest}}}")
}

/// Compares what came back for one host with what was written.
fn compare(
    expected: Vec<(Vec<Label>, Vec<Sample>)>,
    response: ReadResponse,
    diffs: &mut Diffs,
) -> VerifyCounts {
    let mut c = VerifyCounts {
        series_expected: expected.len() as u64,
        samples_expected: expected.iter().map(|(_, s)| s.len() as u64).sum(),
        ..VerifyCounts::default()
    };
    let mut want: HashMap<Vec<Label>, (Vec<Sample>, bool)> = expected
        .into_iter()
        .map(|(labels, samples)| (labels, (samples, false)))
        .collect();
    for series in response.results.into_iter().flat_map(|r| r.timeseries) {
        let mut labels = series.labels;
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut got = series.samples;
        got.sort_by_key(|s| s.timestamp);
        c.series_found += 1;
        c.samples_found += got.len() as u64;
        match want.get_mut(&labels) {
            Some((samples, found)) if !*found => {
                *found = true;
                compare_samples(&labels, samples, &got, &mut c, diffs);
            }
            Some(_) => {
                c.series_extra += 1;
                c.samples_extra += got.len() as u64;
                diffs.push(|| format!("series returned twice: {}", series_text(&labels)));
            }
            None => {
                c.series_extra += 1;
                c.samples_extra += got.len() as u64;
                diffs.push(|| {
                    format!(
                        "unexpected series {} ({} samples)",
                        series_text(&labels),
                        got.len()
                    )
                });
            }
        }
    }
    let mut missing: Vec<_> = want.into_iter().filter(|(_, (_, found))| !found).collect();
    missing.sort_by(|a, b| a.0.cmp(&b.0));
    for (labels, (samples, _)) in missing {
        c.series_missing += 1;
        c.samples_missing += samples.len() as u64;
        diffs.push(|| {
            format!(
                "missing series {} ({} samples)",
                series_text(&labels),
                samples.len()
            )
        });
    }
    c
}

/// Merge-walks two timestamp-sorted sample lists.
fn compare_samples(
    labels: &[Label],
    want: &[Sample],
    got: &[Sample],
    counts: &mut VerifyCounts,
    diffs: &mut Diffs,
) {
    let (mut wi, mut gi) = (0, 0);
    while wi < want.len() || gi < got.len() {
        match (want.get(wi), got.get(gi)) {
            (Some(w), Some(g)) if w.timestamp == g.timestamp => {
                if w.value.to_bits() == g.value.to_bits() {
                    counts.samples_matched += 1;
                } else {
                    counts.samples_different += 1;
                    diffs.push(|| {
                        format!(
                            "{} @ {}: wrote {:?} ({:#018x}), read {:?} ({:#018x})",
                            series_text(labels),
                            w.timestamp,
                            w.value,
                            w.value.to_bits(),
                            g.value,
                            g.value.to_bits()
                        )
                    });
                }
                wi += 1;
                gi += 1;
            }
            (Some(w), g) if g.is_none_or(|g| w.timestamp < g.timestamp) => {
                counts.samples_missing += 1;
                diffs.push(|| {
                    format!(
                        "{} @ {}: missing sample {:?}",
                        series_text(labels),
                        w.timestamp,
                        w.value
                    )
                });
                wi += 1;
            }
            (_, Some(g)) => {
                counts.samples_extra += 1;
                diffs.push(|| {
                    format!(
                        "{} @ {}: unexpected sample {:?}",
                        series_text(labels),
                        g.timestamp,
                        g.value
                    )
                });
                gi += 1;
            }
            (_, None) => break,
        }
    }
}

/// One reader's share.
struct ReaderResult {
    counts: VerifyCounts,
    diffs: Vec<String>,
    hist: Histogram<u64>,
}

/// What one query reads back: a host, or one pod of the `k8s` profile.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    Host(u32),
    Pod(&'a K8sSpec, &'a PodLife),
}

/// Data of one target: tenant, name for messages, request body, expected series.
struct Expected {
    tenant: String,
    name: String,
    request: Result<Vec<u8>, Error>,
    series: Vec<(Vec<Label>, Vec<Sample>)>,
}

fn expected(w: &Workload, target: Target<'_>) -> Expected {
    let spec = &w.fleet;
    let (start, end) = (spec.start_ms, spec.end_ms());
    match target {
        Target::Host(h) => {
            let name = instance(h);
            Expected {
                tenant: tenant_id(w.tenant_of(h)),
                request: wire::read_request(&name, start, end),
                name,
                series: Host::expected(spec, h),
            }
        }
        Target::Pod(k, life) => {
            let pod = Pod::new(spec, life.id, life.slot, life.born);
            let eq = [("namespace", pod.namespace()), ("pod", pod.name())];
            Expected {
                tenant: tenant_id(w.tenant_of(life.slot)),
                request: wire::read_request_eq(&eq, start, end),
                name: format!("pod {}/{}", pod.namespace(), pod.name()),
                series: Pod::expected(spec, k, life),
            }
        }
    }
}

fn read_targets<'a>(
    w: &Workload,
    opts: &VerifyOptions,
    client: &Client,
    targets: impl Iterator<Item = Target<'a>>,
    progress: &ProgressBar,
) -> ReaderResult {
    let mut counts = VerifyCounts::default();
    let mut diffs = Diffs {
        list: Vec::new(),
        max: opts.max_diffs,
    };
    let mut hist = report::latency_histogram();
    for target in targets {
        let want = expected(w, target);
        counts.queries += 1;
        let outcome = want.request.and_then(|body| {
            let sent = Instant::now();
            let reply = client.post(&opts.read_url, &want.tenant, &HEADERS, &body);
            report::record(&mut hist, sent.elapsed());
            let reply = reply?;
            if !reply.is_success() {
                return Err(Error::Invalid(format!(
                    "HTTP {}: {}",
                    reply.status,
                    reply.body_text(1024)
                )));
            }
            wire::read_response(&reply.body)
        });
        match outcome {
            Ok(response) => counts.add(&compare(want.series, response, &mut diffs)),
            Err(e) => {
                counts.queries_failed += 1;
                counts.series_expected += want.series.len() as u64;
                counts.samples_expected +=
                    want.series.iter().map(|(_, s)| s.len() as u64).sum::<u64>();
                let (name, tenant) = (&want.name, &want.tenant);
                diffs.push(|| format!("query for {name} ({tenant}) failed: {e}"));
            }
        }
        progress.inc(1);
    }
    ReaderResult {
        counts,
        diffs: diffs.list,
        hist,
    }
}

/// Reads every host (or pod) back and compares.
pub fn run(workload: &Workload, opts: &VerifyOptions) -> Result<VerifySummary, Error> {
    workload.validate()?;
    if opts.concurrency == 0 {
        return Err(Error::Invalid("--concurrency must be at least 1".into()));
    }
    let spec = &workload.fleet;
    let lives = match &workload.profile {
        Profile::K8s(k) => k8s::lives(spec, k),
        Profile::Node | Profile::Tenants => Vec::new(),
    };
    let targets = match &workload.profile {
        Profile::K8s(_) => lives.len(),
        Profile::Node | Profile::Tenants => spec.hosts as usize,
    };
    let target = |i: usize| match &workload.profile {
        Profile::K8s(k) => Target::Pod(k, &lives[i]),
        Profile::Node | Profile::Tenants => Target::Host(i as u32),
    };
    let readers = (opts.concurrency as usize).min(targets).max(1);
    let clients = (0..readers)
        .map(|_| Client::new(opts.timeout, opts.tenant_header.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let progress = if opts.progress {
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} queries ({per_sec})",
        )
        .map_err(|e| Error::Invalid(format!("progress template: {e}")))?
        .progress_chars("=> ");
        ProgressBar::new(targets as u64).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    let panicked = AtomicBool::new(false);
    let results: Vec<ReaderResult> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(w, client)| {
                let (progress, target) = (&progress, &target);
                scope.spawn(move || {
                    let mine = (w..targets).step_by(readers).map(target);
                    read_targets(workload, opts, client, mine, progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .map_err(|_| panicked.store(true, Ordering::Relaxed))
                    .ok()
            })
            .collect()
    });
    if panicked.load(Ordering::Relaxed) {
        return Err(Error::Panicked("reader"));
    }
    progress.finish_and_clear();
    let mut counts = VerifyCounts::default();
    let mut differences = Vec::new();
    let mut hist = report::latency_histogram();
    for r in results {
        counts.add(&r.counts);
        differences.extend(r.diffs);
        let _ = hist.add(&r.hist);
    }
    differences.truncate(opts.max_diffs);
    Ok(VerifySummary {
        tool: crate::http::USER_AGENT.to_owned(),
        params: VerifyParams {
            read_url: opts.read_url.clone(),
            workload: *workload,
            start: report::rfc3339_ms(spec.start_ms),
            interval: report::interval_text(spec.interval_ms),
            tenant_header: opts.tenant_header.clone(),
        },
        ok: counts.is_ok(),
        counts,
        differences,
        duration_s: start.elapsed().as_secs_f64(),
        latency_us: LatencyUs::from_histogram(&hist),
    })
}

#[cfg(test)]
mod tests {
    use strata_net::remote_write::proto::{QueryResult, TimeSeries};

    use super::*;
    use crate::fleet::FleetSpec;

    fn spec() -> FleetSpec {
        FleetSpec {
            hosts: 2,
            tenants: 1,
            rounds: 5,
            interval_ms: 10_000,
            start_ms: 1_700_000_000_000,
            seed: 3,
        }
    }

    fn response(expected: &[(Vec<Label>, Vec<Sample>)]) -> ReadResponse {
        ReadResponse {
            results: vec![QueryResult {
                timeseries: expected
                    .iter()
                    .map(|(labels, samples)| {
                        let mut labels = labels.clone();
                        labels.reverse();
                        TimeSeries {
                            labels,
                            samples: samples.clone(),
                            exemplars: vec![],
                            histograms: vec![],
                        }
                    })
                    .collect(),
            }],
        }
    }

    fn diffs() -> Diffs {
        Diffs {
            list: vec![],
            max: 100,
        }
    }

    #[test]
    fn identical_data_passes() {
        let expected = Host::expected(&spec(), 1);
        let mut d = diffs();
        let c = compare(expected.clone(), response(&expected), &mut d);
        assert!(c.is_ok(), "{c:?} {:?}", d.list);
        assert_eq!(c.samples_matched, 500);
        assert!(d.list.is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_caught() {
        let expected = Host::expected(&spec(), 0);
        let mut resp = response(&expected);
        let series = &mut resp.results[0].timeseries;
        series.remove(3); // a missing series (5 samples)
        series[0].samples.remove(2); // a missing sample
        series[1].samples[4].value += 1.0; // a different value
        series[2].samples.push(Sample {
            value: 1.0,
            timestamp: spec().end_ms() + 1,
        }); // an extra sample
        let dup = series[5].clone();
        series.push(dup); // a duplicate series (5 samples)
        let mut d = diffs();
        let c = compare(expected, resp, &mut d);
        assert!(!c.is_ok());
        assert_eq!(c.series_missing, 1);
        assert_eq!(c.series_extra, 1);
        assert_eq!(c.samples_missing, 5 + 1);
        assert_eq!(c.samples_different, 1);
        assert_eq!(c.samples_extra, 5 + 1);
        assert_eq!(c.samples_matched, 500 - 5 - 1 - 1);
        assert_eq!(d.list.len(), 5, "{:?}", d.list);
    }

    #[test]
    fn series_text_reads_like_promql() {
        let labels = vec![
            Label {
                name: "__name__".into(),
                value: "up".into(),
            },
            Label {
                name: "job".into(),
                value: "node".into(),
            },
        ];
        assert_eq!(series_text(&labels), "up{job=\"node\"}");
    }
}
