//! Per-tenant limits (Cortex's names, meanings and defaults) and the state they need that is
//! shared by every shard: the ingestion-rate bucket and the tenant's series count.
//!
//! The shared state is lock-free: the rate bucket is one atomic (GCRA, the "virtual scheduling"
//! form of a token bucket) and the series count another. A shard looks a tenant up in the
//! registry once and keeps the `Arc` in its own map, so the registry's lock is off the hot path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::metrics::{Metrics, TenantCounters};
use crate::tenant::TenantId;

/// Per-tenant limits (`limits:` in the config file).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Samples (plus exemplars and metadata) per second a tenant may push.
    pub ingestion_rate: f64,
    /// How many samples a tenant may push at once above the rate.
    pub ingestion_burst_size: u64,
    /// Active series a tenant may have in total; 0 disables the limit.
    pub max_global_series_per_user: u64,
    /// Labels a series may have (the metric name included).
    pub max_label_names_per_series: usize,
    /// Bytes in a label name.
    pub max_label_name_length: usize,
    /// Bytes in a label value.
    pub max_label_value_length: usize,
    /// Whether samples older than `reject_old_samples_max_age` are rejected.
    pub reject_old_samples: bool,
    #[serde(with = "humantime_serde")]
    pub reject_old_samples_max_age: Duration,
    /// How far in the future a sample's timestamp may be.
    #[serde(with = "humantime_serde")]
    pub creation_grace_period: Duration,
    /// Bytes of block files (index and chunk segments) one block upload may stage, Mimir's
    /// limit of the same name; 0 disables it (each file is still capped at 4 GiB).
    pub compactor_block_upload_max_block_size_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingestion_rate: 25_000.0,
            ingestion_burst_size: 50_000,
            max_global_series_per_user: 0,
            max_label_names_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            reject_old_samples: false,
            reject_old_samples_max_age: Duration::from_hours(14 * 24),
            creation_grace_period: Duration::from_mins(10),
            compactor_block_upload_max_block_size_bytes: 0,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), String> {
        if self.ingestion_rate.is_nan()
            || self.ingestion_rate <= 0.0
            || self.ingestion_rate.is_infinite()
        {
            return Err(format!(
                "limits.ingestion_rate must be a positive number, got {}",
                self.ingestion_rate
            ));
        }
        if self.ingestion_burst_size == 0 {
            return Err("limits.ingestion_burst_size must be positive".into());
        }
        Ok(())
    }
}

/// A lock-free token bucket in GCRA form: `tat` is the theoretical arrival time (ns since the
/// bucket's epoch) of the next request if the tenant pushed at exactly its rate.
#[derive(Debug)]
pub struct RateBucket {
    epoch: Instant,
    tat_ns: AtomicU64,
    ns_per_token: f64,
    burst_ns: f64,
}

impl RateBucket {
    pub fn new(rate_per_sec: f64, burst: u64) -> Self {
        let ns_per_token = 1e9 / rate_per_sec;
        RateBucket {
            epoch: Instant::now(),
            tat_ns: AtomicU64::new(0),
            ns_per_token,
            burst_ns: ns_per_token * burst as f64,
        }
    }

    /// Takes `n` tokens if the bucket holds them; otherwise takes nothing and returns false. A
    /// request larger than the burst is never allowed, as in Cortex.
    pub fn allow(&self, n: u64) -> bool {
        self.allow_at(n, self.epoch.elapsed().as_nanos() as u64)
    }

    fn allow_at(&self, n: u64, now: u64) -> bool {
        let cost = self.ns_per_token * n as f64;
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            let new_tat = start as f64 + cost;
            if new_tat - now as f64 > self.burst_ns {
                return false;
            }
            match self.tat_ns.compare_exchange_weak(
                tat,
                new_tat as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// What every shard shares about one tenant.
#[derive(Debug)]
pub struct TenantShared {
    pub id: TenantId,
    pub limits: Limits,
    pub rate: RateBucket,
    /// Active series of the tenant across all shards.
    pub series: AtomicU64,
    pub counters: TenantCounters,
}

impl TenantShared {
    /// Reserves one series against `max_global_series_per_user`; false when the limit is reached.
    pub fn reserve_series(&self) -> bool {
        let limit = self.limits.max_global_series_per_user;
        let prev = self.series.fetch_add(1, Ordering::Relaxed);
        if limit != 0 && prev >= limit {
            self.series.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts `n` series whatever the limit: series a WAL replay recreates were accepted before.
    pub fn add_series(&self, n: u64) {
        self.series.fetch_add(n, Ordering::Relaxed);
    }

    /// Gives back `n` series the heads dropped (never below zero).
    pub fn release_series(&self, n: u64) {
        let _ = self
            .series
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_sub(n))
            });
    }
}

/// All tenants' shared state; looked up once per tenant per shard.
#[derive(Debug)]
pub struct TenantRegistry {
    defaults: Limits,
    metrics: Arc<Metrics>,
    tenants: RwLock<HashMap<TenantId, Arc<TenantShared>>>,
}

impl TenantRegistry {
    pub fn new(defaults: Limits, metrics: Arc<Metrics>) -> Self {
        TenantRegistry {
            defaults,
            metrics,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, id: &TenantId) -> Arc<TenantShared> {
        if let Some(t) = self
            .tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            return t.clone();
        }
        let mut w = self
            .tenants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.entry(id.clone())
            .or_insert_with(|| {
                let limits = self.defaults.clone();
                Arc::new(TenantShared {
                    id: id.clone(),
                    rate: RateBucket::new(limits.ingestion_rate, limits.ingestion_burst_size),
                    limits,
                    series: AtomicU64::new(0),
                    counters: self.metrics.tenant(id.as_str()),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let b = RateBucket::new(1000.0, 100);
        assert!(b.allow_at(100, 0));
        assert!(!b.allow_at(1, 0));
        // 10 ms later, 10 tokens are back.
        assert!(b.allow_at(10, 10_000_000));
        assert!(!b.allow_at(1, 10_000_000));
        // A request larger than the burst never passes.
        assert!(!b.allow_at(101, 10_000_000_000));
        assert!(b.allow_at(100, 10_000_000_000));
    }

    #[test]
    fn series_limit_is_exact() {
        let reg = TenantRegistry::new(
            Limits {
                max_global_series_per_user: 2,
                ..Limits::default()
            },
            Arc::new(Metrics::new()),
        );
        let t = reg.get(&TenantId::parse("a").unwrap());
        assert!(t.reserve_series());
        assert!(t.reserve_series());
        assert!(!t.reserve_series());
        assert_eq!(t.series.load(Ordering::Relaxed), 2);
        // Dropped series free their places.
        t.release_series(1);
        assert!(t.reserve_series());
        assert!(!t.reserve_series());
        t.release_series(5);
        assert_eq!(t.series.load(Ordering::Relaxed), 0);
        t.add_series(3);
        assert!(!t.reserve_series());
        assert_eq!(t.series.load(Ordering::Relaxed), 3);
    }
}
