//! Fuzzes the push path's decoders with arbitrary request bodies: snappy block decompression
//! into a reused buffer, then the zero-copy remote-write decoder over the result. Neither may
//! panic; whatever decodes must index the buffer consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_net::remote_write::decode::decode_write_request;
use strata_net::remote_write::snappy::decompress_into;
use strata_storage::batch::WriteBatch;

/// Decompressed size limit, as the HTTP layer would configure it (kept small to stay fast).
const MAX_LEN: usize = 1 << 20;

fuzz_target!(|body: &[u8]| {
    let mut batch = WriteBatch::default();
    // The body both as snappy (the real path) and as an already decompressed request, so the
    // protobuf decoder sees inputs snappy would rarely produce from random bytes.
    if let Ok(n) = decompress_into(body, &mut batch.buf, MAX_LEN) {
        batch.len = n;
        check(&mut batch);
    }
    batch.clear();
    batch.buf.clear();
    batch.buf.extend_from_slice(body);
    batch.len = body.len();
    check(&mut batch);
});

/// Decodes, and on success checks that every span and range lies inside the batch.
fn check(batch: &mut WriteBatch) {
    if decode_write_request(batch).is_err() {
        assert!(batch.series.is_empty() && batch.labels.is_empty() && batch.samples.is_empty());
        return;
    }
    for i in 0..batch.series.len() {
        // Slicing panics if a span is out of bounds.
        for (name, value) in batch.labels_of(i) {
            std::hint::black_box((name, value));
        }
        std::hint::black_box(batch.samples_of(i));
    }
}
