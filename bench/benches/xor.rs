//! XOR chunk encode and decode throughput on node-exporter-like data: full chunks of
//! `MAX_SAMPLES_PER_CHUNK` samples scraped every 15s with occasional milliseconds of jitter, half
//! of them counters (fractional and integer) and half gauges (paged memory, load averages).
//! Throughput is reported in samples.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_storage::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, XorEncoder, XorIterator};

/// Chunks per benchmark iteration.
const CHUNKS: usize = 64;

/// A deterministic splitmix64 generator, so every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The kinds of series node exporter exposes most, cycled through by the chunks.
#[derive(Clone, Copy)]
enum Kind {
    /// `node_cpu_seconds_total`: counter with centisecond increments.
    CpuSeconds,
    /// `node_network_receive_bytes_total`: integer counter.
    Bytes,
    /// `node_memory_MemFree_bytes`: gauge in pages, changing on a third of the scrapes.
    MemFree,
    /// `node_load1`: gauge with two decimals.
    Load,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::CpuSeconds, Kind::Bytes, Kind::MemFree, Kind::Load];

    fn first(self, rng: &mut Rng) -> f64 {
        match self {
            Kind::CpuSeconds => rng.below(100_000_000) as f64 / 100.0,
            Kind::Bytes => rng.below(1 << 40) as f64,
            Kind::MemFree => (rng.below(1 << 20) * 4096) as f64,
            Kind::Load => rng.below(400) as f64 / 100.0,
        }
    }

    fn next(self, v: f64, rng: &mut Rng) -> f64 {
        match self {
            Kind::CpuSeconds => ((v * 100.0).round() + rng.below(1_500) as f64) / 100.0,
            Kind::Bytes => v + rng.below(1_000_000) as f64,
            Kind::MemFree if rng.below(3) == 0 => v + (rng.below(2_001) as f64 - 1_000.0) * 4096.0,
            Kind::MemFree => v,
            Kind::Load => ((v * 100.0).round() + rng.below(21) as f64 - 10.0).max(0.0) / 100.0,
        }
    }
}

/// `CHUNKS` chunks' worth of samples: a 15s scrape interval, and on one scrape in five a
/// timestamp a few milliseconds off.
fn workload() -> Vec<Vec<(i64, f64)>> {
    let mut rng = Rng(0x5EED);
    (0..CHUNKS)
        .map(|chunk| {
            let kind = Kind::ALL[chunk % Kind::ALL.len()];
            let mut t = 1_700_000_000_000 + rng.below(15_000) as i64;
            let mut v = kind.first(&mut rng);
            (0..MAX_SAMPLES_PER_CHUNK)
                .map(|_| {
                    let jitter = if rng.below(5) == 0 {
                        rng.below(11) as i64 - 5
                    } else {
                        0
                    };
                    let sample = (t + jitter, v);
                    t += 15_000;
                    v = kind.next(v, &mut rng);
                    sample
                })
                .collect()
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut enc = XorEncoder::with_capacity(256);
    for &(t, v) in samples {
        enc.append(t, v);
    }
    enc
}

fn bench_xor(c: &mut Criterion) {
    let series = workload();
    let samples = (CHUNKS * usize::from(MAX_SAMPLES_PER_CHUNK)) as u64;
    let chunks: Vec<Vec<u8>> = series.iter().map(|s| encode(s).into_bytes()).collect();
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    eprintln!(
        "xor workload: {CHUNKS} chunks, {samples} samples, {:.2} bytes/sample",
        bytes as f64 / samples as f64
    );

    let mut group = c.benchmark_group("xor");
    group.throughput(Throughput::Elements(samples));
    group.bench_function("encode", |b| {
        b.iter(|| {
            for s in &series {
                black_box(encode(black_box(s)).len_bytes());
            }
        });
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            let mut last_t = 0;
            for chunk in &chunks {
                for (t, v) in XorIterator::new(black_box(chunk)) {
                    sum += v;
                    last_t = t;
                }
            }
            black_box((sum, last_t))
        });
    });
    group.finish();
}

criterion_group!(benches, bench_xor);
criterion_main!(benches);
