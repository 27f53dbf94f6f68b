//! A shard's part of cutting a block: reporting its heads' time ranges, handing over one range's
//! chunks of a tenant, and releasing them once the block is written.
//!
//! Releasing `[.., t)` drops the closed chunks before `t`, then the series with no sample at or
//! after `t` ([`strata_storage::head::Head::gc`]): the cut collected every chunk wholly in its
//! range, the open one included, and chunks never straddle a range (the heads' chunk range is the
//! block range), so such a series' samples are all in blocks. The dropped series are given back
//! to the tenant's series limit, which so counts live series only.

use futures_channel::oneshot;
use strata_storage::labels::Labels;
use tracing::info;

use super::Shard;
use crate::tenant::TenantId;

/// One tenant's head on one shard, for the compaction's decision.
#[derive(Clone, Debug)]
pub struct HeadRange {
    pub tenant: TenantId,
    /// Oldest and newest sample still held (`i64::MAX`/`i64::MIN` when none).
    pub min_t: i64,
    pub max_t: i64,
    /// Samples before this are in blocks: refused as out of bounds, never cut again.
    pub min_valid_t: i64,
    /// How long since a push last appended to this head.
    pub idle: std::time::Duration,
}

/// One series' chunks of a block's range (XOR chunk data, oldest first).
#[derive(Debug)]
pub struct CutSeries {
    pub labels: Labels,
    pub chunks: Vec<(i64, i64, Vec<u8>)>,
}

/// Messages of a block cut.
pub enum CutMsg {
    Ranges(oneshot::Sender<Vec<HeadRange>>),
    /// The chunks of `tenant` wholly in `[mint, maxt)`.
    Collect {
        tenant: TenantId,
        mint: i64,
        maxt: i64,
        reply: oneshot::Sender<Vec<CutSeries>>,
    },
    /// `[.., before)` is in a block: release its chunks and the series left without samples,
    /// and refuse samples before it. Answers the number of chunks dropped.
    Truncate {
        tenant: TenantId,
        before: i64,
        reply: oneshot::Sender<usize>,
    },
    /// After truncations: replace the WAL segments that hold only samples in blocks by a
    /// checkpoint ([`super::wal::checkpoint`]).
    Checkpoint {
        cfg: std::sync::Arc<crate::config::TsdbConfig>,
        reply: oneshot::Sender<Result<super::wal::CheckpointStats, String>>,
    },
}

