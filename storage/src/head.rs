//! The head: series of one tenant on one shard.
