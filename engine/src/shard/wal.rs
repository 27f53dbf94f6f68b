//! A shard's write-ahead log: what a push logs, the group commit that acknowledges it, and the
//! replay that rebuilds the heads at start-up.
//!
//! Every shard owns one WAL (`<tsdb dir>/shard-<n>/wal/`) for all its tenants. A push appends its
//! new series and its appended samples to the WAL's buffer (no I/O) and, with `wal_fsync: group`,
//! waits until the commit task has written and fsynced a buffer covering them: the first push
//! after an fsync wakes the task, which waits `wal_group_commit_window` for others to join, then
//! writes and fsyncs once for all of them. With `relaxed` the push is acknowledged at once and
//! the same task makes it durable a window later (Prometheus's guarantee).
//!
//! An I/O error fails the WAL for good (a retried fsync may report success over lost pages):
//! every waiting and later push on the shard answers 500 until the process restarts and replays.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use hashbrown::HashMap;
use strata_storage::head::SeriesRef;
use strata_storage::labels::LabelHasher;
use strata_storage::wal::fs::StdFs;
use strata_storage::wal::{Record, Wal, WalOptions, repair, replay};
use tracing::{error, info, warn};

use super::{Shard, ShardRef};
use crate::config::{TsdbConfig, WalFsync};
use crate::limits::TenantRegistry;
use crate::tenant::TenantId;
use crate::wal_fs::CompioFs;

/// A shard's WAL and the pushes waiting for it.
pub struct ShardWal {
    wal: Wal<CompioFs>,
    mode: WalFsync,
    /// Pushes waiting for the fsync that covers their sequence number, oldest first.
    waiters: VecDeque<(u64, oneshot::Sender<bool>)>,
    /// Wakes the commit task (capacity 1: one pending wake-up is enough).
    wake: async_channel::Sender<()>,
    failed: Option<String>,
    /// Scratch of a push: refs of its new series, and its appended samples.
    pub(super) new_series: Vec<SeriesRef>,
    pub(super) samples: Vec<(SeriesRef, i64, f64)>,
}

impl ShardWal {
    /// The WAL's id for tenant `name` (declared in the log once per segment).
    pub(super) fn tenant(&mut self, name: &str) -> u32 {
        self.wal.tenant(name)
    }
}

/// Where shard `id` keeps its WAL.
pub fn wal_dir(tsdb_dir: &Path, shard: usize) -> PathBuf {
    tsdb_dir.join(format!("shard-{shard}")).join("wal")
}

impl Shard {
    /// Logs the scratch of the push just appended for the tenant with WAL id `tenant` (series
    /// first, so a replay knows every series before its samples) and returns the sequence
    /// number a waiter needs, or `None` when nothing was logged.
    pub(super) fn log_push(&mut self, tenant_wal_id: u32, head_of: &TenantId) -> Option<u64> {
        let w = self.wal.as_mut()?;
        let th = self.tenants.get(head_of)?;
        let head = &th.head;
        let mut seq = None;
        if !w.new_series.is_empty() {
            let new_series = std::mem::take(&mut w.new_series);
            seq = Some(w.wal.log_series(tenant_wal_id, |enc| {
                for &r in &new_series {
                    let labels = head.labels(r);
                    enc.add(
                        r,
                        labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                    );
                }
            }));
            w.new_series = new_series;
            w.new_series.clear();
        }
        if !w.samples.is_empty() {
            let samples = std::mem::take(&mut w.samples);
            seq = Some(w.wal.log_samples(tenant_wal_id, |enc| {
                for &(r, t, v) in &samples {
                    enc.add(r, t, v);
                }
            }));
            w.samples = samples;
            w.samples.clear();
        }
        seq
    }

