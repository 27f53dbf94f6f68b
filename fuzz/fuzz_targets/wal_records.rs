//! Fuzzes the WAL reader and record decoder (segments are read back from disk after crashes,
//! disk faults and operators' copies: outside input). Neither may panic, allocate from a length
//! field, or return more records than the bytes can hold.
//!
//! The first byte picks the mode. Even: the rest is a segment as is. Odd: the rest is a list of
//! records (`len <u16 BE> bytes`), framed correctly after declarations of tenants 0 to 3, so the
//! record decoder is reached behind valid CRCs; a trailing list of `(offset <u16 BE>, xor <u8>)`
//! edits, after a zero-length record, then damages the framed segment. The records are also
//! decoded one by one without framing.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_storage::wal::record::encode_tenant;
use strata_storage::wal::segment::{MIN_FRAGMENT, frame};
use strata_storage::wal::{Decoder, FaultyFs, Record, WalReader, block_on};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new();
    let segment = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut seg = Vec::new();
        let mut off = 0;
        let mut rec = Vec::new();
        for id in 0..4 {
            rec.clear();
            encode_tenant(&mut rec, id, "t");
            off = frame(&mut seg, off, &rec);
        }
        let mut input = rest;
        while let [hi, lo, tail @ ..] = input {
            let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
            let (r, tail) = tail.split_at(len);
            input = tail;
            if r.is_empty() {
                break;
            }
            if let Ok(rec) = decoder.decode(r) {
                touch(&rec);
            }
            off = frame(&mut seg, off, r);
        }
        for edit in input.chunks_exact(3) {
            if !seg.is_empty() {
                let at = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % seg.len();
                seg[at] ^= edit[2];
            }
        }
        seg
    };
    let fs = FaultyFs::new(0);
    fs.write_file("/wal/00000000", &segment);
    block_on(async {
        let Ok(mut reader) = WalReader::open(fs, Path::new("/wal")).await else {
            return;
        };
        let mut records = 0;
        while let Ok(Some(rec)) = reader.next().await {
            touch(&rec);
            records += 1;
        }
        assert!(
            records <= segment.len() / MIN_FRAGMENT,
            "more records than bytes allow"
        );
    });
    if let Ok(rec) = decoder.decode(rest) {
        touch(&rec);
    }
});

/// Walks everything a record holds.
fn touch(rec: &Record<'_>) {
    match *rec {
        Record::Tenant { id, name } => {
            std::hint::black_box((id, name.len()));
        }
        Record::Series { series, .. } => {
            for s in series.iter() {
                for (n, v) in s.labels() {
                    std::hint::black_box((s.series, n.len(), v.len()));
                }
            }
        }
        Record::Samples { samples, .. } => {
            let sum = samples
                .iter()
                .fold(0i64, |a, s| a.wrapping_add(s.t) ^ i64::from(s.series));
            std::hint::black_box(sum);
        }
        Record::Tombstones { tombstones, .. } => {
            let sum = tombstones
                .iter()
                .fold(0i64, |a, t| a.wrapping_add(t.max_t.wrapping_sub(t.min_t)));
            std::hint::black_box(sum);
        }
    }
}
