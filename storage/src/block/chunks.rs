//! Chunk segment files, `chunks/000001`, `chunks/000002`, ...: writing and reading.
//!
//! A segment is an 8-byte header (magic `0x85BD40DD` big-endian, version 1, three zero bytes)
//! followed by chunk records: `uvarint len | encoding byte | data (len bytes) | CRC32C`, the CRC
//! over the encoding byte and the data, big-endian. A chunk is named by a `u64` ref: the
//! segment's index in the sorted list of segment files (0 for `000001`) in the upper 32 bits and
//! the record's byte offset in that file in the lower 32 bits.
//!
//! The writer cuts a new segment before a record would take the current one past the maximum
//! size (512 MiB, as Prometheus); a record never spans two files, and a record larger than the
//! maximum gets a segment of its own. Segments are created lazily: a block without chunks has
//! none.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::chunkenc::{ENCODING_XOR, chunk_crc32c};

use super::encoding::{Cursor, uvarint_array};
use super::writer::WriteError;

/// Magic number at the start of every segment file.
pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
/// The segment format version.
pub const SEGMENT_VERSION: u8 = 1;
/// Bytes of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 8;
/// Prometheus's maximum segment size.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 512 << 20;

/// Buffer size of a segment file writer.
const WRITE_BUFFER: usize = 1 << 20;

/// The ref of the chunk record at byte `offset` of segment `segment` (0-based).
pub fn chunk_ref(segment: u32, offset: u32) -> u64 {
    u64::from(segment) << 32 | u64::from(offset)
}

/// The segment index and byte offset of chunk ref `r`.
pub fn split_chunk_ref(r: u64) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// The file name of segment `index` (0-based): `000001` for 0.
pub fn segment_file_name(index: u32) -> String {
    format!("{:06}", u64::from(index) + 1)
}

/// Why a chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkReadError {
    #[error("chunk segment {segment}: {len} bytes is shorter than the 8-byte header")]
    SegmentTooShort { segment: usize, len: usize },
    #[error("chunk segment {segment}: bad magic {magic:#010x}")]
    SegmentMagic { segment: usize, magic: u32 },
    #[error("chunk segment {segment}: unsupported version {version}")]
    SegmentVersion { segment: usize, version: u8 },
    #[error("chunk ref {chunk_ref:#x}: segment {segment} does not exist ({segments} segments)")]
    NoSegment {
        chunk_ref: u64,
        segment: usize,
        segments: usize,
    },
    #[error("chunk ref {chunk_ref:#x}: offset is outside its segment of {segment_len} bytes")]
    OffsetOutOfRange { chunk_ref: u64, segment_len: usize },
    #[error("chunk ref {chunk_ref:#x}: record is truncated or its length is corrupt")]
    Truncated { chunk_ref: u64 },
    #[error(
        "chunk ref {chunk_ref:#x}: checksum mismatch (stored {stored:#010x}, computed \
         {computed:#010x})"
    )]
    Checksum {
        chunk_ref: u64,
        stored: u32,
        computed: u32,
    },
    #[error("chunk ref {chunk_ref:#x}: encoding {encoding} is not XOR (1)")]
    UnsupportedEncoding { chunk_ref: u64, encoding: u8 },
}

/// Reads chunks out of a block's segment files held in memory (read from disk, fetched from
/// object storage, memory-mapped: any `B: AsRef<[u8]>`).
#[derive(Clone)]
pub struct ChunkReader<B> {
    segments: Vec<B>,
}

impl<B: AsRef<[u8]>> std::fmt::Debug for ChunkReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<usize> = self.segments.iter().map(|s| s.as_ref().len()).collect();
        f.debug_struct("ChunkReader")
            .field("segment_sizes", &sizes)
            .finish()
    }
}

impl<B: AsRef<[u8]>> ChunkReader<B> {
    /// Wraps the segment files in order (`000001` first), checking their headers.
    pub fn new(segments: Vec<B>) -> Result<Self, ChunkReadError> {
        for (i, s) in segments.iter().enumerate() {
            let s = s.as_ref();
            if s.len() < SEGMENT_HEADER_LEN {
                return Err(ChunkReadError::SegmentTooShort {
                    segment: i,
                    len: s.len(),
                });
            }
            let magic = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
            if magic != SEGMENT_MAGIC {
                return Err(ChunkReadError::SegmentMagic { segment: i, magic });
            }
            if s[4] != SEGMENT_VERSION {
                return Err(ChunkReadError::SegmentVersion {
                    segment: i,
                    version: s[4],
                });
            }
        }
        Ok(ChunkReader { segments })
    }

    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// The data of the XOR chunk at `chunk_ref`, after checking its CRC.
    pub fn chunk(&self, chunk_ref: u64) -> Result<&[u8], ChunkReadError> {
        match self.chunk_with_encoding(chunk_ref)? {
            (ENCODING_XOR, data) => Ok(data),
            (encoding, _) => Err(ChunkReadError::UnsupportedEncoding {
                chunk_ref,
                encoding,
            }),
        }
    }

