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

/// The chunks of a series to read for `[mint, maxt]`, each with where it surely ends and its
/// time range.
fn needed(chunks: &[ChunkRef], mint: i64, maxt: i64) -> Vec<NeededChunk> {
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
            let n = Needed {
                chunk_ref: c.chunk_ref,
                end_hint,
            };
            (n, c.min_t, c.max_t)
        })
        .collect()
}

/// A chunk to read and its time range.
type NeededChunk = (Needed, i64, i64);

/// One block's part of a select: its series to read, and the ranges covering their chunks.
struct BlockReads {
    series: Vec<(Labels, Vec<NeededChunk>)>,
    planned: Vec<Planned>,
}

/// An XOR chunk of a block, its CRC checked: a slice of the fetched bytes (no copy).
#[derive(Clone, Debug)]
pub struct XorChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub data: bytes::Bytes,
}

/// A series of the blocks with the XOR chunks overlapping a select's range, from every block,
/// ordered by `min_t` (chunks of different blocks may overlap: see [`decode_chunks`]).
#[derive(Clone, Debug)]
pub struct SeriesChunks {
    pub labels: Labels,
    pub chunks: Vec<XorChunk>,
}

/// Decodes `chunks` (ordered by `min_t`) into `out` (cleared first): the samples in
/// `[mint, maxt]`, sorted by time, one per timestamp (the first chunk's, where chunks of several
/// blocks overlap). `scratch` is reused between calls.
pub fn decode_chunks(
    chunks: &[XorChunk],
    mint: i64,
    maxt: i64,
    scratch: &mut Vec<(i64, f64)>,
    out: &mut Vec<(i64, f64)>,
) -> Result<(), strata_storage::chunkenc::xor::ChunkError> {
    out.clear();
    let mut ordered = true;
    let mut last_max = i64::MIN;
    for c in chunks {
        if c.max_t < mint || c.min_t > maxt {
            continue;
        }
        if c.min_t <= last_max {
            ordered = false;
        }
        last_max = last_max.max(c.max_t);
        if c.min_t >= mint && c.max_t <= maxt {
            // Wholly in range: straight into `out`, no copy.
            decode_into(&c.data, out)?;
        } else {
            scratch.clear();
            decode_into(&c.data, scratch)?;
            out.extend(scratch.iter().filter(|p| p.0 >= mint && p.0 <= maxt));
        }
    }
    if !ordered {
        // Stable: the first chunk's sample wins a timestamp.
        out.sort_by_key(|p| p.0);
        out.dedup_by_key(|p| p.0);
    }
    Ok(())
}

pub(super) async fn select_chunks(
    catalog: &BlockCatalog,
    tenant: &TenantId,
    slots: &[Rc<BlockSlot>],
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    partition: Option<Partition>,
) -> Result<Vec<SeriesChunks>, BlocksError> {
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
        let all: Vec<Needed> = series
            .iter()
            .flat_map(|(_, n)| n.iter().map(|(n, _, _)| *n))
            .collect();
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

    let mut merged: BTreeMap<Labels, Vec<XorChunk>> = BTreeMap::new();
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
            let mut out: Vec<XorChunk> = Vec::with_capacity(needed.len());
            for (n, min_t, max_t) in needed {
                let data = match chunks.record(n.chunk_ref)? {
                    (Record::Incomplete { len }, _) => {
                        let whole = fetch::fetch_record(
                            &slot.id,
                            &slot.bucket,
                            block,
                            n.chunk_ref,
                            len,
                            &catalog.counters,
                        )
                        .await?;
                        match fetch::parse_record(&whole, n.chunk_ref, true, true)
                            .map_err(|e| slot.id.chunk_err(e))?
                        {
                            Record::Xor(data) => Some(whole.slice_ref(data)),
                            Record::Other(_) => None,
                            Record::Incomplete { .. } => {
                                return Err(slot.id.chunk_err(ChunkReadError::Truncated {
                                    chunk_ref: n.chunk_ref,
                                }));
                            }
                        }
                    }
                    (Record::Xor(data), buf) => Some(buf.slice_ref(data)),
                    (Record::Other(_), _) => None,
                };
                match data {
                    Some(data) => out.push(XorChunk { min_t, max_t, data }),
                    None => skipped += 1,
                }
            }
            if !out.is_empty() {
                merged.entry(labels).or_default().extend(out);
            }
        }
    }
    if skipped > 0 {
        tracing::debug!(tenant = %tenant, chunks = skipped, "skipped block chunks that are not XOR");
    }
    Ok(merged
        .into_iter()
        .map(|(labels, mut chunks)| {
            // Stable and adaptive: one block's chunks are already in order.
            chunks.sort_by_key(|c| c.min_t);
            SeriesChunks { labels, chunks }
        })
        .collect())
}

/// The fetched ranges of one block.
struct Chunks<'a> {
    id: &'a BlockId,
    block: &'a OpenBlock,
    planned: &'a [Planned],
    bufs: &'a [bytes::Bytes],
}

impl<'a> Chunks<'a> {
    /// The record of `chunk_ref`, from the range that covers its start, and that range's bytes.
    fn record(&self, chunk_ref: u64) -> Result<(Record<'a>, &'a bytes::Bytes), BlocksError> {
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
        let record = fetch::parse_record(bytes, chunk_ref, to_end, !self.block.verified.get())
            .map_err(|e| self.id.chunk_err(e))?;
        Ok((record, buf))
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
