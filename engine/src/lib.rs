//! strata's engine: the thread-per-core runtime, shards, tenants and limits.
