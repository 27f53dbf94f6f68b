//! XOR chunk encode and decode throughput on node-exporter-like data (see `xor/workload.rs`).
//! Throughput is reported in samples. `decode` walks [`XorIterator`] and sums the samples;
//! `decode_into` is the whole-chunk decoder the query path uses, into a buffer reused across
//! chunks (the samples are not read back), and `decode_into/counters` the same on the CPU-seconds
//! counters at exact intervals that `examples/promql_eval.rs` queries.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_storage::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, XorIterator, decode_into};

#[path = "xor/workload.rs"]
mod workload;

/// Chunks per benchmark iteration.
const CHUNKS: usize = 64;

fn bench_xor(c: &mut Criterion) {
    let series = workload::series(CHUNKS);
    let samples = (CHUNKS * usize::from(MAX_SAMPLES_PER_CHUNK)) as u64;
    let chunks: Vec<Vec<u8>> = series
        .iter()
        .map(|s| workload::encode(s).into_bytes())
        .collect();
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
                black_box(workload::encode(black_box(s)).len_bytes());
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
    let counters: Vec<Vec<u8>> = workload::cpu_counters(CHUNKS)
        .iter()
        .map(|s| workload::encode(s).into_bytes())
        .collect();
    let mut out = Vec::with_capacity(usize::from(MAX_SAMPLES_PER_CHUNK));
    for (name, chunks) in [
        ("decode_into", &chunks),
        ("decode_into/counters", &counters),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for chunk in chunks {
                    out.clear();
                    decode_into(black_box(chunk), &mut out).expect("valid chunk");
                    black_box(out.as_slice());
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_xor);
criterion_main!(benches);
