//! The backfill mode: a long history of the fleet (a day or more), streamed either into one or
//! more remote-write receivers or, with `--blocks-dir`, straight into Prometheus TSDB blocks
//! ([`crate::blocks`]), so that query benchmarks see the same data everywhere.
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
//!   Both outputs read the fleet through [`HostHistory`], so blocks hold exactly what the
//!   remote-write path pushes for the same flags.
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
use crate::blocks::BlocksOptions;
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
    #[arg(
        long,
        required_unless_present = "blocks_dir",
        conflicts_with = "blocks_dir"
    )]
    url: Vec<String>,
    /// Write Prometheus TSDB blocks into this directory instead of pushing (one block per
    /// `--block-range`, aligned to the epoch)
    #[arg(long)]
    blocks_dir: Option<PathBuf>,
    /// Hosts in the fleet, 100 series each (plus 10 with --with-histogram)
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// Series in the fleet instead of --hosts: rounded to whole hosts of 100 series
    #[arg(long, conflicts_with = "hosts")]
    series: Option<u32>,
    /// Rounds, i.e. samples per series
    #[arg(long, default_value_t = 5760)]
    rounds: u32,
    /// Days of history instead of --rounds: rounds = days / interval
    #[arg(long, conflicts_with = "rounds")]
    days: Option<u32>,
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
    /// With --blocks-dir: the time range of each block
    #[arg(
        long,
        default_value = "2h",
        value_parser = humantime::parse_duration,
        conflicts_with = "url"
    )]
    block_range: Duration,
    /// With --blocks-dir: the tenant written into meta.json (`thanos.labels.__org_id__`, source
    /// `backfill`); without it, plain Prometheus metas
    #[arg(long, conflicts_with = "url")]
    tenant: Option<String>,
    /// Parallel senders, or with --blocks-dir parallel generator threads
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
    /// With `--blocks-dir`: where the blocks went and how many there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u64>,
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

/// Series per host of a backfill: the fleet's, plus the histogram's buckets.
pub fn series_per_host(with_histogram: bool) -> usize {
    SERIES_PER_HOST + if with_histogram { BUCKETS.len() + 1 } else { 0 }
}

/// One host's history as backfill generates it, round by round: the fleet's host and, with
/// `--with-histogram`, its histogram. The remote-write path and the block writer both read the
/// fleet through this, so they carry the same series and samples.
pub struct HostHistory {
    host: Host,
    histogram: Option<HistogramState>,
    interval_ms: i64,
    /// Rounds produced so far.
    produced: u32,
}

impl HostHistory {
    /// Host `index` of `spec`, before its round 0.
    pub fn new(spec: &FleetSpec, index: u32, with_histogram: bool) -> Self {
        Self {
            host: Host::new(spec, index),
            histogram: with_histogram.then(|| HistogramState::new(spec, index)),
            interval_ms: spec.interval_ms,
            produced: 0,
        }
    }

    /// Number of series: [`series_per_host`].
    pub fn num_series(&self) -> usize {
        self.host.series().len() + self.histogram.as_ref().map_or(0, |h| h.labels.len())
    }

    /// The label sets (sorted by name), in the order [`HostHistory::for_each_value`] yields
    /// their values.
    pub fn labels(&self) -> impl Iterator<Item = &[Label]> {
        let fleet = self.host.series().iter().map(|s| s.labels.as_slice());
        let buckets = self.histogram.iter().flat_map(|h| h.labels.iter());
        fleet.chain(buckets.map(Vec::as_slice))
    }

    /// Rounds produced so far.
    pub fn produced(&self) -> u32 {
        self.produced
    }

    /// Timestamp of the next round [`HostHistory::next_round`] produces.
    pub fn next_timestamp(&self) -> i64 {
        if self.produced == 0 {
            self.host.timestamp()
        } else {
            self.host.timestamp() + self.interval_ms
        }
    }

    /// Moves to the next round and returns its timestamp.
    pub fn next_round(&mut self) -> i64 {
        if self.produced > 0 {
            self.host.advance();
            if let Some(h) = &mut self.histogram {
                h.step();
            }
        }
        self.produced += 1;
        self.host.timestamp()
    }

    /// Calls `f(series, value)` for every series at the current round, whose timestamp is `ts`.
    #[inline]
    pub fn for_each_value(&self, ts: i64, mut f: impl FnMut(usize, f64)) {
        let fleet = self.host.series();
        for (i, s) in fleet.iter().enumerate() {
            f(i, s.value(ts));
        }
        if let Some(h) = &self.histogram {
            for (i, &c) in h.counts.iter().enumerate() {
                f(fleet.len() + i, c as f64);
            }
        }
    }
}

