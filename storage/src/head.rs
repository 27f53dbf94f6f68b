//! The head: one tenant's in-memory series on one shard — their labels, samples (XOR chunks) and
//! the postings index over them.
//!
//! A head is owned by exactly one shard thread: no locks, no shared ownership. Its parts:
//! - a [`SymbolTable`]: every label name and value stored once, named by a `u32` id;
//! - series records in pages ([`PagedVec`]), each with its label ids stored in one id arena
//!   (`name, value` pairs sorted by name), its open chunk and a list of its closed chunks;
//! - a hash index from the label-set hash to series refs (`u32`); a hit is always confirmed by
//!   comparing the label set, so colliding label sets are distinct series;
//! - [`Postings`]: for every label pair the sorted list of its series;
//! - a chunk arena: closed chunks' bytes, appended into large pages and borrowed by readers. A
//!   full page may leave anonymous memory ([`Head::page_spilled`]): the engine writes it to a
//!   file and hands back a read-only mapping of it, as Prometheus memory-maps its full head
//!   chunks.
//!
//! Series are garbage-collected ([`Head::gc`], after [`Head::truncate_before`]): a series whose
//! samples are all in blocks is dropped with its labels, index entries and postings.
//!
//! Invariants:
//! - series refs are handed out in creation order, `0..next_ref()`, and never reused: a dropped
//!   series leaves a tombstone under its ref (whole pages of tombstones are released), so the
//!   WAL, which names series by ref, never names two series by one ref. A replay recreates each
//!   series under the ref the WAL names ([`Head::create_with_ref`]);
//! - `by_hash` and the postings hold exactly the live series; the symbol table and the label id
//!   arena hold only what live series use (the garbage collection rebuilds them);
//! - per series, samples are strictly increasing in time; a sample at the newest timestamp with
//!   identical value bits is accepted as a no-op, anything else at or before it is rejected;
//! - chunk boundaries depend only on the samples (see [`series`]), so replicas cut identical
//!   chunks;
//! - in steady state an append allocates nothing: the open chunk's buffer is sized for a full
//!   chunk up front, and a closed chunk is copied into the arena once.

mod arena;
mod chunks;
mod gc;
mod paged;
mod postings;
mod query;
mod series;
mod spill;
#[cfg(test)]
mod test_support;
mod truncate;

use hashbrown::HashTable;

use crate::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, XorEncoder};
use crate::labels::{Label, Labels};
use crate::symbols::SymbolTable;

use self::arena::ByteArena;
use self::paged::{IdArena, PagedVec};
use self::postings::Postings;
use self::series::{ClosedChunk, NO_CHUNK, Series};

pub use self::arena::{PageBytes, PageId};
pub use self::chunks::Chunks;

/// A series' id within its head.
pub type SeriesRef = u32;

/// How a head cuts chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this many milliseconds (clock-aligned windows). Values
    /// below 1 are treated as 1.
    pub chunk_range_ms: i64,
    /// A chunk is closed when it holds this many samples. 0 is treated as 1.
    pub max_samples_per_chunk: u16,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range_ms: 2 * 3600 * 1000,
            max_samples_per_chunk: MAX_SAMPLES_PER_CHUNK,
        }
    }
}

/// Why a sample was not appended.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// The sample is older than the series' newest sample.
    #[error("out of order sample")]
    OutOfOrder { last_t: i64 },
    /// The sample has the newest sample's timestamp but a different value.
    #[error("duplicate sample for timestamp")]
    Duplicate,
}

/// One chunk of a series: its time range and XOR chunk data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta<'a> {
    pub min_t: i64,
    pub max_t: i64,
    pub data: &'a [u8],
}

/// Bytes of memory a head holds, by part (approximate: allocator overhead is not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadMemory {
    /// Series records.
    pub series: usize,
    /// Label id pairs.
    pub labels: usize,
    /// The hash index from label sets to series.
    pub series_index: usize,
    /// Postings lists and the per-name value lists.
    pub postings: usize,
    /// Interned strings.
    pub symbols: usize,
    /// Open chunks' buffers, closed chunks' bytes in anonymous memory and their records.
    pub chunks: usize,
    /// Closed chunks' bytes held outside anonymous memory (full pages spilled to mapped files;
    /// see [`Head::page_spilled`]). Not part of [`Self::total`]: the kernel pages them in on
    /// reads and may drop them again.
    pub mapped_chunks: usize,
}

