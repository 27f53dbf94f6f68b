//! Prometheus remote-write 1.0 and remote-read: wire types and codecs.
//!
//! `proto` holds prost messages declared by hand from `prometheus/prompb` (no `protoc` at build
//! time); they are the test oracle and the remote-read codec. The push path uses `decode`, our own
//! zero-copy walk over the decompressed buffer.

pub mod decode;
pub mod proto;
pub mod snappy;
