//! Answering one query from the blocks chosen for it: the blocks are opened (concurrently), each
//! block's matching series are found in its index, the chunk ranges of all blocks are fetched
//! together, and the decoded samples are merged by label set across blocks, sorted by time and
//! deduplicated by timestamp.
//!
//! A series is read from a block when its labels match, the partition keeps it, and one of its
//! chunks overlaps `[mint, maxt]`; only those chunks are fetched. Chunks of encodings other
//! than XOR (native histograms) are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use futures_util::future::try_join_all;
use strata_storage::block::chunks::split_chunk_ref;
use strata_storage::block::{ChunkReadError, ChunkRef, IndexReader, SeriesRef};
use strata_storage::chunkenc::xor::decode_into;
use strata_storage::labels::Labels;
use strata_storage::matcher::Matcher;

use super::discovery::{BlockId, BlockSlot};
use super::fetch::{self, Needed, Planned, RangeRead, Record};
use super::open::OpenBlock;
use super::{BlockCatalog, BlocksError, Partition};
use crate::shard::SeriesSamples;
use crate::tenant::TenantId;

/// Opens every block (each index fetched at most once, concurrently).
async fn open_all(
    catalog: &BlockCatalog,
    slots: &[Rc<BlockSlot>],
) -> Result<Vec<Rc<OpenBlock>>, BlocksError> {
    try_join_all(slots.iter().map(|s| s.opened(&catalog.counters))).await
}

/// Whether chunk `c` may hold samples in `[mint, maxt]`.
fn overlaps(c: &ChunkRef, mint: i64, maxt: i64) -> bool {
    c.min_t <= maxt && c.max_t >= mint
}

/// Calls `f` with the labels and chunks of every series of the block that matches one of
/// `sets` (every series when `sets` is empty), is kept by `partition`, and has a chunk
/// overlapping `[mint, maxt]`.
fn walk<B: AsRef<[u8]>>(
    id: &BlockId,
    index: &IndexReader<B>,
    sets: &[&[Matcher]],
    (mint, maxt): (i64, i64),
    partition: Option<Partition>,
    mut f: impl FnMut(Labels, &[ChunkRef]),
) -> Result<(), BlocksError> {
    let mut refs: Vec<SeriesRef> = Vec::new();
    if sets.is_empty() {
        refs = index.select(&[]).map_err(|e| id.index_err(e))?;
    }
    for m in sets {
        refs.extend(index.select(m).map_err(|e| id.index_err(e))?);
    }
    if sets.len() > 1 {
        refs.sort_unstable();
        refs.dedup();
    }
    let mut chunks = Vec::new();
    for r in refs {
        let labels = index
            .series_into(r, &mut chunks)
            .map_err(|e| id.index_err(e))?;
        if !chunks.iter().any(|c| overlaps(c, mint, maxt)) {
            continue;
        }
        if partition.is_some_and(|p| !p.keeps(&labels)) {
            continue;
        }
        f(labels, &chunks);
    }
    Ok(())
}

/// The chunks of a series to read for `[mint, maxt]`, each with where it surely ends.
fn needed(chunks: &[ChunkRef], mint: i64, maxt: i64) -> Vec<Needed> {
    chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| overlaps(c, mint, maxt))
        .map(|(i, c)| {
            let (segment, offset) = split_chunk_ref(c.chunk_ref);
            let end_hint = chunks.get(i + 1).and_then(|next| {
                let (s, o) = split_chunk_ref(next.chunk_ref);
                (s == segment && o > offset).then_some(u64::from(o))
            });
            Needed {
                chunk_ref: c.chunk_ref,
                end_hint,
            }
        })
        .collect()
}

/// One block's part of a select: its series to read, and the ranges covering their chunks.
struct BlockReads {
    series: Vec<(Labels, Vec<Needed>)>,
    planned: Vec<Planned>,
}

pub(super) async fn select(
    catalog: &BlockCatalog,
    tenant: &TenantId,
    slots: &[Rc<BlockSlot>],
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    partition: Option<Partition>,
) -> Result<Vec<SeriesSamples>, BlocksError> {
    let blocks = open_all(catalog, slots).await?;
    let mut work = Vec::with_capacity(blocks.len());
    for (slot, block) in slots.iter().zip(&blocks) {
        let mut series = Vec::new();
        walk(
            &slot.id,
            &block.index,
            &[matchers],
            (mint, maxt),
            partition,
            |labels, chunks| series.push((labels, needed(chunks, mint, maxt))),
        )?;
        let all: Vec<Needed> = series.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        let planned = fetch::plan(&block.segments, &all).map_err(|e| slot.id.chunk_err(e))?;
        work.push(BlockReads { series, planned });
    }

    let reads: Vec<RangeRead<'_>> = slots
        .iter()
        .zip(&blocks)
        .zip(&work)
        .flat_map(|((slot, block), w)| {
            w.planned.iter().map(move |planned| RangeRead {
                id: &slot.id,
                bucket: &slot.bucket,
                block,
                planned,
            })
        })
        .collect();
    let mut fetched = fetch::fetch_all(reads, &catalog.counters)
        .await?
        .into_iter();

    let mut merged: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut decoded = Vec::new();
    let mut skipped = 0usize;
    for ((slot, block), w) in slots.iter().zip(&blocks).zip(work) {
        let bufs: Vec<_> = fetched.by_ref().take(w.planned.len()).collect();
        let chunks = Chunks {
            id: &slot.id,
            block,
            planned: &w.planned,
            bufs: &bufs,
        };
        for (labels, needed) in w.series {
            let mut samples: Vec<(i64, f64)> = Vec::new();
            for n in needed {
                let record = match chunks.record(n.chunk_ref)? {
                    Record::Incomplete { len } => {
                        let whole = fetch::fetch_record(
                            &slot.id,
                            &slot.bucket,
                            block,
                            n.chunk_ref,
                            len,
                            &catalog.counters,
                        )
                        .await?;
                        decode_record(&slot.id, &whole, n.chunk_ref, true, &mut decoded)?
                    }
                    Record::Xor(data) => {
                        decoded.clear();
                        decode_into(data, &mut decoded)
                            .map_err(|e| slot.id.decode_err(n.chunk_ref, e))?;
                        true
                    }
                    Record::Other(_) => false,
                };
                if !record {
                    skipped += 1;
                    continue;
                }
                samples.extend(decoded.iter().filter(|p| p.0 >= mint && p.0 <= maxt));
            }
            if !samples.is_empty() {
                merged.entry(labels).or_default().extend(samples);
            }
        }
    }
    if skipped > 0 {
        tracing::debug!(tenant = %tenant, chunks = skipped, "skipped block chunks that are not XOR");
    }
    Ok(merged
        .into_iter()
        .map(|(labels, mut samples)| {
            // Stable and adaptive: one block's samples are already in order.
            samples.sort_by_key(|p| p.0);
            samples.dedup_by_key(|p| p.0);
            SeriesSamples { labels, samples }
        })
        .collect())
}

