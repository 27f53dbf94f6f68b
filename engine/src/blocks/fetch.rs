//! Fetching the chunk records a query needs by byte range.
//!
//! The index gives each chunk's segment and offset, not its length. Within one series, chunk
//! refs grow, so a chunk in the same segment as the series' next chunk surely ends before that
//! one starts; otherwise its record is assumed to fit in [`CHUNK_SIZE_ESTIMATE`] bytes (clipped
//! to the segment's size). The needed chunks of one segment, sorted by offset, are coalesced
//! into ranges: a chunk joins the current range unless it starts more than [`MAX_GAP`] bytes
//! past the range's end, where fetching the bytes between would cost more than another request.
//! A query touching many chunks of a segment therefore makes one `get_range` call per cluster
//! of them, not one per chunk. A record longer than estimated is fetched again, exactly (rare:
//! XOR chunks hold a few hundred bytes).
//!
//! A record is `uvarint len | encoding | data (len bytes) | CRC32C(encoding, data)`; its CRC is
//! checked before decoding, unless the whole block was checked once already (`open.rs`).

use std::ops::Range;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use strata_storage::block::ChunkReadError;
use strata_storage::block::chunks::split_chunk_ref;
use strata_storage::chunkenc::{ENCODING_XOR, chunk_crc32c};

use super::discovery::BlockId;
use super::open::{OpenBlock, Segment};
use super::{BlocksError, Counters, bump};
use crate::bucket::Bucket;

/// Bytes assumed for a chunk record when nothing bounds it.
pub(crate) const CHUNK_SIZE_ESTIMATE: u64 = 16 << 10;
/// Needed chunks further apart than this in one segment are fetched by separate calls.
pub(crate) const MAX_GAP: u64 = 512 << 10;
/// How many range reads are in flight at once for one query.
const FETCH_CONCURRENCY: usize = 16;

/// A chunk to read: its ref, and where its record surely ends when the series' next chunk in
/// the same segment tells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Needed {
    pub(crate) chunk_ref: u64,
    pub(crate) end_hint: Option<u64>,
}

/// One byte range of one segment to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) segment: u32,
    pub(crate) range: Range<u64>,
}

/// The ranges covering `needed` (any order) in a block with `segments`, sorted by segment and
/// offset.
pub(crate) fn plan(
    segments: &[Segment],
    needed: &[Needed],
) -> Result<Vec<Planned>, ChunkReadError> {
    let mut spans: Vec<(u32, u64, u64)> = Vec::with_capacity(needed.len());
    for n in needed {
        let (segment, offset) = split_chunk_ref(n.chunk_ref);
        let size = segment_size(segments, n.chunk_ref)?;
        let offset = u64::from(offset);
        if offset >= size {
            return Err(ChunkReadError::OffsetOutOfRange {
                chunk_ref: n.chunk_ref,
                segment_len: size as usize,
            });
        }
        let end = n
            .end_hint
            .filter(|&e| e > offset)
            .unwrap_or(offset.saturating_add(CHUNK_SIZE_ESTIMATE))
            .min(size);
        spans.push((segment, offset, end));
    }
    spans.sort_unstable();
    let mut out: Vec<Planned> = Vec::new();
    for (segment, start, end) in spans {
        match out.last_mut() {
            Some(p) if p.segment == segment && start <= p.range.end.saturating_add(MAX_GAP) => {
                p.range.end = p.range.end.max(end);
            }
            _ => out.push(Planned {
                segment,
                range: start..end,
            }),
        }
    }
    Ok(out)
}

/// The size of the segment chunk `chunk_ref` lies in.
fn segment_size(segments: &[Segment], chunk_ref: u64) -> Result<u64, ChunkReadError> {
    let (segment, _) = split_chunk_ref(chunk_ref);
    segments
        .get(segment as usize)
        .map(|s| s.size)
        .ok_or(ChunkReadError::NoSegment {
            chunk_ref,
            segment: segment as usize,
            segments: segments.len(),
        })
}

