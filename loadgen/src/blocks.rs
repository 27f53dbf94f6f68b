//! `backfill --blocks-dir`: the fleet's history written straight into Prometheus TSDB blocks
//! with strata's own [`BlockWriter`], instead of pushed over remote write. A month of a large
//! fleet is billions of samples: far too many for text formats or for pushing through a head.
//!
//! Shape of the work: `threads` generator threads each own a fixed share of the hosts
//! (`host % threads`) for the whole run, because a host's values are a random walk that can only
//! be computed in order. For each block range, oldest first, every generator produces the XOR
//! chunks of its hosts' samples in that range and hands them over a channel of depth one; the
//! calling thread merges the shares in label order into one block (so the writer never has to
//! reorder chunks) while the generators already work on the next range.
//!
//! Invariants:
//! - the samples are exactly those `backfill` pushes for the same flags: both read the fleet
//!   through [`HostHistory`];
//! - block ranges are `[k * range, (k + 1) * range)` in ms since the epoch, as Prometheus aligns
//!   them; each block's meta.json spans its samples (`maxTime` is the newest plus one), as
//!   `promtool tsdb create-blocks-from` writes them, which lies inside its aligned range;
//! - a chunk holds at most [`MAX_SAMPLES_PER_CHUNK`] samples and never crosses a block boundary;
//! - memory is bounded by a few block ranges of chunk bytes (the one being written, one queued
//!   and one being generated per thread) plus the label sets, never by the whole history.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread;
use std::time::Instant;

use serde::Serialize;
use strata_storage::block::{BlockWriter, BlockWriterOptions, ThanosMeta, Ulid, WriteError};
use strata_storage::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, XorEncoder};
use strata_storage::head::ChunkMeta;
use strata_storage::labels::{Label, Labels};

use crate::Error;
use crate::backfill::{HostHistory, series_per_host};
use crate::fleet::FleetSpec;

/// meta.json's `thanos.source` of the blocks written here.
pub const SOURCE: &str = "backfill";

/// Room for a full chunk of regular scrapes before an encoder's buffer grows.
const CHUNK_CAPACITY: usize = 256;

/// Where and how to write the blocks.
#[derive(Clone, Debug)]
pub struct BlocksOptions {
    /// The blocks go directly in here, `<dir>/<ULID>/` (a Prometheus data directory).
    pub dir: PathBuf,
    /// Each block's time range in ms; ranges are aligned to multiples of it.
    pub block_range_ms: i64,
    /// Written to meta.json as `thanos.labels.__org_id__` when given.
    pub tenant: Option<String>,
    pub with_histogram: bool,
    /// Generator threads (at most one per host).
    pub threads: u32,
}

/// One block written.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenBlock {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub series: u64,
    pub samples: u64,
    pub chunks: u64,
}

/// What [`write`] did.
#[derive(Clone, Debug, Serialize)]
pub struct BlocksSummary {
    pub dir: PathBuf,
    pub blocks: Vec<WrittenBlock>,
    pub samples: u64,
    /// Bytes of chunk data (without the segment files' framing and the index).
    pub chunk_bytes: u64,
    pub seconds: f64,
}

/// One chunk of a [`Part`].
#[derive(Clone, Copy, Debug)]
struct PartChunk {
    min_t: i64,
    max_t: i64,
    /// Its bytes in [`Part::arena`].
    start: usize,
    len: usize,
}

/// One generator's chunks of one block range: per series of its hosts (host by host, each
/// host's series in [`HostHistory`] order), its chunks in time order.
#[derive(Debug, Default)]
struct Part {
    arena: Vec<u8>,
    chunks: Vec<PartChunk>,
    /// Where each series' chunks start in `chunks`, plus the end: one more than series.
    starts: Vec<usize>,
    samples: u64,
}

impl Part {
    fn chunks_of(&self, local: usize) -> &[PartChunk] {
        &self.chunks[self.starts[local]..self.starts[local + 1]]
    }
}

