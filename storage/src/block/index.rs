//! The block `index` file, format v2: writing ([`writer`]) and reading ([`IndexReader`]).
//!
//! Layout as this crate writes it (all integers big-endian; every section's CRC32C covers the
//! `len` bytes after its length field):
//!
//! 1. header: magic `0xBAAAD700`, version byte `2`;
//! 2. symbol table: every label name and value once, sorted bytewise, no empty string; series
//!    name their labels by index into it;
//! 3. series: sorted by label set (pair by pair, name then value, a prefix first); each entry
//!    starts at a multiple of 16 (zero padding) and its ref is `offset / 16`, so sorted refs are
//!    sorted label sets. Chunk metas are delta-encoded as the spec says; chunk refs grow from one
//!    series to the next and within a series;
//! 4. label indices: omitted (no reader of v2 uses them; Prometheus stopped writing them too).
//!    The TOC's label-indices ref points at the postings start, an empty section;
//! 5. postings: one list per label pair plus the all-postings list (key `("", "")`, every series)
//!    first, in postings-offset-table order, contiguous and 4-byte aligned;
//! 6. label offset table: present but empty (zero entries). Its TOC ref marks the end of the last
//!    postings list, which Thanos's and Mimir's index-headers rely on;
//! 7. postings offset table: `(name, value) -> offset` for every list, sorted by name then value;
//! 8. TOC: six 8-byte section refs and a CRC.
//!
//! The reader accepts any v2 index that follows the spec (including Prometheus's, with label
//! indices and `""` in the symbol table), and turns every malformed byte into an
//! [`IndexError`]: index files are outside input.

mod postings;
pub(crate) mod reader;
pub(crate) mod writer;

use std::fmt;

pub use self::reader::IndexReader;

/// Magic number at the start of an index file.
pub const INDEX_MAGIC: u32 = 0xBAAA_D700;
/// The index format version written and read.
pub const INDEX_VERSION: u8 = 2;
/// Bytes of the header: magic and version.
pub const INDEX_HEADER_LEN: usize = 5;
/// Bytes of the TOC at the end of the file: six refs and a CRC.
pub const TOC_LEN: usize = 6 * 8 + 4;
/// Series entries start at multiples of this; a series ref is its offset divided by it.
pub const SERIES_ALIGNMENT: u64 = 16;

/// A series in a block index: its entry's offset divided by 16.
pub type SeriesRef = u32;

/// One chunk of a series as the index describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// Time of the chunk's first sample (ms).
    pub min_t: i64,
    /// Time of the chunk's last sample (ms), inclusive.
    pub max_t: i64,
    /// Where the chunk lies in the segment files (see [`super::chunks`]).
    pub chunk_ref: u64,
}

/// The parts of an index file, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Section {
    Header,
    Toc,
    Symbols,
    Series,
    Postings,
    PostingsOffsetTable,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Header => "header",
            Section::Toc => "table of contents",
            Section::Symbols => "symbol table",
            Section::Series => "series",
            Section::Postings => "postings list",
            Section::PostingsOffsetTable => "postings offset table",
        })
    }
}

/// What is wrong with a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    #[error("it lies outside the file")]
    OutOfBounds,
    #[error("it ends before its contents do")]
    Truncated,
    #[error("a varint or count overflows")]
    Overflow,
    #[error("bytes are left after its contents")]
    TrailingBytes,
    #[error("a string is not valid UTF-8")]
    InvalidUtf8,
    #[error("its entries are not sorted")]
    NotSorted,
    #[error("symbol ref {0} is out of range")]
    SymbolOutOfRange(u32),
    #[error("an entry has {0} keys instead of 2")]
    KeyCount(u64),
    #[error("its labels are not sorted by name with unique names")]
    LabelsNotSorted,
    #[error("series ref {0} is outside the series section")]
    SeriesOutOfRange(u32),
}

/// Why an index could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("index of {len} bytes is too short")]
    TooShort { len: usize },
    #[error("index has bad magic {0:#010x}")]
    BadMagic(u32),
    #[error("index version {0} is not supported (only 2)")]
    UnsupportedVersion(u8),
    #[error(
        "index {section} at offset {offset}: checksum mismatch (stored {stored:#010x}, computed \
         {computed:#010x})"
    )]
    Checksum {
        section: Section,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("index {section} at offset {offset} is corrupt: {reason}")]
    Corrupt {
        section: Section,
        offset: u64,
        reason: Corruption,
    },
}

impl IndexError {
    fn corrupt(section: Section, offset: usize, reason: Corruption) -> Self {
        IndexError::Corrupt {
            section,
            offset: offset as u64,
            reason,
        }
    }
}
