//! The write mode: encode a workload's samples (any [`crate::fleet::Profile`]) into remote-write
//! requests and push them with `concurrency` senders, closed loop (as fast as the server
//! answers) or open loop (`rate`).
//!
//! Ordering: unit `u` (a host, or a pod slot) belongs to sender `u % concurrency`, and a sender
//! sends its requests one at a time, round by round, so every series gets its samples in
//! timestamp order no matter how many senders run. A request holds series of a single tenant.
//! Within a round, a sender's requests go tenant by tenant (ascending), unit by unit; the `node`
//! profile's requests are exactly those of the writer before profiles existed (a test pins them).
//!
//! Encoding happens on its own thread ahead of the senders, into per-sender queues of `queue`
//! requests. The clock starts once the queues are full or everything is encoded; in the latter
//! case (the summary's `preencoded`) no encoding overlaps the measured load.
//!
//! Open loop: request `j` of sender `w` is due at `t0 + (j * concurrency + w) / rate`, and its
//! latency runs from that intended time, so a slow server shows up as latency instead of a lower
//! request rate (no coordinated omission).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Error;
use crate::fleet::k8s::{PodFleet, churn_slots};
use crate::fleet::{Generator, HostFleet, Profile, Workload, tenant_id};
use crate::http::Client;
use crate::report::{self, LatencyUs, WriteParams, WriteSummary};
use crate::usage::{self, ProcSample, ServerUsage};
use crate::wire::WriteEncoder;

/// Headers of every remote-write request (besides the tenant).
const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// How to push the fleet.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub url: String,
    /// Parallel senders.
    pub concurrency: u32,
    /// Series per request.
    pub batch: u32,
    /// Open-loop target in requests per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Header carrying the tenant id; `None` sends none.
    pub tenant_header: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Encoded requests queued per sender.
    pub queue: usize,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Server process to measure (CPU time, peak RSS) over the load.
    pub server_pid: Option<u32>,
    /// Wait after the last response before the final measurement of `server_pid`.
    pub settle: Duration,
}

impl WriteOptions {
    pub fn validate(&self) -> Result<(), Error> {
        if self.concurrency == 0 {
            return Err(Error::Invalid("--concurrency must be at least 1".into()));
        }
        if self.batch == 0 {
            return Err(Error::Invalid("--batch must be at least 1".into()));
        }
        if self.queue == 0 {
            return Err(Error::Invalid("--queue must be at least 1".into()));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate >= 0.001)
        {
            return Err(Error::Invalid(format!(
                "--rate must be at least 0.001 requests/s, got {rate}"
            )));
        }
        Ok(())
    }
}

/// The units of one tenant that one sender owns.
#[derive(Clone, Debug)]
struct Lane {
    tenant: u32,
    units: Vec<u32>,
}

/// Lanes of each sender: by tenant, ascending, each with its units ascending.
fn plan(w: &Workload, senders: u32) -> Vec<Vec<Lane>> {
    let tenants = w.fleet.tenants as usize;
    let mut by_tenant: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); tenants]; senders as usize];
    for u in 0..w.units() {
        by_tenant[(u % senders) as usize][w.tenant_of(u) as usize - 1].push(u);
    }
    by_tenant
        .into_iter()
        .map(|lanes| {
            (1..)
                .zip(lanes)
                .filter(|(_, units)| !units.is_empty())
                .map(|(tenant, units)| Lane { tenant, units })
                .collect()
        })
        .collect()
}

/// Requests of one round of a lane whose units carry `series` series in all.
fn lane_requests(series: usize, batch: u32) -> u64 {
    series.div_ceil(batch as usize) as u64
}

