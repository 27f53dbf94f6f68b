//! Reading the WAL back: [`WalReader`] yields the records of the latest checkpoint, then of every
//! segment after it, in order; [`replay`] runs it to the end.
//!
//! A segment is read in page-aligned windows of [`WINDOW`] bytes into one reused buffer. A
//! fragment never straddles a page, so a record of one fragment is decoded in place; a record of
//! several is assembled in a second reused buffer. Decoding uses one reused [`Decoder`]. Nothing is
//! allocated per record once the buffers have grown to the largest record.
//!
//! Reading stops at the first damage; the policy (torn tail of the last segment vs. corruption
//! anywhere else) is in the [module docs](super). The reader never writes: [`super::repair`] does.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hashbrown::HashSet;

use super::dir::Listing;
use super::fs::{WalFile, WalFs};
use super::record::{Decoder, Record, RecordError};
use super::segment::{
    self, FragmentType, FramingError, HEADER_SIZE, PAGE_SIZE, Parsed, parse_fragment,
};

/// Bytes read from a segment at a time (whole pages).
pub const WINDOW: usize = 32 * PAGE_SIZE;

/// A file of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentId {
    /// A segment of the WAL directory.
    Segment(u32),
    /// A segment of checkpoint directory `checkpoint.<checkpoint>`.
    Checkpoint { checkpoint: u32, segment: u32 },
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SegmentId::Segment(n) => write!(f, "segment {n:08}"),
            SegmentId::Checkpoint {
                checkpoint,
                segment,
            } => write!(f, "checkpoint.{checkpoint:08}/{segment:08}"),
        }
    }
}

/// What is wrong at a [`Corruption`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionReason {
    #[error("{0}")]
    Framing(#[from] FramingError),
    #[error("undecodable record: {0}")]
    Record(#[from] RecordError),
    #[error("record names tenant id {0}, not declared in this segment")]
    UndeclaredTenant(u32),
    #[error("segment {missing:08} is missing")]
    MissingSegment { missing: u32 },
}

/// Where reading stopped on damage, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment: SegmentId,
    /// Offset in the segment where the damage was found.
    pub offset: u64,
    /// Offset in the segment where the last good record ends: [`super::repair`] truncates here.
    pub truncate_at: u64,
    pub reason: CorruptionReason,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wal {} damaged at offset {} (last good record ends at {}): {}",
            self.segment, self.offset, self.truncate_at, self.reason
        )
    }
}

impl std::error::Error for Corruption {}

/// Why reading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("wal read: {0}")]
    Io(#[from] io::Error),
    /// Damage outside the last segment's tail: the records before it were returned.
    #[error("{0}")]
    Corrupt(Corruption),
}

/// What [`replay`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// The checkpoint read first, if any.
    pub checkpoint: Option<u32>,
    /// Files read (checkpoint segments and segments).
    pub files: usize,
    /// Records returned.
    pub records: u64,
    /// The torn tail of the last segment reading stopped at, for [`super::repair`].
    pub torn_tail: Option<Corruption>,
}

struct Source {
    id: SegmentId,
    path: PathBuf,
    /// Framing damage here is a torn tail (this is the last segment of the log).
    tail: bool,
}

struct Current<T> {
    file: T,
    id: SegmentId,
    tail: bool,
}

/// Why reading a file stopped.
enum Stop {
    Io(io::Error),
    Damaged { offset: u64, reason: FramingError },
}

/// Where the next record's bytes are.
enum Raw {
    /// `win[start..end]`.
    Window(usize, usize),
    /// `rec`.
    Assembled,
}

/// Reads the records of a WAL directory in order. See the [module docs](self).
pub struct WalReader<F: WalFs> {
    fs: F,
    sources: Vec<Source>,
    next_source: usize,
    /// Damage found when listing (a missing segment), reported after the files before it.
    pending: Option<Corruption>,
    checkpoint: Option<u32>,
    cur: Option<Current<F::File>>,
    /// A page-aligned window of the current file: bytes `win_start..win_start + win.len()`.
    win: Vec<u8>,
    win_start: u64,
    eof: bool,
    /// Offset of the next fragment, and the end of the last good record, in the current file.
    pos: u64,
    good_end: u64,
    /// A record being assembled from fragments.
    rec: Vec<u8>,
    in_record: bool,
    /// Tenant ids declared in the current file.
    declared: HashSet<u32>,
    decoder: Decoder,
    torn: Option<Corruption>,
    done: bool,
    files: usize,
    records: u64,
}

