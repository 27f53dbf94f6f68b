//! `strata-loadgen`: push a synthetic workload (`--profile node|k8s|tenants`) over Prometheus
//! remote write (`write`), read it back over remote read and check every sample (`verify`), or
//! print it (`show`); time queries (`query`, `query-mix`).
//!
//! Exit status: 0 on success, 1 when requests failed or data differs, 2 on bad usage or a run
//! that could not start.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use strata_loadgen::Error;
use strata_loadgen::fleet::k8s::{self, Pod};
use strata_loadgen::fleet::{FleetSpec, Host, Profile, ProfileArgs, Workload, tenant_id};
use strata_loadgen::report;
use strata_loadgen::verify::{self, VerifyOptions, series_text};
use strata_loadgen::write::{self, WriteOptions};

#[derive(Parser, Debug)]
#[command(name = "strata-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Push the fleet over remote write and measure throughput and latency.
    Write(WriteArgs),
    /// Read the fleet back over remote read and check every series and sample.
    Verify(VerifyArgs),
    /// Print the samples of one host, in the text exposition format.
    Show(ShowArgs),
    /// Write hours of the fleet's history, streamed round by round (old timestamps, in order).
    Backfill(strata_loadgen::backfill::BackfillArgs),
    /// Time PromQL queries against Prometheus-API servers, after checking their answers agree.
    Query(strata_loadgen::query::QueryArgs),
    /// Upload block directories through a server's block upload API (start, files, finish).
    Upload(strata_loadgen::upload::UploadArgs),
    /// Run a weighted mix of instant and range queries at a fixed rate (open loop).
    QueryMix(strata_loadgen::mix::MixArgs),
}

/// The parameters that determine the data.
#[derive(Args, Debug)]
struct FleetArgs {
    /// Hosts in the fleet, 100 series each (k8s: nodes, each running --pods-per-host pods)
    /// [default: 100]
    #[arg(long)]
    hosts: Option<u32>,
    /// Tenants `tenant-1`..`tenant-N`; hosts (k8s: pod slots) are dealt round-robin, except with
    /// `--profile tenants` [default: 1; 10 with --profile tenants]
    #[arg(long)]
    tenants: Option<u32>,
    /// Rounds, i.e. samples per series [default: 10]
    #[arg(long)]
    rounds: Option<u32>,
    /// Scrape interval between rounds, in the data's timestamps [default: 15s]
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Timestamp of round 0: milliseconds since the epoch or RFC 3339 [write default: rounds *
    /// interval before now, aligned to the interval]
    #[arg(long, value_parser = parse_start)]
    start: Option<i64>,
    /// Seed of every generated value [default: 1]
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    profile: ProfileArgs,
}

impl FleetArgs {
    /// Flags over `base` (a summary's parameters) over defaults. Without `--start` and a base,
    /// `now_ms` decides the start when given, else it is an error.
    fn resolve(&self, base: Option<Workload>, now_ms: Option<i64>) -> Result<Workload, Error> {
        let profile = self.profile.resolve(base.as_ref().map(|b| &b.profile))?;
        let default_tenants = profile.kind().default_tenants();
        let base = base.map(|b| b.fleet);
        let interval_ms = match self.interval {
            Some(d) => i64::try_from(d.as_millis())
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| Error::Invalid(format!("--interval {d:?}: out of range")))?,
            None => base.map_or(15_000, |b| b.interval_ms),
        };
        let rounds = self.rounds.or(base.map(|b| b.rounds)).unwrap_or(10);
        let start_ms = match (self.start, base, now_ms) {
            (Some(s), _, _) => s,
            (None, Some(b), _) => b.start_ms,
            (None, None, Some(now)) => FleetSpec::recent_start(now, rounds, interval_ms),
            (None, None, None) => {
                return Err(Error::Invalid(
                    "give --start (as printed by `write`) or --from-summary".into(),
                ));
            }
        };
        let spec = FleetSpec {
            hosts: self.hosts.or(base.map(|b| b.hosts)).unwrap_or(100),
            tenants: self
                .tenants
                .or(base.map(|b| b.tenants))
                .unwrap_or(default_tenants),
            rounds,
            interval_ms,
            start_ms,
            seed: self.seed.or(base.map(|b| b.seed)).unwrap_or(1),
        };
        let workload = Workload {
            fleet: spec,
            profile,
        };
        workload.validate()?;
        Ok(workload)
    }
}

fn parse_start(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("neither milliseconds nor RFC 3339: {e}"))?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "before 1970".to_owned())?
        .as_millis();
    i64::try_from(ms).map_err(|_| "too far in the future".to_owned())
}

/// How to reach the server.
#[derive(Args, Debug)]
struct ClientArgs {
    /// Parallel connections
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Header carrying the tenant id
    #[arg(long, default_value = "X-Scope-OrgID")]
    tenant_header: String,
    /// Send no tenant header (single-tenant servers)
    #[arg(long)]
    no_tenant: bool,
    /// Per-request timeout
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write the summary as JSON to this file
    #[arg(long)]
    summary: Option<PathBuf>,
    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
}

impl ClientArgs {
    fn tenant_header(&self) -> Option<String> {
        (!self.no_tenant).then(|| self.tenant_header.clone())
    }
}

#[derive(Args, Debug)]
struct WriteArgs {
    /// Remote-write endpoint
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    url: String,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    client: ClientArgs,
    /// Series per request (like Prometheus' max samples per send)
    #[arg(long, default_value_t = 2000)]
    batch: u32,
    /// Open loop: target requests per second, latency measured from each request's intended
    /// send time. Without it, closed loop as fast as the server answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Encoded requests queued ahead per sender (memory bound of pre-encoding)
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Measure this local server process over the load: CPU seconds and peak RSS (Linux /proc)
    #[arg(long)]
    server_pid: Option<u32>,
    /// With --server-pid: wait this long after the last response before the final reading, so
    /// deferred work (flushes) is counted
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    settle: Duration,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Remote-read endpoint
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/read")]
    read_url: String,
    /// Take the fleet parameters from a `write --summary` file (flags still override)
    #[arg(long)]
    from_summary: Option<PathBuf>,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    client: ClientArgs,
    /// Differences to print
    #[arg(long, default_value_t = 10)]
    max_diffs: usize,
}

