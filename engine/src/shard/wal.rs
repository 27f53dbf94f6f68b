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
//! The next segment's file is prepared (zero-filled, fsynced) by a task beside the commit task
//! whenever none is ready (`wal_preallocate`, off by default; see `Wal::start_prealloc`): fsyncs of a segment
//! that does not grow are cheaper. At shutdown the current segment is sealed, which trims its
//! unused zeros, so only a crash leaves them (replay cuts them off as a torn tail).
//!
//! An I/O error fails the WAL for good (a retried fsync may report success over lost pages):
//! every waiting and later push on the shard answers 500 until the process restarts and replays.
//!
//! Truncation: for each segment the WAL remembers the newest sample time each tenant logged in
//! it. After a block cut, [`checkpoint`] closes the current segment and finds the longest run of
//! oldest segments whose samples are all older than their tenant's `min_valid_t` (in blocks
//! already, and skipped by a replay anyway). Those segments hold nothing a replay needs but
//! series records, so a checkpoint of the heads' series replaces them and they are deleted. A
//! segment closed at one cut is, with samples arriving in real time, past the next cut's
//! boundary: the log holds about two block ranges of samples, as Prometheus's does.
//!
//! Series refs: records name series by their head's ref, which is never reused (a series the
//! head's garbage collection drops leaves its ref unused for good, see `strata_storage::head`).
//! The replay (`replay`) recreates every series under the ref the log names, so the refs of
//! the records written before a restart and after it agree. A checkpoint holds the live series
//! and, when the newest ref handed out names a dropped series, an entry without labels for it
//! (which only reserves the ref): a replay then hands out no ref the log still names.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use hashbrown::HashMap;
use strata_storage::head::SeriesRef;
use strata_storage::wal::fs::StdFs;
use strata_storage::wal::{Checkpoint, Wal, WalOptions, repair};
use tracing::{error, info, warn};

mod replay;

use super::{Shard, ShardRef};
use crate::config::{TsdbConfig, WalFsync};
use crate::limits::TenantRegistry;
use crate::metrics::Metrics;
use crate::tenant::TenantId;
use crate::wal_fs::CompioFs;

/// A shard's WAL and the pushes waiting for it.
pub struct ShardWal {
    wal: Wal<CompioFs>,
    mode: WalFsync,
    /// Whether next segments are prepared as zero-filled files.
    preallocate: bool,
    /// Pushes waiting for the fsync that covers their sequence number, oldest first.
    waiters: VecDeque<(u64, oneshot::Sender<bool>)>,
    /// Wakes the commit task (capacity 1: one pending wake-up is enough).
    wake: async_channel::Sender<()>,
    failed: Option<String>,
    /// Scratch of a push: refs of its new series, and its appended samples.
    pub(super) new_series: Vec<SeriesRef>,
    pub(super) samples: Vec<(SeriesRef, i64, f64)>,
    /// Per segment still on disk (oldest first; segments without samples are absent): the
    /// newest sample time of each tenant in it. Segments replayed at start-up share one entry.
    segment_times: SegmentTimes,
    /// The last segment a checkpoint covers.
    checkpointed: Option<u32>,
}

impl ShardWal {
    /// The WAL's id for tenant `name` (declared in the log once per segment).
    pub(super) fn tenant(&mut self, name: &str) -> u32 {
        self.wal.tenant(name)
    }

    /// Records that `segment` holds samples of `tenant` up to `max_t`.
    fn note_samples(&mut self, segment: u32, tenant: &TenantId, max_t: i64) {
        if self.segment_times.back().is_none_or(|(s, _)| *s != segment) {
            self.segment_times.push_back((segment, HashMap::new()));
        }
        if let Some((_, times)) = self.segment_times.back_mut() {
            match times.get_mut(tenant) {
                Some(t) => *t = (*t).max(max_t),
                None => {
                    times.insert(tenant.clone(), max_t);
                }
            }
        }
    }
}

/// Per segment, the newest sample time of each tenant in it (see [`ShardWal`]).
type SegmentTimes = VecDeque<(u32, HashMap<TenantId, i64>)>;

