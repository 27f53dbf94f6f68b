//! Validation of an uploaded block before any of it reaches the bucket. Blocks come from
//! outside (Prometheus, promtool, Thanos, Mimir, anything), so every byte a query will read is
//! checked here, and every failure names the file and the rule it breaks:
//!
//! - `meta.json` parses, is version 1, names the block of the URL, has `minTime < maxTime` and
//!   raw (not downsampled) data;
//! - the directory holds `meta.json`, `index` and `chunks/` with segments `000001..N` without
//!   gaps, nothing else (a `tombstones` file would carry deletions strata does not apply);
//! - the index opens (header, TOC, CRC of every section, symbol table, postings offset table);
//!   its series, walked in all-postings order, are strictly sorted by label set, each with sorted
//!   label names without duplicates, no empty name or value, and chunks that start after the
//!   previous one ends, each inside the block's `[minTime, maxTime]`; every postings list reads
//!   (CRC) and names only series of the block;
//! - every chunk the index names lies inside its segment file, whose header is valid, has a valid
//!   CRC, is XOR-encoded, decodes to the end, and holds samples in increasing time order inside
//!   the chunk's range from the index;
//! - the stats of meta.json, when given, match the series, chunks and samples counted.
//!
//! Chunk files are read front to back through a buffer, in the order of the chunk refs, never
//! whole: memory is the index plus 32 bytes per chunk. Everything here is blocking file I/O, run
//! off the shard threads.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use strata_storage::block::chunks::{
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION, segment_file_name, split_chunk_ref,
};
use strata_storage::block::meta::{META_FILENAME, META_VERSION};
use strata_storage::block::{BlockMeta, IndexReader, SeriesRef, Ulid};
use strata_storage::chunkenc::xor::decode_into;
use strata_storage::chunkenc::{ENCODING_XOR, chunk_crc32c};
use strata_storage::labels::Labels;

/// The index file's name in a block.
pub const INDEX_FILENAME: &str = "index";
/// The directory of the chunk segments in a block.
pub const CHUNKS_DIR: &str = "chunks";
/// Largest meta.json accepted.
pub const MAX_META_BYTES: usize = 1 << 20;
/// Largest chunk data accepted in a record: far above any XOR chunk (at most 65535 samples of a
/// few bytes each), so a corrupt length is caught before it is allocated.
const MAX_CHUNK_LEN: usize = 4 << 20;
/// Read buffer of a segment file.
const READ_BUFFER: usize = 1 << 20;

/// What is wrong with an uploaded block: the file at fault and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct InvalidBlock {
    /// Path within the block: `meta.json`, `index`, `chunks/000001`, ...
    pub file: String,
    pub reason: String,
}

