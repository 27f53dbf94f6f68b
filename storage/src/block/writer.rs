//! Writing one block directory: series arrive in any order, their chunks go straight to the
//! segment files, and [`BlockWriter::finish`] sorts the series, writes the index and then
//! `meta.json`, all inside `<ULID>.tmp`, which it finally renames to `<ULID>` (a reader never
//! sees a partial block).
//!
//! Memory is bounded by the index, not the chunk data: per series its label pairs (`u32` ids
//! into interned strings), per chunk 24 bytes of meta, plus one `u32` per label for the postings
//! at the end.
//!
//! Chunk order: the index format wants chunk refs to grow from one series to the next in label
//! order. If series arrive sorted by labels (a head sorted before cutting a block does this),
//! they already do and chunks are written once. Otherwise `finish` copies the chunk records once
//! more, in series order, into fresh segments, and removes the first ones.
//!
//! Series without chunks are skipped (as Prometheus's compactor does). A series whose chunks are
//! rejected is not added; chunk records it had already written stay in the segment, unreferenced.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use hashbrown::HashMap;

use crate::chunkenc::ENCODING_XOR;
use crate::head::ChunkMeta;
use crate::labels::{Label, Labels};
use crate::symbols::SymbolTable;

use super::chunks::{
    DEFAULT_MAX_SEGMENT_SIZE, SegmentWriter, read_record, segment_path, split_chunk_ref,
};
use super::index::ChunkRef;
use super::index::writer::write_index;
use super::meta::{
    BlockCompaction, BlockMeta, BlockStats, META_FILENAME, META_VERSION, ThanosMeta,
};
use super::ulid::Ulid;

/// Why a block could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("writing block file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("series {labels}: {reason}")]
    InvalidSeries {
        labels: String,
        reason: InvalidSeries,
    },
    #[error("series {labels} was added twice")]
    DuplicateSeries { labels: String },
    #[error("block too large: {0}")]
    TooLarge(&'static str),
    #[error(
        "samples span [{data_min}, {data_max}], outside the block's time range [{min_time}, \
         {max_time})"
    )]
    OutsideTimeRange {
        min_time: i64,
        max_time: i64,
        data_min: i64,
        data_max: i64,
    },
    #[error("block directory {0} already exists")]
    Exists(PathBuf),
}

impl WriteError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        WriteError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What is wrong with a series passed to [`BlockWriter::add_series`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSeries {
    #[error("labels are not sorted by name with unique names")]
    LabelsNotSorted,
    #[error("a label has an empty name")]
    EmptyName,
    #[error("label {0:?} has an empty value")]
    EmptyValue(String),
    #[error("a chunk's min time {min_t} is after its max time {max_t}")]
    ChunkTimeRange { min_t: i64, max_t: i64 },
    #[error(
        "a chunk starting at {min_t} does not follow the previous chunk ending at {prev_max_t}"
    )]
    ChunksOverlap { prev_max_t: i64, min_t: i64 },
    #[error("a chunk of {0} bytes is shorter than its 2-byte header")]
    ChunkTooShort(usize),
}

/// Options of a [`BlockWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockWriterOptions {
    /// The `thanos` section of meta.json (tenant label, source); `None` leaves it out.
    pub thanos: Option<ThanosMeta>,
    /// Segment files are cut before they grow past this many bytes.
    pub max_segment_size: u64,
    /// meta.json's `[minTime, maxTime)`; by default the samples' own range (newest + 1). When
    /// set, every sample must lie inside it.
    pub time_range: Option<(i64, i64)>,
}

impl Default for BlockWriterOptions {
    fn default() -> Self {
        BlockWriterOptions {
            thanos: None,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
            time_range: None,
        }
    }
}

/// Where one series' label pairs and chunks lie in the writer's arenas.
#[derive(Clone, Copy, Debug)]
struct SeriesSpan {
    labels: (u32, u32),
    chunks: (u32, u32),
}

