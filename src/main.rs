//! The strata binary: reads the configuration, starts one shard per core and serves until
//! SIGINT or SIGTERM.

mod config;

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use strata_engine::blocks::BlockCatalog;
use strata_engine::bucket::Bucket;
use strata_engine::compact::{self, Compactor};
use strata_engine::instance::Instance;
use strata_engine::limits::TenantRegistry;
use strata_engine::metrics::Metrics;
use strata_engine::rt::{Driver, Mesh, Runtime, RuntimeOptions};
use strata_engine::shard::{Shard, ShardMsg, head_spill, serve_inbox, wal};
use strata_net::api::upload::{DEFAULT_MAX_FILE_BYTES, Uploads};
use strata_net::api::{ApiConfig, App};
use strata_storage::head::HeadOptions;
use tracing::{error, info, warn};

use crate::config::{Config, Target};

/// Multi-tenant, horizontally scalable long-term storage for Prometheus, compatible with Cortex.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (YAML, Cortex's key names). Without it, the embedded defaults.
    #[arg(long = "config.file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Roles to run (overrides `target` in the file).
    #[arg(long, value_enum)]
    target: Option<Target>,
    /// Port to listen on (overrides `server.http_listen_port`; 0 picks a free port).
    #[arg(long = "server.http-listen-port", value_name = "PORT")]
    http_listen_port: Option<u16>,
    /// I/O driver: `auto` (io_uring, or epoll where io_uring is unavailable) or `polling`
    /// (always epoll).
    #[arg(
        long = "runtime.io-driver",
        value_name = "DRIVER",
        default_value = "auto"
    )]
    io_driver: IoDriver,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum IoDriver {
    Auto,
    Polling,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut cfg = match &cli.config_file {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("strata: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(t) = cli.target {
        cfg.target = t;
    }
    if let Some(p) = cli.http_listen_port {
        cfg.server.http_listen_port = p;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.server.log_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(&cfg, cli.io_driver) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "strata failed");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: &Config, io_driver: IoDriver) -> Result<(), String> {
    let Target::All = cfg.target;
    let dir = &cfg.blocks_storage.tsdb.dir;
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create blocks_storage.tsdb.dir {}: {e}",
            dir.display()
        )
    })?;
    let addr = cfg.server.listen_addr()?;
    // Block SIGINT and SIGTERM before the shard threads start, so that they inherit the mask and
    // only this thread receives them (in sigwait below).
    let signals = block_termination_signals();

    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(TenantRegistry::new(cfg.limits.clone(), metrics.clone()));
    let ready = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel::<Result<Mesh<ShardMsg>, String>>();
    let tsdb = Arc::new(cfg.blocks_storage.tsdb.clone());
    let bucket = Bucket::new(&cfg.blocks_storage.bucket()).map_err(|e| e.to_string())?;
    // Block upload stages files under the TSDB directory; one state for every shard.
    let uploads = Uploads::new(bucket.clone(), &tsdb.dir, DEFAULT_MAX_FILE_BYTES);
    // Where each tenant's blocks on disk end: replay and pushes take nothing before it.
    let blocks_end = compact::blocks_end(&tsdb.dir);
    let compacting = Arc::new(AtomicBool::new(false));
    let bucket_store = cfg.blocks_storage.bucket_store.clone();
    let head_options = HeadOptions {
        // Chunks never straddle a block range, so a cut takes whole chunks.
        chunk_range_ms: tsdb.block_range_ms(),
        ..HeadOptions::default()
    };
    let api = ApiConfig {
        auth_enabled: cfg.auth_enabled,
        max_recv_msg_size: cfg.distributor.max_recv_msg_size,
        name_validation_scheme: cfg.name_validation_scheme,
        engine: cfg.querier.engine_options(),
    };
    let scheme = cfg.name_validation_scheme;
    let opts = RuntimeOptions {
        shards: cfg.ingester.shards,
        driver: match io_driver {
            IoDriver::Auto => Driver::Auto,
            IoDriver::Polling => Driver::Polling,
        },
        ..RuntimeOptions::default()
    };
    let shard_ready = ready.clone();
    let drain = Arc::new(strata_net::api::drain::Drain::default());
    let shard_drain = drain.clone();
    let rt = Runtime::start::<ShardMsg, _>(&opts, addr, move |env| {
        let mut shard = Shard::new(env.mesh.id(), head_options.clone(), scheme);
        shard.set_min_valid(blocks_end.clone());
        let shard = Rc::new(RefCell::new(shard));
        let instance = Instance::new(
            shard.clone(),
            env.mesh.clone(),
            registry.clone(),
            metrics.clone(),
        );
        let compactor = Compactor::new(
            env.mesh.clone(),
            tsdb.clone(),
            Some(bucket.clone()),
            compacting.clone(),
        );
        // Queries read the blocks on local disk and in the bucket too.
        let catalog = BlockCatalog::new(Some(&tsdb.dir), Some(bucket.clone()), &bucket_store);
        let mut app = App::new(instance, api.clone(), shard_ready.clone());
        app.drain = shard_drain.clone();
        app.compactor = Some(compactor.clone());
        app.uploads = Some(uploads.clone());
        let started = started_tx.clone();
        let tsdb = tsdb.clone();
        let registry = registry.clone();
        let metrics = metrics.clone();
        Box::pin(async move {
            match catalog {
                Ok(c) => {
                    let c = Rc::new(c);
                    shard.borrow_mut().set_blocks(c.clone(), env.mesh.shards());
                    app.blocks = c;
                }
                Err(e) => {
                    let _ = started.send(Err(format!("cannot read blocks: {e}")));
                    return;
                }
            }
            let app = Rc::new(app);
            // Full pages of head chunks go to disk, mapped (tsdb.head_chunks_on_disk), from the
            // replay on.
            head_spill::start(&shard, &tsdb);
            // Replay this shard's WAL before serving anything.
            let wake = match wal::open(&shard, &tsdb, &registry).await {
                Ok(wake) => wake,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            info!(shard = env.mesh.id(), driver = ?env.driver, "shard started");
            compio::runtime::spawn(wal::commit_loop(
                shard.clone(),
                wake,
                tsdb.wal_group_commit_window,
                metrics,
            ))
            .detach();
            compio::runtime::spawn(serve_inbox(shard, env.inbox)).detach();
            if env.mesh.id() == 0 {
                // One shard decides and coordinates the cuts of every tenant's head.
                compio::runtime::spawn(compactor.run()).detach();
            }
            let _ = started.send(Ok(env.mesh.clone()));
            strata_net::http::server::serve(env.listener, app).await;
        })
    })
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let mut mesh = None;
    for _ in 0..rt.shards() {
        mesh = Some(
            started_rx
                .recv()
                .map_err(|_| "a shard stopped while starting".to_string())??,
        );
    }
    let mesh = mesh.ok_or("no shard started")?;
    ready.store(true, Ordering::Release);
    info!(addr = %rt.addr(), target = ?cfg.target, "listening");
    let sig = wait_for_signal(&signals);
    info!(signal = sig, "shutting down");
    ready.store(false, Ordering::Release);
    // New pushes get 503; those in flight are answered (after their fsync) before the WAL sync.
    drain.start();
    let left = drain.wait_idle(Duration::from_secs(30));
    if left > 0 {
        warn!(pushes = left, "shutting down with pushes still in flight");
    }
    shutdown(&mesh);
    Ok(())
}

/// Makes every shard's WAL durable before the process exits (with `wal_fsync: group` every
/// acknowledged push already is; with `relaxed` this is what keeps them).
fn shutdown(mesh: &Mesh<ShardMsg>) {
    let mut pending = Vec::new();
    for shard in 0..mesh.shards() {
        let (tx, rx) = mpsc::channel();
        if mesh.send_blocking(shard, ShardMsg::Shutdown(tx)).is_ok() {
            pending.push((shard, rx));
        }
    }
    for (shard, rx) in pending {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => info!(shard, "wal synced"),
            Ok(Err(e)) => error!(shard, error = %e, "wal sync failed at shutdown"),
            Err(_) => error!(shard, "wal sync did not finish at shutdown"),
        }
    }
}

fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is an initialised signal set; sigwait writes the signal number to `sig`.
    unsafe {
        libc::sigwait(set, &raw mut sig);
    }
    sig
}