    /// The encoding byte and data of the chunk at `chunk_ref`, after checking its CRC.
    pub fn chunk_with_encoding(&self, chunk_ref: u64) -> Result<(u8, &[u8]), ChunkReadError> {
        let (segment, offset) = split_chunk_ref(chunk_ref);
        let segment = segment as usize;
        let seg = self
            .segments
            .get(segment)
            .ok_or(ChunkReadError::NoSegment {
                chunk_ref,
                segment,
                segments: self.segments.len(),
            })?
            .as_ref();
        let offset = offset as usize;
        if offset < SEGMENT_HEADER_LEN || offset >= seg.len() {
            return Err(ChunkReadError::OffsetOutOfRange {
                chunk_ref,
                segment_len: seg.len(),
            });
        }
        let mut c = Cursor::new(&seg[offset..]);
        let truncated = |_| ChunkReadError::Truncated { chunk_ref };
        let len = c.uvarint_usize().map_err(truncated)?;
        let encoding = c.byte().map_err(truncated)?;
        let data = c.bytes(len).map_err(truncated)?;
        let stored = c.be32().map_err(truncated)?;
        let computed = chunk_crc32c(encoding, data);
        if stored != computed {
            return Err(ChunkReadError::Checksum {
                chunk_ref,
                stored,
                computed,
            });
        }
        Ok((encoding, data))
    }
}

/// Appends chunk records to the segment files of one block, cutting segments at the maximum
/// size. Chunk refs grow in write order.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    max_size: u64,
    /// Segments started so far; the current one is `segments - 1`.
    segments: u32,
    file: Option<BufWriter<File>>,
    /// Path of the current segment.
    path: PathBuf,
    /// Bytes written to the current segment.
    pos: u64,
}

impl SegmentWriter {
    /// A writer of segments in `dir`, which must exist.
    pub(crate) fn new(dir: PathBuf, max_size: u64) -> Self {
        SegmentWriter {
            dir,
            max_size,
            segments: 0,
            file: None,
            path: PathBuf::new(),
            pos: 0,
        }
    }

    /// Writes one chunk and returns its ref.
    pub(crate) fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<u64, WriteError> {
        let len =
            u32::try_from(data.len()).map_err(|_| WriteError::TooLarge("chunk over 4 GiB"))?;
        let (head, n) = uvarint_array(u64::from(len));
        let total = n + 1 + data.len() + 4;
        let (r, w) = self.reserve(total as u64)?;
        let crc = chunk_crc32c(encoding, data);
        let written = w
            .write_all(&head[..n])
            .and_then(|()| w.write_all(&[encoding]))
            .and_then(|()| w.write_all(data))
            .and_then(|()| w.write_all(&crc.to_be_bytes()));
        written.map_err(|e| self.io_err(e))?;
        self.pos += total as u64;
        Ok(r)
    }

    /// Writes one complete chunk record (length, encoding, data, CRC) as is and returns its ref.
    pub(crate) fn write_record(&mut self, record: &[u8]) -> Result<u64, WriteError> {
        let (r, w) = self.reserve(record.len() as u64)?;
        let written = w.write_all(record);
        written.map_err(|e| self.io_err(e))?;
        self.pos += record.len() as u64;
        Ok(r)
    }

    /// Makes room for a record of `total` bytes, cutting a segment if needed; returns the
    /// record's ref and the file to write it to.
    fn reserve(&mut self, total: u64) -> Result<(u64, &mut BufWriter<File>), WriteError> {
        let full = self.pos + total > self.max_size && self.pos > SEGMENT_HEADER_LEN as u64;
        if self.file.is_none() || full {
            self.cut()?;
        }
        let offset = u32::try_from(self.pos)
            .map_err(|_| WriteError::TooLarge("chunk offset over 4 GiB in a segment"))?;
        let r = chunk_ref(self.segments - 1, offset);
        match self.file.as_mut() {
            Some(w) => Ok((r, w)),
            None => Err(WriteError::TooLarge("no segment")),
        }
    }