/// A series' chunk being filled.
struct OpenChunk {
    enc: XorEncoder,
    min_t: i64,
    max_t: i64,
}

impl OpenChunk {
    fn new() -> Self {
        OpenChunk {
            enc: XorEncoder::with_capacity(CHUNK_CAPACITY),
            min_t: 0,
            max_t: 0,
        }
    }

    /// Moves the chunk, if it has samples, to `arena` and `out`.
    fn flush(&mut self, arena: &mut Vec<u8>, out: &mut Vec<PartChunk>) {
        if self.enc.num_samples() == 0 {
            return;
        }
        let start = arena.len();
        arena.extend_from_slice(self.enc.bytes());
        out.push(PartChunk {
            min_t: self.min_t,
            max_t: self.max_t,
            start,
            len: arena.len() - start,
        });
        self.enc = XorEncoder::with_capacity(CHUNK_CAPACITY);
    }
}

/// One generator thread's hosts and scratch space.
struct Generator {
    hosts: Vec<HostHistory>,
    rounds: u32,
    open: Vec<OpenChunk>,
    /// Per series of the current host, its closed chunks of the current range.
    closed: Vec<Vec<PartChunk>>,
}

impl Generator {
    fn new(hosts: Vec<HostHistory>, rounds: u32, per_host: usize) -> Self {
        Generator {
            hosts,
            rounds,
            open: (0..per_host).map(|_| OpenChunk::new()).collect(),
            closed: vec![Vec::new(); per_host],
        }
    }

    /// The chunks of every sample before `end` not produced yet.
    fn part(&mut self, end: i64) -> Part {
        let mut part = Part::default();
        part.starts.push(0);
        let (open, closed) = (&mut self.open, &mut self.closed);
        for host in &mut self.hosts {
            let arena = &mut part.arena;
            while host.produced() < self.rounds && host.next_timestamp() < end {
                let ts = host.next_round();
                host.for_each_value(ts, |i, v| {
                    let c = &mut open[i];
                    if c.enc.num_samples() == 0 {
                        c.min_t = ts;
                    }
                    c.enc.append(ts, v);
                    c.max_t = ts;
                    if c.enc.num_samples() >= MAX_SAMPLES_PER_CHUNK {
                        c.flush(arena, &mut closed[i]);
                    }
                });
                part.samples += host.num_series() as u64;
            }
            for (c, chunks) in open.iter_mut().zip(closed.iter_mut()) {
                c.flush(&mut part.arena, chunks);
                part.chunks.append(chunks);
                part.starts.push(part.chunks.len());
            }
        }
        part
    }
}

/// The aligned block ranges `[a, b)` that hold the samples of `spec`, oldest first.
fn block_ranges(spec: &FleetSpec, range_ms: i64) -> Vec<(i64, i64)> {
    // Every timestamp lies in [start_ms, end_ms): see the fleet's invariants.
    let first = spec.start_ms.div_euclid(range_ms) * range_ms;
    let mut out = Vec::new();
    let mut a = first;
    while a < spec.end_ms() {
        out.push((a, a.saturating_add(range_ms)));
        a = a.saturating_add(range_ms);
    }
    out
}

