//! Writing an index file from series already sorted by label set (see the parent module for the
//! layout). The caller ([`crate::block::BlockWriter`]) interns and sorts; this module lays out
//! bytes. Everything is streamed through one buffered file; the only large allocation is the
//! postings lists (one `u32` per label of every series), built in one pass as offsets into a
//! single array.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::super::encoding::{put_uvarint, put_varint, uvarint_array, uvarint_len};
use super::super::writer::WriteError;
use super::{ChunkRef, INDEX_MAGIC, INDEX_VERSION, SERIES_ALIGNMENT, SeriesRef};

/// Buffer size of the index file writer.
const WRITE_BUFFER: usize = 1 << 20;

/// The index file being written, with its current size.
struct IndexFile {
    w: BufWriter<File>,
    pos: u64,
    path: PathBuf,
}

impl IndexFile {
    fn create(path: &Path) -> Result<Self, WriteError> {
        let file = File::create(path).map_err(|e| WriteError::io(path, e))?;
        Ok(IndexFile {
            w: BufWriter::with_capacity(WRITE_BUFFER, file),
            pos: 0,
            path: path.to_owned(),
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), WriteError> {
        self.w
            .write_all(b)
            .map_err(|e| WriteError::io(&self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes zero bytes up to the next multiple of `align`.
    fn pad_to(&mut self, align: u64) -> Result<(), WriteError> {
        let pad = (align - self.pos % align) % align;
        self.write(&[0u8; 16][..pad as usize])
    }

    fn finish(self) -> Result<(), WriteError> {
        let path = self.path;
        let file = self
            .w
            .into_inner()
            .map_err(|e| WriteError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| WriteError::io(&path, e))
    }
}

/// Section refs for the TOC.
#[derive(Default)]
struct Toc {
    symbols: u64,
    series: u64,
    label_indices: u64,
    label_indices_table: u64,
    postings: u64,
    postings_table: u64,
}

/// Writes the index file at `path`.
///
/// - `symbols`: every label name and value, sorted and unique;
/// - `pairs`: every label pair as `(name, value)` symbol refs, sorted (so by name, then value);
/// - `series`: each series' label pairs (indices into `pairs`, in label-name order) and chunks,
///   in label-set order. It is walked twice (once to size the postings lists).
pub(crate) fn write_index<'a, I>(
    path: &Path,
    symbols: &[&str],
    pairs: &[(u32, u32)],
    series: I,
) -> Result<(), WriteError>
where
    I: Iterator<Item = (&'a [u32], &'a [ChunkRef])> + Clone,
{
    let mut f = IndexFile::create(path)?;
    let mut toc = Toc::default();
    f.write(&INDEX_MAGIC.to_be_bytes())?;
    f.write(&[INDEX_VERSION])?;

    toc.symbols = f.pos;
    write_symbols(&mut f, symbols)?;

    // Postings lists as ranges of one array: `starts[p]..starts[p + 1]` holds pair p's series.
    let mut starts = vec![0usize; pairs.len() + 1];
    for (labels, _) in series.clone() {
        for &p in labels {
            starts[p as usize + 1] += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut lists: Vec<SeriesRef> = vec![0; starts[pairs.len()]];
    let mut fill = starts[..pairs.len()].to_vec();
    let mut all: Vec<SeriesRef> = Vec::new();

    toc.series = f.pos;
    let mut buf = Vec::with_capacity(256);
    for (labels, chunks) in series {
        f.pad_to(SERIES_ALIGNMENT)?;
        let r = SeriesRef::try_from(f.pos / SERIES_ALIGNMENT)
            .map_err(|_| WriteError::TooLarge("series section over 64 GiB"))?;
        all.push(r);
        for &p in labels {
            lists[fill[p as usize]] = r;
            fill[p as usize] += 1;
        }
        encode_series(&mut buf, labels, pairs, chunks);
        let (len, n) = uvarint_array(buf.len() as u64);
        f.write(&len[..n])?;
        f.write(&buf)?;
        f.write(&crc32c::crc32c(&buf).to_be_bytes())?;
    }

    f.pad_to(4)?;
    // No label indices: an empty section where the postings start.
    toc.label_indices = f.pos;
    toc.postings = f.pos;
    let mut offsets = Vec::with_capacity(pairs.len() + 1);
    offsets.push(f.pos);
    write_postings(&mut f, &mut buf, &all)?;
    for p in 0..pairs.len() {
        offsets.push(f.pos);
        write_postings(&mut f, &mut buf, &lists[starts[p]..starts[p + 1]])?;
    }

    // An empty label offset table; its position marks the end of the postings.
    toc.label_indices_table = f.pos;
    f.write(&4u32.to_be_bytes())?;
    f.write(&0u32.to_be_bytes())?;
    f.write(&crc32c::crc32c(&0u32.to_be_bytes()).to_be_bytes())?;

    toc.postings_table = f.pos;
    write_postings_table(&mut f, symbols, pairs, &offsets)?;

    buf.clear();
    for r in [
        toc.symbols,
        toc.series,
        toc.label_indices,
        toc.label_indices_table,
        toc.postings,
        toc.postings_table,
    ] {
        buf.extend_from_slice(&r.to_be_bytes());
    }
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_be_bytes());
    f.write(&buf)?;
    f.finish()
}

fn write_symbols(f: &mut IndexFile, symbols: &[&str]) -> Result<(), WriteError> {
    let len: u64 = 4 + symbols
        .iter()
        .map(|s| (uvarint_len(s.len() as u64) + s.len()) as u64)
        .sum::<u64>();
    let len = u32::try_from(len).map_err(|_| WriteError::TooLarge("symbol table over 4 GiB"))?;
    let count =
        u32::try_from(symbols.len()).map_err(|_| WriteError::TooLarge("more than 2^32 symbols"))?;
    f.write(&len.to_be_bytes())?;
    f.write(&count.to_be_bytes())?;
    let mut crc = crc32c::crc32c(&count.to_be_bytes());
    for s in symbols {
        let (head, n) = uvarint_array(s.len() as u64);
        f.write(&head[..n])?;
        f.write(s.as_bytes())?;
        crc = crc32c::crc32c_append(crc, &head[..n]);
        crc = crc32c::crc32c_append(crc, s.as_bytes());
    }
    f.write(&crc.to_be_bytes())
}

/// Encodes one series entry's contents (without its length and CRC) into `buf`.
fn encode_series(buf: &mut Vec<u8>, labels: &[u32], pairs: &[(u32, u32)], chunks: &[ChunkRef]) {
    buf.clear();
    put_uvarint(buf, labels.len() as u64);
    for &p in labels {
        let (name, value) = pairs[p as usize];
        put_uvarint(buf, u64::from(name));
        put_uvarint(buf, u64::from(value));
    }
    put_uvarint(buf, chunks.len() as u64);
    let mut prev: Option<&ChunkRef> = None;
    for c in chunks {
        // Wrapping as Go's int64 arithmetic; the block writer checked the chunks' order.
        match prev {
            None => {
                put_varint(buf, c.min_t);
                put_uvarint(buf, c.max_t.wrapping_sub(c.min_t) as u64);
                put_uvarint(buf, c.chunk_ref);
            }
            Some(p) => {
                put_uvarint(buf, c.min_t.wrapping_sub(p.max_t) as u64);
                put_uvarint(buf, c.max_t.wrapping_sub(c.min_t) as u64);
                put_varint(buf, c.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
            }
        }
        prev = Some(c);
    }
}

fn write_postings(
    f: &mut IndexFile,
    buf: &mut Vec<u8>,
    refs: &[SeriesRef],
) -> Result<(), WriteError> {
    let too_large = |_| WriteError::TooLarge("postings list over 4 GiB");
    let n = u32::try_from(refs.len()).map_err(too_large)?;
    let len = u32::try_from(4 + 4 * u64::from(n)).map_err(too_large)?;
    buf.clear();
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&n.to_be_bytes());
    for r in refs {
        buf.extend_from_slice(&r.to_be_bytes());
    }
    let crc = crc32c::crc32c(&buf[4..]);
    buf.extend_from_slice(&crc.to_be_bytes());
    f.write(buf)
}

/// Writes the postings offset table: the all-postings key `("", "")` and then every pair, each
/// with the offset of its list (`offsets[0]` for all-postings, `offsets[p + 1]` for pair p).
fn write_postings_table(
    f: &mut IndexFile,
    symbols: &[&str],
    pairs: &[(u32, u32)],
    offsets: &[u64],
) -> Result<(), WriteError> {
    let entry_len = |name: &str, value: &str, off: u64| {
        (1 + uvarint_len(name.len() as u64)
            + name.len()
            + uvarint_len(value.len() as u64)
            + value.len()
            + uvarint_len(off)) as u64
    };
    let entries = || {
        std::iter::once(("", "", offsets[0])).chain(
            pairs
                .iter()
                .zip(&offsets[1..])
                .map(|(&(n, v), &off)| (symbols[n as usize], symbols[v as usize], off)),
        )
    };
    let len = 4 + entries()
        .map(|(n, v, off)| entry_len(n, v, off))
        .sum::<u64>();
    let len =
        u32::try_from(len).map_err(|_| WriteError::TooLarge("postings offset table over 4 GiB"))?;
    let count = u32::try_from(pairs.len() + 1)
        .map_err(|_| WriteError::TooLarge("more than 2^32 label pairs"))?;
    f.write(&len.to_be_bytes())?;
    f.write(&count.to_be_bytes())?;
    let mut crc = crc32c::crc32c(&count.to_be_bytes());
    let mut buf = Vec::with_capacity(64);
    for (name, value, off) in entries() {
        buf.clear();
        buf.push(2);
        put_uvarint(&mut buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
        put_uvarint(&mut buf, value.len() as u64);
        buf.extend_from_slice(value.as_bytes());
        put_uvarint(&mut buf, off);
        crc = crc32c::crc32c_append(crc, &buf);
        f.write(&buf)?;
    }
    f.write(&crc.to_be_bytes())
}
