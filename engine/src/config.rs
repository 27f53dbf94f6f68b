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

/// `blocks_storage:` the ingester's local TSDB and the bucket (Cortex's names).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocksStorageConfig {
    pub tsdb: TsdbConfig,
    pub backend: crate::bucket::Backend,
    pub filesystem: crate::bucket::FilesystemConfig,
    pub s3: crate::bucket::S3Config,
    pub gcs: crate::bucket::GcsConfig,
    pub azure: crate::bucket::AzureConfig,
    /// How queriers read the bucket (Cortex's `bucket_store` section; the keys strata reads).
    pub bucket_store: crate::blocks::BucketStoreConfig,
}

impl BlocksStorageConfig {
    /// The bucket's part of the section.
    pub fn bucket(&self) -> crate::bucket::BucketConfig {
        crate::bucket::BucketConfig {
            backend: self.backend,
            filesystem: self.filesystem.clone(),
            s3: self.s3.clone(),
            gcs: self.gcs.clone(),
            azure: self.azure.clone(),
        }
    }
}

/// `blocks_storage.tsdb:` (Cortex's names and defaults, plus `wal_fsync`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsdbConfig {
    /// Where the ingester keeps its local data: each shard's WAL, and the blocks it cuts.
    pub dir: PathBuf,
    /// When a push is acknowledged: after the fsync that covers it (`group`, fsyncs batched
    /// over `wal_group_commit_window`), or once in the WAL's buffer (`relaxed`, as Prometheus).
    pub wal_fsync: WalFsync,
    /// How long the first push waiting for an fsync waits for others to share it.
    #[serde(with = "humantime_serde")]
    pub wal_group_commit_window: Duration,
    /// The size at which a WAL segment file is closed and the next one started.
    pub wal_segment_size_bytes: u64,
    /// Prepare each next WAL segment as a zero-filled file in the background, so that a commit's
    /// fdatasync need not also commit the file system's journal for a growing file (40% faster
    /// per fsync on ext4 in isolation). Off by default: with `bench/peers/ingest.sh` it gained no
    /// measurable throughput (commits are not bound by the fsync's latency there), while the
    /// zero-filling doubles the WAL's disk writes and its first 128 MiB per shard at start-up
    /// cost a short load 30% of its throughput. Useless on copy-on-write file systems (btrfs,
    /// ZFS).
    pub wal_preallocate: bool,
    /// Block ranges; the first is the range of the blocks the head cuts (at least 1m; ranges are
    /// aligned to the clock).
    #[serde(with = "duration_list")]
    pub block_ranges_period: Vec<Duration>,
    /// How often the head is checked for a range to cut.
    #[serde(with = "humantime_serde")]
    pub head_compaction_interval: Duration,
    /// A head that received no sample for this long is cut whole.
    #[serde(with = "humantime_serde")]
    pub head_compaction_idle_timeout: Duration,
    /// How long shipped blocks are kept on local disk.
    #[serde(with = "humantime_serde")]
    pub retention_period: Duration,
    /// How often blocks not yet in the bucket are uploaded (0 disables shipping).
    #[serde(with = "humantime_serde")]
    pub ship_interval: Duration,
    /// Whether full pages of head chunks are written to `shard-<n>/head_chunks/` under `dir`
    /// and memory-mapped from there (as Prometheus maps its full head chunks), so that the
    /// head's closed chunks stay out of anonymous memory. The files are a memory spill, not
    /// durability: they are deleted at start-up (the WAL replay rebuilds the heads).
    pub head_chunks_on_disk: bool,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            dir: PathBuf::from("./data/tsdb"),
            wal_fsync: WalFsync::Group,
            wal_group_commit_window: Duration::from_millis(2),
            wal_segment_size_bytes: 128 << 20,
            wal_preallocate: false,
            block_ranges_period: vec![Duration::from_hours(2)],
            head_compaction_interval: Duration::from_mins(1),
            head_compaction_idle_timeout: Duration::from_hours(1),
            retention_period: Duration::from_hours(13),
            ship_interval: Duration::from_mins(1),
            head_chunks_on_disk: true,
        }
    }
}

impl TsdbConfig {
    /// The head's block range in ms (the first of `block_ranges_period`, at least 1m).
    pub fn block_range_ms(&self) -> i64 {
        let d = self
            .block_ranges_period
            .first()
            .copied()
            .unwrap_or(Duration::from_hours(2));
        i64::try_from(d.as_millis())
            .unwrap_or(i64::MAX / 4)
            .max(60_000)
    }
}

/// `blocks_storage.tsdb.wal_fsync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalFsync {
    /// A push is acknowledged after the fsync that covers it.
    #[default]
    Group,
    /// A push is acknowledged once its records are in the WAL's buffer.
    Relaxed,
}

/// A YAML list of durations (`[2h, 12h]`), each in humantime's notation.
mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    use humantime_serde::re::humantime;

    /// Each range must be at least a minute; the list must not be empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let raw: Vec<String> = Vec::deserialize(d)?;
        if raw.is_empty() {
            return Err(serde::de::Error::custom("needs at least one range"));
        }
        raw.iter()
            .map(|s| {
                let d = humantime::parse_duration(s).map_err(|e| {
                    serde::de::Error::custom(format!("invalid duration {s:?}: {e}"))
                })?;
                if d < Duration::from_mins(1) {
                    return Err(serde::de::Error::custom(format!(
                        "range {s:?} is shorter than 1m"
                    )));
                }
                Ok(d)
            })
            .collect()
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