    /// Closes the current segment and starts the next.
    fn cut(&mut self) -> Result<(), WriteError> {
        self.close()?;
        if self.segments == u32::MAX {
            return Err(WriteError::TooLarge("more than 2^32 segments"));
        }
        self.path = self.dir.join(segment_file_name(self.segments));
        let file = File::create(&self.path).map_err(|e| self.io_err(e))?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        header[..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
        header[4] = SEGMENT_VERSION;
        w.write_all(&header).map_err(|e| self.io_err(e))?;
        self.file = Some(w);
        self.segments += 1;
        self.pos = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    /// Flushes and syncs the current segment; returns how many segments were written.
    pub(crate) fn close(&mut self) -> Result<u32, WriteError> {
        if let Some(w) = self.file.take() {
            let file = w.into_inner().map_err(|e| self.io_err(e.into_error()))?;
            file.sync_all().map_err(|e| self.io_err(e))?;
        }
        Ok(self.segments)
    }

    fn io_err(&self, source: io::Error) -> WriteError {
        WriteError::io(&self.path, source)
    }
}

/// Reads the complete chunk record at `offset` of `file` into `buf` (replacing its contents).
pub(crate) fn read_record(
    file: &mut File,
    offset: u64,
    buf: &mut Vec<u8>,
) -> Result<(), io::Error> {
    use std::io::{Read, Seek, SeekFrom};
    /// Most XOR chunks fit in one read of this size.
    const FIRST_READ: usize = 256;
    file.seek(SeekFrom::Start(offset))?;
    buf.clear();
    (&mut *file).take(FIRST_READ as u64).read_to_end(buf)?;
    let mut c = Cursor::new(buf);
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "corrupt chunk record length");
    let len = c.uvarint_usize().map_err(|_| bad())?;
    // Length, encoding byte, data, CRC.
    let total = c
        .pos()
        .checked_add(len)
        .and_then(|t| t.checked_add(5))
        .ok_or_else(bad)?;
    if total <= buf.len() {
        buf.truncate(total);
    } else {
        let have = buf.len();
        buf.resize(total, 0);
        file.read_exact(&mut buf[have..])?;
    }
    Ok(())
}

/// The path of segment `index` in `dir`.
pub(crate) fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(segment_file_name(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[(u8, &[u8])]) -> (Vec<u8>, Vec<u64>) {
        let mut s = SEGMENT_MAGIC.to_be_bytes().to_vec();
        s.extend_from_slice(&[SEGMENT_VERSION, 0, 0, 0]);
        let mut refs = Vec::new();
        for (enc, data) in records {
            refs.push(s.len() as u64);
            s.push(data.len() as u8);
            s.push(*enc);
            s.extend_from_slice(data);
            s.extend_from_slice(&chunk_crc32c(*enc, data).to_be_bytes());
        }
        (s, refs)
    }

    #[test]
    fn reads_records_and_checks_them() {
        let (s, refs) = segment(&[(1, &[0, 1, 2]), (2, &[9])]);
        let r = ChunkReader::new(vec![s.clone()]).expect("valid segment");
        assert_eq!(r.chunk(refs[0]), Ok(&[0u8, 1, 2][..]));
        assert_eq!(
            r.chunk(refs[1]),
            Err(ChunkReadError::UnsupportedEncoding {
                chunk_ref: refs[1],
                encoding: 2
            })
        );
        assert!(matches!(
            r.chunk(chunk_ref(1, 8)),
            Err(ChunkReadError::NoSegment { .. })
        ));
        assert!(matches!(
            r.chunk(3),
            Err(ChunkReadError::OffsetOutOfRange { .. })
        ));
        let mut bad = s.clone();
        bad[refs[0] as usize + 3] ^= 1;
        let r = ChunkReader::new(vec![bad]).expect("header intact");
        assert!(matches!(
            r.chunk(refs[0]),
            Err(ChunkReadError::Checksum { .. })
        ));
        let r = ChunkReader::new(vec![&s[..s.len() - 1]]).expect("header intact");
        assert_eq!(
            r.chunk(refs[1]),
            Err(ChunkReadError::Truncated { chunk_ref: refs[1] })
        );
        let mut magic = s.clone();
        magic[0] = 0;
        assert!(matches!(
            ChunkReader::new(vec![magic]),
            Err(ChunkReadError::SegmentMagic { .. })
        ));
        assert!(matches!(
            ChunkReader::new(vec![&s[..7]]),
            Err(ChunkReadError::SegmentTooShort { .. })
        ));
    }

    #[test]
    fn refs_split_into_segment_and_offset() {
        assert_eq!(split_chunk_ref(chunk_ref(3, 77)), (3, 77));
        assert_eq!(segment_file_name(0), "000001");
        assert_eq!(segment_file_name(999_999), "1000000");
    }
}
