//! The replay of a shard's WAL into its heads at start-up: every record in order (checkpoint,
//! then segments), series recreated under the refs the log names (see the parent module on
//! refs), samples of ranges already in blocks skipped, a progress line as files are reached, and
//! the full chunk pages it fills spilled to disk as it goes.

use std::path::Path;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use strata_storage::head::SeriesRef;
use strata_storage::labels::LabelHasher;
use strata_storage::wal::fs::StdFs;
use strata_storage::wal::{ReadError, Record, ReplayStats, WalReader};
use tracing::{info, warn};

use crate::limits::TenantRegistry;
use crate::shard::{Shard, ShardRef, head_spill};
use crate::tenant::TenantId;

/// At most one "wal replaying" progress line per this long.
const REPLAY_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What a replay read and did.
pub(super) struct Replayed {
    pub stats: ReplayStats,
    /// Series created, samples appended, and samples or series skipped.
    pub series: u64,
    pub samples: u64,
    pub skipped: u64,
    /// Per tenant, the newest sample time read (kept or not).
    pub max_t: HashMap<TenantId, i64>,
}

/// Samples replayed between two waits for the head spill task: a few MiB of chunks.
const SPILL_EVERY_SAMPLES: u64 = 4 << 20;

/// Replays the log in `dir` into `shard`'s heads. A damaged log (other than a torn tail, which
/// the stats report) is an error naming what to do. Every [`SPILL_EVERY_SAMPLES`] samples, and
/// at the end, it waits for the head spill task (with `head_chunks_on_disk`) to move the full
/// chunk pages to disk, so that the replay's peak memory is not the whole head's chunks
/// (measured, 50,000 series with 2h of samples: peak RSS 91 MiB, against 128 MiB when the
/// spill started after the replay).
pub(super) async fn replay_into_heads(
    shard: &ShardRef,
    dir: &Path,
    registry: &TenantRegistry,
) -> Result<Replayed, String> {
    let damaged = |e: ReadError| {
        format!(
            "wal {}: {e} (the log is damaged before its last segment; move the damaged \
             segments away to start without them)",
            dir.display()
        )
    };
    let started = Instant::now();
    let id = shard.borrow().id;
    let mut reader = WalReader::open(StdFs, dir)
        .await
        .map_err(|e| damaged(e.into()))?;
    let total = reader.files_total();
    let mut replayer = Replayer::new(registry);
    // A line when a file is reached, at most one per REPLAY_PROGRESS_EVERY (and the first).
    let mut files = 0;
    let mut logged: Option<Instant> = None;
    let mut spill_at = SPILL_EVERY_SAMPLES;
    while let Some(rec) = reader.next().await.map_err(damaged)? {
        replayer.apply(&mut shard.borrow_mut(), rec);
        let stats = reader.stats();
        if stats.files != files {
            files = stats.files;
            if logged.is_none_or(|t| t.elapsed() >= REPLAY_PROGRESS_EVERY) {
                logged = Some(Instant::now());
                info!(
                    shard = id,
                    file = stats.files,
                    files = total,
                    records = stats.records,
                    ms = started.elapsed().as_millis() as u64,
                    "wal replaying"
                );
            }
        }
        if replayer.samples >= spill_at {
            spill_at = replayer.samples + SPILL_EVERY_SAMPLES;
            head_spill::spill_and_wait(shard).await;
        }
    }
    // The pages of the last stretch too, before the shard serves anything.
    head_spill::spill_and_wait(shard).await;
    if replayer.samples >= SPILL_EVERY_SAMPLES {
        give_back_freed_memory();
    }
    Ok(Replayed {
        stats: reader.stats(),
        series: replayer.series,
        samples: replayer.samples,
        skipped: replayer.skipped,
        max_t: replayer.max_t,
    })
}

/// Returns the heap's free memory to the system. The page buffers the spill freed during the
/// replay lie between allocations that live on (series, postings), where glibc's allocator keeps
/// them: without this a restart ends holding about the memory the head's chunks took (measured
/// after the restart of 50,000 series with 2h of samples: 79 MiB of anonymous memory without,
/// 48 MiB with; 52 MiB when the whole head was replayed before spilling).
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps; it may be
    // called at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Applies replayed records to a shard's heads.
struct Replayer<'s> {
    registry: &'s TenantRegistry,
    /// WAL tenant id → tenant (the latest declaration wins: ids are per segment).
    tenants: HashMap<u32, TenantId>,
    /// Per tenant: WAL series ref → head series ref (the same ref, unless the labels are live
    /// under another one).
    refs: HashMap<TenantId, HashMap<SeriesRef, SeriesRef>>,
    series: u64,
    samples: u64,
    /// Samples the head refused (out of order, duplicate, in blocks) or of series never declared
    /// or dropped.
    skipped: u64,
    /// Per tenant, the newest sample time read (kept or not).
    max_t: HashMap<TenantId, i64>,
}

impl<'s> Replayer<'s> {
    fn new(registry: &'s TenantRegistry) -> Self {
        Replayer {
            registry,
            tenants: HashMap::new(),
            refs: HashMap::new(),
            series: 0,
            samples: 0,
            skipped: 0,
            max_t: HashMap::new(),
        }
    }

