//! The backfill mode: push a long history of the fleet (a day or more) into one or more
//! remote-write receivers, streaming, so that query benchmarks see the same data everywhere.
//!
//! Unlike [`crate::write`], which measures ingestion one round per request, backfill generates
//! `chunk` rounds at a time and sends every series of a host group with all its samples of the
//! chunk in one request, to every `--url` in turn. Memory stays at one chunk per sender.
//!
//! Invariants:
//! - Every series receives its samples in timestamp order: a sender owns its hosts for the whole
//!   run and sends chunks in order; all senders meet at a barrier after each chunk, so no sender is
//!   more than one chunk ahead of another (Prometheus's head refuses samples older than the block
//!   it last compacted).
//! - The data are a pure function of the [`FleetSpec`] and `histogram`: the fleet exactly as
//!   [`crate::write`] sends it, plus, with `histogram`, one classic histogram per host
//!   ([`HISTOGRAM`], [`BUCKETS`] buckets and `+Inf`) whose cumulative counts start high, so that
//!   `rate()` never extrapolates a bucket to zero and `histogram_quantile` sees monotonic buckets.
//! - The chosen query end ([`query_end_ms`]) is at or after the newest sample and never on the
//!   scrape phase of any host, so no sample ever sits exactly on a range boundary of a query
//!   evaluated on the step grid through it: left-closed (Prometheus 2.x) and left-open (3.x)
//!   windows select the same samples.

use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use prost::Message;
use serde::Serialize;
use strata_net::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

use crate::Error;
use crate::fleet::{FleetSpec, Host, Rng, SERIES_PER_HOST, instance, mix};
use crate::http::Client;

/// Metric name of the histogram family added by `--with-histogram`.
pub const HISTOGRAM: &str = "http_request_duration_seconds_bucket";

/// Upper bounds of the finite buckets, in seconds.
pub const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Headers of every remote-write request.
const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// `strata-loadgen backfill` flags.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// Remote-write endpoint; repeat to fill several servers with the same data
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Hosts in the fleet, 100 series each (plus 10 with --with-histogram)
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// Rounds, i.e. samples per series
    #[arg(long, default_value_t = 5760)]
    rounds: u32,
    /// Scrape interval between rounds
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Timestamp of round 0 in milliseconds since the epoch [default: rounds * interval before
    /// now, aligned to the interval]
    #[arg(long)]
    start: Option<i64>,
    /// Seed of every generated value
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add a classic histogram (`http_request_duration_seconds_bucket`) of 10 buckets per host
    #[arg(long)]
    with_histogram: bool,
    /// Parallel senders
    #[arg(long, default_value_t = 2)]
    concurrency: u32,
    /// Rounds per request
    #[arg(long, default_value_t = 120)]
    chunk: u32,
    /// Hosts per request
    #[arg(long, default_value_t = 5)]
    hosts_per_request: u32,
    /// Per-request timeout
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write the summary (spec, newest sample, query end) as JSON to this file
    #[arg(long)]
    summary: Option<PathBuf>,
}

/// What a backfill did, and where queries over its data should end.
#[derive(Debug, Serialize)]
pub struct BackfillSummary {
    pub hosts: u32,
    pub rounds: u32,
    pub interval_ms: i64,
    pub start_ms: i64,
    pub seed: u64,
    pub with_histogram: bool,
    pub series: u64,
    pub samples: u64,
    pub requests: u64,
    pub seconds: f64,
    /// Newest sample timestamp of the fleet.
    pub last_sample_ms: i64,
    /// Suggested end of every query: see the module invariants.
    pub query_end_ms: i64,
}

/// One host's histogram state: cumulative counts per bucket, `+Inf` last.
struct HistogramState {
    labels: Vec<Vec<Label>>,
    counts: Vec<u64>,
    /// Scale of this host's latencies, seconds.
    scale: f64,
    rng: Rng,
}

impl HistogramState {
    fn new(spec: &FleetSpec, host: u32) -> Self {
        let mut rng = Rng::new(mix(spec.seed ^ 0x6869_7374, u64::from(host)));
        let scale = rng.between(0.02, 0.2);
        let les = BUCKETS
            .iter()
            .map(ToString::to_string)
            .chain(std::iter::once("+Inf".to_owned()));
        let labels = les
            .map(|le| {
                vec![
                    label("__name__", HISTOGRAM),
                    label("instance", &instance(host)),
                    label("job", "node"),
                    label("le", &le),
                ]
            })
            .collect();
        // Large, increasing starting counts: see the module invariants.
        let counts = (1..=BUCKETS.len() as u64 + 1)
            .map(|b| b * 1_000_000)
            .collect();
        Self {
            labels,
            counts,
            scale,
            rng,
        }
    }

