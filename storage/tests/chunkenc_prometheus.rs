//! Golden compatibility with Prometheus's XOR chunks.
//!
//! `data/xor/000001` is a chunk segment file written by Prometheus 2.42's promtool from
//! `data/xor/input.om` (regenerate both with `scripts/make-xor-fixture.sh`). Every chunk must have
//! a valid CRC, decode to a contiguous run of one input series' samples, cover the input exactly
//! once, and re-encode with [`XorEncoder`] to the very bytes Prometheus wrote.

use std::collections::BTreeMap;

use strata_storage::chunkenc::xor::{XorEncoder, XorIterator, decode_all};
use strata_storage::chunkenc::{ENCODING_XOR, chunk_crc32c};

const SEGMENT: &[u8] = include_bytes!("data/xor/000001");
const INPUT: &str = include_str!("data/xor/input.om");

const SEGMENT_MAGIC: u32 = 0x85BD_40DD;

/// One chunk of a segment file.
struct Chunk<'a> {
    offset: usize,
    encoding: u8,
    data: &'a [u8],
}

fn read_uvarint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = bytes[*pos];
        *pos += 1;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return x;
        }
    }
    panic!("uvarint too long at {pos}");
}

/// Splits a segment file into its chunks, checking the header and every CRC.
fn segment_chunks(segment: &[u8]) -> Vec<Chunk<'_>> {
    assert_eq!(
        u32::from_be_bytes(segment[..4].try_into().unwrap()),
        SEGMENT_MAGIC
    );
    assert_eq!(segment[4], 1, "segment version");
    assert_eq!(&segment[5..8], &[0, 0, 0], "segment padding");
    let mut chunks = Vec::new();
    let mut pos = 8;
    while pos < segment.len() {
        let offset = pos;
        let len = usize::try_from(read_uvarint(segment, &mut pos)).unwrap();
        let encoding = segment[pos];
        let data = &segment[pos + 1..pos + 1 + len];
        pos += 1 + len;
        let crc = u32::from_be_bytes(segment[pos..pos + 4].try_into().unwrap());
        pos += 4;
        assert_eq!(
            chunk_crc32c(encoding, data),
            crc,
            "crc of chunk at {offset}"
        );
        chunks.push(Chunk {
            offset,
            encoding,
            data,
        });
    }
    assert_eq!(pos, segment.len());
    chunks
}

/// Parses an `OpenMetrics` timestamp in seconds with up to millisecond precision, exactly.
fn parse_millis(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 3, "sub-millisecond timestamp {s}");
    let millis: i64 = format!("{frac:0<3}").parse().unwrap();
    secs.parse::<i64>().unwrap() * 1000 + millis
}

/// The input's samples per series (keyed by the series text before the value).
fn input_series() -> BTreeMap<&'static str, Vec<(i64, f64)>> {
    let mut series: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    for line in INPUT.lines().filter(|line| !line.starts_with('#')) {
        let mut fields = line.rsplitn(3, ' ');
        let (Some(ts), Some(value), Some(key)) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("bad sample line {line:?}");
        };
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        series
            .entry(key)
            .or_default()
            .push((parse_millis(ts), value));
    }
    series
}

/// Index of the delta-of-delta bucket Prometheus puts `dod` in: 0 (zero), 14, 17, 20 or 64 bits.
fn dod_bucket(dod: i64) -> usize {
    let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1i64 << (n - 1);
    match dod {
        0 => 0,
        _ if fits(14) => 1,
        _ if fits(17) => 2,
        _ if fits(20) => 3,
        _ => 4,
    }
}

/// Same timestamp and same value bits; any NaN matches any NaN (Go's parser and Rust's make
/// different NaN payloads from the text "NaN").
fn same_sample(a: (i64, f64), b: (i64, f64)) -> bool {
    a.0 == b.0 && (a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan()))
}

#[test]
fn prometheus_chunks_decode_to_the_input_and_reencode_identically() {
    let series = input_series();
    let total_input: usize = series.values().map(Vec::len).sum();
    // How many samples of each series the chunks seen so far have covered, in order.
    let mut covered: BTreeMap<&str, usize> = series.keys().map(|&k| (k, 0)).collect();

    let chunks = segment_chunks(SEGMENT);
    assert!(chunks.len() > 20, "fixture has {} chunks", chunks.len());
    let mut total_decoded = 0;
    let mut dod_buckets = [0usize; 5];
    let mut chunks_with_empty_last_byte = 0;
    for chunk in &chunks {
        assert_eq!(chunk.encoding, ENCODING_XOR, "chunk at {}", chunk.offset);
        let mut it = XorIterator::new(chunk.data);
        let samples: Vec<(i64, f64)> = it.by_ref().collect();
        assert_eq!(it.err(), None, "chunk at {}", chunk.offset);
        assert_eq!(samples.len(), usize::from(it.num_samples()));
        assert_eq!(decode_all(chunk.data).map(|s| s.len()), Ok(samples.len()));

        // The chunk continues exactly one series where the previous chunks left it.
        let owners: Vec<&str> = covered
            .iter()
            .filter(|&(key, &next)| {
                let run = series[key].get(next..next + samples.len());
                run.is_some_and(|run| run.iter().zip(&samples).all(|(&a, &b)| same_sample(a, b)))
            })
            .map(|(&key, _)| key)
            .collect();
        assert_eq!(
            owners.len(),
            1,
            "chunk at {} matches series {owners:?}",
            chunk.offset
        );
        *covered.get_mut(owners[0]).unwrap() += samples.len();
        total_decoded += samples.len();

        let mut enc = XorEncoder::new();
        for &(t, v) in &samples {
            enc.append(t, v);
        }
        assert_eq!(
            enc.bytes(),
            chunk.data,
            "re-encoding of chunk at {}",
            chunk.offset
        );

        // What the fixture exercises.
        for w in samples.windows(3) {
            dod_buckets[dod_bucket((w[2].0 - w[1].0) - (w[1].0 - w[0].0))] += 1;
        }
        let without_last_byte = decode_all(&chunk.data[..chunk.data.len() - 1]);
        if without_last_byte.is_ok_and(|s| s.len() == samples.len()) {
            chunks_with_empty_last_byte += 1;
        }
    }
    assert!(
        dod_buckets.iter().all(|&n| n > 0),
        "dod buckets used: {dod_buckets:?}"
    );
    assert!(
        chunks_with_empty_last_byte > 0,
        "no chunk ends with Prometheus's empty byte"
    );
    for (key, next) in covered {
        assert_eq!(
            next,
            series[key].len(),
            "samples of {key} covered by chunks"
        );
    }
    assert_eq!(total_decoded, total_input);
}