    fn apply(&mut self, shard: &mut Shard, rec: Record<'_>) {
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
                let th = shard.tenant_head(&self.registry.get(&tid));
                let refs = self.refs.entry(tid).or_default();
                for e in series.iter() {
                    let r = e.series;
                    if e.num_labels() == 0 {
                        // A checkpoint's mark: `r` was handed out, to a series since dropped.
                        th.head.reserve_ref(r);
                        refs.remove(&r);
                        continue;
                    }
                    let mut h = LabelHasher::new();
                    for (n, v) in e.labels() {
                        h.add(n.as_bytes(), v.as_bytes());
                    }
                    let hash = h.finish();
                    let labels = e.labels().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
                    let target = if let Some(live) = th.head.lookup(hash, labels) {
                        // Named before (a checkpoint and a later segment), or, under another
                        // ref, a series dropped and pushed again: the same labels, the same
                        // series either way.
                        th.head.reserve_ref(r);
                        Some(live)
                    } else if th.head.create_with_ref(r, hash, e.labels()) {
                        // Counted against the tenant's limit as the push did; a restart does
                        // not refuse what was accepted before.
                        th.shared.add_series(1);
                        self.series += 1;
                        Some(r)
                    } else {
                        // A ref handed out before that names no live series: one dropped
                        // before the checkpoint was written, whose samples are in blocks.
                        None
                    };
                    match target {
                        Some(target) => refs.insert(r, target),
                        None => refs.remove(&r),
                    };
                }
            }
            Record::Samples { tenant, samples } => {
                let Some(tid) = self.tenants.get(&tenant) else {
                    self.skipped += samples.len() as u64;
                    return;
                };
                if let Some(newest) = samples.iter().map(|s| s.t).max() {
                    let m = self.max_t.entry(tid.clone()).or_insert(i64::MIN);
                    *m = (*m).max(newest);
                }
                let (Some(th), Some(refs)) = (shard.tenants.get_mut(tid), self.refs.get(tid))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `recs` (encoded as the WAL writer does) to a fresh shard's heads.
    fn replay_into(shard: &mut Shard, registry: &TenantRegistry, recs: &[Vec<u8>]) -> (u64, u64) {
        let mut r = Replayer::new(registry);
        let mut dec = strata_storage::wal::Decoder::new();
        for rec in recs {
            r.apply(shard, dec.decode(rec).expect("decodes"));
        }
        (r.samples, r.skipped)
    }

    fn series_rec(entries: &[(SeriesRef, &[(&str, &str)])]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = strata_storage::wal::record::SeriesEncoder::new(&mut buf, 1);
        for (r, labels) in entries {
            enc.add(*r, labels.iter().copied());
        }
        buf
    }

    fn samples_rec(samples: &[(SeriesRef, i64)]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = strata_storage::wal::record::SamplesEncoder::new(&mut buf, 1);
        for &(r, t) in samples {
            enc.add(r, t, t as f64);
        }
        buf
    }

    /// A checkpoint written after a garbage collection, then a segment written before it:
    /// series keep their refs, dropped refs stay unused, and no sample lands on another series.
    #[test]
    fn replay_keeps_refs_and_skips_dropped_series() {
        const A: &[(&str, &str)] = &[("__name__", "a")];
        const B: &[(&str, &str)] = &[("__name__", "b")];
        const C: &[(&str, &str)] = &[("__name__", "c")];
        const D: &[(&str, &str)] = &[("__name__", "d")];
        const E: &[(&str, &str)] = &[("__name__", "e")];
        use crate::limits::Limits;
        use crate::validation::NameValidationScheme;
        use strata_storage::head::HeadOptions;

        let registry = TenantRegistry::new(
            Limits::default(),
            std::sync::Arc::new(crate::metrics::Metrics::new()),
        );
        let mut shard = Shard::new(0, HeadOptions::default(), NameValidationScheme::Utf8);
        let mut tenant_rec = Vec::new();
        strata_storage::wal::record::encode_tenant(&mut tenant_rec, 1, "t");
        let recs = [
            tenant_rec.clone(),
            // The checkpoint: live series 0 and 5; refs up to 9 were handed out.
            series_rec(&[(0, A), (5, B), (9, &[])]),
            tenant_rec,
            // Segments after it: series 3 and 7 (dropped before the checkpoint), 5 again, 10
            // (new), and ref 2 naming `b`, live under 5: its samples land on 5's series.
            series_rec(&[(3, C), (5, B), (10, D), (7, E), (2, B)]),
            samples_rec(&[(3, 1), (5, 2), (10, 3), (7, 4), (2, 5), (0, 6), (8, 7)]),
        ];
        let (samples, skipped) = replay_into(&mut shard, &registry, &recs);
        assert_eq!((samples, skipped), (4, 3), "3, 7 and 8 name no series");
        let th = shard
            .tenants
            .get(&TenantId::parse("t").unwrap())
            .expect("a head");
        let head = &th.head;
        assert_eq!(head.series_refs().collect::<Vec<_>>(), vec![0, 5, 10]);
        assert_eq!(head.next_ref(), 11);
        let got = |r| {
            let mut out = Vec::new();
            head.samples(r, i64::MIN, i64::MAX, &mut out);
            (head.labels(r).to_string(), out)
        };
        assert_eq!(got(0), ("a{}".into(), vec![(6, 6.0)]));
        assert_eq!(got(5), ("b{}".into(), vec![(2, 2.0), (5, 5.0)]));
        assert_eq!(got(10), ("d{}".into(), vec![(3, 3.0)]));
        // The tenant's limit counts the live series.
        assert_eq!(
            th.shared.series.load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }
}
