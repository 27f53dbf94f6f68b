//! Reading an index file held in memory: the TOC, the symbol table and the postings offset table
//! are parsed once, in [`IndexReader::new`]; series entries and postings lists are decoded (and
//! their CRCs checked) on each access.
//!
//! Memory: one offset per symbol and one entry per label pair (no copies of the strings, which
//! stay in the index bytes). Prometheus keeps only every 32nd postings-table entry; this reader
//! keeps all of them, trading memory for simpler lookups.

use std::ops::Range;

use crate::labels::{Label, Labels};
use crate::matcher::{MatchType, Matcher};

use super::super::encoding::{Cursor, DecodeError};
use super::postings::{intersect, subtract, union_disjoint};
use super::{
    ChunkRef, Corruption, INDEX_HEADER_LEN, INDEX_MAGIC, INDEX_VERSION, IndexError,
    SERIES_ALIGNMENT, Section, SeriesRef, TOC_LEN,
};

/// Where a string lies in the index bytes.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    len: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start..self.start + self.len as usize
    }
}

/// One label name of the postings offset table and its values.
#[derive(Clone, Debug)]
struct NameEntry {
    name: Span,
    /// Indices into `IndexReader::values`.
    values: Range<usize>,
}

/// One label value of the postings offset table.
#[derive(Clone, Copy, Debug)]
struct ValueEntry {
    value: Span,
    /// Offset of its postings list.
    postings: u64,
}

/// The parsed TOC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Toc {
    symbols: u64,
    series: u64,
    label_indices: u64,
    label_indices_table: u64,
    postings: u64,
    postings_table: u64,
}

/// A block index over its bytes (`B` is anything that derefs to the whole file: a `Vec<u8>`, a
/// `bytes::Bytes` fetched from object storage, a memory map).
#[derive(Clone)]
pub struct IndexReader<B> {
    bytes: B,
    /// Offset of each symbol's length-prefixed string, by symbol ref.
    symbols: Vec<usize>,
    /// Label names in order; the all-postings key `""` is the first when present.
    names: Vec<NameEntry>,
    values: Vec<ValueEntry>,
    /// The series section's byte range.
    series: Range<usize>,
}

impl<B: AsRef<[u8]>> std::fmt::Debug for IndexReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("bytes", &self.bytes.as_ref().len())
            .field("symbols", &self.symbols.len())
            .field("label_names", &self.names.len())
            .field("label_pairs", &self.values.len())
            .field("series_section", &self.series)
            .finish()
    }
}

fn decode_err(section: Section, offset: usize) -> impl Fn(DecodeError) -> IndexError {
    move |e| {
        let reason = match e {
            DecodeError::Eof => Corruption::Truncated,
            DecodeError::Overflow => Corruption::Overflow,
        };
        IndexError::corrupt(section, offset, reason)
    }
}

/// The contents of the `len | contents | CRC` section at `offset`, after checking the CRC.
fn section(b: &[u8], offset: usize, section: Section) -> Result<&[u8], IndexError> {
    let rest = b
        .get(offset..)
        .ok_or_else(|| IndexError::corrupt(section, offset, Corruption::OutOfBounds))?;
    let mut c = Cursor::new(rest);
    let err = decode_err(section, offset);
    let len = c.be32().map_err(&err)? as usize;
    let contents = c.bytes(len).map_err(&err)?;
    let stored = c.be32().map_err(&err)?;
    let computed = crc32c::crc32c(contents);
    if stored != computed {
        return Err(IndexError::Checksum {
            section,
            offset: offset as u64,
            stored,
            computed,
        });
    }
    Ok(contents)
}

fn to_usize(v: u64, section: Section) -> Result<usize, IndexError> {
    usize::try_from(v).map_err(|_| IndexError::corrupt(section, 0, Corruption::OutOfBounds))
}