/// Builds one block directory; see the module docs.
#[derive(Debug)]
pub struct BlockWriter {
    ulid: Ulid,
    /// `<parent>/<ULID>.tmp`, renamed to `dir` by `finish`.
    tmp: PathBuf,
    dir: PathBuf,
    opts: BlockWriterOptions,
    segments: SegmentWriter,
    symbols: SymbolTable,
    /// `(name, value)` symbol ids → pair id.
    pair_ids: HashMap<(u32, u32), u32>,
    /// Pair id → `(name, value)` symbol ids.
    pairs: Vec<(u32, u32)>,
    /// Every series' pair ids, in label order, back to back.
    label_arena: Vec<u32>,
    /// Every series' chunks, back to back.
    chunk_arena: Vec<ChunkRef>,
    /// Series in arrival order.
    series: Vec<SeriesSpan>,
    /// Whether the series so far arrived strictly sorted by labels.
    in_order: bool,
    num_samples: u64,
    min_t: i64,
    max_t: i64,
    /// Set once the block is in place; until then dropping the writer removes `tmp`.
    done: bool,
}

/// `x` as a `u32` arena index.
fn arena_index(x: usize) -> Result<u32, WriteError> {
    u32::try_from(x).map_err(|_| WriteError::TooLarge("more than 2^32 labels or chunks"))
}