    /// What a push that logged up to `seq` waits on before it is acknowledged: `None` when it
    /// need not wait (no WAL, relaxed mode, nothing logged); the receiver gets `false` if the
    /// WAL failed. Wakes the commit task.
    pub fn durable_waiter(&mut self, seq: Option<u64>) -> Option<oneshot::Receiver<bool>> {
        let w = self.wal.as_mut()?;
        let seq = seq?;
        let _ = w.wake.try_send(());
        if w.mode == WalFsync::Relaxed {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if w.failed.is_some() {
            let _ = tx.send(false);
        } else {
            w.waiters.push_back((seq, tx));
        }
        Some(rx)
    }

    /// Whether the WAL failed, and why (pushes answer 500 with it).
    pub fn wal_failure(&self) -> Option<&str> {
        self.wal.as_ref()?.failed.as_deref()
    }

    fn wal_fail(&mut self, e: &io::Error) {
        let Some(w) = self.wal.as_mut() else { return };
        error!(shard = self.id, error = %e, "wal failed: pushes on this shard fail until restart");
        w.failed = Some(format!("wal failed on shard {}: {e}", self.id));
        for (_, tx) in w.waiters.drain(..) {
            let _ = tx.send(false);
        }
    }

    fn wal_acknowledge(&mut self, durable: u64) {
        let Some(w) = self.wal.as_mut() else { return };
        while w.waiters.front().is_some_and(|(seq, _)| *seq <= durable) {
            if let Some((_, tx)) = w.waiters.pop_front() {
                let _ = tx.send(true);
            }
        }
    }
}

/// Replays shard `shard`'s WAL into its heads (a torn tail is reported and cut off), then opens it
/// for appending. Returns the receiver the commit task waits on. Runs on the shard's thread at
/// start-up, before it serves anything (reads block: nothing else runs yet).
// The shard's borrow is held across the replay's awaits: at start-up no other task of the shard
// exists yet, and StdFs's futures complete without yielding.
#[allow(clippy::await_holding_refcell_ref)]
pub async fn open(
    shard: &ShardRef,
    cfg: &TsdbConfig,
    registry: &TenantRegistry,
) -> Result<async_channel::Receiver<()>, String> {
    let id = shard.borrow().id;
    let dir = wal_dir(&cfg.dir, id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let started = Instant::now();
    let stats = {
        let mut s = shard.borrow_mut();
        let mut replayer = Replayer::new(&mut s, registry);
        let res = replay(&StdFs, &dir, |rec| replayer.apply(rec)).await;
        let counts = (replayer.series, replayer.samples, replayer.skipped);
        match res {
            Ok(stats) => (stats, counts),
            Err(e) => {
                return Err(format!(
                    "wal {}: {e} (the log is damaged before its last segment; move the damaged \
                     segments away to start without them)",
                    dir.display()
                ));
            }
        }
    };
    let (stats, (series, samples, skipped)) = stats;
    if let Some(torn) = &stats.torn_tail {
        warn!(shard = id, %torn, "wal: torn tail cut off (records after the last complete one were never acknowledged)");
        repair(&StdFs, &dir, torn)
            .await
            .map_err(|e| format!("cannot repair wal {}: {e}", dir.display()))?;
    }
    info!(
        shard = id,
        files = stats.files,
        records = stats.records,
        series,
        samples,
        skipped,
        ms = started.elapsed().as_millis() as u64,
        "wal replayed"
    );
    let wal = Wal::open(
        CompioFs,
        &dir,
        WalOptions {
            segment_size: cfg.wal_segment_size_bytes,
        },
    )
    .await
    .map_err(|e| format!("cannot open wal {}: {e}", dir.display()))?;
    let (wake, rx) = async_channel::bounded(1);
    let mut s = shard.borrow_mut();
    s.wal = Some(ShardWal {
        wal,
        mode: cfg.wal_fsync,
        waiters: VecDeque::new(),
        wake,
        failed: None,
        new_series: Vec::new(),
        samples: Vec::new(),
    });
    // Tenants replayed before the WAL was open get their ids now.
    let names: Vec<TenantId> = s.tenants.keys().cloned().collect();
    for name in names {
        let wid = s.wal.as_mut().map_or(0, |w| w.tenant(name.as_str()));
        if let Some(th) = s.tenants.get_mut(&name) {
            th.wal_id = wid;
        }
    }
    Ok(rx)
}

/// The commit task: on each wake-up, waits `window` for more pushes, then writes and fsyncs
/// everything logged and acknowledges the pushes it covers. Never holds the shard's borrow
/// across the I/O, so pushes keep logging meanwhile.
pub async fn commit_loop(shard: ShardRef, wake: async_channel::Receiver<()>, window: Duration) {
    while wake.recv().await.is_ok() {
        if !window.is_zero() {
            compio::time::sleep(window).await;
        }
        loop {
            let job = {
                let mut s = shard.borrow_mut();
                if s.wal_failure().is_some() {
                    break;
                }
                let Some(w) = s.wal.as_mut() else { return };
                w.wal.start_sync()
            };
            match job {
                Ok(Some(job)) => {
                    let done = job.run().await;
                    let mut s = shard.borrow_mut();
                    let res = match s.wal.as_mut() {
                        Some(w) => w.wal.finish_sync(done),
                        None => return,
                    };
                    match res {
                        Ok(durable) => s.wal_acknowledge(durable),
                        Err(e) => s.wal_fail(&e),
                    }
                }
                Ok(None) => {
                    // Nothing buffered: everything logged is durable.
                    let mut s = shard.borrow_mut();
                    let durable = s.wal.as_ref().map_or(0, |w| w.wal.durable_seq());
                    s.wal_acknowledge(durable);
                    break;
                }
                Err(e) => {
                    shard.borrow_mut().wal_fail(&e);
                    break;
                }
            }
        }
    }
}

/// A push's result once its commit is known: `durable` false (the WAL failed, or the commit
/// task is gone) turns it into an internal error, so the sender retries.
pub fn after_commit(
    mut result: super::PushResult,
    durable: Result<bool, oneshot::Canceled>,
) -> super::PushResult {
    if durable != Ok(true) {
        result.wal_error = Some("the write-ahead log failed; the samples were not stored".into());
    }
    result
}

/// Makes everything logged so far durable (shutdown in relaxed mode, tests).
pub async fn sync_now(shard: &ShardRef) -> io::Result<()> {
    loop {
        let job = {
            let mut s = shard.borrow_mut();
            let Some(w) = s.wal.as_mut() else {
                return Ok(());
            };
            w.wal.start_sync()?
        };
        let Some(job) = job else { return Ok(()) };
        let done = job.run().await;
        let mut s = shard.borrow_mut();
        if let Some(w) = s.wal.as_mut() {
            let durable = w.wal.finish_sync(done)?;
            s.wal_acknowledge(durable);
        }
    }
}

/// Applies replayed records to a shard's heads.
struct Replayer<'s> {
    shard: &'s mut Shard,
    registry: &'s TenantRegistry,
    /// WAL tenant id → tenant (the latest declaration wins: ids are per segment).
    tenants: HashMap<u32, TenantId>,
    /// Per tenant: WAL series ref → head series ref.
    refs: HashMap<TenantId, HashMap<SeriesRef, SeriesRef>>,
    series: u64,
    samples: u64,
    /// Samples the head refused (out of order, duplicate) or of series never declared.
    skipped: u64,
}

impl<'s> Replayer<'s> {
    fn new(shard: &'s mut Shard, registry: &'s TenantRegistry) -> Self {
        Replayer {
            shard,
            registry,
            tenants: HashMap::new(),
            refs: HashMap::new(),
            series: 0,
            samples: 0,
            skipped: 0,
        }
    }