impl<B: AsRef<[u8]>> IndexReader<B> {
    /// Parses the index's TOC, symbol table and postings offset table.
    pub fn new(bytes: B) -> Result<Self, IndexError> {
        let b = bytes.as_ref();
        if b.len() < INDEX_HEADER_LEN + TOC_LEN {
            return Err(IndexError::TooShort { len: b.len() });
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != INDEX_MAGIC {
            return Err(IndexError::BadMagic(magic));
        }
        if b[4] != INDEX_VERSION {
            return Err(IndexError::UnsupportedVersion(b[4]));
        }
        let toc = read_toc(b)?;
        let toc_start = b.len() - TOC_LEN;
        for off in [
            toc.symbols,
            toc.series,
            toc.label_indices,
            toc.label_indices_table,
            toc.postings,
            toc.postings_table,
        ] {
            if off > toc_start as u64 {
                return Err(IndexError::corrupt(
                    Section::Toc,
                    toc_start,
                    Corruption::OutOfBounds,
                ));
            }
        }
        let symbols = if toc.symbols == 0 {
            Vec::new()
        } else {
            read_symbols(b, to_usize(toc.symbols, Section::Symbols)?)?
        };
        let (names, values) = if toc.postings_table == 0 {
            (Vec::new(), Vec::new())
        } else {
            read_postings_table(
                b,
                to_usize(toc.postings_table, Section::PostingsOffsetTable)?,
            )?
        };
        // The series section ends where the next section (or the TOC) starts.
        let series_start = to_usize(toc.series, Section::Series)?;
        let series_end = [
            toc.label_indices,
            toc.label_indices_table,
            toc.postings,
            toc.postings_table,
        ]
        .into_iter()
        .filter(|&o| o > toc.series)
        .min()
        .map_or(toc_start, |o| o as usize);
        Ok(IndexReader {
            bytes,
            symbols,
            names,
            values,
            series: if toc.series == 0 {
                0..0
            } else {
                series_start..series_end
            },
        })
    }

    fn b(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The string at `s`, validated as UTF-8 when the index was opened.
    fn str_at(&self, s: Span) -> &str {
        std::str::from_utf8(&self.b()[s.range()]).unwrap_or_default()
    }

    /// Number of symbols in the symbol table.
    pub fn num_symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Symbol `r` of the symbol table.
    pub fn symbol(&self, r: u32) -> Result<&str, IndexError> {
        self.symbol_in(r, Section::Symbols, 0)
    }

    /// Symbol `r`, referenced from `section` at `at` (for the error).
    fn symbol_in(&self, r: u32, section: Section, at: usize) -> Result<&str, IndexError> {
        let off = *self
            .symbols
            .get(r as usize)
            .ok_or_else(|| IndexError::corrupt(section, at, Corruption::SymbolOutOfRange(r)))?;
        let b = self.b();
        // Lengths, bounds and UTF-8 were checked when the table was read.
        let mut c = Cursor::new(&b[off..]);
        let s = c
            .uvarint_bytes()
            .map_err(decode_err(Section::Symbols, off))?;
        std::str::from_utf8(s)
            .map_err(|_| IndexError::corrupt(Section::Symbols, off, Corruption::InvalidUtf8))
    }

    /// Label names of the block's series, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.names
            .iter()
            .filter(|n| n.name.len > 0)
            .map(|n| self.str_at(n.name))
            .collect()
    }

    /// Values of label `name`, sorted (empty if no series has the label).
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.find_name(name).map_or_else(Vec::new, |n| {
            self.values[n.values.clone()]
                .iter()
                .map(|v| self.str_at(v.value))
                .collect()
        })
    }

    /// The series with label `name="value"`, ascending (empty if none).
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<SeriesRef>, IndexError> {
        match self.find_name(name).and_then(|n| self.find_value(n, value)) {
            Some(v) => self.read_postings(v.postings),
            None => Ok(Vec::new()),
        }
    }