impl HeadMemory {
    /// Anonymous memory: every part but [`Self::mapped_chunks`].
    pub fn total(&self) -> usize {
        self.series + self.labels + self.series_index + self.postings + self.symbols + self.chunks
    }

    /// Everything except chunk data and chunk records.
    pub fn without_chunks(&self) -> usize {
        self.total() - self.chunks
    }
}

/// One tenant's series on one shard.
#[derive(Debug)]
pub struct Head {
    /// Options with out-of-range values already clamped.
    opts: HeadOptions,
    symbols: SymbolTable,
    series: PagedVec<Series>,
    label_ids: IdArena,
    by_hash: HashTable<SeriesRef>,
    postings: Postings,
    closed: PagedVec<ClosedChunk>,
    chunk_bytes: ByteArena,
    /// Sum of the open chunks' buffer sizes.
    open_chunk_bytes: usize,
    /// Series created but not yet given a sample.
    series_without_samples: usize,
    /// Live series (refs handed out minus tombstones).
    live_series: usize,
    min_t: i64,
    max_t: i64,
    /// Scratch for label ids in `create`, kept to avoid an allocation per new series.
    scratch: Vec<u32>,
}

impl Head {
    pub fn new(mut opts: HeadOptions) -> Self {
        opts.chunk_range_ms = opts.chunk_range_ms.max(1);
        opts.max_samples_per_chunk = opts.max_samples_per_chunk.max(1);
        Head {
            opts,
            symbols: SymbolTable::new(),
            series: PagedVec::default(),
            label_ids: IdArena::default(),
            by_hash: HashTable::new(),
            postings: Postings::default(),
            closed: PagedVec::default(),
            chunk_bytes: ByteArena::default(),
            open_chunk_bytes: 0,
            series_without_samples: 0,
            live_series: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
            scratch: Vec::new(),
        }
    }

