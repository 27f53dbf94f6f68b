//! Golden compatibility with a block Prometheus wrote, without needing promtool at test time.
//!
//! `data/block/prometheus/01M8104Z81J2YPZ6568VS51544/` is the block Prometheus 2.42's promtool
//! wrote for `data/xor/input.om` (`promtool tsdb create-blocks-from openmetrics input.om out`);
//! its `chunks/000001` is the very file of `data/xor/`. Its index carries what our writer leaves
//! out (label indices, the empty string in the symbol table) and a `tombstones` file.
//! - `Block::open` reads it, and every series' labels and samples equal the input;
//! - `select` over it agrees with brute-force matching;
//! - rewriting its series and chunks with `BlockWriter` gives a byte-identical segment file and
//!   an index that reads back to the same series, chunk metas and chunk refs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_storage::block::{Block, BlockWriter, BlockWriterOptions, Ulid};
use strata_storage::chunkenc::xor::decode_all;
use strata_storage::head::ChunkMeta;
use strata_storage::labels::Labels;
use strata_storage::matcher::{MatchType, Matcher};

const INPUT: &str = include_str!("data/xor/input.om");
const ULID: &str = "01M8104Z81J2YPZ6568VS51544";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/block/prometheus")
        .join(ULID)
}

/// `name{a="1",b="2"}` (values without quotes, commas or escapes) as a label set.
fn parse_series(key: &str) -> Labels {
    let (name, rest) = key.split_once('{').unwrap_or((key, "}"));
    let body = rest.strip_suffix('}').expect("closing brace");
    let mut pairs = vec![("__name__".to_owned(), name.to_owned())];
    for pair in body.split(',').filter(|p| !p.is_empty()) {
        let (n, v) = pair.split_once('=').expect("name=value");
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
        pairs.push((n.to_owned(), v.expect("quoted value").to_owned()));
    }
    Labels::from_pairs(pairs)
}

/// Parses an `OpenMetrics` timestamp in seconds with up to millisecond precision, exactly.
fn millis(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: i64 = format!("{frac:0<3}").parse().expect("fraction");
    secs.parse::<i64>().expect("seconds") * 1000 + frac
}

fn input_series() -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let mut out: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for line in INPUT.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.rsplitn(3, ' ');
        let (Some(ts), Some(v), Some(key)) = (f.next(), f.next(), f.next()) else {
            panic!("bad line {line:?}");
        };
        let v: f64 = v.parse().expect("value");
        out.entry(parse_series(key))
            .or_default()
            .push((millis(ts), v));
    }
    out
}

/// Same time and value bits; any NaN matches any NaN (Go's and Rust's parsers make different
/// payloads from the text "NaN").
fn same(a: (i64, f64), b: (i64, f64)) -> bool {
    a.0 == b.0 && (a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan()))
}

#[test]
fn prometheus_block_reads_as_its_input() {
    let block = Block::open(&fixture_dir()).expect("open prometheus block");
    let meta = block.meta();
    assert_eq!(meta.ulid.to_string(), ULID);
    assert_eq!(
        (
            meta.stats.num_series,
            meta.stats.num_chunks,
            meta.stats.num_samples
        ),
        (8, 24, 2492)
    );
    let input = input_series();
    let ix = block.index();
    let all = ix.all_postings().expect("all postings");
    assert_eq!(all.len(), input.len());
    for (r, (labels, samples)) in all.iter().zip(&input) {
        let (got, chunks) = ix.series(*r).expect("series");
        assert_eq!(&got, labels);
        let decoded: Vec<(i64, f64)> = chunks
            .iter()
            .flat_map(|c| {
                decode_all(block.chunks().chunk(c.chunk_ref).expect("chunk")).expect("decode")
            })
            .collect();
        assert_eq!(decoded.len(), samples.len(), "{labels}");
        assert!(
            decoded.iter().zip(samples).all(|(&a, &b)| same(a, b)),
            "{labels}"
        );
        for c in &chunks {
            let s = decode_all(block.chunks().chunk(c.chunk_ref).expect("chunk")).expect("decode");
            assert_eq!((s[0].0, s[s.len() - 1].0), (c.min_t, c.max_t));
        }
    }
    assert_eq!(
        ix.label_names(),
        vec!["__name__", "cpu", "device", "instance", "mode", "target"]
    );
    assert_eq!(ix.label_values("mode"), vec!["idle", "user"]);
    assert_eq!(ix.label_values("nope"), Vec::<&str>::new());
}

