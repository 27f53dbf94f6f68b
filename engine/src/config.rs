//! The engine's component configurations, with Cortex's key names and defaults.

use std::path::PathBuf;

use serde::Deserialize;

/// `distributor:`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorConfig {
    /// Largest accepted push body, compressed or decompressed, in bytes (Cortex: 100 MiB).
    pub max_recv_msg_size: usize,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        DistributorConfig {
            max_recv_msg_size: 100 << 20,
        }
    }
}

/// `ingester:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    /// Shards (executor threads, each owning a partition of the series); 0 = one per core.
    pub shards: usize,
}

/// `blocks_storage:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocksStorageConfig {
    pub tsdb: TsdbConfig,
}

/// `blocks_storage.tsdb:`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsdbConfig {
    /// Where the ingester keeps its local data (WAL and blocks, from the durability issue on).
    pub dir: PathBuf,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            dir: PathBuf::from("./data/tsdb"),
        }
    }
}