    /// Observes one round's requests (exponentially distributed latencies).
    fn step(&mut self) {
        let n = 20 + self.rng.next_u64() % 40;
        for _ in 0..n {
            let latency = -(1.0 - self.rng.unit()).ln() * self.scale;
            for (count, &le) in self.counts.iter_mut().zip(&BUCKETS) {
                if latency <= le {
                    *count += 1;
                }
            }
            if let Some(inf) = self.counts.last_mut() {
                *inf += 1;
            }
        }
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// One sender's hosts and their generator state.
struct Sender {
    hosts: Vec<Host>,
    histograms: Vec<HistogramState>,
}

impl Sender {
    /// Requests for rounds `[from, to)` of every host, `per_request` hosts each.
    fn chunk(&mut self, from: u32, to: u32, per_request: usize) -> Vec<WriteRequest> {
        let mut out = Vec::new();
        let with_histogram = !self.histograms.is_empty();
        for group in 0..self.hosts.len().div_ceil(per_request) {
            let range = group * per_request..((group + 1) * per_request).min(self.hosts.len());
            let mut timeseries = Vec::new();
            for i in range {
                let host = &mut self.hosts[i];
                let mut series: Vec<Vec<Sample>> = vec![Vec::new(); SERIES_PER_HOST];
                let mut buckets: Vec<Vec<Sample>> = vec![Vec::new(); BUCKETS.len() + 1];
                for round in from..to {
                    if round > 0 {
                        host.advance();
                        if with_histogram {
                            self.histograms[i].step();
                        }
                    }
                    let ts = host.timestamp();
                    for (s, samples) in host.series().iter().zip(&mut series) {
                        samples.push(Sample {
                            value: s.value(ts),
                            timestamp: ts,
                        });
                    }
                    if with_histogram {
                        for (&c, samples) in self.histograms[i].counts.iter().zip(&mut buckets) {
                            samples.push(Sample {
                                value: c as f64,
                                timestamp: ts,
                            });
                        }
                    }
                }
                for (s, samples) in host.series().iter().zip(series) {
                    timeseries.push(TimeSeries {
                        labels: s.labels.clone(),
                        samples,
                        ..TimeSeries::default()
                    });
                }
                if with_histogram {
                    for (labels, samples) in self.histograms[i].labels.iter().zip(buckets) {
                        timeseries.push(TimeSeries {
                            labels: labels.clone(),
                            samples,
                            ..TimeSeries::default()
                        });
                    }
                }
            }
            out.push(WriteRequest {
                timeseries,
                metadata: Vec::new(),
            });
        }
        out
    }
}

/// The newest sample of `spec` and a query end after it that no host's scrape phase hits: the
/// middle of the widest gap between the hosts' phases inside the interval.
pub fn query_end_ms(spec: &FleetSpec) -> (i64, i64) {
    let interval = spec.interval_ms;
    let mut phases: Vec<i64> = (0..spec.hosts)
        .map(|h| Host::new(spec, h).timestamp().rem_euclid(interval))
        .collect();
    phases.sort_unstable();
    phases.dedup();
    let mut best = (0, phases[0]);
    for (i, &p) in phases.iter().enumerate() {
        let next = phases.get(i + 1).copied().unwrap_or(phases[0] + interval);
        if next - p > best.1 {
            best = (p, next - p);
        }
    }
    let phase = (best.0 + best.1 / 2).rem_euclid(interval);
    let last = (0..spec.hosts)
        .map(|h| Host::new(spec, h).timestamp() + i64::from(spec.rounds - 1) * interval)
        .max()
        .unwrap_or(spec.start_ms);
    let end = last + (phase - last).rem_euclid(interval);
    (last, end)
}

/// Runs `strata-loadgen backfill`; `Ok(false)` when a server refused a request.
pub fn main(args: &BackfillArgs) -> Result<bool, Error> {
    let interval_ms = i64::try_from(args.interval.as_millis())
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| Error::Invalid("--interval out of range".into()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let spec = FleetSpec {
        hosts: args.hosts,
        tenants: 1,
        rounds: args.rounds,
        interval_ms,
        start_ms: args
            .start
            .unwrap_or_else(|| FleetSpec::recent_start(now, args.rounds, interval_ms)),
        seed: args.seed,
    };
    spec.validate()?;
    if args.concurrency == 0 || args.chunk == 0 || args.hosts_per_request == 0 {
        return Err(Error::Invalid(
            "--concurrency, --chunk and --hosts-per-request must be at least 1".into(),
        ));
    }
    let senders = args.concurrency.min(spec.hosts);
    let series_per_host = SERIES_PER_HOST as u64 + if args.with_histogram { 10 } else { 0 };
    eprintln!(
        "strata-loadgen: backfilling {} hosts ({} series) x {} rounds every {:?} from {} ms into {}",
        spec.hosts,
        u64::from(spec.hosts) * series_per_host,
        spec.rounds,
        args.interval,
        spec.start_ms,
        args.url.join(", ")
    );
    let barrier = Barrier::new(senders as usize);
    let failed = AtomicBool::new(false);
    let requests = AtomicU64::new(0);
    let started = Instant::now();
    let outcome: Result<(), Error> = thread::scope(|scope| {
        let handles: Vec<_> = (0..senders)
            .map(|w| {
                let (barrier, failed, requests) = (&barrier, &failed, &requests);
                scope.spawn(move || -> Result<(), Error> {
                    let client = Client::new(args.timeout, None)?;
                    let owned: Vec<u32> = (0..spec.hosts).filter(|h| h % senders == w).collect();
                    let mut sender = Sender {
                        hosts: owned.iter().map(|&h| Host::new(&spec, h)).collect(),
                        histograms: if args.with_histogram {
                            owned
                                .iter()
                                .map(|&h| HistogramState::new(&spec, h))
                                .collect()
                        } else {
                            Vec::new()
                        },
                    };
                    let mut result = Ok(());
                    let mut from = 0;
                    while from < spec.rounds {
                        let to = spec.rounds.min(from + args.chunk);
                        if result.is_ok() && !failed.load(Ordering::Relaxed) {
                            result = send_chunk(
                                &client,
                                &args.url,
                                sender.chunk(from, to, args.hosts_per_request as usize),
                                requests,
                            );
                            if result.is_err() {
                                failed.store(true, Ordering::Relaxed);
                            }
                        }
                        // Every sender reaches every barrier, even after a failure.
                        barrier.wait();
                        from = to;
                    }
                    result
                })
            })
            .collect();
        let mut outcome = Ok(());
        for h in handles {
            let r = h.join().map_err(|_| Error::Panicked("backfill"))?;
            if outcome.is_ok() {
                outcome = r;
            }
        }
        outcome
    });
    outcome?;
    let (last_sample_ms, query_end_ms) = query_end_ms(&spec);
    let summary = BackfillSummary {
        hosts: spec.hosts,
        rounds: spec.rounds,
        interval_ms,
        start_ms: spec.start_ms,
        seed: spec.seed,
        with_histogram: args.with_histogram,
        series: u64::from(spec.hosts) * series_per_host,
        samples: u64::from(spec.hosts) * series_per_host * u64::from(spec.rounds),
        requests: requests.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        last_sample_ms,
        query_end_ms,
    };
    eprintln!(
        "strata-loadgen: {} samples in {} requests per server in {:.1}s; newest sample {} ms, \
         query end {} ms",
        summary.samples, summary.requests, summary.seconds, last_sample_ms, query_end_ms
    );
    if let Some(path) = &args.summary {
        crate::report::save_json(path, &summary)?;
    }
    Ok(true)
}

/// Encodes and sends `requests` to every url; the first refusal is an error.
fn send_chunk(
    client: &Client,
    urls: &[String],
    requests: Vec<WriteRequest>,
    count: &AtomicU64,
) -> Result<(), Error> {
    let mut snappy = snap::raw::Encoder::new();
    for request in requests {
        let body = snappy.compress_vec(&request.encode_to_vec())?;
        for url in urls {
            let reply = client.post(url, "", &HEADERS, &body)?;
            if !reply.is_success() {
                return Err(Error::Invalid(format!(
                    "{url}: HTTP {}: {}",
                    reply.status,
                    reply.body_text(500)
                )));
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(hosts: u32) -> FleetSpec {
        FleetSpec {
            hosts,
            tenants: 1,
            rounds: 40,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000 - 1_700_000_000_000 % 15_000,
            seed: 1,
        }
    }

    #[test]
    fn query_end_is_after_the_data_and_off_every_scrape_phase() {
        for hosts in [1, 7, 100] {
            let spec = spec(hosts);
            let (last, end) = query_end_ms(&spec);
            assert!(end >= last && end < last + spec.interval_ms);
            for h in 0..hosts {
                let phase = Host::new(&spec, h).timestamp().rem_euclid(spec.interval_ms);
                assert_ne!(phase, end.rem_euclid(spec.interval_ms), "host {h}");
            }
        }
    }

    #[test]
    fn histogram_buckets_stay_cumulative_and_growing() {
        let mut h = HistogramState::new(&spec(1), 0);
        let mut before = h.counts.clone();
        for _ in 0..100 {
            h.step();
            assert!(h.counts.windows(2).all(|w| w[0] <= w[1]));
            assert!(h.counts.iter().zip(&before).all(|(now, was)| now >= was));
            before.clone_from(&h.counts);
        }
        assert_eq!(h.labels.len(), BUCKETS.len() + 1);
    }

    #[test]
    fn chunks_carry_every_sample_in_order() {
        let spec = spec(3);
        let mut sender = Sender {
            hosts: (0..3).map(|h| Host::new(&spec, h)).collect(),
            histograms: (0..3).map(|h| HistogramState::new(&spec, h)).collect(),
        };
        let mut requests = sender.chunk(0, 25, 2);
        requests.extend(sender.chunk(25, 40, 2));
        assert_eq!(requests.len(), 4);
        let samples: usize = requests
            .iter()
            .flat_map(|r| &r.timeseries)
            .map(|s| s.samples.len())
            .sum();
        assert_eq!(samples, 3 * (SERIES_PER_HOST + BUCKETS.len() + 1) * 40);
        let expected = Host::expected(&spec, 1);
        let got: Vec<&Sample> = requests
            .iter()
            .flat_map(|r| &r.timeseries)
            .filter(|s| s.labels == expected[0].0)
            .flat_map(|s| &s.samples)
            .collect();
        assert_eq!(got.len(), 40);
        assert!(got.iter().zip(&expected[0].1).all(|(g, w)| *g == w));
    }
}
