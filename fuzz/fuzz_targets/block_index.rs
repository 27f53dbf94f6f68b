//! Fuzzes the block index reader (index files come from object storage and other writers:
//! outside input). Whatever the bytes, `IndexReader::new` and every query on what it accepts
//! return results or errors, never panic; select results are sorted and unique.
//!
//! The first input byte picks a mode. With its low bit set, the CRC32Cs of every section the
//! TOC and the length fields lead to are recomputed before parsing, so that the decoders behind
//! the checksums see the fuzzer's changes (random bytes almost never carry valid checksums).
//! Seed the corpus with real index files (`storage/tests/data/block/.../index` prefixed with a
//! mode byte) to start from valid layouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_storage::block::{IndexReader, SeriesRef};
use strata_storage::matcher::{MatchType, Matcher};

/// Bytes of the TOC at the end of an index.
const TOC_LEN: usize = 52;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut index = rest.to_vec();
    if mode & 1 == 1 {
        fix_checksums(&mut index);
    }
    exercise(&index);
});

fn exercise(index: &[u8]) {
    let Ok(ix) = IndexReader::new(index) else {
        return;
    };
    let names = ix.label_names();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    for name in names.iter().take(8) {
        let values = ix.label_values(name);
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        for v in values.iter().take(8) {
            let _ = ix.postings(name, v);
        }
    }
    let first_name = names.first().copied().unwrap_or("a");
    let first_value = ix.label_values(first_name).first().copied().unwrap_or("");
    let m = |t, n: &str, v: &str| Matcher::new(t, n, v).ok();
    let sets = [
        vec![],
        vec![m(MatchType::Equal, first_name, first_value)],
        vec![m(MatchType::NotEqual, first_name, first_value)],
        vec![m(MatchType::Regexp, first_name, ".+")],
        vec![
            m(MatchType::NotRegexp, first_name, "a|b"),
            m(MatchType::Equal, "missing", ""),
        ],
        vec![m(MatchType::Regexp, first_name, "(a|.*z)")],
    ];
    for set in sets {
        let set: Vec<Matcher> = set.into_iter().flatten().collect();
        if let Ok(refs) = ix.select(&set) {
            assert!(refs.windows(2).all(|w| w[0] < w[1]));
        }
    }
    let _ = ix.symbol(0);
    let mut refs: Vec<SeriesRef> = ix.all_postings().unwrap_or_default();
    refs.truncate(64);
    refs.extend([0, 1, u32::MAX]);
    let mut chunks = Vec::new();
    for r in refs {
        if let Ok(labels) = ix.series_into(r, &mut chunks) {
            std::hint::black_box((labels, &chunks));
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn be64(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(8)?)?;
    usize::try_from(u64::from_be_bytes(s.try_into().ok()?)).ok()
}

fn uvarint(b: &[u8], at: &mut usize) -> Option<usize> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return usize::try_from(x).ok();
        }
    }
    None
}

/// CRC-32C (Castagnoli), bit by bit: slow, but fuzz inputs are small and this keeps the target
/// free of extra dependencies.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Writes the CRC32C of `b[start..crc]` at `crc`, if it fits.
fn put_crc(b: &mut [u8], start: usize, crc: usize) -> Option<()> {
    let end = crc.checked_add(4)?;
    if start > crc || end > b.len() {
        return None;
    }
    let sum = crc32c(&b[start..crc]);
    b[crc..end].copy_from_slice(&sum.to_be_bytes());
    Some(())
}

/// Recomputes the checksums of the sections as the TOC and length fields describe them.
fn fix_checksums(b: &mut [u8]) {
    if b.len() < TOC_LEN {
        return;
    }
    let toc = b.len() - TOC_LEN;
    let refs: Vec<usize> = (0..6).map(|i| be64(b, toc + 8 * i).unwrap_or(0)).collect();
    let (symbols, series, label_table, postings, postings_table) =
        (refs[0], refs[1], refs[3], refs[4], refs[5]);
    // Length-prefixed tables.
    for table in [symbols, label_table, postings_table] {
        if table != 0 && table < toc {
            if let Some(len) = be32(b, table) {
                let _ = put_crc(b, table + 4, table.saturating_add(4).saturating_add(len));
            }
        }
    }
    // Series entries, 16-byte aligned, up to the postings.
    let mut pos = series;
    let mut guard = 0;
    while series != 0 && guard < 4096 {
        guard += 1;
        match pos.checked_next_multiple_of(16) {
            Some(p) if p < postings.min(toc) => pos = p,
            _ => break,
        }
        let Some(len) = uvarint(b, &mut pos) else {
            break;
        };
        let Some(crc) = pos.checked_add(len) else {
            break;
        };
        if put_crc(b, pos, crc).is_none() {
            break;
        }
        pos = crc + 4;
    }
    // Postings lists, back to back, up to the label offset table.
    let mut pos = postings;
    let mut guard = 0;
    while postings != 0 && pos < label_table.min(toc) && guard < 4096 {
        guard += 1;
        let Some(len) = be32(b, pos) else { break };
        let Some(crc) = pos.checked_add(4).and_then(|p| p.checked_add(len)) else {
            break;
        };
        if put_crc(b, pos + 4, crc).is_none() {
            break;
        }
        pos = crc + 4;
    }
    let _ = put_crc(b, toc, toc + 48);
}
