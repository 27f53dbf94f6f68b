//! strata's own metrics (exposed on `/metrics` with prometheus-client).
//!
//! Counters touched on the push path are resolved once per tenant and kept in the tenant's shared
//! state, so a push increments atomics and never takes the families' locks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UserLabels {
    pub user: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscardLabels {
    pub user: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status_code: String,
}

/// Counters of one tenant, resolved once.
#[derive(Clone, Debug, Default)]
pub struct TenantCounters {
    pub received_samples: Counter,
    pub received_metadata: Counter,
    pub received_exemplars: Counter,
}

/// All of strata's metrics.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    received_samples: Family<UserLabels, Counter>,
    received_metadata: Family<UserLabels, Counter>,
    received_exemplars: Family<UserLabels, Counter>,
    pub discarded_samples: Family<DiscardLabels, Counter>,
    push_requests: Family<StatusLabels, Counter>,
    /// `push_requests` of the usual codes, resolved once (no lock or allocation per request).
    push_by_code: Vec<(u16, Counter)>,
    pub memory_series: Gauge,
    pub memory_users: Gauge,
    pub head_memory_bytes: Gauge,
    pub shards: Gauge,
    /// Seconds of each WAL commit's write and fdatasync (per group commit, not per push).
    pub wal_fsync_seconds: Histogram,
    /// Pushes (shard parts) each WAL commit acknowledged.
    pub wal_commit_pushes: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("strata");
        let m = Metrics {
            received_samples: Family::default(),
            received_metadata: Family::default(),
            received_exemplars: Family::default(),
            discarded_samples: Family::default(),
            push_requests: Family::default(),
            push_by_code: Vec::new(),
            memory_series: Gauge::default(),
            memory_users: Gauge::default(),
            head_memory_bytes: Gauge::default(),
            shards: Gauge::default(),
            // 50 us to 0.4 s.
            wal_fsync_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 14)),
            wal_commit_pushes: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            registry: Registry::default(),
        };
        registry.register(
            "distributor_received_samples",
            "Samples received and accepted by the distributor, per tenant",
            m.received_samples.clone(),
        );
        registry.register(
            "distributor_received_metadata",
            "Metadata entries received per tenant (accepted, not stored yet)",
            m.received_metadata.clone(),
        );
        registry.register(
            "distributor_received_exemplars",
            "Exemplars received per tenant (accepted, not stored yet)",
            m.received_exemplars.clone(),
        );
        registry.register(
            "discarded_samples",
            "Samples discarded, per tenant and reason",
            m.discarded_samples.clone(),
        );
        registry.register(
            "distributor_push_requests",
            "Remote-write requests answered, by status code",
            m.push_requests.clone(),
        );
        registry.register(
            "ingester_memory_series",
            "Series in memory",
            m.memory_series.clone(),
        );
        registry.register(
            "ingester_memory_users",
            "Tenants with series in memory",
            m.memory_users.clone(),
        );
        registry.register(
            "ingester_head_memory_bytes",
            "Approximate bytes held by the heads (series, postings, symbols, chunks)",
            m.head_memory_bytes.clone(),
        );
        registry.register(
            "ingester_tsdb_wal_fsync_duration_seconds",
            "Duration of WAL commits: the write and fdatasync of everything logged since the last",
            m.wal_fsync_seconds.clone(),
        );
        registry.register(
            "ingester_tsdb_wal_commit_pushes",
            "Pushes (each shard's part of one) acknowledged by one WAL commit",
            m.wal_commit_pushes.clone(),
        );
        registry.register(
            "shards",
            "Shards (one executor thread each)",
            m.shards.clone(),
        );
        let push_by_code = [200, 204, 400, 401, 413, 415, 429, 500]
            .into_iter()
            .map(|c| {
                let l = StatusLabels {
                    status_code: c.to_string(),
                };
                (c, m.push_requests.get_or_create(&l).clone())
            })
            .collect();
        Metrics {
            registry,
            push_by_code,
            ..m
        }
    }

    /// Counts one answered push.
    pub fn push_request(&self, code: u16) {
        match self.push_by_code.iter().find(|(c, _)| *c == code) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                self.push_requests
                    .get_or_create(&StatusLabels {
                        status_code: code.to_string(),
                    })
                    .inc();
            }
        }
    }

    /// Resolves one tenant's counters (takes the families' locks; call once per tenant).
    pub fn tenant(&self, user: &str) -> TenantCounters {
        let l = UserLabels {
            user: user.to_owned(),
        };
        TenantCounters {
            received_samples: self.received_samples.get_or_create(&l).clone(),
            received_metadata: self.received_metadata.get_or_create(&l).clone(),
            received_exemplars: self.received_exemplars.get_or_create(&l).clone(),
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
