//! Segment files: their names and the page framing of records into fragments (see
//! [`super::format`]).
//!
//! Invariants of [`frame`]'s output, which [`parse_fragment`] checks:
//! - a fragment never straddles a page and is never empty;
//! - a fragment starts only where at least [`MIN_FRAGMENT`] bytes of the page remain; the 1 to 7
//!   bytes left otherwise are zero padding;
//! - a record is one full fragment, or first, middle*, last; first and middle fill their page.

/// Size of a page: fragments never cross a multiple of it.
pub const PAGE_SIZE: usize = 32 * 1024;

/// Bytes of a fragment header: type, length (u16 BE), CRC32C of the data (u32 BE).
pub const HEADER_SIZE: usize = 7;

/// A fragment starts only where at least this many bytes of the page remain (a header and one
/// data byte); fewer are zero padding.
pub const MIN_FRAGMENT: usize = HEADER_SIZE + 1;

/// Default maximum size of a segment.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// The type of a fragment (the low 3 bits of its first byte; the others are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FragmentType {
    /// A whole record.
    Full = 1,
    First = 2,
    Middle = 3,
    Last = 4,
}

impl FragmentType {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Full),
            2 => Some(Self::First),
            3 => Some(Self::Middle),
            4 => Some(Self::Last),
            _ => None,
        }
    }
}

/// The file name of segment or checkpoint segment `n`: 8 digits, zero-padded.
pub fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

/// The segment number named by `name`, if it is exactly a name [`segment_name`] produces.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    if name.len() < 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = name.parse().ok()?;
    (segment_name(n) == name).then_some(n)
}

/// The directory name of the checkpoint covering segments `..= n`.
pub fn checkpoint_name(n: u32) -> String {
    format!("checkpoint.{n:08}")
}

/// The directory a checkpoint is written in before it is renamed to [`checkpoint_name`].
pub fn checkpoint_tmp_name(n: u32) -> String {
    format!("checkpoint.{n:08}.tmp")
}

/// What a directory entry name is, for the WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryName {
    Segment(u32),
    Checkpoint(u32),
    CheckpointTmp(u32),
}

/// Classifies a directory entry name; `None` for names the WAL does not own.
pub fn parse_entry_name(name: &str) -> Option<EntryName> {
    if let Some(n) = parse_segment_name(name) {
        return Some(EntryName::Segment(n));
    }
    let rest = name.strip_prefix("checkpoint.")?;
    match rest.strip_suffix(".tmp") {
        Some(num) => parse_segment_name(num).map(EntryName::CheckpointTmp),
        None => parse_segment_name(rest).map(EntryName::Checkpoint),
    }
}

/// Bytes left in the page at segment offset `off`.
pub(crate) fn room_in_page(off: u64) -> usize {
    PAGE_SIZE - (off % PAGE_SIZE as u64) as usize
}

/// Appends record `rec` (not empty), framed as it lies at segment offset `off`, to `out`;
/// returns the segment offset after it. Padding a page's tail when fewer than [`MIN_FRAGMENT`]
/// bytes remain is part of the output. (The writer's framing; public for tools and fuzzing.)
pub fn frame(out: &mut Vec<u8>, mut off: u64, rec: &[u8]) -> u64 {
    debug_assert!(!rec.is_empty(), "records are never empty");
    let mut rest = rec;
    let mut first = true;
    loop {
        let room = room_in_page(off);
        if room < MIN_FRAGMENT {
            out.resize(out.len() + room, 0);
            off += room as u64;
            continue;
        }
        let n = rest.len().min(room - HEADER_SIZE);
        let (data, tail) = rest.split_at(n);
        let last = tail.is_empty();
        let typ = match (first, last) {
            (true, true) => FragmentType::Full,
            (true, false) => FragmentType::First,
            (false, false) => FragmentType::Middle,
            (false, true) => FragmentType::Last,
        };
        out.push(typ as u8);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        out.extend_from_slice(data);
        off += (HEADER_SIZE + n) as u64;
        if last {
            return off;
        }
        rest = tail;
        first = false;
    }
}