/// The newest segment up to `cut` such that no segment up to it holds a sample a replay would
/// keep (at or after its tenant's `min_valid_t`; a tenant `min_valid` does not know counts as
/// live). `None` when the oldest segment already holds one.
fn truncatable(
    times: &SegmentTimes,
    cut: u32,
    min_valid: impl Fn(&TenantId) -> Option<i64>,
) -> Option<u32> {
    for (segment, tenants) in times {
        if *segment > cut {
            break;
        }
        let live = tenants
            .iter()
            .any(|(tenant, &max_t)| min_valid(tenant).is_none_or(|m| max_t >= m));
        if live {
            return segment.checked_sub(1);
        }
    }
    Some(cut)
}

/// The segments a start-up replayed, as one entry: their samples are no newer than the newest
/// replayed (`max_t`, per tenant). The entry is under the first of them (the one after the
/// checkpoint, or 0), so a truncation keeps them all while any of their samples is live; under
/// the last one, those before it would count as holding no samples, and a checkpoint could delete
/// them with samples not yet in blocks.
fn replayed_times(checkpoint: Option<u32>, max_t: HashMap<TenantId, i64>) -> SegmentTimes {
    let mut times = SegmentTimes::new();
    if !max_t.is_empty() {
        let first = checkpoint.map_or(0, |c| c.saturating_add(1));
        times.push_back((first, max_t));
    }
    times
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
            let mut max_t = i64::MIN;
            seq = Some(w.wal.log_samples(tenant_wal_id, |enc| {
                for &(r, t, v) in &samples {
                    enc.add(r, t, v);
                    max_t = max_t.max(t);
                }
            }));
            w.samples = samples;
            w.samples.clear();
            w.note_samples(w.wal.current_segment(), head_of, max_t);
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

    /// Answers the pushes `durable` covers; returns how many.
    fn wal_acknowledge(&mut self, durable: u64) -> usize {
        let Some(w) = self.wal.as_mut() else { return 0 };
        let mut n = 0;
        while w.waiters.front().is_some_and(|(seq, _)| *seq <= durable) {
            if let Some((_, tx)) = w.waiters.pop_front() {
                let _ = tx.send(true);
                n += 1;
            }
        }
        n
    }
}