impl<F: WalFs> WalReader<F> {
    /// Lists the log in `dir` (a missing directory is an empty log).
    pub async fn open(fs: F, dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref();
        let listing = match Listing::read(&fs, dir).await {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Listing::default(),
            Err(e) => return Err(e),
        };
        let mut sources = Vec::new();
        let mut pending = None;
        let checkpoint = listing.checkpoints.last().copied();
        if let Some(c) = checkpoint {
            let cdir = dir.join(segment::checkpoint_name(c));
            let inner = Listing::read(&fs, &cdir).await?;
            let mut prev: Option<u32> = None;
            for &s in &inner.segments {
                let id = SegmentId::Checkpoint {
                    checkpoint: c,
                    segment: s,
                };
                if let Some(p) = prev.filter(|&p| s != p + 1) {
                    pending = Some(missing(id, p + 1));
                    break;
                }
                let path = cdir.join(segment::segment_name(s));
                sources.push(Source {
                    id,
                    path,
                    tail: false,
                });
                prev = Some(s);
            }
        }
        if pending.is_none() {
            let segments: Vec<u32> = (listing.segments.iter().copied())
                .filter(|&s| checkpoint.is_none_or(|c| s > c))
                .collect();
            let mut prev = checkpoint;
            for (i, &s) in segments.iter().enumerate() {
                let id = SegmentId::Segment(s);
                if let Some(p) = prev.filter(|&p| s != p + 1) {
                    pending = Some(missing(id, p + 1));
                    break;
                }
                sources.push(Source {
                    id,
                    path: dir.join(segment::segment_name(s)),
                    tail: i + 1 == segments.len(),
                });
                prev = Some(s);
            }
        }
        Ok(WalReader {
            fs,
            sources,
            next_source: 0,
            pending,
            checkpoint,
            cur: None,
            win: Vec::new(),
            win_start: 0,
            eof: false,
            pos: 0,
            good_end: 0,
            rec: Vec::new(),
            in_record: false,
            declared: HashSet::new(),
            decoder: Decoder::new(),
            torn: None,
            done: false,
            files: 0,
            records: 0,
        })
    }

    /// The next record; `Ok(None)` at the end of the log or at a torn tail
    /// ([`Self::torn_tail`]). After an error, returns `Ok(None)`.
    pub async fn next(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        let (raw, start, end) = loop {
            if self.done {
                return Ok(None);
            }
            if self.cur.is_none() {
                self.open_next().await?;
                continue;
            }
            match self.next_in_file().await {
                Ok(Some(found)) => break found,
                Ok(None) => self.cur = None,
                Err(Stop::Io(e)) => {
                    self.done = true;
                    return Err(ReadError::Io(e));
                }
                Err(Stop::Damaged { offset, reason }) => {
                    self.done = true;
                    let Some(cur) = self.cur.take() else {
                        return Ok(None);
                    };
                    let c = Corruption {
                        segment: cur.id,
                        offset,
                        truncate_at: self.good_end,
                        reason: reason.into(),
                    };
                    if cur.tail {
                        self.torn = Some(c);
                        return Ok(None);
                    }
                    return Err(ReadError::Corrupt(c));
                }
            }
        };
        let id = self.cur.as_ref().map_or(SegmentId::Segment(0), |c| c.id);
        let corrupt = |reason| Corruption {
            segment: id,
            offset: start,
            truncate_at: self.good_end,
            reason,
        };
        let data: &[u8] = match raw {
            Raw::Window(a, b) => &self.win[a..b],
            Raw::Assembled => &self.rec,
        };
        let rec = match self.decoder.decode(data) {
            Ok(rec) => rec,
            Err(e) => {
                let c = corrupt(e.into());
                self.done = true;
                return Err(ReadError::Corrupt(c));
            }
        };
        match rec {
            Record::Tenant { id, .. } => {
                self.declared.insert(id);
            }
            _ if !self.declared.contains(&rec.tenant()) => {
                let c = corrupt(CorruptionReason::UndeclaredTenant(rec.tenant()));
                self.done = true;
                return Err(ReadError::Corrupt(c));
            }
            _ => {}
        }
        self.good_end = end;
        self.records += 1;
        Ok(Some(rec))
    }

    /// Opens the next file, or ends reading (reporting a missing segment found by `open`).
    async fn open_next(&mut self) -> Result<(), ReadError> {
        let Some(src) = self.sources.get(self.next_source) else {
            self.done = true;
            return match self.pending.take() {
                Some(c) => Err(ReadError::Corrupt(c)),
                None => Ok(()),
            };
        };
        self.next_source += 1;
        let file = match self.fs.open(&src.path).await {
            Ok(f) => f,
            Err(e) => {
                self.done = true;
                return Err(ReadError::Io(e));
            }
        };
        self.cur = Some(Current {
            file,
            id: src.id,
            tail: src.tail,
        });
        self.files += 1;
        self.win.clear();
        self.win_start = 0;
        self.eof = false;
        self.pos = 0;
        self.good_end = 0;
        self.in_record = false;
        self.declared.clear();
        Ok(())
    }