    /// The series whose labels equal `labels` exactly (pairs as raw bytes, in label order).
    /// `hash` is the [`crate::labels::LabelHasher`] value of the same pairs; it only narrows the
    /// search, the label set itself is always compared.
    pub fn lookup<'a>(
        &self,
        hash: u64,
        labels: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    ) -> Option<SeriesRef> {
        self.by_hash
            .find(hash, move |&r| {
                let s = self.series.get(r);
                s.hash == hash && self.labels_equal(s, labels.clone())
            })
            .copied()
    }

    fn labels_equal<'a>(
        &self,
        s: &Series,
        labels: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> bool {
        let ids = self.label_ids(s);
        let mut i = 0;
        for (name, value) in labels {
            let (Some(&n), Some(&v)) = (ids.get(i), ids.get(i + 1)) else {
                return false;
            };
            if !self.symbols.equals(n, name) || !self.symbols.equals(v, value) {
                return false;
            }
            i += 2;
        }
        i == ids.len()
    }

    /// Creates a series. The caller has validated `labels` (sorted by name, unique names, valid
    /// UTF-8, non-empty values) and checked with [`Self::lookup`] that the series does not exist;
    /// `hash` is the [`crate::labels::LabelHasher`] value of the pairs.
    ///
    /// # Panics
    /// If the head handed out 2^32 refs (refs of dropped series are not handed out again).
    pub fn create<'a>(
        &mut self,
        hash: u64,
        labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> SeriesRef {
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        for (name, value) in labels {
            ids.push(self.symbols.intern(name));
            ids.push(self.symbols.intern(value));
        }
        let num_labels = u32::try_from(ids.len() / 2).expect("more than 2^32 labels");
        let off = self.label_ids.push(&ids);
        let r = self.series.push(Series::new(hash, off, num_labels));
        for pair in ids.chunks_exact(2) {
            self.postings.add(pair[0], pair[1], r);
        }
        self.scratch = ids;
        let series = &self.series;
        self.by_hash
            .insert_unique(hash, r, |&other| series.get(other).hash);
        self.series_without_samples += 1;
        self.live_series += 1;
        r
    }

    /// Creates a series under ref `r`, as [`Self::create`] does under the next ref: for a replay,
    /// which recreates series under the refs the WAL names them by. Refs between the next one and
    /// `r` are skipped (never handed out). Returns `false`, creating nothing, when `r` was handed
    /// out already (it names a live series or one dropped) or is `u32::MAX`.
    pub fn create_with_ref<'a>(
        &mut self,
        r: SeriesRef,
        hash: u64,
        labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> bool {
        if r < self.next_ref() || r == SeriesRef::MAX {
            return false;
        }
        self.series.skip_to(r, Series::tombstone);
        let created = self.create(hash, labels);
        debug_assert_eq!(created, r);
        true
    }

    /// Makes sure ref `r` is never handed out to a new series: the WAL names it (a series since
    /// dropped). Returns `false` for `u32::MAX`, which is never handed out anyway.
    pub fn reserve_ref(&mut self, r: SeriesRef) -> bool {
        if r == SeriesRef::MAX {
            return false;
        }
        self.series.skip_to(r + 1, Series::tombstone);
        true
    }

    /// Appends a sample to series `s`.
    ///
    /// # Panics
    /// If `s` is not a live series of this head.
    pub fn append(&mut self, s: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let series = self.series.get_mut(s);
        let v_bits = v.to_bits();
        match &series.open {
            None => {
                let cap = series::first_chunk_capacity(self.opts.max_samples_per_chunk);
                series.open = Some(XorEncoder::with_capacity(cap));
                series.open_capacity = cap as u32;
                series.chunk_min_t = t;
                self.open_chunk_bytes += cap;
                self.series_without_samples -= 1;
            }
            Some(open) => {
                if t <= series.last_t {
                    return if t < series.last_t {
                        Err(AppendError::OutOfOrder {
                            last_t: series.last_t,
                        })
                    } else if v_bits == series.last_v {
                        Ok(())
                    } else {
                        Err(AppendError::Duplicate)
                    };
                }
                if open.num_samples() >= self.opts.max_samples_per_chunk
                    || t >= series::window_end(series.chunk_min_t, self.opts.chunk_range_ms)
                {
                    Self::cut(
                        series,
                        &mut self.closed,
                        &mut self.chunk_bytes,
                        &mut self.open_chunk_bytes,
                        self.opts.max_samples_per_chunk,
                        t,
                    );
                }
            }
        }
        if let Some(open) = &mut series.open {
            open.append(t, v);
        }
        series.last_t = t;
        series.last_v = v_bits;
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        Ok(())
    }

    /// Closes `series`' open chunk into the arena and opens an empty one starting at `t`;
    /// `open_bytes` is the running total of open chunks' buffer sizes.
    fn cut(
        series: &mut Series,
        closed: &mut PagedVec<ClosedChunk>,
        arena: &mut ByteArena,
        open_bytes: &mut usize,
        max_samples: u16,
        t: i64,
    ) {
        let Some(old) = series.open.take() else {
            return;
        };
        let data = old.bytes();
        let loc = arena.push(data);
        let len = u32::try_from(data.len()).expect("chunk larger than 4 GiB");
        let idx = closed.push(ClosedChunk {
            min_t: series.chunk_min_t,
            max_t: series.last_t,
            loc,
            len,
            next: NO_CHUNK,
        });
        if series.last_closed == NO_CHUNK {
            series.first_closed = idx;
        } else {
            closed.get_mut(series.last_closed).next = idx;
        }
        series.last_closed = idx;
        let cap = series::next_chunk_capacity(data.len(), old.num_samples(), max_samples);
        *open_bytes = *open_bytes - series.open_capacity as usize + cap;
        series.open = Some(XorEncoder::with_capacity(cap));
        series.open_capacity = cap as u32;
        series.chunk_min_t = t;
    }

    /// The options in effect (out-of-range values clamped).
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// Live series (series dropped by [`Self::gc`] are not counted).
    pub fn num_series(&self) -> usize {
        self.live_series
    }

    /// One more than the largest ref handed out (or skipped over): every ref of a live series is
    /// below it, and no new series gets a ref below it.
    pub fn next_ref(&self) -> SeriesRef {
        // `PagedVec` holds at most 2^32 elements; only a head that handed out ref u32::MAX has
        // 2^32, and it can create no more series.
        SeriesRef::try_from(self.series.len()).unwrap_or(SeriesRef::MAX)
    }

    /// Whether `r` names a live series.
    pub fn is_live(&self, r: SeriesRef) -> bool {
        self.live(r).is_some()
    }

    /// The refs of the live series, ascending.
    pub fn series_refs(&self) -> impl Iterator<Item = SeriesRef> + '_ {
        self.series
            .iter()
            .filter(|(_, s)| !s.is_tombstone())
            .map(|(r, _)| r)
    }

    /// Series `r`, if live.
    #[inline]
    fn live(&self, r: SeriesRef) -> Option<&Series> {
        self.series.try_get(r).filter(|s| !s.is_tombstone())
    }

    /// The oldest sample's timestamp, `i64::MAX` when the head has no samples.
    pub fn min_time(&self) -> i64 {
        self.min_t
    }

    /// The newest sample's timestamp, `i64::MIN` when the head has no samples.
    pub fn max_time(&self) -> i64 {
        self.max_t
    }

    /// The labels of series `s`; empty when `s` is not a live series.
    pub fn labels(&self, s: SeriesRef) -> Labels {
        let n = self.live(s).map_or(0, |s| s.num_labels as usize);
        let mut v = Vec::with_capacity(n);
        self.for_each_label(s, |name, value| {
            v.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        });
        Labels::from_sorted(v)
    }

    /// Calls `f` with each label of series `s`, in label order (never when `s` is not a live
    /// series).
    pub fn for_each_label(&self, s: SeriesRef, mut f: impl FnMut(&str, &str)) {
        let Some(series) = self.live(s) else { return };
        for pair in self.label_ids(series).chunks_exact(2) {
            f(self.symbols.get(pair[0]), self.symbols.get(pair[1]));
        }
    }

    /// The interned strings of this head.
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// The label ids of live series `s`.
    fn label_ids(&self, s: &Series) -> &[u32] {
        debug_assert!(!s.is_tombstone());
        self.label_ids.get(s.labels, s.num_labels as usize * 2)
    }

    /// Bytes of anonymous memory the head holds (series, postings, symbols, chunks),
    /// approximate; spilled chunk pages are not counted.
    pub fn memory_bytes(&self) -> usize {
        self.memory().total()
    }

    /// [`Self::memory_bytes`] by part.
    pub fn memory(&self) -> HeadMemory {
        HeadMemory {
            series: self.series.memory_bytes() + self.scratch.capacity() * 4,
            labels: self.label_ids.memory_bytes(),
            series_index: self.by_hash.allocation_size(),
            postings: self.postings.memory_bytes(),
            symbols: self.symbols.memory_bytes(),
            chunks: self.open_chunk_bytes
                + self.chunk_bytes.memory_bytes()
                + self.closed.memory_bytes(),
            mapped_chunks: self.chunk_bytes.spilled_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{create, lookup};
    use super::*;

    #[test]
    fn create_then_lookup() {
        let mut h = Head::new(HeadOptions::default());
        let a = [("__name__", "up"), ("job", "a")];
        let b = [("__name__", "up"), ("job", "b")];
        assert_eq!(lookup(&h, &a), None);
        let ra = create(&mut h, &a);
        let rb = create(&mut h, &b);
        assert_eq!((ra, rb), (0, 1));
        assert_eq!(lookup(&h, &a), Some(ra));
        assert_eq!(lookup(&h, &b), Some(rb));
        // A prefix or an extension of a label set is another series.
        assert_eq!(lookup(&h, &[("__name__", "up")]), None);
        assert_eq!(
            lookup(&h, &[("__name__", "up"), ("job", "a"), ("x", "y")]),
            None
        );
        assert_eq!(h.labels(ra).to_string(), r#"up{job="a"}"#);
        assert_eq!(h.num_series(), 2);
    }

    #[test]
    fn open_chunk_accounting_follows_cuts() {
        let mut h = Head::new(HeadOptions {
            chunk_range_ms: 1000,
            max_samples_per_chunk: 4,
        });
        let r = create(&mut h, &[("a", "b")]);
        for t in 0..100 {
            h.append(r, t * 7, 1.0).expect("append");
        }
        let s = h.series.get(r);
        assert_eq!(h.open_chunk_bytes, s.open_capacity as usize);
    }
}