/// One sender's hosts and their generator state.
struct Sender {
    hosts: Vec<HostHistory>,
}

impl Sender {
    /// Requests for rounds `[from, to)` of every host, `per_request` hosts each. Calls must
    /// cover the rounds in order, from 0.
    fn chunk(&mut self, from: u32, to: u32, per_request: usize) -> Vec<WriteRequest> {
        let mut out = Vec::new();
        for group in 0..self.hosts.len().div_ceil(per_request) {
            let range = group * per_request..((group + 1) * per_request).min(self.hosts.len());
            let mut timeseries = Vec::new();
            for host in &mut self.hosts[range] {
                debug_assert_eq!(host.produced(), from);
                let mut series: Vec<Vec<Sample>> = vec![Vec::new(); host.num_series()];
                for _ in from..to {
                    let ts = host.next_round();
                    host.for_each_value(ts, |i, value| {
                        series[i].push(Sample {
                            value,
                            timestamp: ts,
                        });
                    });
                }
                for (labels, samples) in host.labels().zip(series) {
                    timeseries.push(TimeSeries {
                        labels: labels.to_vec(),
                        samples,
                        ..TimeSeries::default()
                    });
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

/// Every series with all its samples, exactly as `backfill` pushes them for `spec` (in one
/// request per host here): what a reader of the backfilled data must find.
pub fn pushed_history(spec: &FleetSpec, with_histogram: bool) -> Vec<TimeSeries> {
    let mut sender = Sender {
        hosts: (0..spec.hosts)
            .map(|h| HostHistory::new(spec, h, with_histogram))
            .collect(),
    };
    sender
        .chunk(0, spec.rounds, 1)
        .into_iter()
        .flat_map(|r| r.timeseries)
        .collect()
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

/// The fleet the flags describe.
fn spec_of(args: &BackfillArgs, interval_ms: i64) -> Result<FleetSpec, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let hosts = match args.series {
        // Whole hosts of 100 series, rounded to the nearest, at least one.
        Some(series) => {
            (series.saturating_add(SERIES_PER_HOST as u32 / 2) / SERIES_PER_HOST as u32).max(1)
        }
        None => args.hosts,
    };
    let rounds = match args.days {
        Some(days) => {
            let rounds = i64::from(days) * 86_400_000 / interval_ms;
            u32::try_from(rounds)
                .ok()
                .filter(|&r| r > 0)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "--days {days} at --interval {interval_ms}ms gives {rounds} rounds: \
                         must be between 1 and {}",
                        u32::MAX
                    ))
                })?
        }
        None => args.rounds,
    };
    let spec = FleetSpec {
        hosts,
        tenants: 1,
        rounds,
        interval_ms,
        start_ms: args
            .start
            .unwrap_or_else(|| FleetSpec::recent_start(now, rounds, interval_ms)),
        seed: args.seed,
    };
    spec.validate()?;
    Ok(spec)
}

/// Runs `strata-loadgen backfill`; `Ok(false)` when a server refused a request.
pub fn main(args: &BackfillArgs) -> Result<bool, Error> {
    let interval_ms = i64::try_from(args.interval.as_millis())
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| Error::Invalid("--interval out of range".into()))?;
    let spec = spec_of(args, interval_ms)?;
    if args.concurrency == 0 || args.chunk == 0 || args.hosts_per_request == 0 {
        return Err(Error::Invalid(
            "--concurrency, --chunk and --hosts-per-request must be at least 1".into(),
        ));
    }
    let series_per_host = series_per_host(args.with_histogram) as u64;
    let series = u64::from(spec.hosts) * series_per_host;
    let started = Instant::now();
    let (requests, blocks) = match &args.blocks_dir {
        Some(dir) => {
            let block_range_ms = i64::try_from(args.block_range.as_millis())
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| Error::Invalid("--block-range out of range".into()))?;
            eprintln!(
                "strata-loadgen: backfilling {} hosts ({series} series) x {} rounds every {:?} \
                 from {} ms into blocks of {:?} in {}",
                spec.hosts,
                spec.rounds,
                args.interval,
                spec.start_ms,
                args.block_range,
                dir.display()
            );
            let opts = BlocksOptions {
                dir: dir.clone(),
                block_range_ms,
                tenant: args.tenant.clone(),
                with_histogram: args.with_histogram,
                threads: args.concurrency,
            };
            let written = crate::blocks::write(&spec, &opts)?;
            (0, Some(written.blocks.len() as u64))
        }
        None => (push(args, &spec, series)?, None),
    };
    let (last_sample_ms, query_end_ms) = query_end_ms(&spec);
    let summary = BackfillSummary {
        hosts: spec.hosts,
        rounds: spec.rounds,
        interval_ms,
        start_ms: spec.start_ms,
        seed: spec.seed,
        with_histogram: args.with_histogram,
        series,
        samples: series * u64::from(spec.rounds),
        requests,
        blocks_dir: args.blocks_dir.clone(),
        blocks,
        seconds: started.elapsed().as_secs_f64(),
        last_sample_ms,
        query_end_ms,
    };
    match blocks {
        Some(blocks) => eprintln!(
            "strata-loadgen: {} samples in {blocks} blocks in {:.1}s ({:.0} samples/s); newest \
             sample {} ms, query end {} ms",
            summary.samples,
            summary.seconds,
            summary.samples as f64 / summary.seconds.max(1e-9),
            last_sample_ms,
            query_end_ms
        ),
        None => eprintln!(
            "strata-loadgen: {} samples in {} requests per server in {:.1}s; newest sample {} \
             ms, query end {} ms",
            summary.samples, summary.requests, summary.seconds, last_sample_ms, query_end_ms
        ),
    }
    if let Some(path) = &args.summary {
        crate::report::save_json(path, &summary)?;
    }
    Ok(true)
}