    /// The next complete record of the current file, its start and end offsets; `Ok(None)` at a
    /// clean end of the file.
    async fn next_in_file(&mut self) -> Result<Option<(Raw, u64, u64)>, Stop> {
        let mut start = self.pos;
        loop {
            // The window always ends on a page boundary or at the end of the file, and `pos`
            // never passes its end.
            if self.pos >= self.win_start + self.win.len() as u64 {
                if !self.eof {
                    self.refill().await.map_err(Stop::Io)?;
                    continue;
                }
                if self.in_record {
                    return Err(Stop::Damaged {
                        offset: self.pos,
                        reason: FramingError::PartialRecord,
                    });
                }
                return Ok(None);
            }
            let i = (self.pos - self.win_start) as usize;
            let avail_end = (i + segment::room_in_page(self.pos)).min(self.win.len());
            let damaged = |reason| Stop::Damaged {
                offset: self.pos,
                reason,
            };
            let (typ, data, len) = match parse_fragment(self.pos, &self.win[i..avail_end]) {
                Err(reason) => return Err(damaged(reason)),
                Ok(Parsed::Padding { len }) => {
                    self.pos += len as u64;
                    continue;
                }
                Ok(Parsed::Fragment { typ, data, len }) => (typ, data, len),
            };
            let out_of_sequence = |expected| {
                damaged(FramingError::OutOfSequence {
                    found: typ,
                    expected,
                })
            };
            match (typ, self.in_record) {
                (FragmentType::Full, false) => {
                    start = self.pos;
                    self.pos += len as u64;
                    return Ok(Some((
                        Raw::Window(i + HEADER_SIZE, i + len),
                        start,
                        self.pos,
                    )));
                }
                (FragmentType::First, false) => {
                    self.rec.clear();
                    self.rec.extend_from_slice(data);
                    self.in_record = true;
                    start = self.pos;
                }
                (FragmentType::Middle, true) => self.rec.extend_from_slice(data),
                (FragmentType::Last, true) => {
                    self.rec.extend_from_slice(data);
                    self.in_record = false;
                    self.pos += len as u64;
                    return Ok(Some((Raw::Assembled, start, self.pos)));
                }
                (FragmentType::Full | FragmentType::First, true) => {
                    return Err(out_of_sequence("a middle or last fragment"));
                }
                (FragmentType::Middle | FragmentType::Last, false) => {
                    return Err(out_of_sequence("a full or first fragment"));
                }
            }
            self.pos += len as u64;
        }
    }

    /// Reads the window after the current one (up to [`WINDOW`] bytes; fewer only at the end of
    /// the file).
    async fn refill(&mut self) -> io::Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        self.win_start += self.win.len() as u64;
        let mut win = std::mem::take(&mut self.win);
        win.clear();
        while win.len() < WINDOW {
            win.reserve_exact(WINDOW - win.len());
            let at = self.win_start + win.len() as u64;
            let (r, back) = cur.file.read_at(win, at).await;
            win = back;
            match r {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(_) => win.truncate(WINDOW),
                Err(e) => {
                    win.clear();
                    self.win = win;
                    return Err(e);
                }
            }
        }
        self.win = win;
        Ok(())
    }

    /// The torn tail reading stopped at, if it did.
    pub fn torn_tail(&self) -> Option<&Corruption> {
        self.torn.as_ref()
    }

    /// The checkpoint the log starts from, if any.
    pub fn checkpoint(&self) -> Option<u32> {
        self.checkpoint
    }

    /// Files of the log: the checkpoint's segments, then the segments after it (a missing
    /// segment ends the list early).
    pub fn files_total(&self) -> usize {
        self.sources.len()
    }

    /// What has been read so far (`files` counts the file being read).
    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            checkpoint: self.checkpoint,
            files: self.files,
            records: self.records,
            torn_tail: self.torn.clone(),
        }
    }
}

fn missing(id: SegmentId, missing: u32) -> Corruption {
    Corruption {
        segment: id,
        offset: 0,
        truncate_at: 0,
        reason: CorruptionReason::MissingSegment { missing },
    }
}

/// Reads the whole log in `dir`, calling `apply` with each record in order. A torn tail ends
/// reading normally (in [`ReplayStats::torn_tail`]: log it and [`super::repair`] before
/// appending); damage anywhere else is [`ReadError::Corrupt`], after `apply` has seen every record
/// before it.
pub async fn replay<F: WalFs>(
    fs: &F,
    dir: impl AsRef<Path>,
    mut apply: impl FnMut(Record<'_>),
) -> Result<ReplayStats, ReadError> {
    let mut r = WalReader::open(fs.clone(), dir).await?;
    while let Some(rec) = r.next().await? {
        apply(rec);
    }
    Ok(r.stats())
}