fn write_err(dir: &Path, e: &WriteError) -> Error {
    Error::File {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Writes the fleet's history into blocks under `opts.dir`; see the module docs.
pub fn write(spec: &FleetSpec, opts: &BlocksOptions) -> Result<BlocksSummary, Error> {
    if opts.block_range_ms <= 0 {
        return Err(Error::Invalid("--block-range must be at least 1ms".into()));
    }
    if opts.threads == 0 {
        return Err(Error::Invalid("--concurrency must be at least 1".into()));
    }
    std::fs::create_dir_all(&opts.dir).map_err(|source| Error::File {
        path: opts.dir.clone(),
        source,
    })?;
    let started = Instant::now();
    let threads = opts.threads.min(spec.hosts) as usize;
    let per_host = series_per_host(opts.with_histogram);

    // Every series' labels, and the order in which the block takes them: sorted by labels, each
    // named by (thread, series index within the thread's part).
    let mut labels: Vec<Labels> = Vec::with_capacity(spec.hosts as usize * per_host);
    for h in 0..spec.hosts {
        let host = HostHistory::new(spec, h, opts.with_histogram);
        labels.extend(host.labels().map(|ls| {
            Labels::from_sorted(
                ls.iter()
                    .map(|l| Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
            )
        }));
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_unstable_by(|&a, &b| labels[a].cmp(&labels[b]));
    let located: Vec<(usize, usize, &Labels)> = order
        .iter()
        .map(|&g| {
            let (host, i) = (g / per_host, g % per_host);
            (host % threads, (host / threads) * per_host + i, &labels[g])
        })
        .collect();
    drop(order);

    let writer_opts = BlockWriterOptions {
        thanos: opts
            .tenant
            .as_deref()
            .map(|t| ThanosMeta::for_tenant(t, SOURCE)),
        ..BlockWriterOptions::default()
    };
    let ranges = block_ranges(spec, opts.block_range_ms);
    let mut summary = BlocksSummary {
        dir: opts.dir.clone(),
        blocks: Vec::new(),
        samples: 0,
        chunk_bytes: 0,
        seconds: 0.0,
    };
    thread::scope(|scope| -> Result<(), Error> {
        let mut parts: Vec<Receiver<Part>> = Vec::with_capacity(threads);
        for w in 0..threads {
            let (tx, rx) = sync_channel::<Part>(1);
            parts.push(rx);
            let ranges = &ranges;
            scope.spawn(move || {
                let hosts = (0..spec.hosts)
                    .filter(|h| *h as usize % threads == w)
                    .map(|h| HostHistory::new(spec, h, opts.with_histogram))
                    .collect();
                let mut generator = Generator::new(hosts, spec.rounds, per_host);
                for &(_, end) in ranges {
                    // The receiver is gone only when writing failed: stop.
                    if tx.send(generator.part(end)).is_err() {
                        return;
                    }
                }
            });
        }
        for &(a, b) in &ranges {
            let shares = parts
                .iter()
                .map(Receiver::recv)
                .collect::<Result<Vec<Part>, _>>()
                .map_err(|_| Error::Panicked("block generator"))?;
            if let Some(block) = write_block(&opts.dir, &writer_opts, &located, &shares)? {
                eprintln!(
                    "strata-loadgen: block {} [{a}, {b}): {} series, {} samples, {} chunks",
                    block.ulid, block.series, block.samples, block.chunks
                );
                summary.samples += block.samples;
                summary.blocks.push(block);
            }
            summary.chunk_bytes += shares.iter().map(|p| p.arena.len() as u64).sum::<u64>();
        }
        Ok(())
    })?;
    summary.seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "strata-loadgen: wrote {} blocks to {}: {} samples ({:.2} bytes of chunk data each) in \
         {:.1}s, {:.0} samples/s",
        summary.blocks.len(),
        opts.dir.display(),
        summary.samples,
        summary.chunk_bytes as f64 / summary.samples.max(1) as f64,
        summary.seconds,
        summary.samples as f64 / summary.seconds.max(1e-9)
    );
    Ok(summary)
}

/// Writes one block of the generators' `shares`, series in `located` order; `None` when the
/// range holds no sample.
fn write_block(
    dir: &Path,
    opts: &BlockWriterOptions,
    located: &[(usize, usize, &Labels)],
    shares: &[Part],
) -> Result<Option<WrittenBlock>, Error> {
    if shares.iter().all(|p| p.chunks.is_empty()) {
        return Ok(None);
    }
    let mut w =
        BlockWriter::new(dir, Ulid::generate(), opts.clone()).map_err(|e| write_err(dir, &e))?;
    for &(thread, local, labels) in located {
        let part = &shares[thread];
        let chunks = part.chunks_of(local).iter().map(|c| ChunkMeta {
            min_t: c.min_t,
            max_t: c.max_t,
            data: &part.arena[c.start..c.start + c.len],
        });
        w.add_series(labels, chunks)
            .map_err(|e| write_err(dir, &e))?;
    }
    let meta = w.finish().map_err(|e| write_err(dir, &e))?;
    Ok(Some(WrittenBlock {
        ulid: meta.ulid.to_string(),
        min_time: meta.min_time,
        max_time: meta.max_time,
        series: meta.stats.num_series,
        samples: meta.stats.num_samples,
        chunks: meta.stats.num_chunks,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use strata_storage::block::Block;
    use strata_storage::chunkenc::xor::decode_all;

    use super::*;
    use crate::backfill::pushed_history;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-loadgen-blocks-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn ranges_are_aligned_and_cover_the_samples() {
        let spec = FleetSpec {
            hosts: 1,
            tenants: 1,
            rounds: 10,
            interval_ms: 1000,
            start_ms: 7_500,
            seed: 1,
        };
        assert_eq!(
            block_ranges(&spec, 5_000),
            vec![(5_000, 10_000), (10_000, 15_000), (15_000, 20_000)]
        );
        assert_eq!(block_ranges(&spec, 100_000), vec![(0, 100_000)]);
    }

    /// Blocks read back with strata's reader hold exactly what backfill pushes, in chunks of at
    /// most 120 samples that stay inside their aligned range.
    #[test]
    fn blocks_hold_exactly_the_pushed_history() {
        let spec = FleetSpec {
            hosts: 3,
            tenants: 1,
            rounds: 700,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 7,
        };
        let dir = temp_dir("exact");
        let range = 3_600_000;
        let opts = BlocksOptions {
            dir: dir.clone(),
            block_range_ms: range,
            tenant: Some("team-a".into()),
            with_histogram: true,
            threads: 2,
        };
        let summary = write(&spec, &opts).expect("write blocks");
        let expected = pushed_history(&spec, true);
        let total: u64 = expected.iter().map(|s| s.samples.len() as u64).sum();
        assert_eq!(summary.samples, total);
        assert_eq!(summary.blocks.len(), block_ranges(&spec, range).len());

        let mut got: HashMap<Labels, Vec<(i64, u64)>> = HashMap::new();
        for b in &summary.blocks {
            let block = Block::open(&dir.join(&b.ulid)).expect("open block");
            let meta = block.meta();
            let thanos = meta.thanos.as_ref().expect("thanos section");
            assert_eq!(thanos.labels["__org_id__"], "team-a");
            assert_eq!(thanos.source, SOURCE);
            let aligned = meta.min_time.div_euclid(range) * range;
            assert!(meta.max_time <= aligned + range, "{meta:?}");
            let mut prev: Option<Labels> = None;
            for r in block.index().all_postings().expect("postings") {
                let (labels, chunks) = block.index().series(r).expect("series");
                assert!(prev.as_ref().is_none_or(|p| *p < labels));
                for c in &chunks {
                    assert!(c.min_t >= meta.min_time && c.max_t < meta.max_time);
                    let samples =
                        decode_all(block.chunks().chunk(c.chunk_ref).expect("chunk")).expect("xor");
                    assert!(samples.len() <= usize::from(MAX_SAMPLES_PER_CHUNK));
                    assert_eq!(samples.first().map(|s| s.0), Some(c.min_t));
                    assert_eq!(samples.last().map(|s| s.0), Some(c.max_t));
                    got.entry(labels.clone())
                        .or_default()
                        .extend(samples.iter().map(|&(t, v)| (t, v.to_bits())));
                }
                prev = Some(labels);
            }
        }
        assert_eq!(got.len(), expected.len());
        for s in &expected {
            let labels =
                Labels::from_pairs(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
            let want: Vec<(i64, u64)> = s
                .samples
                .iter()
                .map(|x| (x.timestamp, x.value.to_bits()))
                .collect();
            assert_eq!(got.get(&labels), Some(&want), "{labels}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