/// Requests of the whole run.
fn total_requests(w: &Workload, plan: &[Vec<Lane>], batch: u32) -> u64 {
    let per_unit = w.series_per_unit();
    let lanes = plan.iter().flatten();
    let per_round: u64 = lanes
        .clone()
        .map(|l| lane_requests(l.units.len() * per_unit, batch))
        .sum();
    let mut total = per_round * u64::from(w.fleet.rounds);
    if let Profile::K8s(k) = &w.profile
        && k.stale_markers
    {
        // On a churn round a lane also carries the stale markers of the pods its slots lost.
        let mut lane_of = vec![0; w.units() as usize];
        for (i, lane) in lanes.clone().enumerate() {
            for &u in &lane.units {
                lane_of[u as usize] = i;
            }
        }
        let sizes: Vec<usize> = lanes.map(|l| l.units.len()).collect();
        for event in 1..=k.churns(&w.fleet) {
            let mut retired = vec![0; sizes.len()];
            for slot in churn_slots(&w.fleet, k, event) {
                retired[lane_of[slot as usize]] += 1;
            }
            for (&n, &r) in sizes.iter().zip(&retired) {
                total +=
                    lane_requests((n + r) * per_unit, batch) - lane_requests(n * per_unit, batch);
            }
        }
    }
    total
}

/// One encoded request.
struct Job {
    tenant: u32,
    series: u32,
    body: Vec<u8>,
}