impl BlockWriter {
    /// Starts block `ulid` under `parent` (created if missing). A stale `<ULID>.tmp` from an
    /// earlier attempt is removed.
    pub fn new(parent: &Path, ulid: Ulid, opts: BlockWriterOptions) -> Result<Self, WriteError> {
        let name = ulid.to_string();
        let dir = parent.join(&name);
        if dir.exists() {
            return Err(WriteError::Exists(dir));
        }
        let tmp = parent.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| WriteError::io(&tmp, e))?;
        }
        let chunks = tmp.join("chunks");
        fs::create_dir_all(&chunks).map_err(|e| WriteError::io(&chunks, e))?;
        let segments = SegmentWriter::new(chunks, opts.max_segment_size);
        Ok(BlockWriter {
            ulid,
            tmp,
            dir,
            opts,
            segments,
            symbols: SymbolTable::new(),
            pair_ids: HashMap::new(),
            pairs: Vec::new(),
            label_arena: Vec::new(),
            chunk_arena: Vec::new(),
            series: Vec::new(),
            in_order: true,
            num_samples: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
            done: false,
        })
    }

    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Series added so far (series without chunks are not counted).
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Adds a series with its XOR chunks, which must be in time order without overlap. Their
    /// bytes are written to the segment files now. Labels must be sorted with unique, non-empty
    /// names and non-empty values; each label set may be added once.
    pub fn add_series<'c>(
        &mut self,
        labels: &Labels,
        chunks: impl IntoIterator<Item = ChunkMeta<'c>>,
    ) -> Result<(), WriteError> {
        let invalid = |reason| WriteError::InvalidSeries {
            labels: labels.to_string(),
            reason,
        };
        check_labels(labels).map_err(invalid)?;

        let first_chunk = self.chunk_arena.len();
        let mut samples = 0u64;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for c in chunks {
            let checked = check_chunk(&c, self.chunk_arena.get(first_chunk..))
                .map_err(invalid)
                .and_then(|()| self.segments.write_chunk(ENCODING_XOR, c.data));
            let chunk_ref = match checked {
                Ok(r) => r,
                Err(e) => {
                    self.chunk_arena.truncate(first_chunk);
                    return Err(e);
                }
            };
            self.chunk_arena.push(ChunkRef {
                min_t: c.min_t,
                max_t: c.max_t,
                chunk_ref,
            });
            samples += u64::from(u16::from_be_bytes([c.data[0], c.data[1]]));
            min_t = min_t.min(c.min_t);
            max_t = max_t.max(c.max_t);
        }
        if self.chunk_arena.len() == first_chunk {
            return Ok(());
        }

        if self.in_order
            && let Some(prev) = self.series.last()
        {
            self.in_order = self.compare_with(*prev, labels) == Ordering::Less;
        }
        let first_label = self.label_arena.len();
        for l in labels {
            let name = self.symbols.intern(&l.name);
            let value = self.symbols.intern(&l.value);
            let next = arena_index(self.pairs.len())?;
            let id = *self.pair_ids.entry((name, value)).or_insert(next);
            if id == next {
                self.pairs.push((name, value));
            }
            self.label_arena.push(id);
        }
        self.series.push(SeriesSpan {
            labels: (
                arena_index(first_label)?,
                arena_index(self.label_arena.len())?,
            ),
            chunks: (
                arena_index(first_chunk)?,
                arena_index(self.chunk_arena.len())?,
            ),
        });
        self.num_samples += samples;
        self.min_t = self.min_t.min(min_t);
        self.max_t = self.max_t.max(max_t);
        Ok(())
    }

    /// How stored series `s`'s labels compare with `labels`.
    fn compare_with(&self, s: SeriesSpan, labels: &Labels) -> Ordering {
        let ids = &self.label_arena[s.labels.0 as usize..s.labels.1 as usize];
        let stored = ids.iter().map(|&p| {
            let (n, v) = self.pairs[p as usize];
            (self.symbols.get(n), self.symbols.get(v))
        });
        stored.cmp(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Sorts the series, writes the index and meta.json, and moves the block into place.
    pub fn finish(mut self) -> Result<BlockMeta, WriteError> {
        let num_segments = self.segments.close()?;
        // Only needed while adding series.
        drop(std::mem::take(&mut self.pair_ids));

        // Symbols in byte order; pairs ranked by their symbols' ranks, which is (name, value)
        // order. Pair ids in the arena become those ranks, so comparing two series' id slices
        // compares their label sets.
        let mut sym_order: Vec<u32> = (0..arena_index(self.symbols.len())?).collect();
        sym_order.sort_unstable_by(|&a, &b| self.symbols.get(a).cmp(self.symbols.get(b)));
        let mut sym_rank = vec![0u32; sym_order.len()];
        for (rank, &id) in sym_order.iter().enumerate() {
            sym_rank[id as usize] = rank as u32;
        }
        let symbols: Vec<&str> = sym_order.iter().map(|&id| self.symbols.get(id)).collect();
        let ranked = |p: usize| {
            let (n, v) = self.pairs[p];
            (sym_rank[n as usize], sym_rank[v as usize])
        };
        let mut pair_order: Vec<u32> = (0..arena_index(self.pairs.len())?).collect();
        pair_order.sort_unstable_by_key(|&p| ranked(p as usize));
        let mut pair_rank = vec![0u32; pair_order.len()];
        for (rank, &p) in pair_order.iter().enumerate() {
            pair_rank[p as usize] = rank as u32;
        }
        let pairs: Vec<(u32, u32)> = pair_order.iter().map(|&p| ranked(p as usize)).collect();
        for id in &mut self.label_arena {
            *id = pair_rank[*id as usize];
        }

        let labels_of =
            |s: &SeriesSpan| &self.label_arena[s.labels.0 as usize..s.labels.1 as usize];
        let mut order: Vec<u32> = (0..arena_index(self.series.len())?).collect();
        if !self.in_order {
            order.sort_unstable_by(|&a, &b| {
                labels_of(&self.series[a as usize]).cmp(labels_of(&self.series[b as usize]))
            });
            if let Some(w) = order.windows(2).find(|w| {
                labels_of(&self.series[w[0] as usize]) == labels_of(&self.series[w[1] as usize])
            }) {
                let ids = labels_of(&self.series[w[0] as usize]);
                let labels = Labels::from_sorted(
                    ids.iter()
                        .map(|&p| {
                            let (n, v) = pairs[p as usize];
                            Label {
                                name: symbols[n as usize].to_owned(),
                                value: symbols[v as usize].to_owned(),
                            }
                        })
                        .collect(),
                );
                return Err(WriteError::DuplicateSeries {
                    labels: labels.to_string(),
                });
            }
            rewrite_chunks(
                &self.tmp.join("chunks"),
                num_segments,
                self.opts.max_segment_size,
                &self.series,
                &order,
                &mut self.chunk_arena,
            )?;
        }

        let chunk_arena = &self.chunk_arena;
        let series = order.iter().map(|&s| {
            let s = &self.series[s as usize];
            (
                labels_of(s),
                &chunk_arena[s.chunks.0 as usize..s.chunks.1 as usize],
            )
        });
        write_index(&self.tmp.join("index"), &symbols, &pairs, series)?;

        let meta = self.meta()?;
        let meta_path = self.tmp.join(META_FILENAME);
        write_synced(&meta_path, &meta.to_json())?;
        sync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.dir).map_err(|e| WriteError::io(&self.dir, e))?;
        if let Some(parent) = self.dir.parent() {
            sync_dir(parent)?;
        }
        self.done = true;
        Ok(meta)
    }

    fn meta(&self) -> Result<BlockMeta, WriteError> {
        let has_data = !self.series.is_empty();
        let (min_time, max_time) = match self.opts.time_range {
            Some((min_time, max_time)) => {
                if has_data && (self.min_t < min_time || self.max_t >= max_time) {
                    return Err(WriteError::OutsideTimeRange {
                        min_time,
                        max_time,
                        data_min: self.min_t,
                        data_max: self.max_t,
                    });
                }
                (min_time, max_time)
            }
            None if has_data => (self.min_t, self.max_t.saturating_add(1)),
            None => (0, 0),
        };
        Ok(BlockMeta {
            ulid: self.ulid,
            min_time,
            max_time,
            stats: BlockStats {
                num_samples: self.num_samples,
                num_series: self.series.len() as u64,
                num_chunks: self.chunk_arena.len() as u64,
                num_tombstones: 0,
            },
            compaction: BlockCompaction {
                level: 1,
                sources: vec![self.ulid],
                ..BlockCompaction::default()
            },
            version: META_VERSION,
            thanos: self.opts.thanos.clone(),
        })
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: a failed or abandoned block leaves nothing behind.
            let _ = self.segments.close();
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

fn check_labels(labels: &Labels) -> Result<(), InvalidSeries> {
    let mut prev: Option<&str> = None;
    for l in labels {
        if l.name.is_empty() {
            return Err(InvalidSeries::EmptyName);
        }
        if l.value.is_empty() {
            return Err(InvalidSeries::EmptyValue(l.name.clone()));
        }
        if prev.is_some_and(|p| p >= l.name.as_str()) {
            return Err(InvalidSeries::LabelsNotSorted);
        }
        prev = Some(&l.name);
    }
    Ok(())
}

/// Checks chunk `c` against itself and the series' chunks before it (`prev`).
fn check_chunk(c: &ChunkMeta<'_>, prev: Option<&[ChunkRef]>) -> Result<(), InvalidSeries> {
    if c.data.len() < 2 {
        return Err(InvalidSeries::ChunkTooShort(c.data.len()));
    }
    if c.min_t > c.max_t {
        return Err(InvalidSeries::ChunkTimeRange {
            min_t: c.min_t,
            max_t: c.max_t,
        });
    }
    if let Some(p) = prev.and_then(<[ChunkRef]>::last)
        && c.min_t <= p.max_t
    {
        return Err(InvalidSeries::ChunksOverlap {
            prev_max_t: p.max_t,
            min_t: c.min_t,
        });
    }
    Ok(())
}

/// Copies every chunk record from the segments in `dir` into fresh segments in series `order`,
/// updating the refs in `chunks`, and replaces the old segments with the new ones.
fn rewrite_chunks(
    dir: &Path,
    num_segments: u32,
    max_segment_size: u64,
    series: &[SeriesSpan],
    order: &[u32],
    chunks: &mut [ChunkRef],
) -> Result<(), WriteError> {
    let old_dir = dir.with_file_name("chunks.unsorted");
    fs::rename(dir, &old_dir).map_err(|e| WriteError::io(&old_dir, e))?;
    fs::create_dir(dir).map_err(|e| WriteError::io(dir, e))?;
    let mut old = Vec::with_capacity(num_segments as usize);
    for i in 0..num_segments {
        let path = segment_path(&old_dir, i);
        old.push((
            File::open(&path).map_err(|e| WriteError::io(&path, e))?,
            path,
        ));
    }
    let mut writer = SegmentWriter::new(dir.to_owned(), max_segment_size);
    let mut record = Vec::new();
    for &s in order {
        let span = series[s as usize].chunks;
        for c in &mut chunks[span.0 as usize..span.1 as usize] {
            let (segment, offset) = split_chunk_ref(c.chunk_ref);
            let (file, path) = &mut old[segment as usize];
            read_record(file, u64::from(offset), &mut record)
                .map_err(|e| WriteError::io(path, e))?;
            c.chunk_ref = writer.write_record(&record)?;
        }
    }
    writer.close()?;
    drop(old);
    fs::remove_dir_all(&old_dir).map_err(|e| WriteError::io(&old_dir, e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write;
    let mut f = File::create(path).map_err(|e| WriteError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| WriteError::io(path, e))
}

/// Makes a directory's entries durable (renames and new files in it).
fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WriteError::io(dir, e))
}
