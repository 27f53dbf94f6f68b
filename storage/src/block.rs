//! Prometheus TSDB blocks: writing and reading index v2, chunk segment files and meta.json.
//!
//! A block is a directory named by its [`Ulid`]:
//!
//! ```text
//! <ULID>/meta.json     identity, [minTime, maxTime), stats, lineage, Thanos/Cortex labels
//! <ULID>/index         format v2: symbols, series, postings, postings offset table, TOC
//! <ULID>/chunks/000001 segment files of CRC-checked XOR chunks, at most 512 MiB each
//! ```
//!
//! The formats are Prometheus's (`../shared/reference/tsdb-format/`); blocks written here pass
//! `promtool tsdb analyze`, and blocks written by Prometheus, Thanos, Cortex or Mimir are read.
//! Decisions within the spec:
//! - the index omits the label indices (unused by every v2 reader) and writes an empty label
//!   offset table; series are 16-byte aligned and sorted by label set, postings 4-byte aligned,
//!   contiguous and in postings-offset-table order (see [`index`]);
//! - chunk refs grow in series order, even when series are added out of order (see
//!   [`BlockWriter`]);
//! - no `tombstones` file: a block without one has no deletions, as Prometheus, Thanos and Cortex
//!   read it;
//! - only XOR chunks are written; the reader returns any encoding's bytes through
//!   [`ChunkReader::chunk_with_encoding`].
//!
//! Readers work on bytes in memory of any origin ([`IndexReader`], [`ChunkReader`]);
//! [`Block::open`] is the convenience for a local directory and reads every file whole.
//! Every decoding error is a typed error: block files are outside input and never cause a panic.

pub mod chunks;
mod encoding;
pub mod index;
pub mod meta;
pub mod ulid;
pub mod writer;

use std::fs;
use std::path::{Path, PathBuf};

pub use self::chunks::{ChunkReadError, ChunkReader};
pub use self::index::{ChunkRef, IndexError, IndexReader, SeriesRef};
pub use self::meta::{BlockMeta, BlockStats, ThanosMeta};
pub use self::ulid::Ulid;
pub use self::writer::{BlockWriter, BlockWriterOptions, InvalidSeries, WriteError};

/// Why a block directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: meta.json version {version} is not supported (only 1)")]
    MetaVersion { path: PathBuf, version: u32 },
    #[error("{path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: IndexError,
    },
    #[error("{path}: {source}")]
    Chunks {
        path: PathBuf,
        #[source]
        source: ChunkReadError,
    },
}

/// A block read from a local directory, every file held in memory.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader<Vec<u8>>,
    chunks: ChunkReader<Vec<u8>>,
}

fn read(path: &Path) -> Result<Vec<u8>, BlockError> {
    fs::read(path).map_err(|source| BlockError::Io {
        path: path.to_owned(),
        source,
    })
}

impl Block {
    /// Reads block directory `dir`: meta.json, the index and every segment file in `chunks/`
    /// (files named by numbers, in numeric order), all into memory.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let meta_path = dir.join(meta::META_FILENAME);
        let meta = BlockMeta::from_json(&read(&meta_path)?).map_err(|source| BlockError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        if meta.version != meta::META_VERSION {
            return Err(BlockError::MetaVersion {
                path: meta_path,
                version: meta.version,
            });
        }

        let index_path = dir.join("index");
        let index = IndexReader::new(read(&index_path)?).map_err(|source| BlockError::Index {
            path: index_path,
            source,
        })?;

        let chunks_dir = dir.join("chunks");
        let io_err = |source| BlockError::Io {
            path: chunks_dir.clone(),
            source,
        };
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&chunks_dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            files.push((n, entry.path()));
        }
        files.sort_unstable();
        let segments = files
            .iter()
            .map(|(_, p)| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let chunks = ChunkReader::new(segments).map_err(|source| BlockError::Chunks {
            path: chunks_dir.clone(),
            source,
        })?;
        Ok(Block {
            dir: dir.to_owned(),
            meta,
            index,
            chunks,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn index(&self) -> &IndexReader<Vec<u8>> {
        &self.index
    }

    pub fn chunks(&self) -> &ChunkReader<Vec<u8>> {
        &self.chunks
    }
}