/// One range read: which block's plan, which range of it.
pub(crate) struct RangeRead<'a> {
    pub(crate) id: &'a BlockId,
    pub(crate) bucket: &'a Bucket,
    pub(crate) block: &'a OpenBlock,
    pub(crate) planned: &'a Planned,
}

/// Reads every range (at most [`FETCH_CONCURRENCY`] at once); the answers are in `reads` order.
pub(crate) async fn fetch_all(
    reads: Vec<RangeRead<'_>>,
    counters: &Counters,
) -> Result<Vec<Bytes>, BlocksError> {
    let mut out: Vec<(usize, Bytes)> = stream::iter(reads.into_iter().enumerate())
        .map(|(i, r)| async move {
            let seg = &r.block.segments[r.planned.segment as usize];
            let bytes = r
                .bucket
                .get_range(&seg.path, r.planned.range.clone())
                .await
                .map_err(|e| r.id.read_err(&seg.path, e))?;
            Ok::<_, BlocksError>((i, bytes))
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .inspect_ok(|(_, b)| {
            bump(&counters.chunk_range_fetches, 1);
            bump(&counters.chunk_bytes_fetched, b.len() as u64);
        })
        .try_collect()
        .await?;
    out.sort_unstable_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, b)| b).collect())
}

/// A chunk record found in fetched bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// An XOR chunk's data, its CRC checked.
    Xor(&'a [u8]),
    /// A chunk of another encoding (native histograms, ...), not read here.
    Other(u8),
    /// The record is longer than the bytes fetched: `len` bytes from its start.
    Incomplete { len: u64 },
}

/// The record at the start of `buf`. `to_segment_end` says whether `buf` runs to the segment's
/// end (then a record cut short is corrupt, not incomplete); `check_crc` whether to check its
/// CRC (not when the whole block has been checked already).
pub(crate) fn parse_record(
    buf: &[u8],
    chunk_ref: u64,
    to_segment_end: bool,
    check_crc: bool,
) -> Result<Record<'_>, ChunkReadError> {
    let truncated = ChunkReadError::Truncated { chunk_ref };
    let (total, n) = record_extent(buf).ok_or(truncated.clone())?;
    if (buf.len() as u64) < total {
        return if to_segment_end {
            Err(truncated)
        } else {
            Ok(Record::Incomplete { len: total })
        };
    }
    let total = total as usize;
    let encoding = buf[n];
    let data = &buf[n + 1..total - 4];
    let stored = u32::from_be_bytes([
        buf[total - 4],
        buf[total - 3],
        buf[total - 2],
        buf[total - 1],
    ]);
    let computed = if check_crc {
        chunk_crc32c(encoding, data)
    } else {
        stored
    };
    if stored != computed {
        return Err(ChunkReadError::Checksum {
            chunk_ref,
            stored,
            computed,
        });
    }
    if encoding == ENCODING_XOR {
        Ok(Record::Xor(data))
    } else {
        Ok(Record::Other(encoding))
    }
}

/// The length of the record at the start of `buf` (length varint, encoding, data and CRC) and
/// of its varint; `None` when the varint is cut short or the length overflows.
pub(crate) fn record_extent(buf: &[u8]) -> Option<(u64, usize)> {
    let (len, n) = uvarint(buf)?;
    let total = (n as u64).checked_add(len)?.checked_add(1 + 4)?;
    Some((total, n))
}

