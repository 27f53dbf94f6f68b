//! Property tests of the XOR chunk encoding: every sequence of samples round-trips bit for bit,
//! the data is decodable after every append, and decoding arbitrary bytes never panics.

use proptest::prelude::*;
use strata_storage::chunkenc::xor::{
    ChunkError, MAX_SAMPLES_PER_CHUNK, XorEncoder, XorIterator, decode_all, decode_into,
};

/// What the iterator yields from `data` and its error, and what `decode_into` appends and returns:
/// they must be the same, bit for bit.
fn both_decoders(data: &[u8]) -> (Vec<(i64, u64)>, Option<ChunkError>) {
    let mut it = XorIterator::new(data);
    let by_iter = as_bits(&(&mut it).collect::<Vec<_>>());
    let mut bulk = vec![(7, 7.0)];
    let res = decode_into(data, &mut bulk);
    assert_eq!(bulk[0], (7, 7.0), "decode_into appends");
    assert_eq!(as_bits(&bulk[1..]), by_iter, "same samples");
    assert_eq!(res.err(), it.err(), "same error");
    (by_iter, it.err())
}

/// Prometheus's stale marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Increasing timestamps: a start anywhere in i64 (biased to realistic and negative ones) and
/// gaps from 1 ms to huge (biased to scrape-like intervals with jitter).
fn timestamps(max_len: usize) -> impl Strategy<Value = Vec<i64>> {
    let start = prop_oneof![
        1_600_000_000_000i64..1_800_000_000_000,
        -1_000_000_000i64..1_000_000_000,
        any::<i64>(),
    ];
    let gap = prop_oneof![
        4 => 14_900i64..15_100,
        2 => 1i64..100,
        2 => 1i64..1_000_000,
        1 => 1i64..1 << 40,
        1 => 1i64..i64::MAX / 4,
    ];
    (start, prop::collection::vec(gap, 0..max_len)).prop_map(|(start, gaps)| {
        let mut t = start;
        let mut out = vec![start];
        for gap in gaps {
            match t.checked_add(gap) {
                Some(next) => t = next,
                None => break,
            }
            out.push(t);
        }
        out
    })
}

/// How the next value follows from the previous one.
#[derive(Debug, Clone)]
enum Step {
    Bits(u64),
    Repeat,
    CounterAdd(u32),
    GaugeDelta(i16),
}

/// Value bits: arbitrary (so NaN payloads), special values, small counters and repeats.
fn value_bits(len: usize) -> impl Strategy<Value = Vec<u64>> {
    let special = prop::sample::select(vec![
        STALE_NAN,
        f64::NAN.to_bits(),
        0x7ff8_0000_0000_0001,
        0xfff0_0000_0000_0001,
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        0.0f64.to_bits(),
        (-0.0f64).to_bits(),
        f64::MIN_POSITIVE.to_bits(),
        1.0f64.to_bits(),
        u64::MAX,
        0,
        1,
    ]);
    let step = prop_oneof![
        2 => any::<u64>().prop_map(Step::Bits),
        2 => special.prop_map(Step::Bits),
        3 => Just(Step::Repeat),
        3 => (0u32..10_000).prop_map(Step::CounterAdd),
        2 => any::<i16>().prop_map(Step::GaugeDelta),
    ];
    prop::collection::vec(step, len).prop_map(|steps| {
        let mut prev = 0.0f64;
        steps
            .into_iter()
            .map(|step| {
                let v = match step {
                    Step::Bits(bits) => f64::from_bits(bits),
                    Step::Repeat => prev,
                    Step::CounterAdd(n) => prev + f64::from(n),
                    Step::GaugeDelta(n) => prev + f64::from(n) / 100.0,
                };
                prev = v;
                v.to_bits()
            })
            .collect()
    })
}

/// Samples as (timestamp, value bits).
fn samples(max_len: usize) -> impl Strategy<Value = Vec<(i64, u64)>> {
    timestamps(max_len).prop_flat_map(|ts| {
        let len = ts.len();
        value_bits(len).prop_map(move |vs| ts.iter().copied().zip(vs).collect())
    })
}

