//! strata's time-series storage: labels and their hashing, the in-place decoded write batch, XOR
//! chunks byte-compatible with Prometheus, and the per-shard head (series, postings, matchers).
//!
//! Nothing here knows about the network or the runtime: a head is owned by exactly one shard
//! thread and needs no locks.

pub mod batch;
pub mod block;
pub mod chunkenc;
pub mod head;
pub mod labels;
pub mod matcher;
pub mod symbols;
pub mod wal;
