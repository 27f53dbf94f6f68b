//! The write mode: encode the fleet's samples into remote-write requests and push them with
//! `concurrency` senders, closed loop (as fast as the server answers) or open loop (`rate`).
//!
//! Ordering: host `h` belongs to sender `h % concurrency`, and a sender sends its requests one at
//! a time, round by round, so every series gets its samples in timestamp order no matter how many
//! senders run. A request holds series of a single tenant.
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
use crate::fleet::{FleetSpec, Host, SERIES_PER_HOST, tenant_id};
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

/// The hosts of one tenant that one sender owns.
#[derive(Clone, Debug)]
struct Lane {
    tenant: u32,
    hosts: Vec<u32>,
}

/// Lanes of each sender.
fn plan(spec: &FleetSpec, senders: u32) -> Vec<Vec<Lane>> {
    (0..senders)
        .map(|w| {
            (1..=spec.tenants)
                .map(|tenant| Lane {
                    tenant,
                    hosts: spec.hosts_of(tenant).filter(|h| h % senders == w).collect(),
                })
                .filter(|lane| !lane.hosts.is_empty())
                .collect()
        })
        .collect()
}

/// Requests per round of a sender with `lanes`.
fn requests_per_round(lanes: &[Lane], batch: u32) -> u64 {
    lanes
        .iter()
        .map(|l| (l.hosts.len() * SERIES_PER_HOST).div_ceil(batch as usize) as u64)
        .sum()
}

/// One encoded request.
struct Job {
    tenant: u32,
    series: u32,
    body: Vec<u8>,
}

/// Encodes every request in send order and hands each to its sender. Signals `ready` once the
/// queues are full or everything is encoded.
fn produce(
    spec: &FleetSpec,
    plan: &[Vec<Lane>],
    batch: u32,
    queues: &[SyncSender<Job>],
    ready: mpsc::Sender<()>,
    encoded: &AtomicU64,
) -> Result<(), Error> {
    let mut hosts: Vec<Host> = (0..spec.hosts).map(|h| Host::new(spec, h)).collect();
    let mut ready = Some(ready);
    let mut enc = WriteEncoder::new();
    for round in 0..spec.rounds {
        if round > 0 {
            hosts.iter_mut().for_each(Host::advance);
        }
        for (lanes, queue) in plan.iter().zip(queues) {
            for lane in lanes {
                for &h in &lane.hosts {
                    let host = &hosts[h as usize];
                    let ts = host.timestamp();
                    for s in host.series() {
                        enc.push(&s.labels, ts, s.value(ts));
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

/// Pushes the whole fleet and measures it.
pub fn run(spec: &FleetSpec, opts: &WriteOptions) -> Result<WriteSummary, Error> {
    spec.validate()?;
    opts.validate()?;
    let senders = opts.concurrency.min(spec.hosts);
    let plan = plan(spec, senders);
    let total: u64 = plan
        .iter()
        .map(|lanes| requests_per_round(lanes, opts.batch))
        .sum::<u64>()
        * u64::from(spec.rounds);
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
            produce(spec, &plan, opts.batch, &queues, ready_tx, &encoded)
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
        spec,
        opts,
        senders,
        stats,
        (preencoded, duration),
        server,
    ))
}

fn summarize(
    spec: &FleetSpec,
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
    WriteSummary {
        tool: crate::http::USER_AGENT.to_owned(),
        params: WriteParams {
            url: opts.url.clone(),
            fleet: *spec,
            start: report::rfc3339_ms(spec.start_ms),
            interval: report::interval_text(spec.interval_ms),
            concurrency: senders,
            batch: opts.batch,
            rate: opts.rate,
            tenant_header: opts.tenant_header.clone(),
        },
        requests,
        requests_failed: failed,
        series: spec.series(),
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
            ServerUsage::new(pid, before, after, samples_ok, spec.series(), settle_s)
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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

    #[test]
    fn plan_gives_every_host_to_one_sender_and_one_tenant() {
        let s = spec(23, 3);
        let plan = plan(&s, 4);
        let mut seen = HashSet::new();
        for (w, lanes) in plan.iter().enumerate() {
            for lane in lanes {
                for &h in &lane.hosts {
                    assert_eq!(h % 4, w as u32);
                    assert_eq!(s.tenant_of(h), lane.tenant);
                    assert!(seen.insert(h));
                }
            }
        }
        assert_eq!(seen.len(), 23);
    }

    #[test]
    fn requests_per_round_rounds_up_per_lane() {
        let lanes = vec![
            Lane {
                tenant: 1,
                hosts: vec![0, 2, 4],
            },
            Lane {
                tenant: 2,
                hosts: vec![1],
            },
        ];
        assert_eq!(requests_per_round(&lanes, 250), 2 + 1);
        assert_eq!(requests_per_round(&lanes, 100), 3 + 1);
    }

    #[test]
    fn produce_emits_each_series_in_timestamp_order() {
        let s = spec(5, 2);
        let plan = plan(&s, 2);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| mpsc::sync_channel(1000)).unzip();
        let (ready, _ready_rx) = mpsc::channel();
        let encoded = AtomicU64::new(0);
        produce(&s, &plan, 70, &txs, ready, &encoded).expect("produce");
        drop(txs);
        let expected: u64 = plan.iter().map(|l| requests_per_round(l, 70)).sum::<u64>() * 3;
        assert_eq!(encoded.load(Ordering::Relaxed), expected);
        let mut last = std::collections::HashMap::new();
        let mut samples = 0;
        for rx in rxs {
            for job in rx.try_iter() {
                assert!(job.series <= 70);
                let raw = snap::raw::Decoder::new()
                    .decompress_vec(&job.body)
                    .expect("snappy");
                let req =
                    <strata_net::remote_write::proto::WriteRequest as prost::Message>::decode(
                        raw.as_slice(),
                    )
                    .expect("decode");
                assert_eq!(req.timeseries.len(), job.series as usize);
                for ts in req.timeseries {
                    let instance = &ts.labels.iter().find(|l| l.name == "instance").expect("i");
                    let host: u32 = instance.value["host-".len()..instance.value.len() - 5]
                        .parse()
                        .expect("host");
                    assert_eq!(s.tenant_of(host), job.tenant);
                    let t = ts.samples[0].timestamp;
                    if let Some(prev) = last.insert(ts.labels.clone(), t) {
                        assert!(prev < t);
                    }
                    samples += 1;
                }
            }
        }
        assert_eq!(samples, s.samples());
    }
}