    /// Every series of the block, ascending (the all-postings list).
    pub fn all_postings(&self) -> Result<Vec<SeriesRef>, IndexError> {
        match self.names.first() {
            Some(n) if n.name.len == 0 => match self.find_value(n, "") {
                Some(v) => self.read_postings(v.postings),
                None => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }

    /// The series matching all `matchers`, ascending by ref (which is label order). Semantics as
    /// the head's: a matcher that accepts the empty string also selects series without its
    /// label; no matchers select every series.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, IndexError> {
        let mut include: Vec<Vec<SeriesRef>> = Vec::new();
        let mut exclude: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            let name = self.find_name(m.name());
            if m.matches_empty() {
                // No series has the label: every series matches.
                let Some(name) = name else { continue };
                let ex = self.series_with_value(name, m, false)?;
                if !ex.is_empty() {
                    exclude.push(ex);
                }
            } else {
                let Some(name) = name else {
                    return Ok(Vec::new());
                };
                let inc = self.series_with_value(name, m, true)?;
                if inc.is_empty() {
                    return Ok(Vec::new());
                }
                include.push(inc);
            }
        }
        let mut refs = if include.is_empty() {
            self.all_postings()?
        } else {
            include.sort_unstable_by_key(Vec::len);
            let mut it = include.into_iter();
            let first = it.next().unwrap_or_default();
            it.fold(first, |acc, l| {
                if acc.is_empty() {
                    acc
                } else {
                    intersect(&acc, &l)
                }
            })
        };
        for ex in &exclude {
            if refs.is_empty() {
                break;
            }
            refs = subtract(&refs, ex);
        }
        Ok(refs)
    }

    /// Series that have label `name` with a value `v` for which `m.matches(v) == want`.
    fn series_with_value(
        &self,
        name: &NameEntry,
        m: &Matcher,
        want: bool,
    ) -> Result<Vec<SeriesRef>, IndexError> {
        let lookup = |v: &str| match self.find_value(name, v) {
            Some(v) => self.read_postings(v.postings),
            None => Ok(Vec::new()),
        };
        match (m.match_type(), want) {
            (MatchType::Equal, true) | (MatchType::NotEqual, false) => return lookup(m.value()),
            (MatchType::Regexp, true) | (MatchType::NotRegexp, false) => {
                if let Some(set) = m.set_values() {
                    let lists = set.map(lookup).collect::<Result<Vec<_>, _>>()?;
                    return Ok(union_disjoint(lists));
                }
            }
            _ => {}
        }
        let mut lists = Vec::new();
        for v in &self.values[name.values.clone()] {
            if m.matches(self.str_at(v.value)) == want {
                lists.push(self.read_postings(v.postings)?);
            }
        }
        Ok(union_disjoint(lists))
    }

    /// The entry of label name `name`; never the all-postings key.
    fn find_name(&self, name: &str) -> Option<&NameEntry> {
        if name.is_empty() {
            return None;
        }
        let b = self.b();
        self.names
            .binary_search_by(|n| b[n.name.range()].cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.names[i])
    }

    fn find_value(&self, name: &NameEntry, value: &str) -> Option<ValueEntry> {
        let b = self.b();
        let values = &self.values[name.values.clone()];
        values
            .binary_search_by(|v| b[v.value.range()].cmp(value.as_bytes()))
            .ok()
            .map(|i| values[i])
    }