/// The segment offset after a record of `len` bytes framed at `off` (what [`frame`] returns).
pub fn framed_end(mut off: u64, len: usize) -> u64 {
    let mut rest = len.max(1);
    loop {
        let room = room_in_page(off);
        if room < MIN_FRAGMENT {
            off += room as u64;
            continue;
        }
        let n = rest.min(room - HEADER_SIZE);
        off += (HEADER_SIZE + n) as u64;
        rest -= n;
        if rest == 0 {
            return off;
        }
    }
}

/// What is at a fragment position.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A valid fragment; `len` is its total size (header and data).
    Fragment {
        typ: FragmentType,
        data: &'a [u8],
        len: usize,
    },
    /// Valid zero padding of `len` bytes (to the page's end, or to the end of the file).
    Padding { len: usize },
}

/// Why bytes at a fragment position are not a fragment (framing damage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    #[error("zero byte where a fragment must start")]
    UnexpectedZero,
    #[error("non-zero byte in page padding")]
    NonZeroPadding,
    #[error("unknown fragment type byte {0:#04x}")]
    UnknownType(u8),
    #[error("empty fragment")]
    EmptyFragment,
    #[error("fragment of {len} bytes overruns its page")]
    TooLong { len: usize },
    #[error("fragment cut by the end of the file")]
    Truncated,
    #[error("fragment crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("{found:?} fragment where {expected} was expected")]
    OutOfSequence {
        found: FragmentType,
        expected: &'static str,
    },
    #[error("record cut by the end of the file")]
    PartialRecord,
}

