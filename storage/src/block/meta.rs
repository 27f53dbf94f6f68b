//! `meta.json`: a block's identity, time range, statistics and lineage, plus the Thanos/Cortex
//! extension (`thanos.labels.__org_id__` names the tenant).
//!
//! Reading is lenient, so that metas written by Prometheus, Thanos, Cortex or Mimir load: unknown
//! fields are ignored and every optional section defaults. Writing follows Prometheus's field
//! names and order (`ulid`, `minTime`, `maxTime`, `stats`, `compaction`, `version`, `thanos`).
//! Time ranges are half-open: `maxTime` is one past the newest sample.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ulid::Ulid;

/// The only `version` of meta.json there is.
pub const META_VERSION: u32 = 1;

/// The meta.json file name.
pub const META_FILENAME: &str = "meta.json";

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// Oldest sample time (ms), inclusive.
    pub min_time: i64,
    /// Newest sample time (ms) plus one: exclusive.
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: BlockCompaction,
    pub version: u32,
    /// The Thanos/Cortex extension; absent in plain Prometheus blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// Counts over the whole block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default)]
    pub num_samples: u64,
    #[serde(default)]
    pub num_series: u64,
    #[serde(default)]
    pub num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

/// How the block came to be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCompaction {
    /// 1 for a block cut from a head; one more per compaction.
    #[serde(default)]
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    #[serde(default)]
    pub sources: Vec<Ulid>,
    /// The blocks this one was compacted from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block in [`BlockCompaction::parents`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

/// The `thanos` section, as Thanos and Cortex write it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// External labels of the block; Cortex puts the tenant in `__org_id__`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: ThanosDownsample,
    /// Which component wrote the block (`ingester`, `compactor`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// The downsampling resolution of a block, in ms (0: raw data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    #[serde(default)]
    pub resolution: i64,
}

impl ThanosMeta {
    /// The section Cortex ingesters write for `tenant`'s raw blocks.
    pub fn for_tenant(tenant: &str, source: &str) -> Self {
        ThanosMeta {
            labels: BTreeMap::from([("__org_id__".to_owned(), tenant.to_owned())]),
            downsample: ThanosDownsample { resolution: 0 },
            source: source.to_owned(),
        }
    }
}

impl BlockMeta {
    /// Parses meta.json bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Serialises as Prometheus does (indented, fields in Prometheus's order).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(v: &bool) -> bool {
    !*v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meta.json as Prometheus 2.42 writes it.
    const PROMETHEUS: &str = r#"{
	"ulid": "01M80ZDY2G4NPEQRK981ER2GZR",
	"minTime": 1700000000000,
	"maxTime": 1700000015001,
	"stats": {
		"numSamples": 4,
		"numSeries": 3,
		"numChunks": 3
	},
	"compaction": {
		"level": 1,
		"sources": [
			"01M80ZDY2G4NPEQRK981ER2GZR"
		]
	},
	"version": 1
}"#;

    /// A meta.json in the shape Thanos and Cortex write, with fields this type does not know.
    const THANOS: &str = r#"{
	"ulid": "01HQ3M6TDJDT0P2QG3D5E5K9X7",
	"minTime": 1700000000000,
	"maxTime": 1700007200000,
	"stats": {"numSamples": 10, "numSeries": 2, "numChunks": 2, "numFloatSamples": 10},
	"compaction": {
		"level": 2,
		"sources": ["01HQ3M6TDJDT0P2QG3D5E5K9X7"],
		"parents": [{"ulid": "01HQ3M6TDJDT0P2QG3D5E5K9X7", "minTime": 1, "maxTime": 2}]
	},
	"version": 1,
	"thanos": {
		"labels": {"__org_id__": "tenant-a"},
		"downsample": {"resolution": 0},
		"source": "compactor",
		"segment_files": ["000001"],
		"files": [{"rel_path": "index", "size_bytes": 123}],
		"index_stats": {}
	}
}"#;

    #[test]
    fn reads_prometheus_and_thanos_metas() {
        let p = BlockMeta::from_json(PROMETHEUS.as_bytes()).expect("prometheus meta");
        assert_eq!(p.ulid.to_string(), "01M80ZDY2G4NPEQRK981ER2GZR");
        assert_eq!(p.max_time, 1_700_000_015_001);
        assert_eq!(p.stats.num_series, 3);
        assert_eq!(p.compaction.sources, vec![p.ulid]);
        assert!(p.thanos.is_none());

        let t = BlockMeta::from_json(THANOS.as_bytes()).expect("thanos meta");
        let th = t.thanos.as_ref().expect("thanos section");
        assert_eq!(th.labels["__org_id__"], "tenant-a");
        assert_eq!(th.source, "compactor");
        assert_eq!(t.compaction.parents.len(), 1);
        assert_eq!(t.compaction.level, 2);
    }

    #[test]
    fn writes_prometheus_field_names_and_round_trips() {
        let ulid: Ulid = "01M80ZDY2G4NPEQRK981ER2GZR".parse().expect("ulid");
        let meta = BlockMeta {
            ulid,
            min_time: 0,
            max_time: 1,
            stats: BlockStats {
                num_samples: 1,
                num_series: 1,
                num_chunks: 1,
                num_tombstones: 0,
            },
            compaction: BlockCompaction {
                level: 1,
                sources: vec![ulid],
                ..BlockCompaction::default()
            },
            version: META_VERSION,
            thanos: Some(ThanosMeta::for_tenant("t1", "ingester")),
        };
        let json = String::from_utf8(meta.to_json()).expect("utf-8");
        for key in [
            "\"ulid\"",
            "\"minTime\"",
            "\"maxTime\"",
            "\"numSamples\"",
            "\"numSeries\"",
            "\"numChunks\"",
            "\"level\"",
            "\"sources\"",
            "\"version\"",
            "\"__org_id__\"",
            "\"resolution\"",
            "\"source\"",
        ] {
            assert!(json.contains(key), "{key} missing from {json}");
        }
        assert!(!json.contains("parents") && !json.contains("numTombstones"));
        assert!(json.find("\"ulid\"") < json.find("\"minTime\""));
        assert!(json.find("\"version\"") < json.find("\"thanos\""));
        assert_eq!(BlockMeta::from_json(json.as_bytes()).expect("parse"), meta);
    }
}
