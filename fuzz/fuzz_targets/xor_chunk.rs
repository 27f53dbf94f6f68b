//! Fuzzes the XOR chunk decoder (chunks come from block files and peers: outside input). It may
//! stop with an error but never panic, and never yield more samples than the header declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_storage::chunkenc::xor::XorIterator;

fuzz_target!(|data: &[u8]| {
    let declared = if data.len() >= 2 { usize::from(u16::from_be_bytes([data[0], data[1]])) } else { 0 };
    let mut it = XorIterator::new(data);
    let mut n = 0;
    for (t, v) in it.by_ref() {
        std::hint::black_box((t, v));
        n += 1;
    }
    assert!(n <= declared);
    let _ = it.err();
});
