//! Chunk encodings. Only XOR (Prometheus encoding 1) for now.

pub mod bstream;
pub mod xor;
