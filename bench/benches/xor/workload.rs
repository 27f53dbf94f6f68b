//! XOR chunk data shared by the `xor` benchmark and the `xor_decode` example, full chunks of
//! `MAX_SAMPLES_PER_CHUNK` samples scraped every 15s. Deterministic: every run measures the same
//! data.
//!
//! - [`series`]: node-exporter-like: on one scrape in five a timestamp a few milliseconds off; the
//!   chunks cycle through counters (fractional and integer) and gauges (paged memory, load
//!   averages).
//! - [`cpu_counters`]: what `examples/promql_eval.rs` queries: exact 15s intervals and CPU-seconds
//!   counters growing by 0 to 15 with two decimals every scrape.

use strata_storage::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, XorEncoder};

/// A deterministic splitmix64 generator.
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

/// The samples of `chunks` full chunks.
pub fn series(chunks: usize) -> Vec<Vec<(i64, f64)>> {
    let mut rng = Rng(0x5EED);
    (0..chunks)
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

/// The samples of `chunks` full chunks of CPU-seconds counters at exact 15s intervals.
pub fn cpu_counters(chunks: usize) -> Vec<Vec<(i64, f64)>> {
    let mut rng = Rng(0x00C0_FFEE);
    (0..chunks)
        .map(|_| {
            let start = 1_700_000_000_000 + rng.below(15_000) as i64;
            let mut v = rng.below(100_000_000) as f64 / 100.0;
            (0..i64::from(MAX_SAMPLES_PER_CHUNK))
                .map(|i| {
                    v += rng.below(1_500) as f64 / 100.0;
                    (start + i * 15_000, v)
                })
                .collect()
        })
        .collect()
}

/// `samples` encoded as one chunk.
pub fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut enc = XorEncoder::with_capacity(256);
    for &(t, v) in samples {
        enc.append(t, v);
    }
    enc
}