/// Replays shard `shard`'s WAL into its heads (a torn tail is reported and cut off), then opens it
/// for appending. Returns the receiver the commit task waits on. Runs on the shard's thread at
/// start-up, before it serves anything (reads block: nothing else runs yet).
pub async fn open(
    shard: &ShardRef,
    cfg: &TsdbConfig,
    registry: &TenantRegistry,
) -> Result<async_channel::Receiver<()>, String> {
    let id = shard.borrow().id;
    let dir = wal_dir(&cfg.dir, id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let started = Instant::now();
    let replay::Replayed {
        stats,
        series,
        samples,
        skipped,
        max_t: replayed_max_t,
    } = replay::replay_into_heads(shard, &dir, registry).await?;
    // Series the replay left without samples (every sample in blocks, or none was ever taken)
    // are dropped at once, as a cut would, and given back to their tenants' limits.
    let dropped = {
        let mut s = shard.borrow_mut();
        let mut dropped = 0;
        for th in s.tenants.values_mut() {
            let n = th.head.gc(th.min_valid_t);
            th.shared.release_series(n as u64);
            dropped += n;
        }
        dropped
    };
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
        dropped,
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
    let segment_times = replayed_times(stats.checkpoint, replayed_max_t);
    let mut s = shard.borrow_mut();
    s.wal = Some(ShardWal {
        wal,
        mode: cfg.wal_fsync,
        preallocate: cfg.wal_preallocate,
        waiters: VecDeque::new(),
        wake,
        failed: None,
        new_series: Vec::new(),
        samples: Vec::new(),
        segment_times,
        checkpointed: stats.checkpoint,
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
pub async fn commit_loop(
    shard: ShardRef,
    wake: async_channel::Receiver<()>,
    window: Duration,
    metrics: Arc<Metrics>,
) {
    preallocate(&shard);
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
                    let started = Instant::now();
                    let done = job.run().await;
                    metrics
                        .wal_fsync_seconds
                        .observe(started.elapsed().as_secs_f64());
                    let mut s = shard.borrow_mut();
                    let res = match s.wal.as_mut() {
                        Some(w) => w.wal.finish_sync(done),
                        None => return,
                    };
                    match res {
                        Ok(durable) => {
                            let acked = s.wal_acknowledge(durable);
                            metrics.wal_commit_pushes.observe(acked as f64);
                        }
                        Err(e) => s.wal_fail(&e),
                    }
                    drop(s);
                    preallocate(&shard);
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

/// Starts preparing the next segment's file in a task of its own, when enabled and the WAL has
/// none ready or in preparation. A failure is logged once; segments are then created empty.
fn preallocate(shard: &ShardRef) {
    let job = {
        let mut s = shard.borrow_mut();
        let Some(w) = s
            .wal
            .as_mut()
            .filter(|w| w.preallocate && w.failed.is_none())
        else {
            return;
        };
        let Some(job) = w.wal.start_prealloc() else {
            return;
        };
        job
    };
    let shard = shard.clone();
    compio::runtime::spawn(async move {
        let res = job.run().await;
        let mut s = shard.borrow_mut();
        let id = s.id;
        if let Some(w) = s.wal.as_mut()
            && let Err(e) = w.wal.finish_prealloc(res)
        {
            warn!(shard = id, error = %e, "wal: cannot prepare the next segment's file; segments are created empty from now on");
        }
    })
    .detach();
}

/// Seals the current segment (trimming preallocated zeros) and makes everything logged durable:
/// the WAL's last act before the process exits.
pub async fn close(shard: &ShardRef) -> io::Result<()> {
    if let Some(w) = shard.borrow_mut().wal.as_mut() {
        w.wal.cut_segment();
    }
    sync_now(shard).await
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

/// Series per batch a checkpoint encodes under the shard's borrow.
const CHECKPOINT_BATCH: u32 = 4096;
/// A checkpoint writes out what it buffered beyond this.
const CHECKPOINT_FLUSH_BYTES: usize = 8 << 20;

/// What a [`checkpoint`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The last segment the new checkpoint covers (`None`: no segment could be dropped).
    pub upto: Option<u32>,
    /// Series written into it.
    pub series: u64,
}

/// Truncates the shard's WAL after a block cut (see the module docs): closes the current
/// segment, waits until everything logged is durable, then, if a run of oldest segments holds
/// only samples already in blocks, writes a checkpoint of every series of the shard's heads over
/// them and deletes them. Never holds the shard's borrow across I/O: pushes go on meanwhile.
pub async fn checkpoint(shard: &ShardRef, cfg: &TsdbConfig) -> Result<CheckpointStats, String> {
    let (id, upto, durable) = {
        let mut s = shard.borrow_mut();
        let Shard {
            id, wal, tenants, ..
        } = &mut *s;
        let Some(w) = wal.as_mut() else {
            return Ok(CheckpointStats::default());
        };
        if let Some(f) = &w.failed {
            return Err(f.clone());
        }
        let Some(cut) = w.wal.cut_segment() else {
            return Ok(CheckpointStats::default());
        };
        let upto = truncatable(&w.segment_times, cut, |t| {
            tenants.get(t).map(|th| th.min_valid_t)
        })
        .filter(|&u| w.checkpointed.is_none_or(|c| u > c));
        // The closed segment goes to disk with the next commit; wait for it, so that no write
        // lands in a segment after the checkpoint deleted it.
        let (tx, rx) = oneshot::channel();
        w.waiters.push_back((w.wal.logged_seq(), tx));
        let _ = w.wake.try_send(());
        (*id, upto, rx)
    };
    if durable.await != Ok(true) {
        return Err(format!("wal failed on shard {id}"));
    }
    let Some(upto) = upto else {
        return Ok(CheckpointStats::default());
    };
    let dir = wal_dir(&cfg.dir, id);
    let opts = WalOptions {
        segment_size: cfg.wal_segment_size_bytes,
    };
    let io = |e: io::Error| format!("wal checkpoint {} of {}: {e}", upto, dir.display());
    let mut cp = Checkpoint::create(CompioFs, &dir, upto, opts)
        .await
        .map_err(io)?;
    // The live series: a series created after `cut_segment` above is logged in a later segment,
    // and one the dropped segments declare that is no longer live was dropped by the heads'
    // garbage collection (its samples are in blocks; a replay skips samples of refs it does not
    // know). Written in ref order; the newest ref handed out is always named (a dropped one by an
    // entry without labels), so a replay never hands out a ref a later segment names.
    let heads: Vec<(TenantId, u32)> = shard
        .borrow()
        .tenants
        .iter()
        .map(|(t, th)| (t.clone(), th.head.next_ref()))
        .collect();
    let mut series = 0u64;
    for (tenant, n) in heads {
        let cp_tenant = cp.wal().tenant(tenant.as_str());
        let mut from = 0;
        while from < n {
            let to = from.saturating_add(CHECKPOINT_BATCH).min(n);
            {
                let s = shard.borrow();
                let Some(th) = s.tenants.get(&tenant) else {
                    break;
                };
                cp.wal().log_series(cp_tenant, |enc| {
                    for r in from..to {
                        if !th.head.is_live(r) {
                            continue;
                        }
                        let labels = th.head.labels(r);
                        enc.add(
                            r,
                            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                        );
                        series += 1;
                    }
                    if to == n && !th.head.is_live(n - 1) {
                        enc.add(n - 1, std::iter::empty());
                    }
                });
            }
            from = to;
            if cp.wal().buffered_bytes() >= CHECKPOINT_FLUSH_BYTES {
                cp.wal().sync().await.map_err(io)?;
            } else {
                // Let pushes in between batches.
                crate::rt::yield_now().await;
            }
        }
    }
    cp.finish().await.map_err(io)?;
    let mut s = shard.borrow_mut();
    if let Some(w) = s.wal.as_mut() {
        while w.segment_times.front().is_some_and(|(seg, _)| *seg <= upto) {
            w.segment_times.pop_front();
        }
        w.checkpointed = Some(upto);
    }
    info!(
        shard = id,
        upto, series, "wal checkpoint written, older segments deleted"
    );
    Ok(CheckpointStats {
        upto: Some(upto),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn times(entries: &[(u32, &[(&str, i64)])]) -> SegmentTimes {
        entries
            .iter()
            .map(|(seg, ts)| (*seg, ts.iter().map(|(t, m)| (tenant(t), *m)).collect()))
            .collect()
    }

    #[test]
    fn truncation_stops_at_the_first_segment_with_a_live_sample() {
        let min_valid = |t: &TenantId| match t.as_str() {
            "a" => Some(100),
            "b" => Some(50),
            _ => None,
        };
        // Segments without samples (2) drop with their neighbours.
        let t = times(&[
            (1, &[("a", 99), ("b", 10)]),
            (3, &[("b", 49)]),
            (4, &[("a", 100)]),
        ]);
        assert_eq!(truncatable(&t, 9, min_valid), Some(3));
        // Only up to the cut.
        assert_eq!(truncatable(&t, 2, min_valid), Some(2));
        // The oldest holds a live sample: nothing.
        let t = times(&[(0, &[("b", 50)]), (1, &[("a", 1)])]);
        assert_eq!(truncatable(&t, 1, min_valid), None);
        let t = times(&[(5, &[("b", 50)])]);
        assert_eq!(truncatable(&t, 7, min_valid), Some(4));
        // A tenant without a head is never assumed cut.
        let t = times(&[(0, &[("c", i64::MIN)])]);
        assert_eq!(truncatable(&t, 0, min_valid), None);
        // No samples at all: everything up to the cut.
        assert_eq!(truncatable(&SegmentTimes::new(), 6, min_valid), Some(6));
    }

    #[test]
    fn replayed_segments_are_kept_while_any_of_their_samples_is_live() {
        let min_valid = |_: &TenantId| Some(100);
        // Segments 5..=7 replayed after checkpoint 4; 8 written since, cut now.
        let live: HashMap<TenantId, i64> = [(tenant("a"), 150)].into_iter().collect();
        let t = replayed_times(Some(4), live);
        assert_eq!(
            truncatable(&t, 8, min_valid),
            Some(4),
            "nothing past the checkpoint"
        );
        let done: HashMap<TenantId, i64> = [(tenant("a"), 99)].into_iter().collect();
        assert_eq!(
            truncatable(&replayed_times(Some(4), done), 8, min_valid),
            Some(8)
        );
        let live: HashMap<TenantId, i64> = [(tenant("a"), 100)].into_iter().collect();
        assert_eq!(truncatable(&replayed_times(None, live), 3, min_valid), None);
        assert!(replayed_times(None, HashMap::new()).is_empty());
    }
}