    /// Decodes the postings list at `offset`, checking its CRC and order.
    fn read_postings(&self, offset: u64) -> Result<Vec<SeriesRef>, IndexError> {
        let offset = to_usize(offset, Section::Postings)?;
        let contents = section(self.b(), offset, Section::Postings)?;
        let mut c = Cursor::new(contents);
        let err = decode_err(Section::Postings, offset);
        let n = c.be32().map_err(&err)? as usize;
        if c.remaining() / 4 != n || !c.remaining().is_multiple_of(4) {
            let reason = if c.remaining() / 4 < n {
                Corruption::Truncated
            } else {
                Corruption::TrailingBytes
            };
            return Err(IndexError::corrupt(Section::Postings, offset, reason));
        }
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            refs.push(c.be32().map_err(&err)?);
        }
        if refs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(IndexError::corrupt(
                Section::Postings,
                offset,
                Corruption::NotSorted,
            ));
        }
        Ok(refs)
    }

    /// The labels and chunks of series `r`.
    pub fn series(&self, r: SeriesRef) -> Result<(Labels, Vec<ChunkRef>), IndexError> {
        let mut chunks = Vec::new();
        let labels = self.series_into(r, &mut chunks)?;
        Ok((labels, chunks))
    }

    /// The labels of series `r`; its chunks replace the contents of `chunks` (so a caller
    /// walking many series reuses one buffer).
    pub fn series_into(
        &self,
        r: SeriesRef,
        chunks: &mut Vec<ChunkRef>,
    ) -> Result<Labels, IndexError> {
        chunks.clear();
        let offset = u64::from(r) * SERIES_ALIGNMENT;
        let out_of_range =
            || IndexError::corrupt(Section::Series, 0, Corruption::SeriesOutOfRange(r));
        let offset = usize::try_from(offset).map_err(|_| out_of_range())?;
        if !self.series.contains(&offset) {
            return Err(out_of_range());
        }
        let entry = &self.b()[offset..self.series.end];
        let err = decode_err(Section::Series, offset);
        let mut c = Cursor::new(entry);
        let len = c.uvarint_usize().map_err(&err)?;
        let contents = c.bytes(len).map_err(&err)?;
        let stored = c.be32().map_err(&err)?;
        let computed = crc32c::crc32c(contents);
        if stored != computed {
            return Err(IndexError::Checksum {
                section: Section::Series,
                offset: offset as u64,
                stored,
                computed,
            });
        }

        let mut c = Cursor::new(contents);
        let num_labels = c.uvarint_usize().map_err(&err)?;
        // Each label takes at least two bytes: never reserve more than the entry can hold.
        let mut labels: Vec<Label> = Vec::with_capacity(num_labels.min(contents.len() / 2));
        for _ in 0..num_labels {
            let name = self.symbol_in(c.uvarint32().map_err(&err)?, Section::Series, offset)?;
            let value = self.symbol_in(c.uvarint32().map_err(&err)?, Section::Series, offset)?;
            if labels.last().is_some_and(|l| l.name.as_str() >= name) {
                return Err(IndexError::corrupt(
                    Section::Series,
                    offset,
                    Corruption::LabelsNotSorted,
                ));
            }
            labels.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }

        let num_chunks = c.uvarint_usize().map_err(&err)?;
        chunks.reserve(num_chunks.min(c.remaining() / 3));
        let mut prev = ChunkRef {
            min_t: 0,
            max_t: 0,
            chunk_ref: 0,
        };
        for i in 0..num_chunks {
            // Go's arithmetic wraps; so does this, so any file decodes as Prometheus decodes it.
            let cm = if i == 0 {
                let min_t = c.varint().map_err(&err)?;
                let max_t = min_t.wrapping_add(c.uvarint().map_err(&err)? as i64);
                let chunk_ref = c.uvarint().map_err(&err)?;
                ChunkRef {
                    min_t,
                    max_t,
                    chunk_ref,
                }
            } else {
                let min_t = prev.max_t.wrapping_add(c.uvarint().map_err(&err)? as i64);
                let max_t = min_t.wrapping_add(c.uvarint().map_err(&err)? as i64);
                let chunk_ref = prev
                    .chunk_ref
                    .wrapping_add(c.varint().map_err(&err)? as u64);
                ChunkRef {
                    min_t,
                    max_t,
                    chunk_ref,
                }
            };
            chunks.push(cm);
            prev = cm;
        }
        if !c.is_empty() {
            return Err(IndexError::corrupt(
                Section::Series,
                offset,
                Corruption::TrailingBytes,
            ));
        }
        Ok(Labels::from_sorted(labels))
    }
}

fn read_toc(b: &[u8]) -> Result<Toc, IndexError> {
    let start = b.len() - TOC_LEN;
    let mut c = Cursor::new(&b[start..]);
    let err = decode_err(Section::Toc, start);
    let body = c.bytes(TOC_LEN - 4).map_err(&err)?;
    let stored = c.be32().map_err(&err)?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(IndexError::Checksum {
            section: Section::Toc,
            offset: start as u64,
            stored,
            computed,
        });
    }
    let mut c = Cursor::new(body);
    let mut next = || c.be64().map_err(&err);
    Ok(Toc {
        symbols: next()?,
        series: next()?,
        label_indices: next()?,
        label_indices_table: next()?,
        postings: next()?,
        postings_table: next()?,
    })
}

