//! WAL record encoding: every record round-trips through the encoders and the decoder (values bit
//! for bit), a reused decoder forgets the previous record, any prefix of a record decodes to an
//! error or to a prefix of its entries, and arbitrary or mutated bytes never panic.

#[path = "wal_support.rs"]
mod support;

use proptest::prelude::*;
use strata_storage::wal::record::{
    SamplesEncoder, SeriesEncoder, TombstonesEncoder, encode_tenant,
};
use strata_storage::wal::{Decoder, Record, RecordError};
use support::{Rec, rec};

/// Encodes `rec` with tenant id `tenant`.
fn encode(rec: &Rec, tenant: u32, buf: &mut Vec<u8>) {
    match rec {
        Rec::Series { series, .. } => {
            let mut e = SeriesEncoder::new(buf, tenant);
            for (r, labels) in series {
                e.add(*r, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            }
        }
        Rec::Samples { samples, .. } => {
            let mut e = SamplesEncoder::new(buf, tenant);
            for &(r, t, v) in samples {
                e.add(r, t, f64::from_bits(v));
            }
        }
        Rec::Tombstones { ranges, .. } => {
            let mut e = TombstonesEncoder::new(buf, tenant);
            for &(r, a, b) in ranges {
                e.add(r, a, b);
            }
        }
    }
}

/// The decoded record as a [`Rec`] named `name`, and its tenant id.
fn decode(d: &mut Decoder, data: &[u8], name: &str) -> Result<(u32, Rec), RecordError> {
    let r = d.decode(data)?;
    let id = r.tenant();
    let mut tenants = vec![(id, name.to_owned())];
    Ok((
        id,
        support::to_rec(&r, &mut tenants).expect("not a tenant record"),
    ))
}

/// The number of entries of a record.
fn entries(r: &Rec) -> usize {
    match r {
        Rec::Series { series, .. } => series.len(),
        Rec::Samples { samples, .. } => samples.len(),
        Rec::Tombstones { ranges, .. } => ranges.len(),
    }
}

/// `r` with only its first `n` entries.
fn truncated(r: &Rec, n: usize) -> Rec {
    let mut r = r.clone();
    match &mut r {
        Rec::Series { series, .. } => series.truncate(n),
        Rec::Samples { samples, .. } => samples.truncate(n),
        Rec::Tombstones { ranges, .. } => ranges.truncate(n),
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn records_round_trip(r in rec(200), tenant in any::<u32>()) {
        let mut buf = Vec::new();
        encode(&r, tenant, &mut buf);
        let mut d = Decoder::new();
        let (id, back) = decode(&mut d, &buf, r.tenant()).unwrap();
        prop_assert_eq!(id, tenant);
        prop_assert_eq!(back, r);
    }

    #[test]
    fn tenant_round_trips(id in any::<u32>(), name in "\\PC{0,200}") {
        let mut buf = Vec::new();
        encode_tenant(&mut buf, id, &name);
        let mut d = Decoder::new();
        match d.decode(&buf) {
            Ok(Record::Tenant { id: i, name: n }) => {
                prop_assert_eq!(i, id);
                prop_assert_eq!(n, name.as_str());
            }
            other => prop_assert!(false, "{:?}", other),
        }
        for cut in 0..buf.len() {
            prop_assert!(d.decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn a_reused_decoder_forgets_the_previous_record(a in rec(100), b in rec(20)) {
        let mut d = Decoder::new();
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        encode(&a, 1, &mut ba);
        encode(&b, 2, &mut bb);
        prop_assert_eq!(decode(&mut d, &ba, a.tenant()).unwrap().1, a);
        prop_assert_eq!(decode(&mut d, &bb, b.tenant()).unwrap().1, b);
    }

    #[test]
    fn a_prefix_is_an_error_or_a_prefix_of_the_entries(r in rec(30)) {
        let mut buf = Vec::new();
        encode(&r, 5, &mut buf);
        let mut d = Decoder::new();
        for cut in 0..buf.len() {
            if let Ok((_, back)) = decode(&mut d, &buf[..cut], r.tenant()) {
                let n = entries(&back);
                prop_assert!(n < entries(&r));
                prop_assert_eq!(back, truncated(&r, n));
            }
        }
    }

    #[test]
    fn mutated_records_never_panic(r in rec(30), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut buf = Vec::new();
        encode(&r, 3, &mut buf);
        for (at, x) in flips {
            let i = at % buf.len();
            buf[i] ^= x;
        }
        let mut d = Decoder::new();
        if let Ok(rec) = d.decode(&buf) {
            let mut tenants = vec![(rec.tenant(), String::new())];
            let _ = support::to_rec(&rec, &mut tenants);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(typ in 32u8..36, data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = vec![typ];
        buf.extend_from_slice(&data);
        let mut d = Decoder::new();
        if let Ok(rec) = d.decode(&buf) {
            let mut tenants = vec![(rec.tenant(), String::new())];
            let _ = support::to_rec(&rec, &mut tenants);
        }
    }
}

#[test]
fn samples_are_small() {
    // A scrape-like batch: refs close together, timestamps within a second, 8-byte values.
    let mut buf = Vec::new();
    let mut e = SamplesEncoder::new(&mut buf, 0);
    for i in 0..1000u32 {
        e.add(5000 + i, 1_700_000_000_000 + i64::from(i % 100), 1.0);
    }
    let per_sample = buf.len() as f64 / 1000.0;
    assert!(per_sample < 12.5, "{per_sample} bytes per sample");
}
