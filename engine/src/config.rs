//! The engine's component configurations, with Cortex's key names and defaults.

use std::path::PathBuf;
use std::time::Duration;

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

/// `querier:` (Cortex's names and defaults).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// The most samples one query may load into memory.
    pub max_samples: usize,
    /// How long one query may run.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How far back an instant selector looks for a sample.
    #[serde(with = "humantime_serde")]
    pub lookback_delta: Duration,
    /// The step of a subquery written without one.
    #[serde(with = "humantime_serde")]
    pub default_evaluation_interval: Duration,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            max_samples: 50_000_000,
            timeout: Duration::from_mins(2),
            lookback_delta: Duration::from_mins(5),
            default_evaluation_interval: Duration::from_mins(1),
        }
    }
}

impl QuerierConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_samples == 0 {
            return Err("querier.max_samples must be positive".into());
        }
        if self.lookback_delta.as_millis() == 0 || self.default_evaluation_interval.as_millis() == 0
        {
            return Err("querier.lookback_delta and querier.default_evaluation_interval must be at least 1ms".into());
        }
        if self.timeout.is_zero() {
            return Err("querier.timeout must be positive".into());
        }
        Ok(())
    }

    /// The PromQL engine's settings.
    pub fn engine_options(&self) -> crate::promql::EngineOptions {
        crate::promql::EngineOptions {
            lookback_delta_ms: self.lookback_delta.as_millis() as i64,
            max_samples: self.max_samples,
            timeout: self.timeout,
            default_subquery_step_ms: self.default_evaluation_interval.as_millis() as i64,
        }
    }
}