impl Shard {
    pub fn handle_cut(&mut self, msg: CutMsg) {
        match msg {
            CutMsg::Ranges(reply) => {
                let _ = reply.send(
                    self.tenants
                        .iter()
                        .map(|(id, th)| HeadRange {
                            tenant: id.clone(),
                            min_t: th.head.min_time(),
                            max_t: th.head.max_time(),
                            min_valid_t: th.min_valid_t,
                            idle: th.last_append.elapsed(),
                        })
                        .collect(),
                );
            }
            CutMsg::Collect {
                tenant,
                mint,
                maxt,
                reply,
            } => {
                let mut out = Vec::new();
                if let Some(th) = self.tenants.get_mut(&tenant) {
                    // From now on the range is the block's: see `collected_before`.
                    th.collected_before = th.collected_before.max(maxt);
                    let head = &th.head;
                    for r in head.series_refs() {
                        let chunks: Vec<(i64, i64, Vec<u8>)> = head
                            .chunks(r, mint, maxt - 1)
                            .filter(|c| c.min_t >= mint && c.max_t < maxt)
                            .map(|c| (c.min_t, c.max_t, c.data.to_vec()))
                            .collect();
                        if !chunks.is_empty() {
                            out.push(CutSeries {
                                labels: head.labels(r),
                                chunks,
                            });
                        }
                    }
                }
                let _ = reply.send(out);
            }
            CutMsg::Truncate {
                tenant,
                before,
                reply,
            } => {
                let id = self.id;
                let dropped = self.tenants.get_mut(&tenant).map_or(0, |th| {
                    th.min_valid_t = th.min_valid_t.max(before);
                    let chunks = th.head.truncate_before(before);
                    let started = std::time::Instant::now();
                    let series = th.head.gc(before);
                    if series > 0 {
                        th.shared.release_series(series as u64);
                        info!(
                            shard = id,
                            tenant = %tenant,
                            series,
                            live = th.head.num_series(),
                            ms = started.elapsed().as_millis() as u64,
                            "head series in blocks dropped"
                        );
                    }
                    chunks
                });
                if dropped > 0 {
                    // The head's chunks are a new generation: the old one's file can go.
                    self.wake_head_spill();
                }
                let _ = reply.send(dropped);
            }
            CutMsg::Checkpoint { .. } => {
                unreachable!("serve_inbox runs checkpoints as tasks of their own")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use strata_storage::batch::{LabelSpan, Sample, SeriesEntry, WriteBatch};
    use strata_storage::head::HeadOptions;
    use strata_storage::labels::LabelHasher;

    use super::*;
    use crate::limits::{Limits, TenantRegistry};
    use crate::metrics::Metrics;
    use crate::shard::handle_push::DiscardReason;
    use crate::validation::{NameValidationScheme, TimeWindow};

    const RANGE: i64 = 7_200_000;

    /// A one-series batch `up{job="a"}` with samples at `ts`.
    fn batch(ts: &[i64]) -> WriteBatch {
        let mut b = WriteBatch::default();
        let mut hasher = LabelHasher::new();
        for (n, v) in [("__name__", "up"), ("job", "a")] {
            hasher.add(n.as_bytes(), v.as_bytes());
            let at = |s: &str, b: &mut WriteBatch| {
                let start = b.buf.len() as u32;
                b.buf.extend_from_slice(s.as_bytes());
                start
            };
            let (name_start, value_start) = (at(n, &mut b), at(v, &mut b));
            b.labels.push(LabelSpan {
                name_start,
                name_len: n.len() as u32,
                value_start,
                value_len: v.len() as u32,
            });
        }
        b.len = b.buf.len();
        b.samples = ts.iter().map(|&t| Sample { t, v: 1.0 }).collect();
        b.series.push(SeriesEntry {
            hash: hasher.finish(),
            labels: 0..2,
            samples: 0..ts.len() as u32,
            ..SeriesEntry::default()
        });
        b
    }

    /// A sample pushed after a cut collected its range, before the truncation, is refused as out
    /// of bounds: the block has been written without it and the truncation would drop it.
    #[test]
    fn samples_of_a_range_being_cut_are_refused_from_its_collection() {
        let mut shard = Shard::new(
            0,
            HeadOptions {
                chunk_range_ms: RANGE,
                max_samples_per_chunk: 120,
            },
            NameValidationScheme::default(),
        );
        let registry = TenantRegistry::new(Limits::default(), Arc::new(Metrics::new()));
        let tenant = TenantId::parse("t").unwrap();
        let tenant_shared = registry.get(&tenant);
        let window = TimeWindow {
            min_t: i64::MIN,
            max_t: i64::MAX,
        };
        let push = |shard: &mut Shard, ts: &[i64]| {
            shard.handle_push(&tenant_shared, &batch(ts), &[0], window)
        };
        assert_eq!(push(&mut shard, &[1_000, 2_000]).appended, 2);

        let (tx, _rx) = oneshot::channel();
        shard.handle_cut(CutMsg::Collect {
            tenant: tenant.clone(),
            mint: 0,
            maxt: RANGE,
            reply: tx,
        });
        let late = push(&mut shard, &[3_000]);
        assert_eq!(late.appended, 0);
        assert_eq!(late.discarded, vec![(DiscardReason::OutOfBounds, 1)]);
        assert!(late.first_error.unwrap().contains("out of bounds"));
        assert_eq!(
            push(&mut shard, &[RANGE]).appended,
            1,
            "the next range is open"
        );
    }
}