/// Encodes every request of `rounds` rounds of `data` in send order and hands each to its
/// sender. Signals `ready` once the queues are full or everything is encoded.
fn produce(
    mut data: impl Generator,
    rounds: u32,
    plan: &[Vec<Lane>],
    batch: u32,
    queues: &[SyncSender<Job>],
    ready: mpsc::Sender<()>,
    encoded: &AtomicU64,
) -> Result<(), Error> {
    let mut ready = Some(ready);
    let mut enc = WriteEncoder::new();
    for round in 0..rounds {
        if round > 0 {
            data.advance();
        }
        for (lanes, queue) in plan.iter().zip(queues) {
            for lane in lanes {
                for &u in &lane.units {
                    for (labels, ts, value) in data.samples(u) {
                        enc.push(labels, ts, value);
                        if enc.series() == batch
                            && !hand_over(&mut enc, lane.tenant, queue, &mut ready, encoded)?
                        {
                            return Ok(());
                        }
                    }
                }
                if enc.series() > 0
                    && !hand_over(&mut enc, lane.tenant, queue, &mut ready, encoded)?
                {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Queues the pending request; `false` when the sender is gone.
fn hand_over(
    enc: &mut WriteEncoder,
    tenant: u32,
    queue: &SyncSender<Job>,
    ready: &mut Option<mpsc::Sender<()>>,
    encoded: &AtomicU64,
) -> Result<bool, Error> {
    let job = Job {
        tenant,
        series: enc.series(),
        body: enc.finish()?,
    };
    encoded.fetch_add(1, Ordering::Relaxed);
    match queue.try_send(job) {
        Ok(()) => Ok(true),
        Err(TrySendError::Full(job)) => {
            // The queues are full: time to start the clock.
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            Ok(queue.send(job).is_ok())
        }
        Err(TrySendError::Disconnected(_)) => Ok(false),
    }
}

/// What one sender measured.
struct SenderStats {
    hist: Histogram<u64>,
    requests: u64,
    failed: u64,
    samples: u64,
    samples_ok: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

/// Shared by all senders.
struct SendCtx<'a> {
    url: &'a str,
    rate: Option<f64>,
    senders: u32,
    progress: &'a ProgressBar,
    reported: &'a AtomicBool,
}

fn send_loop(
    w: u32,
    t0: Instant,
    queue: &Receiver<Job>,
    client: &Client,
    ctx: &SendCtx<'_>,
) -> SenderStats {
    let mut stats = SenderStats {
        hist: report::latency_histogram(),
        requests: 0,
        failed: 0,
        samples: 0,
        samples_ok: 0,
        bytes: 0,
        errors: BTreeMap::new(),
        first_error: None,
    };
    for (j, job) in queue.iter().enumerate() {
        let intended = ctx.rate.map(|rate| {
            let slot = j as f64 * f64::from(ctx.senders) + f64::from(w);
            t0 + Duration::from_secs_f64(slot / rate)
        });
        if let Some(at) = intended {
            let now = Instant::now();
            if at > now {
                // Not a shard thread: an open-loop sender waits for its slot.
                #[allow(clippy::disallowed_methods)]
                thread::sleep(at - now);
            }
        }
        let sent = Instant::now();
        let outcome = client.post(ctx.url, &tenant_id(job.tenant), &HEADERS, &job.body);
        report::record(&mut stats.hist, intended.unwrap_or(sent).elapsed());
        stats.requests += 1;
        stats.samples += u64::from(job.series);
        stats.bytes += job.body.len() as u64;
        let failure = match outcome {
            Ok(reply) if reply.is_success() => {
                stats.samples_ok += u64::from(job.series);
                None
            }
            Ok(reply) => Some((
                reply.status.to_string(),
                format!(
                    "HTTP {} for tenant {}: {}",
                    reply.status,
                    tenant_id(job.tenant),
                    reply.body_text(1024)
                ),
            )),
            Err(e) => Some(("transport".to_owned(), format!("transport error: {e}"))),
        };
        if let Some((status, message)) = failure {
            stats.failed += 1;
            *stats.errors.entry(status).or_default() += 1;
            if !ctx.reported.swap(true, Ordering::Relaxed) {
                ctx.progress
                    .suspend(|| eprintln!("strata-loadgen: first failed request: {message}"));
            }
            stats.first_error.get_or_insert(message);
        }
        ctx.progress.inc(1);
    }
    stats
}

/// Pushes the whole workload and measures it.
pub fn run(workload: &Workload, opts: &WriteOptions) -> Result<WriteSummary, Error> {
    workload.validate()?;
    opts.validate()?;
    let spec = &workload.fleet;
    let senders = opts.concurrency.min(workload.units());
    let plan = plan(workload, senders);
    let total = total_requests(workload, &plan, opts.batch);
    let clients = (0..senders)
        .map(|_| Client::new(opts.timeout, opts.tenant_header.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;

    let progress = if opts.progress {
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} requests ({per_sec}, eta {eta})",
        )
        .map_err(|e| Error::Invalid(format!("progress template: {e}")))?
        .progress_chars("=> ");
        ProgressBar::new(total).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let encoded = AtomicU64::new(0);
    let reported = AtomicBool::new(false);

    let ctx = SendCtx {
        url: &opts.url,
        rate: opts.rate,
        senders,
        progress: &progress,
        reported: &reported,
    };
    let ctx = &ctx;
    let encode_start = Instant::now();
    let (stats, preencoded, duration, server) = thread::scope(|scope| {
        let (queues, receivers): (Vec<_>, Vec<_>) =
            (0..senders).map(|_| mpsc::sync_channel(opts.queue)).unzip();
        let (ready_tx, ready_rx) = mpsc::channel();
        // The encoder owns the queues: when it returns they close and the senders finish.
        let producer = scope.spawn(|| {
            let queues = queues;
            let (plan, batch, rounds) = (&plan, opts.batch, spec.rounds);
            match &workload.profile {
                Profile::K8s(k) => produce(
                    PodFleet::new(spec, k),
                    rounds,
                    plan,
                    batch,
                    &queues,
                    ready_tx,
                    &encoded,
                ),
                Profile::Node | Profile::Tenants => produce(
                    HostFleet::new(spec),
                    rounds,
                    plan,
                    batch,
                    &queues,
                    ready_tx,
                    &encoded,
                ),
            }
        });
        // Returns early with an error when the producer fails; its join below reports it.
        let _ = ready_rx.recv();
        let ready = encoded.load(Ordering::Relaxed);
        if opts.progress {
            progress.suspend(|| {
                eprintln!(
                    "strata-loadgen: encoded {ready} of {total} requests in {:.2?}{}",
                    encode_start.elapsed(),
                    if ready == total {
                        ""
                    } else {
                        "; encoding the rest while sending"
                    }
                );
            });
        }
        let before = opts.server_pid.map(usage::sample).transpose()?;
        let t0 = Instant::now();
        let handles: Vec<_> = receivers
            .into_iter()
            .zip(&clients)
            .enumerate()
            .map(|(w, (rx, client))| scope.spawn(move || send_loop(w as u32, t0, &rx, client, ctx)))
            .collect();
        let stats: Vec<_> = handles
            .into_iter()
            .map(thread::ScopedJoinHandle::join)
            .collect();
        let duration = t0.elapsed();
        let server = match (opts.server_pid, before) {
            (Some(pid), Some(before)) => {
                // Not a shard thread: let the server finish deferred work before reading it.
                #[allow(clippy::disallowed_methods)]
                thread::sleep(opts.settle);
                Some((pid, before, usage::sample(pid)?))
            }
            _ => None,
        };
        producer.join().map_err(|_| Error::Panicked("encoder"))??;
        let stats = stats
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Panicked("sender"))?;
        Ok::<_, Error>((stats, ready == total, duration, server))
    })?;
    progress.finish_and_clear();
    Ok(summarize(
        workload,
        opts,
        senders,
        stats,
        (preencoded, duration),
        server,
    ))
}

fn summarize(
    workload: &Workload,
    opts: &WriteOptions,
    senders: u32,
    stats: Vec<SenderStats>,
    (preencoded, duration): (bool, Duration),
    server: Option<(u32, ProcSample, ProcSample)>,
) -> WriteSummary {
    let mut hist = report::latency_histogram();
    let mut errors = BTreeMap::new();
    let (mut requests, mut failed, mut samples, mut samples_ok, mut bytes) = (0, 0, 0, 0, 0);
    let mut first_error = None;
    for s in stats {
        // Same bounds on both sides: adding cannot fail.
        let _ = hist.add(&s.hist);
        requests += s.requests;
        failed += s.failed;
        samples += s.samples;
        samples_ok += s.samples_ok;
        bytes += s.bytes;
        for (status, n) in s.errors {
            *errors.entry(status).or_default() += n;
        }
        if first_error.is_none() {
            first_error = s.first_error;
        }
    }
    let secs = duration.as_secs_f64().max(1e-9);
    let spec = &workload.fleet;
    let mut active_series_by_tenant = BTreeMap::new();
    for tenant in 1..=spec.tenants {
        let series = workload.units_of(tenant).len() as u64 * workload.series_per_unit() as u64;
        active_series_by_tenant.insert(tenant_id(tenant), series);
    }
    WriteSummary {
        tool: crate::http::USER_AGENT.to_owned(),
        params: WriteParams {
            url: opts.url.clone(),
            workload: *workload,
            start: report::rfc3339_ms(spec.start_ms),
            interval: report::interval_text(spec.interval_ms),
            concurrency: senders,
            batch: opts.batch,
            rate: opts.rate,
            tenant_header: opts.tenant_header.clone(),
        },
        requests,
        requests_failed: failed,
        series: workload.series_created(),
        active_series: workload.active_series(),
        active_series_by_tenant,
        stale_markers: workload.stale_samples(),
        samples,
        samples_ok,
        bytes,
        errors,
        first_error,
        preencoded,
        duration_s: duration.as_secs_f64(),
        requests_per_s: requests as f64 / secs,
        samples_per_s: samples_ok as f64 / secs,
        latency_us: LatencyUs::from_histogram(&hist),
        server: server.map(|(pid, before, after)| {
            let settle_s = opts.settle.as_secs_f64();
            let series = workload.series_created();
            ServerUsage::new(pid, before, after, samples_ok, series, settle_s)
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use strata_net::remote_write::proto::WriteRequest;

    use super::*;
    use crate::fleet::{FleetSpec, K8sSpec};

    fn spec(hosts: u32, tenants: u32) -> FleetSpec {
        FleetSpec {
            hosts,
            tenants,
            rounds: 3,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 1,
        }
    }

    fn k8s(stale_markers: bool) -> Profile {
        Profile::K8s(K8sSpec {
            pods_per_host: 3,
            churn_rounds: 2,
            churn_fraction: 0.3,
            stale_markers,
        })
    }

    /// Every request of `w`, by sender, in send order.
    fn encode_all(w: &Workload, senders: u32, batch: u32) -> (Vec<Vec<Job>>, u64) {
        let plan = plan(w, senders);
        let (txs, rxs): (Vec<_>, Vec<_>) =
            (0..senders).map(|_| mpsc::sync_channel(100_000)).unzip();
        let (ready, _ready_rx) = mpsc::channel();
        let encoded = AtomicU64::new(0);
        let rounds = w.fleet.rounds;
        if let Profile::K8s(k) = &w.profile {
            let data = PodFleet::new(&w.fleet, k);
            produce(data, rounds, &plan, batch, &txs, ready, &encoded)
        } else {
            let data = HostFleet::new(&w.fleet);
            produce(data, rounds, &plan, batch, &txs, ready, &encoded)
        }
        .expect("produce");
        drop(txs);
        let jobs = rxs.iter().map(|rx| rx.try_iter().collect()).collect();
        (jobs, total_requests(w, &plan, batch))
    }

    fn decode(job: &Job) -> WriteRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&job.body)
            .expect("snappy");
        <WriteRequest as prost::Message>::decode(raw.as_slice()).expect("decode")
    }

    #[test]
    fn plan_gives_every_unit_to_one_sender_and_one_tenant() {
        for profile in [Profile::Node, Profile::Tenants, k8s(false)] {
            let w = Workload {
                fleet: spec(23, 3),
                profile,
            };
            let plan = plan(&w, 4);
            let mut seen = HashSet::new();
            for (s, lanes) in plan.iter().enumerate() {
                assert!(lanes.windows(2).all(|l| l[0].tenant < l[1].tenant));
                for lane in lanes {
                    for &u in &lane.units {
                        assert_eq!(u % 4, s as u32);
                        assert_eq!(w.tenant_of(u), lane.tenant);
                        assert!(seen.insert(u));
                    }
                }
            }
            assert_eq!(seen.len(), w.units() as usize);
        }
    }

    #[test]
    fn lane_requests_round_up() {
        assert_eq!(lane_requests(300, 250), 2);
        assert_eq!(lane_requests(300, 100), 3);
        assert_eq!(lane_requests(0, 100), 0);
    }

    /// FNV-1a over every request (sender, tenant, series, body) of the `node` profile.
    fn node_digest(hosts: u32, tenants: u32, batch: u32, senders: u32) -> (u64, u64) {
        let fleet = FleetSpec {
            rounds: 4,
            seed: 5,
            ..spec(hosts, tenants)
        };
        let (jobs, _) = encode_all(&Workload::node(fleet), senders, batch);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        let mut n = 0;
        for (s, jobs) in jobs.iter().enumerate() {
            for job in jobs {
                eat(&(s as u32).to_le_bytes());
                eat(&job.tenant.to_le_bytes());
                eat(&job.series.to_le_bytes());
                eat(&job.body);
                n += 1;
            }
        }
        (h, n)
    }

    #[test]
    fn node_profile_sends_the_same_bytes_as_before_profiles() {
        // Digests taken from the writer before profiles were added.
        assert_eq!(node_digest(7, 3, 70, 3), (0x1523_a80b_12fc_bed7, 44));
        assert_eq!(node_digest(5, 1, 2000, 2), (0xe295_356b_0a50_e261, 8));
        assert_eq!(node_digest(13, 2, 333, 4), (0xb4b6_ef9d_7932_9693, 20));
    }

    #[test]
    fn produce_emits_each_series_in_timestamp_order() {
        let fleet = FleetSpec {
            rounds: 7,
            ..spec(5, 2)
        };
        for profile in [Profile::Node, Profile::Tenants, k8s(false), k8s(true)] {
            let w = Workload { fleet, profile };
            w.validate().expect("valid");
            let (jobs, total) = encode_all(&w, 2, 70);
            assert_eq!(jobs.iter().map(Vec::len).sum::<usize>() as u64, total);
            let mut last = HashMap::new();
            let mut samples = 0;
            for job in jobs.iter().flatten() {
                assert!(job.series <= 70);
                let req = decode(job);
                assert_eq!(req.timeseries.len(), job.series as usize);
                for ts in req.timeseries {
                    let t = ts.samples[0].timestamp;
                    if let Some(prev) = last.insert(ts.labels.clone(), t) {
                        assert!(prev < t, "{profile:?}: {:?} goes back", ts.labels);
                    }
                    samples += 1;
                }
            }
            assert_eq!(samples, w.samples(), "{profile:?}");
            assert_eq!(last.len() as u64, w.series_created(), "{profile:?}");
        }
    }

    #[test]
    fn requests_hold_one_tenant() {
        let w = Workload {
            fleet: spec(9, 3),
            profile: Profile::Tenants,
        };
        let (jobs, _) = encode_all(&w, 2, 150);
        for job in jobs.iter().flatten() {
            for ts in decode(job).timeseries {
                let instance = ts.labels.iter().find(|l| l.name == "instance").expect("i");
                let host: u32 = instance.value["host-".len()..instance.value.len() - 5]
                    .parse()
                    .expect("host");
                assert_eq!(w.tenant_of(host), job.tenant);
            }
        }
    }
}
