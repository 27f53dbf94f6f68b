//! Helpers shared by the `wal_*` tests (included with `#[path]`; as a test target of its own it
//! has no tests): an owned model of the records, logging it through a [`Wal`] and reading it back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use strata_storage::wal::{
    Corruption, ReadError, Record, ReplayStats, Wal, WalFs, WalReader, block_on,
};

/// A record as the tests expect it: tenants by name, values as bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rec {
    Series {
        tenant: String,
        series: Vec<(u32, Vec<(String, String)>)>,
    },
    Samples {
        tenant: String,
        samples: Vec<(u32, i64, u64)>,
    },
    Tombstones {
        tenant: String,
        ranges: Vec<(u32, i64, i64)>,
    },
}

impl Rec {
    pub fn tenant(&self) -> &str {
        match self {
            Rec::Series { tenant, .. }
            | Rec::Samples { tenant, .. }
            | Rec::Tombstones { tenant, .. } => tenant,
        }
    }

    /// A Series record of one series whose single label value has `len` bytes.
    pub fn sized(tenant: &str, series: u32, len: usize) -> Rec {
        let value: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        Rec::Series {
            tenant: tenant.to_owned(),
            series: vec![(series, vec![("__name__".to_owned(), value)])],
        }
    }

    pub fn samples(tenant: &str, samples: &[(u32, i64, f64)]) -> Rec {
        Rec::Samples {
            tenant: tenant.to_owned(),
            samples: samples
                .iter()
                .map(|&(r, t, v)| (r, t, v.to_bits()))
                .collect(),
        }
    }
}

/// Logs `rec` (which must have at least one entry) and returns its sequence number.
pub fn log<F: WalFs>(wal: &mut Wal<F>, rec: &Rec) -> u64 {
    let t = wal.tenant(rec.tenant());
    match rec {
        Rec::Series { series, .. } => wal.log_series(t, |e| {
            for (r, labels) in series {
                e.add(*r, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            }
        }),
        Rec::Samples { samples, .. } => wal.log_samples(t, |e| {
            for &(r, ts, v) in samples {
                e.add(r, ts, f64::from_bits(v));
            }
        }),
        Rec::Tombstones { ranges, .. } => wal.log_tombstones(t, |e| {
            for &(r, a, b) in ranges {
                e.add(r, a, b);
            }
        }),
    }
}

/// Converts a decoded record, resolving its tenant with `tenants` (updated by declarations).
pub fn to_rec(rec: &Record<'_>, tenants: &mut Vec<(u32, String)>) -> Option<Rec> {
    let name = |id: u32, tenants: &Vec<(u32, String)>| {
        tenants
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone())
            .expect("declared tenant")
    };
    match *rec {
        Record::Tenant { id, name } => {
            tenants.push((id, name.to_owned()));
            None
        }
        Record::Series { tenant, series } => Some(Rec::Series {
            tenant: name(tenant, tenants),
            series: series
                .iter()
                .map(|s| {
                    let labels = s
                        .labels()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect();
                    (s.series, labels)
                })
                .collect(),
        }),
        Record::Samples { tenant, samples } => Some(Rec::Samples {
            tenant: name(tenant, tenants),
            samples: samples
                .iter()
                .map(|s| (s.series, s.t, s.v.to_bits()))
                .collect(),
        }),
        Record::Tombstones { tenant, tombstones } => Some(Rec::Tombstones {
            tenant: name(tenant, tenants),
            ranges: tombstones
                .iter()
                .map(|t| (t.series, t.min_t, t.max_t))
                .collect(),
        }),
    }
}

/// Reads the whole log: the records before the end or the first damage, and how it ended.
pub fn read_all<F: WalFs>(fs: &F, dir: &Path) -> (Vec<Rec>, Result<ReplayStats, Corruption>) {
    block_on(async {
        let mut r = WalReader::open(fs.clone(), dir).await.expect("list wal");
        let mut tenants = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.next().await {
                Ok(Some(rec)) => out.extend(to_rec(&rec, &mut tenants)),
                Ok(None) => return (out, Ok(r.stats())),
                Err(ReadError::Corrupt(c)) => return (out, Err(c)),
                Err(e) => panic!("read error: {e}"),
            }
        }
    })
}

/// Reads the whole log, which must have no damage except perhaps a torn tail.
pub fn replay_ok<F: WalFs>(fs: &F, dir: &Path) -> (Vec<Rec>, ReplayStats) {
    let (recs, end) = read_all(fs, dir);
    (recs, end.expect("no corruption in the middle"))
}

/// A fresh directory under cargo's per-target temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn label_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{1,12}",
        1 => "\\PC{0,20}",
        1 => "[a-z]{100,400}",
    ]
}

pub fn tenant_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        "[a-z0-9-]{1,40}"
    ]
}

/// Any record with 1 to `max` entries.
pub fn rec(max: usize) -> impl Strategy<Value = Rec> {
    let labels = prop::collection::vec((label_string(), label_string()), 0..6);
    let series = prop::collection::vec((any::<u32>(), labels), 1..max.clamp(2, 20));
    let ts = prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_700_000_000_000];
    let samples = prop::collection::vec(
        (
            prop_oneof![any::<u32>(), 0u32..1000],
            ts.clone(),
            any::<u64>(),
        ),
        1..max.max(2),
    );
    let ranges = prop::collection::vec((any::<u32>(), ts.clone(), ts), 1..max.max(2));
    prop_oneof![
        1 => (tenant_name(), series).prop_map(|(tenant, series)| Rec::Series { tenant, series }),
        3 => (tenant_name(), samples).prop_map(|(tenant, samples)| Rec::Samples { tenant, samples }),
        1 => (tenant_name(), ranges).prop_map(|(tenant, ranges)| Rec::Tombstones { tenant, ranges }),
    ]
}