/// Parses what lies at segment offset `off`, given `avail`: the bytes of the file from `off` to
/// the end of its page, or to the end of the file if that comes first (not empty).
pub(crate) fn parse_fragment(off: u64, avail: &[u8]) -> Result<Parsed<'_>, FramingError> {
    let room = room_in_page(off);
    debug_assert!(!avail.is_empty() && avail.len() <= room);
    let typ = avail[0];
    if typ == 0 {
        if room >= MIN_FRAGMENT {
            return Err(FramingError::UnexpectedZero);
        }
        if avail.iter().any(|&b| b != 0) {
            return Err(FramingError::NonZeroPadding);
        }
        return Ok(Parsed::Padding { len: avail.len() });
    }
    if room < MIN_FRAGMENT {
        return Err(FramingError::NonZeroPadding);
    }
    let Some(ftyp) = FragmentType::from_byte(typ) else {
        return Err(FramingError::UnknownType(typ));
    };
    let Some(header) = avail.get(..HEADER_SIZE) else {
        return Err(FramingError::Truncated);
    };
    let n = usize::from(u16::from_be_bytes([header[1], header[2]]));
    let stored = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
    if n == 0 {
        return Err(FramingError::EmptyFragment);
    }
    let len = HEADER_SIZE + n;
    if len > room {
        return Err(FramingError::TooLong { len });
    }
    let Some(data) = avail.get(HEADER_SIZE..len) else {
        return Err(FramingError::Truncated);
    };
    let computed = crc32c::crc32c(data);
    if computed != stored {
        return Err(FramingError::BadCrc { stored, computed });
    }
    Ok(Parsed::Fragment {
        typ: ftyp,
        data,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(seg: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rec = Vec::new();
        let mut off = 0usize;
        while off < seg.len() {
            let end = (off + room_in_page(off as u64)).min(seg.len());
            match parse_fragment(off as u64, &seg[off..end]).unwrap() {
                Parsed::Padding { len } => off += len,
                Parsed::Fragment { typ, data, len } => {
                    rec.extend_from_slice(data);
                    if matches!(typ, FragmentType::Full | FragmentType::Last) {
                        out.push(std::mem::take(&mut rec));
                    }
                    off += len;
                }
            }
        }
        out
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(0), "00000000");
        assert_eq!(segment_name(123), "00000123");
        assert_eq!(parse_segment_name("00000123"), Some(123));
        assert_eq!(parse_segment_name("0000123"), None);
        assert_eq!(parse_segment_name("000000123"), None);
        assert_eq!(parse_segment_name("0000012a"), None);
        assert_eq!(parse_segment_name("+0000123"), None);
        assert_eq!(parse_segment_name("4294967295"), Some(u32::MAX));
        assert_eq!(parse_segment_name("4294967296"), None);
        assert_eq!(
            parse_entry_name("checkpoint.00000007"),
            Some(EntryName::Checkpoint(7))
        );
        assert_eq!(
            parse_entry_name("checkpoint.00000007.tmp"),
            Some(EntryName::CheckpointTmp(7))
        );
        assert_eq!(parse_entry_name("checkpoint.7"), None);
        assert_eq!(parse_entry_name("lock"), None);
    }

    #[test]
    fn frame_splits_at_pages_and_pads() {
        let mut seg = Vec::new();
        let mut off = 0;
        let recs: Vec<Vec<u8>> = vec![
            vec![1; 10],
            vec![2; PAGE_SIZE - 10 - 2 * HEADER_SIZE - 3], // leaves 3 bytes: padding
            vec![3; 3 * PAGE_SIZE],                        // first, middle, middle, last
            vec![4; 1],
        ];
        for r in &recs {
            let end = frame(&mut seg, off, r);
            assert_eq!(end, framed_end(off, r.len()));
            off = end;
            assert_eq!(seg.len() as u64, off);
        }
        assert_eq!(&seg[PAGE_SIZE - 3..PAGE_SIZE], &[0, 0, 0]);
        assert_eq!(seg[PAGE_SIZE], FragmentType::First as u8);
        assert_eq!(parse_all(&seg), recs);
    }

    #[test]
    fn record_exactly_filling_a_page_leaves_no_padding() {
        let mut seg = Vec::new();
        let end = frame(&mut seg, 0, &vec![7; PAGE_SIZE - HEADER_SIZE]);
        assert_eq!(end, PAGE_SIZE as u64);
        let end = frame(&mut seg, end, &vec![8; PAGE_SIZE - HEADER_SIZE + 1]);
        // first fills page 2, last holds 1 byte on page 3
        assert_eq!(
            end,
            3 * PAGE_SIZE as u64 - (PAGE_SIZE - HEADER_SIZE - 1) as u64
        );
        assert_eq!(parse_all(&seg).len(), 2);
    }

    #[test]
    fn fragment_errors() {
        let mut seg = Vec::new();
        frame(&mut seg, 0, b"hello");
        let ok = parse_fragment(0, &seg).unwrap();
        assert!(matches!(ok, Parsed::Fragment { len: 12, .. }));
        assert_eq!(parse_fragment(0, &seg[..5]), Err(FramingError::Truncated));
        assert_eq!(parse_fragment(0, &seg[..10]), Err(FramingError::Truncated));
        let mut bad = seg.clone();
        bad[8] ^= 1;
        assert!(matches!(
            parse_fragment(0, &bad),
            Err(FramingError::BadCrc { .. })
        ));
        bad = seg.clone();
        bad[0] = 9;
        assert_eq!(parse_fragment(0, &bad), Err(FramingError::UnknownType(9)));
        bad = seg.clone();
        bad[1..3].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(parse_fragment(0, &bad), Err(FramingError::EmptyFragment));
        bad = seg.clone();
        bad[1..3].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            parse_fragment(0, &bad),
            Err(FramingError::TooLong { .. })
        ));
        assert_eq!(
            parse_fragment(0, &[0; 20]),
            Err(FramingError::UnexpectedZero)
        );
        let tail = PAGE_SIZE as u64 - 5;
        assert_eq!(
            parse_fragment(tail, &[0; 5]),
            Ok(Parsed::Padding { len: 5 })
        );
        assert_eq!(
            parse_fragment(tail, &[0; 2]),
            Ok(Parsed::Padding { len: 2 })
        );
        assert_eq!(
            parse_fragment(tail, &[0, 0, 1, 0, 0]),
            Err(FramingError::NonZeroPadding)
        );
        assert_eq!(
            parse_fragment(tail, &[1, 0, 0, 0, 0]),
            Err(FramingError::NonZeroPadding)
        );
    }
}
