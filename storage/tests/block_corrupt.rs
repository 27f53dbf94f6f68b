//! Corrupt block files give errors, never panics: a valid small block's index and chunk segment
//! are truncated, bit-flipped and overwritten (every single-bit flip, every truncation, and random
//! combinations), optionally with every CRC recomputed afterwards so that the decoders behind
//! the checksums see the damage too; then everything the readers offer is exercised.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use strata_storage::block::{
    BlockWriter, BlockWriterOptions, ChunkReader, IndexError, IndexReader, SeriesRef, Ulid,
};
use strata_storage::chunkenc::xor::{XorEncoder, XorIterator};
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

/// The files of a small valid block, and the chunk refs its index holds.
struct Fixture {
    index: Vec<u8>,
    segment: Vec<u8>,
    chunk_refs: Vec<u64>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("strata-block-corrupt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ulid = Ulid::generate();
        let mut w = BlockWriter::new(&dir, ulid, BlockWriterOptions::default()).expect("writer");
        for i in 0..6 {
            let labels = Labels::from_pairs([
                ("__name__", if i % 2 == 0 { "up" } else { "requests_total" }),
                ("job", ["api", "db", "web"][i % 3]),
                ("instance", &format!("h{i}")),
            ]);
            let chunks: Vec<Vec<u8>> = (0..2)
                .map(|c| {
                    let mut e = XorEncoder::new();
                    for s in 0..5 {
                        e.append(c * 1000 + s * 10, (i as i64 * s) as f64 * 0.5);
                    }
                    e.into_bytes()
                })
                .collect();
            w.add_series(
                &labels,
                chunks.iter().enumerate().map(|(c, data)| ChunkMeta {
                    min_t: c as i64 * 1000,
                    max_t: c as i64 * 1000 + 40,
                    data,
                }),
            )
            .expect("add");
        }
        w.finish().expect("finish");
        let block = dir.join(ulid.to_string());
        let index = std::fs::read(block.join("index")).expect("index");
        let segment = std::fs::read(block.join("chunks/000001")).expect("segment");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let ix = IndexReader::new(index.as_slice()).expect("valid index");
        let chunk_refs = ix
            .all_postings()
            .expect("postings")
            .into_iter()
            .flat_map(|r| ix.series(r).expect("series").1)
            .map(|c| c.chunk_ref)
            .collect();
        Fixture {
            index,
            segment,
            chunk_refs,
        }
    })
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize
}

fn be64(b: &[u8], at: usize) -> usize {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize
}

fn uvarint(b: &[u8], at: &mut usize) -> usize {
    let (mut x, mut shift) = (0usize, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        x |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return x;
        }
        shift += 7;
    }
}

/// A checksummed region: the CRC at `crc` covers `start..crc`.
#[derive(Clone, Copy, Debug)]
struct Region {
    start: usize,
    crc: usize,
}

/// The checksummed regions of the valid fixture index, as this crate lays it out.
fn index_regions(b: &[u8]) -> Vec<Region> {
    let toc = b.len() - 52;
    let mut out = vec![Region {
        start: toc,
        crc: toc + 48,
    }];
    let [symbols, series, _, label_table, postings, postings_table] =
        std::array::from_fn(|i| be64(b, toc + 8 * i));
    for table in [symbols, label_table, postings_table] {
        out.push(Region {
            start: table + 4,
            crc: table + 4 + be32(b, table),
        });
    }
    let mut pos = series;
    loop {
        pos = pos.next_multiple_of(16);
        if pos >= postings {
            break;
        }
        let len = uvarint(b, &mut pos);
        out.push(Region {
            start: pos,
            crc: pos + len,
        });
        pos += len + 4;
    }
    let mut pos = postings;
    while pos < label_table {
        let len = be32(b, pos);
        out.push(Region {
            start: pos + 4,
            crc: pos + 4 + len,
        });
        pos += 4 + len + 4;
    }
    out
}

/// The checksummed regions (encoding byte and data) of the fixture segment's chunks.
fn segment_regions(b: &[u8]) -> Vec<Region> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < b.len() {
        let len = uvarint(b, &mut pos);
        out.push(Region {
            start: pos,
            crc: pos + 1 + len,
        });
        pos += 1 + len + 4;
    }
    out
}

/// Recomputes each region's CRC where the (possibly truncated) bytes still hold it.
fn fix_crcs(b: &mut [u8], regions: &[Region]) {
    for r in regions {
        if r.crc + 4 <= b.len() {
            let crc = crc32c::crc32c(&b[r.start..r.crc]);
            b[r.crc..r.crc + 4].copy_from_slice(&crc.to_be_bytes());
        }
    }
}

fn matchers() -> Vec<Vec<Matcher>> {
    let m = |t, n: &str, v: &str| Matcher::new(t, n, v).expect("matcher");
    vec![
        vec![],
        vec![m(MatchType::Equal, "__name__", "up")],
        vec![m(MatchType::NotEqual, "job", "api")],
        vec![m(MatchType::Regexp, "job", "a.*|d.*")],
        vec![
            m(MatchType::NotRegexp, "instance", "h1|h2"),
            m(MatchType::Regexp, "__name__", ".+"),
        ],
        vec![m(MatchType::Equal, "missing", "")],
    ]
}

