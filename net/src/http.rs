//! The HTTP server: every shard accepts on the shared port and serves its connections with hyper
//! (HTTP/1.1) on its own executor, through compio's adapter.

pub mod body;
pub mod server;
