//! The WAL directory: what is in it, [`repair`] after damage, and the clean-up after a checkpoint.
//!
//! Every change here is ordered so that a crash in the middle leaves a directory that replays to
//! the same records and that the same operation, run again, finishes: later segments are deleted
//! before an earlier one is truncated, a checkpoint is renamed into place before what it covers is
//! deleted.

use std::io;
use std::path::Path;

use super::fs::{WalFile, WalFs};
use super::reader::{Corruption, SegmentId};
use super::segment::{self, EntryName};
use super::writer::PREALLOCATED_NAME;

/// The WAL's entries in a directory, each list sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    pub segments: Vec<u32>,
    pub checkpoints: Vec<u32>,
    /// Checkpoints being written or abandoned (`checkpoint.N.tmp`).
    pub tmp: Vec<u32>,
    /// A zero-filled file prepared for the next segment ([`PREALLOCATED_NAME`]) is present.
    pub preallocated: bool,
}

impl Listing {
    /// Lists `dir`; a missing directory is an error (`NotFound`).
    pub async fn read<F: WalFs>(fs: &F, dir: &Path) -> io::Result<Listing> {
        let mut l = Listing::default();
        for name in fs.list(dir).await? {
            match segment::parse_entry_name(&name) {
                Some(EntryName::Segment(n)) => l.segments.push(n),
                Some(EntryName::Checkpoint(n)) => l.checkpoints.push(n),
                Some(EntryName::CheckpointTmp(n)) => l.tmp.push(n),
                None => l.preallocated |= name == PREALLOCATED_NAME,
            }
        }
        l.segments.sort_unstable();
        l.checkpoints.sort_unstable();
        l.tmp.sort_unstable();
        Ok(l)
    }

    /// The highest segment or checkpoint number.
    pub fn last_index(&self) -> Option<u32> {
        self.segments
            .last()
            .copied()
            .max(self.checkpoints.last().copied())
    }
}

/// Cuts the log at a [`Corruption`] reported by the reader (a torn tail, or damage the caller
/// chose to cut at): deletes every segment after the damaged one, then truncates the damaged
/// segment at the end of its last good record (deletes it if that is 0), and fsyncs. Afterwards
/// the log replays to exactly the records read before the damage, and [`super::Wal::open`] may
/// append after them.
///
/// A damaged checkpoint is not repaired (an `InvalidInput` error): everything it covers would be
/// lost, which the caller must decide explicitly (delete the checkpoint directory).
pub async fn repair<F: WalFs>(fs: &F, dir: &Path, c: &Corruption) -> io::Result<()> {
    let SegmentId::Segment(damaged) = c.segment else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot repair a damaged checkpoint by truncation: {c}"),
        ));
    };
    let listing = Listing::read(fs, dir).await?;
    let mut changed = false;
    for &n in listing.segments.iter().rev().filter(|&&n| n > damaged) {
        fs.remove_file(&dir.join(segment::segment_name(n))).await?;
        changed = true;
    }
    let path = dir.join(segment::segment_name(damaged));
    if listing.segments.contains(&damaged) {
        if c.truncate_at == 0 {
            fs.remove_file(&path).await?;
            changed = true;
        } else {
            if changed {
                fs.sync_dir(dir).await?;
                changed = false;
            }
            let mut f = fs.open(&path).await?;
            f.set_len(c.truncate_at).await?;
            f.sync_data().await?;
        }
    }
    if changed {
        fs.sync_dir(dir).await?;
    }
    Ok(())
}

/// After checkpoint `upto` is in place: deletes the segments it covers (`<= upto`), older
/// checkpoints and abandoned checkpoint directories, then fsyncs the directory.
pub(crate) async fn remove_covered<F: WalFs>(fs: &F, dir: &Path, upto: u32) -> io::Result<()> {
    let listing = Listing::read(fs, dir).await?;
    let mut changed = false;
    for &n in listing.segments.iter().filter(|&&n| n <= upto) {
        fs.remove_file(&dir.join(segment::segment_name(n))).await?;
        changed = true;
    }
    for &n in listing.checkpoints.iter().filter(|&&n| n < upto) {
        fs.remove_dir_all(&dir.join(segment::checkpoint_name(n)))
            .await?;
        changed = true;
    }
    for &n in &listing.tmp {
        fs.remove_dir_all(&dir.join(segment::checkpoint_tmp_name(n)))
            .await?;
        changed = true;
    }
    if changed {
        fs.sync_dir(dir).await?;
    }
    Ok(())
}