/// Runs every read path over possibly corrupt files; errors are fine, panics are not.
fn exercise(index: &[u8], segment: &[u8]) {
    let chunks = ChunkReader::new(vec![segment]).ok();
    let read_chunk = |r: u64| {
        if let Some(c) = &chunks
            && let Ok(data) = c.chunk(r)
        {
            let mut it = XorIterator::new(data);
            for s in it.by_ref() {
                std::hint::black_box(s);
            }
            let _ = it.err();
        }
    };
    for &r in &fixture().chunk_refs {
        read_chunk(r);
    }
    read_chunk(u64::MAX);

    let Ok(ix) = IndexReader::new(index) else {
        return;
    };
    for name in ix.label_names() {
        for v in ix.label_values(name) {
            let _ = ix.postings(name, v);
        }
    }
    for ms in matchers() {
        let _ = ix.select(&ms);
    }
    let _ = ix.symbol(u32::MAX);
    let mut refs: Vec<SeriesRef> = ix.all_postings().unwrap_or_default();
    refs.extend([0, 1, 2, 3, 1000, u32::MAX]);
    for r in refs {
        if let Ok((labels, metas)) = ix.series(r) {
            std::hint::black_box(labels);
            for c in metas {
                read_chunk(c.chunk_ref);
            }
        }
    }
}

#[test]
fn the_fixture_is_valid() {
    let f = fixture();
    let ix = IndexReader::new(f.index.as_slice()).expect("index");
    assert_eq!(ix.all_postings().expect("postings").len(), 6);
    assert_eq!(f.chunk_refs.len(), 12);
    let chunks = ChunkReader::new(vec![f.segment.as_slice()]).expect("segment");
    for &r in &f.chunk_refs {
        chunks.chunk(r).expect("chunk");
    }
    // Recomputing intact CRCs changes nothing: the region maps are right.
    let mut index = f.index.clone();
    fix_crcs(&mut index, &index_regions(&f.index));
    assert_eq!(index, f.index);
    let mut segment = f.segment.clone();
    fix_crcs(&mut segment, &segment_regions(&f.segment));
    assert_eq!(segment, f.segment);
    exercise(&f.index, &f.segment);
}

#[test]
fn every_truncation_is_an_error() {
    let f = fixture();
    for len in 0..f.index.len() {
        assert!(
            IndexReader::new(&f.index[..len]).is_err(),
            "index cut at {len}"
        );
    }
    let chunks = ChunkReader::new(vec![&f.segment[..f.segment.len() - 1]]).expect("header");
    let last = *f.chunk_refs.iter().max().expect("refs");
    assert!(chunks.chunk(last).is_err());
    for len in 0..f.segment.len() {
        exercise(&f.index, &f.segment[..len]);
    }
}

#[test]
fn every_bit_flip_is_survived() {
    let f = fixture();
    let index_regions = index_regions(&f.index);
    // Flips behind recomputed CRCs must reach the decoders: some are reported as corruption
    // rather than as a checksum mismatch.
    let mut corrupt = 0;
    for i in 0..f.index.len() * 8 {
        let mut index = f.index.clone();
        index[i / 8] ^= 1 << (i % 8);
        exercise(&index, &f.segment);
        fix_crcs(&mut index, &index_regions);
        exercise(&index, &f.segment);
        let ix = IndexReader::new(index.as_slice());
        let series_errors = ix.iter().flat_map(|ix| {
            let refs = ix.all_postings().unwrap_or_default();
            refs.into_iter()
                .filter_map(|r| ix.series(r).err())
                .collect::<Vec<_>>()
        });
        corrupt += ix
            .as_ref()
            .err()
            .cloned()
            .into_iter()
            .chain(series_errors)
            .filter(|e| matches!(e, IndexError::Corrupt { .. }))
            .count();
    }
    assert!(corrupt > 0);
    let segment_regions = segment_regions(&f.segment);
    for i in 0..f.segment.len() * 8 {
        let mut segment = f.segment.clone();
        segment[i / 8] ^= 1 << (i % 8);
        exercise(&f.index, &segment);
        fix_crcs(&mut segment, &segment_regions);
        exercise(&f.index, &segment);
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(b: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        if b.is_empty() {
            return;
        }
        match m {
            Mutation::Flip(i, bit) => {
                let i = i.index(b.len());
                b[i] ^= 1 << bit;
            }
            Mutation::Set(i, v) => {
                let i = i.index(b.len());
                b[i] = *v;
            }
            Mutation::Truncate(i) => {
                let i = i.index(b.len());
                b.truncate(i);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_damage_is_an_error_not_a_panic(
        index_muts in proptest::collection::vec(mutation(), 0..6),
        segment_muts in proptest::collection::vec(mutation(), 0..6),
        fix in any::<bool>(),
    ) {
        let f = fixture();
        let mut index = f.index.clone();
        let mut segment = f.segment.clone();
        apply(&mut index, &index_muts);
        apply(&mut segment, &segment_muts);
        if fix {
            fix_crcs(&mut index, &index_regions(&f.index));
            fix_crcs(&mut segment, &segment_regions(&f.segment));
        }
        exercise(&index, &segment);
    }
}