#[derive(Args, Debug)]
struct ShowArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Host to print (k8s: every pod that ran on node N)
    #[arg(long, default_value_t = 0)]
    host: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn print_spec(workload: &Workload) {
    let spec = &workload.fleet;
    eprintln!(
        "strata-loadgen: {}, {} rounds every {}, start {} ({} ms), seed {}",
        workload.describe(),
        spec.rounds,
        report::interval_text(spec.interval_ms),
        report::rfc3339_ms(spec.start_ms),
        spec.start_ms,
        spec.seed
    );
}

fn run_write(args: &WriteArgs) -> Result<bool, Error> {
    let workload = args.fleet.resolve(None, Some(now_ms()))?;
    print_spec(&workload);
    let opts = WriteOptions {
        url: args.url.clone(),
        concurrency: args.client.concurrency,
        batch: args.batch,
        rate: args.rate,
        tenant_header: args.client.tenant_header(),
        timeout: args.client.timeout,
        queue: args.queue,
        progress: !args.client.quiet,
        server_pid: args.server_pid,
        settle: args.settle,
    };
    let summary = write::run(&workload, &opts)?;
    print!("{}", summary.table());
    if let Some(path) = &args.client.summary {
        report::save_json(path, &summary)?;
    }
    Ok(summary.requests_failed == 0 && summary.samples_ok == workload.samples())
}

fn run_verify(args: &VerifyArgs) -> Result<bool, Error> {
    let base = args
        .from_summary
        .as_deref()
        .map(report::load_workload)
        .transpose()?;
    let workload = args.fleet.resolve(base, None)?;
    print_spec(&workload);
    let opts = VerifyOptions {
        read_url: args.read_url.clone(),
        concurrency: args.client.concurrency,
        tenant_header: args.client.tenant_header(),
        timeout: args.client.timeout,
        max_diffs: args.max_diffs,
        progress: !args.client.quiet,
    };
    let summary = verify::run(&workload, &opts)?;
    print!("{}", summary.table());
    if !summary.differences.is_empty() {
        println!("first differences:");
        for d in &summary.differences {
            println!("  {d}");
        }
    }
    if let Some(path) = &args.client.summary {
        report::save_json(path, &summary)?;
    }
    Ok(summary.ok)
}

fn run_show(args: &ShowArgs) -> Result<bool, Error> {
    let workload = args.fleet.resolve(None, Some(now_ms()))?;
    if args.host >= workload.fleet.hosts {
        return Err(Error::Invalid(format!(
            "--host {} is not below --hosts {}",
            args.host, workload.fleet.hosts
        )));
    }
    match show(
        &workload,
        args.host,
        &mut BufWriter::new(io::stdout().lock()),
    ) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::File {
            path: "stdout".into(),
            source: e,
        }),
        _ => Ok(true),
    }
}

fn show(workload: &Workload, index: u32, out: &mut impl Write) -> io::Result<()> {
    let spec = &workload.fleet;
    if let Profile::K8s(k) = &workload.profile {
        return show_node(spec, k, index, out);
    }
    let tenant = tenant_id(workload.tenant_of(index));
    writeln!(out, "# host-{index} of {tenant}")?;
    let mut host = Host::new(spec, index);
    for round in 0..spec.rounds {
        if round > 0 {
            host.advance();
        }
        let ts = host.timestamp();
        for s in host.series() {
            writeln!(out, "{} {} {ts}", series_text(&s.labels), s.value(ts))?;
        }
    }
    out.flush()
}

/// Every sample of every pod that ran on `node-{index}`, pod by pod.
fn show_node(
    spec: &FleetSpec,
    k: &strata_loadgen::fleet::K8sSpec,
    index: u32,
    out: &mut impl Write,
) -> io::Result<()> {
    let workload = Workload {
        fleet: *spec,
        profile: Profile::K8s(*k),
    };
    for life in k8s::lives(spec, k) {
        let pod = Pod::new(spec, life.id, life.slot, life.born);
        if pod.node() != index {
            continue;
        }
        let tenant = tenant_id(workload.tenant_of(life.slot));
        let life_text = match life.died {
            Some(r) if k.stale_markers => format!("rounds {}..{r}, stale at round {r}", life.born),
            Some(r) => format!("rounds {}..{r}, gone at round {r}", life.born),
            None => format!("rounds {}..{}", life.born, spec.rounds),
        };
        writeln!(
            out,
            "# pod {}/{} on node-{index} of {tenant}, slot {}, {life_text}",
            pod.namespace(),
            pod.name(),
            life.slot,
        )?;
        for (labels, samples) in Pod::expected(spec, k, &life) {
            for s in samples {
                writeln!(out, "{} {} {}", series_text(&labels), s.value, s.timestamp)?;
            }
        }
    }
    out.flush()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Write(args) => run_write(args),
        Command::Verify(args) => run_verify(args),
        Command::Show(args) => run_show(args),
        Command::Backfill(args) => strata_loadgen::backfill::main(args),
        Command::Query(args) => strata_loadgen::query::main(args),
        Command::Upload(args) => strata_loadgen::upload::main(args),
        Command::QueryMix(args) => strata_loadgen::mix::main(args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("strata-loadgen: error: {e}");
            ExitCode::from(2)
        }
    }
}
