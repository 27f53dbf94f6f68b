//! strata's engine: the thread-per-core runtime (`rt`), shards and their messages, the push
//! path's distribution over shards (`instance`), tenants, limits and validation.

pub mod blocks;
pub mod bucket;
pub mod compact;
pub mod config;
pub mod instance;
pub mod limits;
pub mod metrics;
pub mod promql;
pub mod rt;
pub mod shard;
pub mod tenant;
pub mod validation;
pub mod wal_fs;