    fn apply(&mut self, rec: Record<'_>) {
        match rec {
            Record::Tenant { id, name } => match TenantId::parse(name) {
                Ok(t) => {
                    self.tenants.insert(id, t);
                }
                Err(e) => {
                    warn!(tenant = name, error = %e, "wal: tenant refused, records skipped");
                }
            },
            Record::Series { tenant, series } => {
                let Some(tid) = self.tenants.get(&tenant).cloned() else {
                    self.skipped += series.len() as u64;
                    return;
                };
                let shared = self.registry.get(&tid);
                let th = self.shard.tenant_head(&shared);
                let refs = self.refs.entry(tid).or_default();
                for e in series.iter() {
                    let mut h = LabelHasher::new();
                    for (n, v) in e.labels() {
                        h.add(n.as_bytes(), v.as_bytes());
                    }
                    let hash = h.finish();
                    let labels = e.labels().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
                    let r = if let Some(r) = th.head.lookup(hash, labels) {
                        r
                    } else {
                        // Counted against the tenant's limit as the push did; a restart does
                        // not refuse what was accepted before.
                        let _ = th.shared.reserve_series();
                        self.series += 1;
                        th.head.create(hash, e.labels())
                    };
                    refs.insert(e.series, r);
                }
            }
            Record::Samples { tenant, samples } => {
                let Some(tid) = self.tenants.get(&tenant) else {
                    self.skipped += samples.len() as u64;
                    return;
                };
                let (Some(th), Some(refs)) = (self.shard.tenants.get_mut(tid), self.refs.get(tid))
                else {
                    self.skipped += samples.len() as u64;
                    return;
                };
                for s in samples {
                    match refs.get(&s.series) {
                        // Samples of ranges already cut into blocks stay out of the head.
                        Some(&r)
                            if s.t >= th.min_valid_t && th.head.append(r, s.t, s.v).is_ok() =>
                        {
                            self.samples += 1;
                        }
                        _ => self.skipped += 1,
                    }
                }
            }
            Record::Tombstones { .. } => {}
        }
    }
}