/// Decodes an unsigned varint at the start of `b`: its value and length, or `None` when `b` ends
/// inside it or it overflows 64 bits.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Fetches one whole record of `len` bytes at `chunk_ref` (for records longer than estimated).
pub(crate) async fn fetch_record(
    id: &BlockId,
    bucket: &Bucket,
    block: &OpenBlock,
    chunk_ref: u64,
    len: u64,
    counters: &Counters,
) -> Result<Bytes, BlocksError> {
    let (segment, offset) = split_chunk_ref(chunk_ref);
    let size = segment_size(&block.segments, chunk_ref).map_err(|e| id.chunk_err(e))?;
    let start = u64::from(offset);
    let end = start.saturating_add(len);
    if end > size {
        return Err(id.chunk_err(ChunkReadError::Truncated { chunk_ref }));
    }
    let seg = &block.segments[segment as usize];
    let bytes = bucket
        .get_range(&seg.path, start..end)
        .await
        .map_err(|e| id.read_err(&seg.path, e))?;
    bump(&counters.chunk_range_fetches, 1);
    bump(&counters.chunk_bytes_fetched, bytes.len() as u64);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(encoding: u8, data: &[u8]) -> Vec<u8> {
        let mut r = vec![data.len() as u8, encoding];
        r.extend_from_slice(data);
        r.extend_from_slice(&chunk_crc32c(encoding, data).to_be_bytes());
        r
    }

    #[test]
    fn parses_complete_incomplete_and_corrupt_records() {
        let r = record(ENCODING_XOR, &[0, 1, 2, 3]);
        assert_eq!(
            parse_record(&r, 8, false, true),
            Ok(Record::Xor(&[0, 1, 2, 3]))
        );
        let mut longer = r.clone();
        longer.extend_from_slice(b"next record");
        assert_eq!(
            parse_record(&longer, 8, true, true),
            Ok(Record::Xor(&[0, 1, 2, 3]))
        );
        assert_eq!(
            parse_record(&r[..5], 8, false, true),
            Ok(Record::Incomplete { len: 10 })
        );
        assert_eq!(
            parse_record(&r[..5], 8, true, true),
            Err(ChunkReadError::Truncated { chunk_ref: 8 })
        );
        let mut bad = r.clone();
        bad[3] ^= 1;
        assert!(matches!(
            parse_record(&bad, 8, false, true),
            Err(ChunkReadError::Checksum { .. })
        ));
        // A block checked whole skips the CRC.
        assert_eq!(
            parse_record(&bad, 8, false, false),
            Ok(Record::Xor(&[0, 0, 2, 3]))
        );
        assert_eq!(
            parse_record(&record(2, &[9]), 8, false, true),
            Ok(Record::Other(2))
        );
        assert_eq!(
            parse_record(&[0xff; 11], 8, false, true),
            Err(ChunkReadError::Truncated { chunk_ref: 8 })
        );
    }

    fn segments(sizes: &[u64]) -> Vec<Segment> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Segment {
                path: format!("t/b/chunks/{:06}", i + 1),
                size,
            })
            .collect()
    }

    fn needed(segment: u32, offset: u32, end_hint: Option<u64>) -> Needed {
        Needed {
            chunk_ref: strata_storage::block::chunks::chunk_ref(segment, offset),
            end_hint,
        }
    }

    #[test]
    fn coalesces_chunks_of_a_segment_into_few_ranges() {
        let segs = segments(&[4 << 20, 100]);
        let far = 500 + CHUNK_SIZE_ESTIMATE as u32 + MAX_GAP as u32 + 1;
        let planned = plan(
            &segs,
            &[
                needed(0, 500, None),
                needed(0, 8, Some(300)),
                needed(0, 300, Some(500)),
                needed(1, 8, None),
                needed(0, far, None),
            ],
        )
        .unwrap();
        assert_eq!(
            planned,
            vec![
                Planned {
                    segment: 0,
                    range: 8..500 + CHUNK_SIZE_ESTIMATE,
                },
                Planned {
                    segment: 0,
                    range: u64::from(far)..u64::from(far) + CHUNK_SIZE_ESTIMATE,
                },
                // Clipped to the segment's size.
                Planned {
                    segment: 1,
                    range: 8..100,
                },
            ]
        );
        assert!(matches!(
            plan(&segs, &[needed(2, 8, None)]),
            Err(ChunkReadError::NoSegment { .. })
        ));
        assert!(matches!(
            plan(&segs, &[needed(1, 100, None)]),
            Err(ChunkReadError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn varints() {
        assert_eq!(uvarint(&[0]), Some((0, 1)));
        assert_eq!(uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uvarint(&max), Some((u64::MAX, 10)));
    }
}