#[test]
fn select_on_a_prometheus_block_matches_brute_force() {
    let block = Block::open(&fixture_dir()).expect("open");
    let input = input_series();
    let m = |t, n: &str, v: &str| Matcher::new(t, n, v).expect("matcher");
    let cases = vec![
        vec![m(MatchType::Equal, "__name__", "up")],
        vec![m(MatchType::Regexp, "__name__", "node_.*")],
        vec![
            m(MatchType::Regexp, "__name__", "node_.*"),
            m(MatchType::Equal, "mode", ""),
        ],
        vec![m(MatchType::NotEqual, "mode", "idle")],
        vec![m(MatchType::NotRegexp, "instance", "host-1.*")],
        vec![m(MatchType::Regexp, "instance", "host-1:9100|host-2:9100")],
        vec![
            m(MatchType::Regexp, "cpu", "|0"),
            m(MatchType::Equal, "__name__", "up"),
        ],
        vec![m(MatchType::Equal, "cpu", "1")],
        vec![m(MatchType::Equal, "missing", "")],
        vec![m(MatchType::Regexp, "missing", ".+")],
        vec![m(MatchType::Equal, "", "")],
    ];
    for ms in cases {
        let got: Vec<Labels> = block
            .index()
            .select(&ms)
            .expect("select")
            .into_iter()
            .map(|r| block.index().series(r).expect("series").0)
            .collect();
        let want: Vec<Labels> = input
            .keys()
            .filter(|l| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
            .cloned()
            .collect();
        assert_eq!(
            got,
            want,
            "{:?}",
            ms.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
    }
}

#[test]
fn rewriting_a_prometheus_block_gives_the_same_chunks() {
    let theirs = Block::open(&fixture_dir()).expect("open");
    let tmp = std::env::temp_dir().join(format!("strata-block-rewrite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let ulid = Ulid::generate();
    let mut w = BlockWriter::new(&tmp, ulid, BlockWriterOptions::default()).expect("writer");
    let ix = theirs.index();
    let refs = ix.all_postings().expect("postings");
    // Added in reverse order: the writer sorts them back.
    for &r in refs.iter().rev() {
        let (labels, chunks) = ix.series(r).expect("series");
        let data: Vec<&[u8]> = chunks
            .iter()
            .map(|c| theirs.chunks().chunk(c.chunk_ref).expect("chunk"))
            .collect();
        w.add_series(
            &labels,
            chunks.iter().zip(&data).map(|(c, d)| ChunkMeta {
                min_t: c.min_t,
                max_t: c.max_t,
                data: d,
            }),
        )
        .expect("add");
    }
    let meta = w.finish().expect("finish");
    assert_eq!(meta.stats, theirs.meta().stats);
    assert_eq!(
        (meta.min_time, meta.max_time),
        (theirs.meta().min_time, theirs.meta().max_time)
    );
    let ours = Block::open(&tmp.join(ulid.to_string())).expect("open ours");
    let ours_segment = std::fs::read(tmp.join(ulid.to_string()).join("chunks/000001"));
    let theirs_segment = std::fs::read(fixture_dir().join("chunks/000001"));
    assert_eq!(
        ours_segment.expect("ours"),
        theirs_segment.expect("theirs"),
        "segment files differ"
    );
    let our_refs = ours.index().all_postings().expect("postings");
    assert_eq!(our_refs.len(), refs.len());
    for (a, b) in our_refs.iter().zip(&refs) {
        assert_eq!(
            ours.index().series(*a).expect("ours"),
            ix.series(*b).expect("theirs")
        );
    }
    std::fs::remove_dir_all(&tmp).expect("cleanup");
}