/// Reads the symbol table at `offset`: the offset of every symbol, after checking each is valid
/// UTF-8 and lies inside the table.
fn read_symbols(b: &[u8], offset: usize) -> Result<Vec<usize>, IndexError> {
    let contents = section(b, offset, Section::Symbols)?;
    // The contents start after the 4-byte length.
    let base = offset + 4;
    let err = decode_err(Section::Symbols, offset);
    let mut c = Cursor::new(contents);
    let n = c.be32().map_err(&err)? as usize;
    // Each symbol takes at least one byte.
    let mut symbols = Vec::with_capacity(n.min(c.remaining()));
    for _ in 0..n {
        let at = base + c.pos();
        let s = c.uvarint_bytes().map_err(&err)?;
        if std::str::from_utf8(s).is_err() {
            return Err(IndexError::corrupt(
                Section::Symbols,
                at,
                Corruption::InvalidUtf8,
            ));
        }
        symbols.push(at);
    }
    if !c.is_empty() {
        return Err(IndexError::corrupt(
            Section::Symbols,
            offset,
            Corruption::TrailingBytes,
        ));
    }
    Ok(symbols)
}

/// Reads the postings offset table at `offset`, checking that it is sorted by name then value
/// without duplicates and that every string is UTF-8.
fn read_postings_table(
    b: &[u8],
    offset: usize,
) -> Result<(Vec<NameEntry>, Vec<ValueEntry>), IndexError> {
    let contents = section(b, offset, Section::PostingsOffsetTable)?;
    let base = offset + 4;
    let err = decode_err(Section::PostingsOffsetTable, offset);
    let corrupt = |reason| IndexError::corrupt(Section::PostingsOffsetTable, offset, reason);
    let mut c = Cursor::new(contents);
    let n = c.be32().map_err(&err)? as usize;
    let mut names: Vec<NameEntry> = Vec::new();
    // Each entry takes at least four bytes.
    let mut values: Vec<ValueEntry> = Vec::with_capacity(n.min(c.remaining() / 4));
    let span = |c: &Cursor<'_>, s: &[u8]| -> Result<Span, IndexError> {
        if std::str::from_utf8(s).is_err() {
            return Err(corrupt(Corruption::InvalidUtf8));
        }
        let len = u32::try_from(s.len()).map_err(|_| corrupt(Corruption::Overflow))?;
        Ok(Span {
            start: base + c.pos() - s.len(),
            len,
        })
    };
    for _ in 0..n {
        let keys = c.uvarint().map_err(&err)?;
        if keys != 2 {
            return Err(corrupt(Corruption::KeyCount(keys)));
        }
        let name = c.uvarint_bytes().map_err(&err)?;
        let name = span(&c, name)?;
        let value = c.uvarint_bytes().map_err(&err)?;
        let value = span(&c, value)?;
        let postings = c.uvarint().map_err(&err)?;
        let same_name = names
            .last()
            .map(|last| b[last.name.range()].cmp(&b[name.range()]));
        match same_name {
            Some(std::cmp::Ordering::Equal) => {
                let prev = values.last().map(|v| &b[v.value.range()]);
                if prev.is_some_and(|p| p >= &b[value.range()]) {
                    return Err(corrupt(Corruption::NotSorted));
                }
            }
            Some(std::cmp::Ordering::Greater) => return Err(corrupt(Corruption::NotSorted)),
            Some(std::cmp::Ordering::Less) | None => names.push(NameEntry {
                name,
                values: values.len()..values.len(),
            }),
        }
        values.push(ValueEntry { value, postings });
        if let Some(last) = names.last_mut() {
            last.values.end = values.len();
        }
    }
    if !c.is_empty() {
        return Err(corrupt(Corruption::TrailingBytes));
    }
    Ok((names, values))
}