impl InvalidBlock {
    fn new(file: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidBlock {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// Why validation did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The block is invalid: the uploader's fault.
    #[error(transparent)]
    Invalid(#[from] InvalidBlock),
    /// Reading a staged file failed: ours.
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ValidateError + '_ {
    move |source| ValidateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A block that passed validation.
#[derive(Debug)]
pub struct ValidBlock {
    pub meta: BlockMeta,
    /// Its files other than meta.json, `/`-separated: the chunk segments in order, then `index`.
    pub files: Vec<String>,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
}

/// Checks meta.json on its own: see the module docs.
pub fn check_meta(bytes: &[u8], ulid: Ulid) -> Result<BlockMeta, InvalidBlock> {
    let bad = |reason: String| InvalidBlock::new(META_FILENAME, reason);
    let meta = BlockMeta::from_json(bytes).map_err(|e| bad(format!("not a block meta: {e}")))?;
    if meta.version != META_VERSION {
        return Err(bad(format!(
            "version {} is not supported (only {META_VERSION})",
            meta.version
        )));
    }
    if meta.ulid != ulid {
        return Err(bad(format!(
            "it names block {}, but the upload is for block {ulid}",
            meta.ulid
        )));
    }
    if meta.min_time >= meta.max_time {
        return Err(bad(format!(
            "minTime {} is not before maxTime {}",
            meta.min_time, meta.max_time
        )));
    }
    if let Some(res) = meta.thanos.as_ref().map(|t| t.downsample.resolution)
        && res != 0
    {
        return Err(bad(format!(
            "the block is downsampled (resolution {res}ms); only raw blocks are accepted"
        )));
    }
    Ok(meta)
}

/// One chunk as the index names it, and its series.
#[derive(Clone, Copy, Debug)]
struct ChunkUse {
    chunk_ref: u64,
    min_t: i64,
    max_t: i64,
    series: SeriesRef,
}

/// Validates the block staged in `dir` for `ulid`: see the module docs.
pub fn validate_block(dir: &Path, ulid: Ulid) -> Result<ValidBlock, ValidateError> {
    let meta_path = dir.join(META_FILENAME);
    let meta_bytes = read_file(&meta_path, META_FILENAME)?;
    let meta = check_meta(&meta_bytes, ulid)?;
    let segments = list_files(dir)?;

    let index_path = dir.join(INDEX_FILENAME);
    let index_bytes = read_file(&index_path, INDEX_FILENAME)?;
    let index = IndexReader::new(index_bytes)
        .map_err(|e| InvalidBlock::new(INDEX_FILENAME, e.to_string()))?;
    let (series, mut uses) = check_series(&index, &meta)?;
    check_postings(&index, &series)?;

    uses.sort_unstable_by_key(|u| u.chunk_ref);
    let mut samples = 0u64;
    let mut rest = uses.as_slice();
    for (i, name) in segments.iter().enumerate() {
        let n = rest.partition_point(|u| (split_chunk_ref(u.chunk_ref).0 as usize) <= i);
        let (mine, later) = rest.split_at(n);
        samples += check_segment(&dir.join(name), name, mine, &index)?;
        rest = later;
    }
    if let Some(u) = rest.first() {
        return Err(InvalidBlock::new(
            INDEX_FILENAME,
            format!(
                "series {} names chunk {:#x} in segment {}, but the block has {} segment files",
                series_name(&index, u.series),
                u.chunk_ref,
                segment_file_name(split_chunk_ref(u.chunk_ref).0),
                segments.len()
            ),
        )
        .into());
    }

    let counted = [
        ("numSeries", meta.stats.num_series, series.len() as u64),
        ("numChunks", meta.stats.num_chunks, uses.len() as u64),
        ("numSamples", meta.stats.num_samples, samples),
    ];
    for (name, stated, found) in counted {
        if stated != 0 && stated != found {
            return Err(InvalidBlock::new(
                META_FILENAME,
                format!("stats.{name} is {stated}, but the block holds {found}"),
            )
            .into());
        }
    }
    let mut files = segments;
    files.push(INDEX_FILENAME.to_owned());
    Ok(ValidBlock {
        meta,
        files,
        series: series.len() as u64,
        chunks: uses.len() as u64,
        samples,
    })
}

/// Reads a whole file; a missing one is the uploader's fault.
fn read_file(path: &Path, name: &str) -> Result<Vec<u8>, ValidateError> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(InvalidBlock::new(name, "missing: it was never uploaded").into())
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Checks the block's file names; returns the segments' paths (`chunks/000001`, ...) in order.
fn list_files(dir: &Path) -> Result<Vec<String>, ValidateError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = entry.map_err(io_err(dir))?.file_name();
        let name = name.to_string_lossy();
        if ![META_FILENAME, INDEX_FILENAME, CHUNKS_DIR].contains(&name.as_ref()) {
            return Err(unexpected_file(&name).into());
        }
    }
    let chunks = dir.join(CHUNKS_DIR);
    let mut numbers: Vec<(u64, String)> = Vec::new();
    match fs::read_dir(&chunks) {
        Ok(entries) => {
            for entry in entries {
                let name = entry.map_err(io_err(&chunks))?.file_name();
                let name = name.to_string_lossy().into_owned();
                let rel = format!("{CHUNKS_DIR}/{name}");
                match name.parse::<u64>() {
                    Ok(n) if name.bytes().all(|b| b.is_ascii_digit()) => numbers.push((n, rel)),
                    _ => return Err(unexpected_file(&rel).into()),
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&chunks)(e)),
    }
    numbers.sort_unstable();
    for (i, (n, _)) in numbers.iter().enumerate() {
        if *n != i as u64 + 1 {
            let missing = format!("{CHUNKS_DIR}/{}", segment_file_name(i as u32));
            return Err(InvalidBlock::new(
                missing,
                "missing: segment files are numbered from 000001 without gaps",
            )
            .into());
        }
    }
    Ok(numbers.into_iter().map(|(_, rel)| rel).collect())
}

fn unexpected_file(name: &str) -> InvalidBlock {
    let reason = if name.ends_with(super::PART_SUFFIX) {
        "its upload did not complete"
    } else {
        "not a block file (a block holds meta.json, index and chunks/NNNNNN)"
    };
    InvalidBlock::new(name, reason)
}

/// The label set of series `r`, for messages.
fn series_name<B: AsRef<[u8]>>(index: &IndexReader<B>, r: SeriesRef) -> String {
    index
        .series(r)
        .map_or_else(|_| format!("ref {r}"), |(labels, _)| labels.to_string())
}

/// Walks every series in all-postings order; returns the refs and every chunk they name.
fn check_series<B: AsRef<[u8]>>(
    index: &IndexReader<B>,
    meta: &BlockMeta,
) -> Result<(Vec<SeriesRef>, Vec<ChunkUse>), InvalidBlock> {
    let bad = |reason: String| InvalidBlock::new(INDEX_FILENAME, reason);
    let refs = index.all_postings().map_err(|e| bad(e.to_string()))?;
    if refs.is_empty() {
        return Err(bad("the block holds no series".into()));
    }
    let mut uses = Vec::new();
    let mut chunks = Vec::new();
    let mut prev: Option<Labels> = None;
    for &r in &refs {
        let labels = index
            .series_into(r, &mut chunks)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(l) = labels
            .iter()
            .find(|l| l.name.is_empty() || l.value.is_empty())
        {
            return Err(bad(format!(
                "series {labels}: label {:?} has an empty name or value",
                l.name
            )));
        }
        if prev.as_ref().is_some_and(|p| *p >= labels) {
            return Err(bad(format!(
                "series {labels} does not sort after the series before it (series must be \
                 sorted by label set, each once)"
            )));
        }
        if chunks.is_empty() {
            return Err(bad(format!("series {labels} has no chunk")));
        }
        let mut prev_max: Option<i64> = None;
        for c in &chunks {
            if c.min_t > c.max_t {
                return Err(bad(format!(
                    "series {labels}: chunk {:#x} has minTime {} after maxTime {}",
                    c.chunk_ref, c.min_t, c.max_t
                )));
            }
            if c.min_t < meta.min_time || c.max_t > meta.max_time {
                return Err(bad(format!(
                    "series {labels}: chunk {:#x} spans [{}, {}], outside the block's [{}, {}] \
                     (meta.json)",
                    c.chunk_ref, c.min_t, c.max_t, meta.min_time, meta.max_time
                )));
            }
            if prev_max.is_some_and(|m| c.min_t <= m) {
                return Err(bad(format!(
                    "series {labels}: chunk {:#x} starts at {}, before the previous chunk ends",
                    c.chunk_ref, c.min_t
                )));
            }
            prev_max = Some(c.max_t);
            uses.push(ChunkUse {
                chunk_ref: c.chunk_ref,
                min_t: c.min_t,
                max_t: c.max_t,
                series: r,
            });
        }
        prev = Some(labels);
    }
    Ok((refs, uses))
}

/// Reads every postings list and checks it names only series of the block (`series`, sorted).
fn check_postings<B: AsRef<[u8]>>(
    index: &IndexReader<B>,
    series: &[SeriesRef],
) -> Result<(), InvalidBlock> {
    for name in index.label_names() {
        for value in index.label_values(name) {
            let list = index
                .postings(name, value)
                .map_err(|e| InvalidBlock::new(INDEX_FILENAME, e.to_string()))?;
            if let Some(r) = list.iter().find(|r| series.binary_search(r).is_err()) {
                return Err(InvalidBlock::new(
                    INDEX_FILENAME,
                    format!(
                        "the postings list of {name}={value:?} names series ref {r}, which is not a series of the block"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks segment file `name` and the chunks in it (`uses`, sorted by ref); returns the samples.
fn check_segment<B: AsRef<[u8]>>(
    path: &Path,
    name: &str,
    uses: &[ChunkUse],
    index: &IndexReader<B>,
) -> Result<u64, ValidateError> {
    let bad = |reason: String| ValidateError::from(InvalidBlock::new(name, reason));
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::with_capacity(READ_BUFFER, file);
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(bad(format!(
            "{len} bytes is shorter than the {SEGMENT_HEADER_LEN}-byte segment header"
        )));
    }
    r.read_exact(&mut header).map_err(io_err(path))?;
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != SEGMENT_MAGIC {
        return Err(bad(format!(
            "bad magic {magic:#010x} (a chunk segment starts with {SEGMENT_MAGIC:#010x})"
        )));
    }
    if header[4] != SEGMENT_VERSION {
        return Err(bad(format!(
            "segment version {} is not supported (only {SEGMENT_VERSION})",
            header[4]
        )));
    }
    let mut pos = SEGMENT_HEADER_LEN as u64;
    let mut data = Vec::new();
    let mut samples = Vec::new();
    let mut total = 0u64;
    for u in uses {
        let chunk = |reason: String| {
            bad(format!(
                "chunk {:#x} of series {}: {reason}",
                u.chunk_ref,
                series_name(index, u.series)
            ))
        };
        let offset = u64::from(split_chunk_ref(u.chunk_ref).1);
        if offset < SEGMENT_HEADER_LEN as u64 || offset >= len {
            return Err(chunk(format!(
                "offset {offset} lies outside the file of {len} bytes"
            )));
        }
        if offset != pos {
            match offset.checked_sub(pos) {
                Some(ahead) if ahead <= READ_BUFFER as u64 => {
                    r.seek_relative(ahead as i64).map_err(io_err(path))?;
                }
                _ => {
                    r.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
                }
            }
        }
        // uvarint length | encoding | data | CRC32C, all inside the file.
        let mut data_len = 0u64;
        let mut varint_len = 0u64;
        loop {
            if offset + varint_len >= len || varint_len == 10 {
                return Err(chunk("the record's length is truncated or corrupt".into()));
            }
            let mut b = [0u8; 1];
            r.read_exact(&mut b).map_err(io_err(path))?;
            data_len |= u64::from(b[0] & 0x7f) << (7 * varint_len);
            varint_len += 1;
            if b[0] < 0x80 {
                break;
            }
        }
        let end = offset + varint_len + 1 + data_len + 4;
        if data_len > MAX_CHUNK_LEN as u64 || end > len {
            return Err(chunk(format!(
                "a record of {data_len} bytes of data runs past the end of the file"
            )));
        }
        let mut enc = [0u8; 1];
        r.read_exact(&mut enc).map_err(io_err(path))?;
        data.resize(data_len as usize, 0);
        r.read_exact(&mut data).map_err(io_err(path))?;
        let mut crc = [0u8; 4];
        r.read_exact(&mut crc).map_err(io_err(path))?;
        pos = end;
        let stored = u32::from_be_bytes(crc);
        let computed = chunk_crc32c(enc[0], &data);
        if stored != computed {
            return Err(chunk(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        if enc[0] != ENCODING_XOR {
            return Err(chunk(format!(
                "encoding {} is not XOR ({ENCODING_XOR}): only float samples are accepted",
                enc[0]
            )));
        }
        samples.clear();
        decode_into(&data, &mut samples).map_err(|e| chunk(e.to_string()))?;
        if samples.is_empty() {
            return Err(chunk("the chunk holds no sample".into()));
        }
        let mut prev = None;
        for &(t, _) in &samples {
            if t < u.min_t || t > u.max_t {
                return Err(chunk(format!(
                    "sample at {t} lies outside the chunk's [{}, {}] (index)",
                    u.min_t, u.max_t
                )));
            }
            if prev.is_some_and(|p| t <= p) {
                return Err(chunk(format!(
                    "sample at {t} does not follow the one before"
                )));
            }
            prev = Some(t);
        }
        total += samples.len() as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use strata_storage::block::{BlockWriter, BlockWriterOptions};
    use strata_storage::chunkenc::xor::XorEncoder;
    use strata_storage::head::ChunkMeta;

    use super::*;

    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A valid block of two series (250 samples each, in chunks of 120) in a fresh directory.
    fn block() -> (TempDir, PathBuf, Ulid) {
        let root = std::env::temp_dir().join(format!(
            "strata-validate-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let ulid = Ulid::new(1_700_000_000_000, 42);
        let mut w = BlockWriter::new(&root, ulid, BlockWriterOptions::default()).expect("writer");
        for name in ["a", "b"] {
            let labels = Labels::from_pairs([("__name__", name), ("job", "test")]);
            let mut chunks: Vec<(i64, i64, Vec<u8>)> = Vec::new();
            for first in (0..250).step_by(120) {
                let mut enc = XorEncoder::new();
                let ts: Vec<i64> = (first..(first + 120).min(250))
                    .map(|i| 1_000 + i * 15)
                    .collect();
                for &t in &ts {
                    enc.append(t, t as f64 / 3.0);
                }
                chunks.push((ts[0], ts[ts.len() - 1], enc.into_bytes()));
            }
            w.add_series(
                &labels,
                chunks.iter().map(|(min_t, max_t, data)| ChunkMeta {
                    min_t: *min_t,
                    max_t: *max_t,
                    data,
                }),
            )
            .expect("add series");
        }
        w.finish().expect("finish");
        let dir = root.join(ulid.to_string());
        (TempDir(root), dir, ulid)
    }

    fn invalid(dir: &Path, ulid: Ulid) -> InvalidBlock {
        match validate_block(dir, ulid) {
            Err(ValidateError::Invalid(e)) => e,
            other => panic!("expected an invalid block, got {other:?}"),
        }
    }

    fn edit_meta(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(META_FILENAME);
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read meta")).expect("json");
        f(&mut v);
        fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write meta");
    }

    fn flip(path: &Path, at: usize) {
        let mut b = fs::read(path).expect("read");
        b[at] ^= 0x20;
        fs::write(path, b).expect("write");
    }

    #[test]
    fn a_block_written_here_passes() {
        let (_tmp, dir, ulid) = block();
        let v = validate_block(&dir, ulid).expect("valid");
        assert_eq!((v.series, v.chunks, v.samples), (2, 6, 500));
        assert_eq!(v.files, ["chunks/000001", "index"]);
        assert_eq!(v.meta.ulid, ulid);
    }

    #[test]
    fn meta_json_is_checked_alone() {
        let (_tmp, dir, ulid) = block();
        let good = fs::read(dir.join(META_FILENAME)).expect("meta");
        assert!(check_meta(&good, ulid).is_ok());
        let other = Ulid::new(1_700_000_000_000, 43);
        let e = check_meta(&good, other).expect_err("ulid mismatch");
        assert_eq!(e.file, "meta.json");
        assert!(e.reason.contains(&ulid.to_string()) && e.reason.contains(&other.to_string()));
        assert!(check_meta(b"{", ulid).is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        v["version"] = 2.into();
        let e = check_meta(&serde_json::to_vec(&v).expect("json"), ulid).expect_err("version");
        assert!(e.reason.contains("version 2"), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        v["maxTime"] = v["minTime"].clone();
        let e = check_meta(&serde_json::to_vec(&v).expect("json"), ulid).expect_err("range");
        assert!(e.reason.contains("not before maxTime"), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        v["thanos"] = serde_json::json!({"labels": {}, "downsample": {"resolution": 300_000}});
        let e = check_meta(&serde_json::to_vec(&v).expect("json"), ulid).expect_err("downsampled");
        assert!(e.reason.contains("downsampled"), "{e}");
    }

    #[test]
    fn a_flipped_index_byte_names_the_index() {
        let (_tmp, dir, ulid) = block();
        let len = fs::metadata(dir.join(INDEX_FILENAME)).expect("index").len() as usize;
        // Symbols, series, postings and the TOC: every region is covered by a CRC.
        for at in [6, 20, len / 2, len - 10] {
            let (_tmp, dir, ulid) = block();
            flip(&dir.join(INDEX_FILENAME), at);
            let e = invalid(&dir, ulid);
            assert_eq!(e.file, "index", "byte {at}: {e}");
        }
        let _ = ulid;
    }

    #[test]
    fn a_corrupt_chunk_names_its_segment_and_series() {
        let (_tmp, dir, ulid) = block();
        flip(&dir.join("chunks/000001"), 20);
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "chunks/000001");
        assert!(e.reason.contains("checksum mismatch"), "{e}");
        assert!(e.reason.contains("a{job=\"test\"}"), "{e}");

        let (_tmp, dir, ulid) = block();
        flip(&dir.join("chunks/000001"), 1);
        assert!(invalid(&dir, ulid).reason.contains("bad magic"));
    }

    #[test]
    fn only_xor_chunks_are_accepted() {
        let (_tmp, dir, ulid) = block();
        let path = dir.join("chunks/000001");
        let mut b = fs::read(&path).expect("segment");
        // The first record: uvarint length (two bytes for 120 samples), encoding, data, CRC.
        let mut c = 8;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            len |= usize::from(b[c] & 0x7f) << shift;
            shift += 7;
            c += 1;
            if b[c - 1] < 0x80 {
                break;
            }
        }
        b[c] = 2;
        let crc = chunk_crc32c(2, &b[c + 1..c + 1 + len]);
        b[c + 1 + len..c + 5 + len].copy_from_slice(&crc.to_be_bytes());
        fs::write(&path, b).expect("write");
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "chunks/000001");
        assert!(e.reason.contains("not XOR"), "{e}");
    }

    #[test]
    fn files_must_be_complete_and_expected() {
        let (_tmp, dir, ulid) = block();
        fs::remove_file(dir.join(INDEX_FILENAME)).expect("rm index");
        let e = invalid(&dir, ulid);
        assert_eq!(
            (e.file.as_str(), e.reason.contains("missing")),
            ("index", true)
        );

        let (_tmp, dir, ulid) = block();
        fs::write(dir.join("tombstones"), b"x").expect("write");
        assert_eq!(invalid(&dir, ulid).file, "tombstones");

        let (_tmp, dir, ulid) = block();
        fs::write(dir.join("chunks/000002.part"), b"x").expect("write");
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "chunks/000002.part");
        assert!(e.reason.contains("did not complete"), "{e}");

        let (_tmp, dir, ulid) = block();
        fs::rename(dir.join("chunks/000001"), dir.join("chunks/000002")).expect("rename");
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "chunks/000001");
        assert!(e.reason.contains("missing"), "{e}");

        let (_tmp, dir, ulid) = block();
        fs::remove_file(dir.join("chunks/000001")).expect("rm segment");
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "index");
        assert!(e.reason.contains("0 segment files"), "{e}");
    }

    #[test]
    fn chunks_must_lie_in_the_block_and_stats_must_match() {
        let (_tmp, dir, ulid) = block();
        edit_meta(&dir, |v| v["minTime"] = 2_000.into());
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "index");
        assert!(e.reason.contains("outside the block"), "{e}");

        let (_tmp, dir, ulid) = block();
        edit_meta(&dir, |v| v["stats"]["numSamples"] = 499.into());
        let e = invalid(&dir, ulid);
        assert_eq!(e.file, "meta.json");
        assert!(
            e.reason
                .contains("numSamples is 499, but the block holds 500"),
            "{e}"
        );

        // Stats left out are not checked.
        let (_tmp, dir, ulid) = block();
        edit_meta(&dir, |v| v["stats"] = serde_json::json!({}));
        assert!(validate_block(&dir, ulid).is_ok());
    }
}
