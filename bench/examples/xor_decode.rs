//! Decodes many XOR chunks with `decode_into`, the query path's whole-chunk decoder, to measure
//! it outside criterion: wall time per sample, and instructions per sample under callgrind. The
//! chunks are the `xor` benchmark's node-exporter-like data, or with `counters` the CPU-seconds
//! counters at exact intervals that `promql_eval` queries (`benches/xor/workload.rs`).
//!
//! ```sh
//! cargo build --release -p strata-bench --example xor_decode
//! target/release/examples/xor_decode [chunks] [passes] [runs] [node|counters]
//! valgrind --tool=callgrind --toggle-collect='strata_storage::chunkenc::xor::*decode_into' \
//!     target/release/examples/xor_decode 256 4 1
//! ```
//!
//! Each run decodes every chunk `passes` times into one reused buffer; after a warm-up run it
//! prints the best, median and worst run in nanoseconds per sample. Under callgrind, divide the
//! instructions collected by the samples decoded it prints.

use std::hint::black_box;
use std::time::Instant;

use strata_storage::chunkenc::xor::{MAX_SAMPLES_PER_CHUNK, decode_into};

#[path = "../benches/xor/workload.rs"]
mod workload;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (chunks, passes, runs) = (num(0, 256), num(1, 200), num(2, 15));
    let samples = match args.get(3).map(String::as_str) {
        None | Some("node") => workload::series(chunks),
        Some("counters") => workload::cpu_counters(chunks),
        Some(other) => panic!("unknown workload {other:?}: node or counters"),
    };
    let data: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| workload::encode(s).into_bytes())
        .collect();
    let bytes: usize = data.iter().map(Vec::len).sum();
    let per_run = chunks * passes * usize::from(MAX_SAMPLES_PER_CHUNK);
    let mut out = Vec::with_capacity(usize::from(MAX_SAMPLES_PER_CHUNK));
    let mut decode_all = || {
        for _ in 0..passes {
            for chunk in &data {
                out.clear();
                decode_into(black_box(chunk), &mut out).expect("valid chunk");
                black_box(out.as_slice());
            }
        }
    };
    // Warm-up: page in the data and the output buffer.
    decode_all();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            decode_all();
            t0.elapsed().as_secs_f64() * 1e9 / per_run as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{chunks} chunks, {:.2} bytes/sample; {} samples decoded ({per_run} per run, {runs} runs \
         after a warm-up)",
        bytes as f64 / (chunks * usize::from(MAX_SAMPLES_PER_CHUNK)) as f64,
        per_run * (runs + 1),
    );
    if let (Some(best), Some(worst)) = (times.first(), times.last()) {
        println!(
            "decode_into: best {best:.2} ns/sample, median {:.2}, worst {worst:.2}",
            times[times.len() / 2]
        );
    }
}