fn as_bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn samples_round_trip_bit_for_bit(samples in samples(usize::from(MAX_SAMPLES_PER_CHUNK) * 2)) {
        let mut enc = XorEncoder::with_capacity(16);
        for (i, &(t, v)) in samples.iter().enumerate() {
            enc.append(t, f64::from_bits(v));
            prop_assert_eq!(usize::from(enc.num_samples()), i + 1);
            prop_assert_eq!(enc.len_bytes(), enc.bytes().len());
            // Decodable after every append.
            let decoded = decode_all(enc.bytes()).map(|d| as_bits(&d));
            prop_assert_eq!(decoded, Ok(samples[..=i].to_vec()));
        }
        let bytes = enc.bytes().to_vec();
        prop_assert_eq!(enc.into_bytes(), bytes);
    }

    #[test]
    fn any_i64_timestamps_round_trip(ts in prop::collection::vec(any::<i64>(), 1..300)) {
        // Only increasing timestamps are meaningful, but Prometheus's arithmetic wraps and so does
        // strata's: any sequence survives.
        let mut enc = XorEncoder::new();
        for &t in &ts {
            enc.append(t, 1.5);
        }
        let decoded: Vec<i64> = XorIterator::new(enc.bytes()).map(|(t, _)| t).collect();
        prop_assert_eq!(decoded, ts);
    }

    #[test]
    fn bulk_decoder_equals_iterator(
        samples in samples(usize::from(MAX_SAMPLES_PER_CHUNK) * 2),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut enc = XorEncoder::new();
        for &(t, v) in &samples {
            enc.append(t, f64::from_bits(v));
        }
        let data = enc.bytes().to_vec();
        let (decoded, err) = both_decoders(&data);
        prop_assert_eq!(decoded, samples);
        prop_assert_eq!(err, None);
        // Truncated anywhere, and with one bit flipped anywhere.
        both_decoders(&data[..cut.index(data.len() + 1)]);
        let mut flipped = data.clone();
        if !flipped.is_empty() {
            let i = flip.index(flipped.len());
            flipped[i] ^= 1 << bit;
        }
        both_decoders(&flipped);
    }

    #[test]
    fn bulk_decoder_equals_iterator_on_arbitrary_bytes(
        data in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        both_decoders(&data);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut it = XorIterator::new(&data);
        let n = it.by_ref().count();
        prop_assert!(n <= usize::from(it.num_samples()));
        if it.err().is_none() && data.len() >= 2 {
            prop_assert_eq!(n, usize::from(it.num_samples()));
        }
        let _ = decode_all(&data);
    }

    #[test]
    fn truncated_and_corrupted_chunks_never_panic(
        samples in samples(300),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut enc = XorEncoder::new();
        for &(t, v) in &samples {
            enc.append(t, f64::from_bits(v));
        }
        let full = enc.into_bytes();
        let mut data = full[..cut.index(full.len() + 1)].to_vec();
        for (at, xor) in flips {
            if !data.is_empty() {
                let i = at.index(data.len());
                data[i] ^= xor;
            }
        }
        let mut it = XorIterator::new(&data);
        let decoded = it.by_ref().count();
        match it.err() {
            None => prop_assert_eq!(decoded, usize::from(it.num_samples())),
            Some(ChunkError::HeaderTooShort { .. }) => prop_assert!(data.len() < 2),
            Some(_) => prop_assert!(decoded < usize::from(it.num_samples())),
        }
    }
}

#[test]
fn stale_markers_and_nan_payloads_keep_their_bits() {
    let values = [
        STALE_NAN,
        0x7ff8_0000_0000_0001,
        STALE_NAN,
        0xfff8_dead_beef_0001,
        (-0.0f64).to_bits(),
        0.0f64.to_bits(),
        STALE_NAN,
    ];
    let mut enc = XorEncoder::new();
    for (i, &v) in values.iter().enumerate() {
        enc.append(i64::try_from(i).unwrap() * 15_000, f64::from_bits(v));
    }
    let decoded: Vec<u64> = XorIterator::new(enc.bytes())
        .map(|(_, v)| v.to_bits())
        .collect();
    assert_eq!(decoded, values);
}

#[test]
fn full_chunk_of_node_exporter_samples_is_small() {
    let mut enc = XorEncoder::new();
    let mut counter = 1_000_000.0;
    for i in 0..i64::from(MAX_SAMPLES_PER_CHUNK) {
        enc.append(1_700_000_000_000 + i * 15_000, counter);
        counter += 15.0;
    }
    assert_eq!(enc.num_samples(), MAX_SAMPLES_PER_CHUNK);
    // Exact scrape intervals and a steady counter cost under two bytes per sample.
    assert!(enc.len_bytes() < 240, "{} bytes", enc.len_bytes());
    assert_eq!(decode_all(enc.bytes()).map(|s| s.len()), Ok(120));
}
