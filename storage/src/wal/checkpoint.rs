//! Checkpoints: a compacted log that replaces the segments it covers.
//!
//! A [`Checkpoint`] is a [`Wal`] writing in `wal/checkpoint.N.tmp/` (same framing, segments from
//! `00000000`). The caller logs through [`Checkpoint::wal`] the state that segments `<= N` amount
//! to (for each tenant: its live series, the samples its head still holds, its tombstones),
//! syncing now and then to bound memory; [`Checkpoint::finish`] fsyncs it, renames the directory
//! to `checkpoint.N` (atomic), fsyncs the WAL directory, and only then deletes the segments
//! `<= N`, older checkpoints and abandoned `.tmp` directories.
//!
//! Crash at any point: before the rename the old segments and checkpoint are intact and the
//! `.tmp` directory is ignored; after it the new checkpoint is complete (it was fsynced before),
//! and segments `<= N` left over are skipped by the reader and deleted by the next checkpoint.
//!
//! `N` comes from [`Wal::cut_segment`] on the shard's live WAL, called at the instant the state
//! is captured: every record logged before is in segments `<= N`, every later one after.

use std::io;
use std::path::{Path, PathBuf};

use super::dir;
use super::fs::WalFs;
use super::segment;
use super::writer::{Wal, WalOptions};

/// A checkpoint being written. See the [module docs](self).
pub struct Checkpoint<F: WalFs> {
    wal: Wal<F>,
    fs: F,
    dir: PathBuf,
    upto: u32,
}

impl<F: WalFs> Checkpoint<F> {
    /// Starts checkpoint `upto` (covering segments `<= upto`) of the WAL in `dir`, replacing any
    /// abandoned attempt at it.
    pub async fn create(
        fs: F,
        dir: impl AsRef<Path>,
        upto: u32,
        opts: WalOptions,
    ) -> io::Result<Self> {
        let dir = dir.as_ref();
        let tmp = dir.join(segment::checkpoint_tmp_name(upto));
        match fs.remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let wal = Wal::open(fs.clone(), &tmp, opts).await?;
        Ok(Checkpoint {
            wal,
            fs,
            dir: dir.to_path_buf(),
            upto,
        })
    }

    /// The log to write the checkpoint's records into (tenant ids are this log's own).
    pub fn wal(&mut self) -> &mut Wal<F> {
        &mut self.wal
    }

    /// The last segment the checkpoint covers.
    pub fn upto(&self) -> u32 {
        self.upto
    }

    /// Makes the checkpoint durable and current, then deletes what it replaces.
    pub async fn finish(mut self) -> io::Result<()> {
        self.wal.sync().await?;
        let tmp = self.wal.dir().to_path_buf();
        // The segment files' names (the writer fsyncs the directory after creating each, but an
        // empty checkpoint has none: make the directory itself durable too).
        self.fs.sync_dir(&tmp).await?;
        let done = self.dir.join(segment::checkpoint_name(self.upto));
        self.fs.rename(&tmp, &done).await?;
        self.fs.sync_dir(&self.dir).await?;
        dir::remove_covered(&self.fs, &self.dir, self.upto).await
    }
}