/// Decodes the XOR record at the start of `buf` into `out`; `false` for another encoding.
fn decode_record(
    id: &BlockId,
    buf: &[u8],
    chunk_ref: u64,
    to_segment_end: bool,
    out: &mut Vec<(i64, f64)>,
) -> Result<bool, BlocksError> {
    out.clear();
    match fetch::parse_record(buf, chunk_ref, to_segment_end).map_err(|e| id.chunk_err(e))? {
        Record::Xor(data) => {
            decode_into(data, out).map_err(|e| id.decode_err(chunk_ref, e))?;
            Ok(true)
        }
        Record::Other(_) => Ok(false),
        Record::Incomplete { .. } => Err(id.chunk_err(ChunkReadError::Truncated { chunk_ref })),
    }
}

/// The fetched ranges of one block.
struct Chunks<'a> {
    id: &'a BlockId,
    block: &'a OpenBlock,
    planned: &'a [Planned],
    bufs: &'a [bytes::Bytes],
}

impl<'a> Chunks<'a> {
    /// The record of `chunk_ref`, from the range that covers its start.
    fn record(&self, chunk_ref: u64) -> Result<Record<'a>, BlocksError> {
        let (segment, offset) = split_chunk_ref(chunk_ref);
        let offset = u64::from(offset);
        let i = self
            .planned
            .partition_point(|p| (p.segment, p.range.start) <= (segment, offset));
        let truncated = || self.id.chunk_err(ChunkReadError::Truncated { chunk_ref });
        let p = i
            .checked_sub(1)
            .map(|i| (&self.planned[i], &self.bufs[i]))
            .filter(|(p, _)| p.segment == segment && offset < p.range.end);
        let Some((p, buf)) = p else {
            return Err(truncated());
        };
        let rel = (offset - p.range.start) as usize;
        let bytes: &'a [u8] = buf.get(rel..).ok_or_else(truncated)?;
        let to_end = self.block.segments[segment as usize].size <= p.range.start + buf.len() as u64;
        fetch::parse_record(bytes, chunk_ref, to_end).map_err(|e| self.id.chunk_err(e))
    }
}

/// Label sets of the series matching any of `sets` with a chunk in `[mint, maxt]`.
pub(super) async fn series(
    catalog: &BlockCatalog,
    slots: &[Rc<BlockSlot>],
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
    partition: Option<Partition>,
) -> Result<Vec<Labels>, BlocksError> {
    let blocks = open_all(catalog, slots).await?;
    let sets: Vec<&[Matcher]> = sets.iter().map(Vec::as_slice).collect();
    let mut out = BTreeSet::new();
    for (slot, block) in slots.iter().zip(&blocks) {
        walk(
            &slot.id,
            &block.index,
            &sets,
            (mint, maxt),
            partition,
            |labels, _| {
                out.insert(labels);
            },
        )?;
    }
    Ok(out.into_iter().collect())
}

/// Label names (`name` None) or the values of label `name`: from the indexes' tables when there
/// are no matchers, else from the matching series with a chunk in `[mint, maxt]`.
pub(super) async fn label_strings(
    catalog: &BlockCatalog,
    slots: &[Rc<BlockSlot>],
    name: Option<&str>,
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
) -> Result<Vec<String>, BlocksError> {
    let blocks = open_all(catalog, slots).await?;
    let unfiltered = sets.iter().all(Vec::is_empty);
    let sets: Vec<&[Matcher]> = sets.iter().map(Vec::as_slice).collect();
    let mut out: BTreeSet<String> = BTreeSet::new();
    for (slot, block) in slots.iter().zip(&blocks) {
        let index = &block.index;
        if unfiltered {
            let strings = match name {
                None => index.label_names(),
                Some(n) => index.label_values(n),
            };
            out.extend(strings.into_iter().map(str::to_owned));
            continue;
        }
        walk(
            &slot.id,
            index,
            &sets,
            (mint, maxt),
            None,
            |labels, _| match name {
                None => out.extend(labels.iter().map(|l| l.name.clone())),
                Some(n) => {
                    if let Some(v) = labels.get(n) {
                        out.insert(v.to_owned());
                    }
                }
            },
        )?;
    }
    Ok(out.into_iter().collect())
}