/// Pushes the fleet's history to every `--url`; returns the requests sent per server.
fn push(args: &BackfillArgs, spec: &FleetSpec, series: u64) -> Result<u64, Error> {
    let senders = args.concurrency.min(spec.hosts);
    eprintln!(
        "strata-loadgen: backfilling {} hosts ({series} series) x {} rounds every {:?} from {} ms \
         into {}",
        spec.hosts,
        spec.rounds,
        args.interval,
        spec.start_ms,
        args.url.join(", ")
    );
    let barrier = Barrier::new(senders as usize);
    let failed = AtomicBool::new(false);
    let requests = AtomicU64::new(0);
    let outcome: Result<(), Error> = thread::scope(|scope| {
        let handles: Vec<_> = (0..senders)
            .map(|w| {
                let (barrier, failed, requests) = (&barrier, &failed, &requests);
                scope.spawn(move || -> Result<(), Error> {
                    let client = Client::new(args.timeout, None)?;
                    let mut sender = Sender {
                        hosts: (0..spec.hosts)
                            .filter(|h| h % senders == w)
                            .map(|h| HostHistory::new(spec, h, args.with_histogram))
                            .collect(),
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
    Ok(requests.load(Ordering::Relaxed))
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
            hosts: (0..3).map(|h| HostHistory::new(&spec, h, true)).collect(),
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
        // The whole history in one go is the same data.
        let all = pushed_history(&spec, true);
        let chunked: Vec<TimeSeries> = requests.into_iter().flat_map(|r| r.timeseries).collect();
        assert_eq!(all.len(), 3 * series_per_host(true));
        for s in &all {
            let parts: Vec<&Sample> = chunked
                .iter()
                .filter(|c| c.labels == s.labels)
                .flat_map(|c| &c.samples)
                .collect();
            assert!(parts.iter().copied().eq(s.samples.iter()), "{:?}", s.labels);
        }
    }

    #[test]
    fn series_and_days_flags_pick_hosts_and_rounds() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: BackfillArgs,
        }
        let parse = |extra: &[&str]| {
            let argv = ["backfill", "--blocks-dir", "/nonexistent", "--start", "0"];
            Cli::try_parse_from(argv.iter().chain(extra)).map(|c| c.args)
        };
        let a = parse(&["--series", "10000", "--days", "1"]).expect("flags");
        let spec = spec_of(&a, 15_000).expect("spec");
        assert_eq!((spec.hosts, spec.rounds), (100, 5760));
        let a = parse(&["--series", "149", "--days", "2", "--interval", "1m"]).expect("flags");
        let spec = spec_of(&a, 60_000).expect("spec");
        assert_eq!((spec.hosts, spec.rounds), (1, 2880));
        assert!(parse(&["--series", "10", "--hosts", "3"]).is_err());
        assert!(parse(&["--days", "1", "--rounds", "3"]).is_err());
        assert!(
            Cli::try_parse_from(["backfill"]).is_err(),
            "--url or --blocks-dir"
        );
        let push = |extra: &[&str]| {
            let argv = ["backfill", "--url", "http://localhost:9009/api/v1/push"];
            Cli::try_parse_from(argv.iter().chain(extra)).map(|c| c.args)
        };
        assert!(push(&[]).is_ok());
        assert!(
            push(&["--tenant", "t"]).is_err(),
            "--tenant needs --blocks-dir"
        );
        assert!(push(&["--blocks-dir", "/tmp/x"]).is_err());
    }
}
